// Package redact is finproxy's last line of defence against secrets in
// logs: every log line passes through one Writer that blanks the configured
// secrets, bearer tokens and the values of secret-named JSON fields.
//
// finproxy never logs a secret on purpose (sessions appear as short keyed
// hashes, tokens and passwords not at all); this guard catches a mistake,
// such as an upstream error message that echoes a credential.
package redact

import (
	"bytes"
	"io"
	"regexp"
	"sync"
)

// Mask replaces whatever was redacted.
const Mask = "[REDACTED]"

// minSecretLen is the shortest configured secret the Writer redacts; a
// shorter one would blank ordinary words.
const minSecretLen = 6

var (
	// bearer matches an Authorization value and HTTP Basic credentials.
	bearer = regexp.MustCompile(`(?i)\b(bearer|basic)(\s+|\\u0020)[A-Za-z0-9\-._~+/=]{6,}`)
	// urlPassword matches the password of a URL's user info.
	urlPassword = regexp.MustCompile(`(://[^:/@\s"]*:)[^@/\s"]+@`)
)

// Writer redacts each write before passing it on. A write is expected to be
// one log line or more (zerolog writes whole lines). Safe for concurrent use
// if the underlying writer is.
type Writer struct {
	out     io.Writer
	secrets [][]byte
	mu      sync.Mutex
}

// NewWriter returns a Writer to out that also blanks every one of secrets
// (empty and very short ones are ignored).
func NewWriter(out io.Writer, secrets ...string) *Writer {
	w := &Writer{out: out}
	for _, s := range secrets {
		if len(s) >= minSecretLen {
			w.secrets = append(w.secrets, []byte(s))
		}
	}
	return w
}

// Write implements io.Writer. It reports len(p) written on success, as the
// caller's bytes were all consumed even when fewer went out.
func (w *Writer) Write(p []byte) (int, error) {
	line := Bytes(p, w.secrets...)
	w.mu.Lock()
	_, err := w.out.Write(line)
	w.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// String redacts s like a Writer with secrets would.
func String(s string, secrets ...string) string {
	bs := make([][]byte, 0, len(secrets))
	for _, x := range secrets {
		if len(x) >= minSecretLen {
			bs = append(bs, []byte(x))
		}
	}
	return string(Bytes([]byte(s), bs...))
}

// Bytes returns p with secrets, bearer credentials, URL passwords and
// secret-named JSON fields blanked. p is not modified.
func Bytes(p []byte, secrets ...[]byte) []byte {
	out := p
	for _, s := range secrets {
		if bytes.Contains(out, s) {
			out = bytes.ReplaceAll(out, s, []byte(Mask))
		}
	}
	if mayHoldSpace(out) && (containsFold(out, "bearer") || containsFold(out, "basic")) {
		out = bearer.ReplaceAll(out, []byte("$1 "+Mask))
	}
	out = blankSecretFields(out)
	// '@' first: it is rare in log lines, while ':' is in every JSON field
	// and makes the search for "://" slow.
	if bytes.IndexByte(out, '@') >= 0 && bytes.Contains(out, []byte("://")) {
		out = urlPassword.ReplaceAll(out, []byte("${1}"+Mask+"@"))
	}
	return out
}

// mayHoldSpace reports whether p holds what bearer needs after the scheme:
// whitespace other than the line breaks, or a JSON-escaped space. zerolog
// writes no whitespace between fields and escapes tabs and carriage
// returns, so most lines have none, and the search for the schemes (whose
// first letter is in every hex id) is skipped: a few vectorised scans of
// the whole batch instead of one search per 'b'.
//
// A raw line feed, which the pattern's \s also matches, is not looked for:
// every batch holds one at each line's end, and what follows it is the
// next line's first byte, '{' for JSON lines, which no credential starts
// with (a console line has spaces anyway). The pattern is case-blind, so
// \U0020 counts too, though zerolog never writes it.
func mayHoldSpace(p []byte) bool {
	return bytes.IndexByte(p, ' ') >= 0 || bytes.IndexByte(p, '\t') >= 0 || bytes.IndexByte(p, '\r') >= 0 ||
		bytes.IndexByte(p, '\f') >= 0 || bytes.Contains(p, []byte(`\u0020`)) || bytes.Contains(p, []byte(`\U0020`))
}

// secretNames are the words that make a JSON field name secret.
var secretNames = []string{"password", "secret", "token", "authorization", "cookie", "session_id", "sessionid", "session-id"}

// blankSecretFields replaces the values of JSON string fields whose names
// contain a secret word, as zerolog writes them: "refresh_token":"…", at
// any depth. Each line is read on its own, so a broken one cannot shift
// the next out of step. A JSON line (zerolog's default format; it starts
// with '{') is read as a run of JSON strings: a string followed by ':' is
// a field name, the string after it the value; every other byte is
// skipped. Any other line (the console format, whose message is written
// raw, so a stray quote can stand anywhere) is searched for `":"`
// instead, which finds a field however the quotes before it fell. It
// copies p only when it changes something.
func blankSecretFields(p []byte) []byte {
	b := blanker{p: p}
	for lineStart := 0; lineStart < len(p); {
		lineEnd := len(p)
		if nl := bytes.IndexByte(p[lineStart:], '\n'); nl >= 0 {
			lineEnd = lineStart + nl
		}
		if p[lineStart] == '{' {
			b.jsonLine(lineStart, lineEnd)
		} else if lineEnd > lineStart {
			b.looseLine(lineStart, lineEnd)
		}
		lineStart = lineEnd + 1
	}
	if b.out == nil {
		return p
	}
	return append(b.out, p[b.last:]...)
}

// blanker builds the redacted copy of p: p[:last] is already in out.
type blanker struct {
	p, out []byte
	last   int
}

// blank replaces p[valStart:valEnd] with Mask.
func (b *blanker) blank(valStart, valEnd int) {
	b.out = append(b.out, b.p[b.last:valStart]...)
	b.out = append(b.out, Mask...)
	b.last = valEnd
}

func (b *blanker) jsonLine(lineStart, lineEnd int) {
	line := b.p[:lineEnd] // indexes stay p's
	for i := lineStart; i < lineEnd; {
		for i < lineEnd && line[i] != '"' {
			i++ // the next string is a byte or two away: no vectorised search
		}
		if i == lineEnd {
			return
		}
		nameStart := i + 1
		nameEnd := stringEnd(line, nameStart)
		i = nameEnd + 1
		if i >= lineEnd || line[i] != ':' {
			continue // a value, or the line's end
		}
		if i+1 >= lineEnd || line[i+1] != '"' {
			i++ // a number, object, array, true, false or null
			continue
		}
		valStart := i + 2
		valEnd := stringEnd(line, valStart)
		if secretName(line[nameStart:nameEnd]) {
			b.blank(valStart, valEnd)
		}
		i = valEnd + 1
	}
}

func (b *blanker) looseLine(lineStart, lineEnd int) {
	line := b.p[:lineEnd]
	sep := []byte(`":"`)
	for i := lineStart; i < lineEnd; {
		j := bytes.Index(line[i:], sep)
		if j < 0 {
			return
		}
		j += i
		start := bytes.LastIndexByte(line[lineStart:j], '"')
		valStart := j + len(sep)
		valEnd := stringEnd(line, valStart)
		if start >= 0 && secretName(line[lineStart+start+1:j]) {
			b.blank(valStart, valEnd)
		}
		i = valEnd + 1
	}
}

// stringEnd returns the index of the quote that ends the JSON string
// starting at p[i] (after its opening quote), or len(p) when it is not
// terminated (a truncated line: a secret value is blanked to its end).
func stringEnd(p []byte, i int) int {
	// A byte loop: the strings of a log line are short, shorter than
	// what a vectorised search needs to pay for its set-up.
	for ; i < len(p); i++ {
		switch p[i] {
		case '"':
			return i
		case '\\':
			i++ // the escaped byte
		}
	}
	return len(p)
}

// secretStarts holds secretNames by first letter: a field name is checked
// in one pass, each letter against only the words that start with it,
// instead of once per word.
var secretStarts = func() (t [256][]string) {
	for _, w := range secretNames {
		t[w[0]] = append(t[w[0]], w)
	}
	return t
}()

func secretName(name []byte) bool {
	for i := range name {
		for _, w := range secretStarts[lower(name[i])] {
			if hasPrefixFold(name[i:], w) {
				return true
			}
		}
	}
	return false
}

// hasPrefixFold reports whether p starts with w (lower case) in any case.
func hasPrefixFold(p []byte, w string) bool {
	if len(p) < len(w) {
		return false
	}
	for k := 0; k < len(w); k++ {
		if lower(p[k]) != w[k] {
			return false
		}
	}
	return true
}

// containsFold reports whether p contains w (lower case) in any case. It
// jumps from one possible first letter to the next (bytes.IndexByte is
// vectorised) instead of comparing at every position.
func containsFold(p []byte, w string) bool {
	first, upper := w[0], w[0]-'a'+'A'
	for _, c := range [2]byte{first, upper} {
		for i := 0; i+len(w) <= len(p); i++ {
			j := bytes.IndexByte(p[i:len(p)-len(w)+1], c)
			if j < 0 {
				break
			}
			i += j
			k := 1
			for k < len(w) && lower(p[i+k]) == w[k] {
				k++
			}
			if k == len(w) {
				return true
			}
		}
	}
	return false
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
