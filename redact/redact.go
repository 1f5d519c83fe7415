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
	if containsFold(out, "bearer") || containsFold(out, "basic") {
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

// secretNames are the words that make a JSON field name secret.
var secretNames = []string{"password", "secret", "token", "authorization", "cookie", "session_id", "sessionid", "session-id"}

// blankSecretFields replaces the values of JSON string fields whose names
// contain a secret word, as zerolog writes them: "refresh_token":"…". It
// copies p only when it changes something.
func blankSecretFields(p []byte) []byte {
	sep := []byte(`":"`)
	var out []byte
	last := 0 // p[:last] is already in out
	for i := 0; ; {
		j := bytes.Index(p[i:], sep)
		if j < 0 {
			break
		}
		j += i
		start := bytes.LastIndexByte(p[:j], '"')
		valStart := j + len(sep)
		valEnd := valStart
		for valEnd < len(p) && p[valEnd] != '"' {
			if p[valEnd] == '\\' {
				valEnd++
			}
			valEnd++
		}
		if start >= 0 && secretName(p[start+1:j]) && valEnd <= len(p) {
			out = append(out, p[last:valStart]...)
			out = append(out, Mask...)
			last = valEnd
		}
		i = min(valEnd+1, len(p))
	}
	if out == nil {
		return p
	}
	return append(out, p[last:]...)
}

func secretName(name []byte) bool {
	for _, w := range secretNames {
		if containsFold(name, w) {
			return true
		}
	}
	return false
}

// containsFold reports whether p contains the lowercase ASCII word w in any
// case, without allocating.
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
