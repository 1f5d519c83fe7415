package redact

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestWriterRedactsEverySecretKind(t *testing.T) {
	const (
		clientSecret   = "client-secret-value-123"
		identitySecret = "identity-secret-0123456789abcdef0123456789"
		jwtSecret      = "jwt-hmac-secret-0123456789abcdef01234"
		redisPassword  = "redis-pass-99"
	)
	cases := []struct{ name, line, secret string }{
		{"client secret in a message", `{"message":"refused client_secret=` + clientSecret + `"}`, clientSecret},
		{"identity secret", `{"err":"bad ` + identitySecret + `"}`, identitySecret},
		{"jwt hmac secret", `{"detail":"` + jwtSecret + `"}`, jwtSecret},
		{"bearer token", `{"err":"upstream said Authorization: Bearer yvMbx_TgwdYE0hgOVb8N4ZOvxOukqfjz"}`, "yvMbx_TgwdYE0hgOVb8N4ZOvxOukqfjz"},
		{"basic credentials", `{"err":"Basic ZGVtbzpzZWNyZXQ="}`, "ZGVtbzpzZWNyZXQ="},
		{"access token field", `{"access_token":"tok-abc-123456","level":"info"}`, "tok-abc-123456"},
		{"refresh token field", `{"refresh_token":"ref-abc-123456"}`, "ref-abc-123456"},
		{"password field", `{"password":"pw-abc-123456"}`, "pw-abc-123456"},
		{"escaped quote in password", `{"password":"pw-\"abc-123456"}`, `abc-123456`},
		{"raw session header", `{"x-session-id":"my-raw-session-0123456789"}`, "my-raw-session-0123456789"},
		{"session id field", `{"session_id":"my-raw-session-0123456789"}`, "my-raw-session-0123456789"},
		{"redis url password", `{"url":"redis://:` + redisPassword + `@127.0.0.1:6379/0"}`, redisPassword},
		{"cookie", `{"cookie":"app=session-cookie-value"}`, "session-cookie-value"},
		{"client secret json", `{"clientSecret":"` + clientSecret + `"}`, clientSecret},
		{"nested object", `{"level":"warn","detail":{"user":{"Password":"pw-nested-123456"}},"message":"x"}`, "pw-nested-123456"},
		{"after an array of strings", `{"names":["a","b:"],"token":"tok-after-array-1"}`, "tok-after-array-1"},
		{"truncated line", `{"level":"warn","refresh_token":"ref-truncated-123456`, "ref-truncated-123456"},
		{"bearer after an escaped space", `{"err":"Authorization:Bearer\u0020yvMbx_TgwdYE0hgOVb8N4Z"}`, "yvMbx_TgwdYE0hgOVb8N4Z"},
		{"console line with a stray quote", `2026-12-02T04:00:00Z INF he said " err={"token":"secret-console-123"}`, "secret-console-123"},
		{"bearer after an upper-case escaped space", `{"err":"Bearer\U0020yvMbx_TgwdYE0hgOVb8N4Z"}`, "yvMbx_TgwdYE0hgOVb8N4Z"},
		{"bearer after a tab", "{\"err\":\"Bearer\tyvMbx_TgwdYE0hgOVb8N4Z\"}", "yvMbx_TgwdYE0hgOVb8N4Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			w := NewWriter(&out, clientSecret, identitySecret, jwtSecret, "", "short")
			n, err := w.Write([]byte(c.line + "\n"))
			if err != nil || n != len(c.line)+1 {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if strings.Contains(out.String(), c.secret) {
				t.Errorf("secret survived: %s", out.String())
			}
			if !strings.Contains(out.String(), Mask) {
				t.Errorf("nothing marked as redacted: %s", out.String())
			}
		})
	}
}

func TestWriterKeepsOrdinaryLines(t *testing.T) {
	line := `{"level":"info","request_id":"abc","method":"GET","path":"/api/v2/accounts","status":200,"session":"9f00ff37cde7","finapi_user":"fp-ykmn7ysnxztde2hs2dr75x6mhrdeww2t","event":"token_obtained","error":"token_unavailable","message":"request"}` + "\n"
	var out bytes.Buffer
	NewWriter(&out, "some-secret-value").Write([]byte(line))
	if out.String() != line {
		t.Errorf("ordinary line changed:\n got %s\nwant %s", out.String(), line)
	}
}

// TestBatchesAreRedactedLineByLine: logbuf hands over many lines at once;
// a broken line (an unterminated string) must not shift the next line's
// names and values out of step.
func TestBatchesAreRedactedLineByLine(t *testing.T) {
	batch := `{"level":"info","message":"unterminated` + "\n" +
		`{"level":"warn","password":"pw-second-line-1","message":"x"}` + "\n" +
		`{"level":"info","a":1,"b":"c","access_token":"tok-third-line-1"}` + "\n"
	var out bytes.Buffer
	NewWriter(&out).Write([]byte(batch))
	for _, secret := range []string{"pw-second-line-1", "tok-third-line-1"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("%s survived:\n%s", secret, out.String())
		}
	}
	if got := strings.Count(out.String(), "\n"); got != 3 {
		t.Errorf("%d lines out of 3:\n%s", got, out.String())
	}
}

// TestSecretFieldsMatchReference: on random zerolog-shaped lines (nested
// objects, arrays, escapes, secret names in any case at any depth) the
// one-pass reader blanks exactly the string values whose field names hold
// a secret word, as a reference that decodes the JSON finds them.
func TestSecretFieldsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"level", "path", "Password", "x_token", "session", "SESSION_ID", "cookies", "id", "authorization_hdr", "secretive", "msg"}
	values := []string{`plain`, `with \"quote\"`, `back\\slash`, `colon\":\"inside`, `tab\tand\u0020space`, ``}
	var value func(depth int) (string, []string)
	object := func(depth int) (string, []string) {
		var b strings.Builder
		var secrets []string
		b.WriteByte('{')
		for i := range 1 + rng.IntN(4) {
			if i > 0 {
				b.WriteByte(',')
			}
			name := names[rng.IntN(len(names))]
			v, inner := value(depth + 1)
			fmt.Fprintf(&b, "%q:%s", name, v)
			secrets = append(secrets, inner...)
			if strings.HasPrefix(v, `"`) && secretName([]byte(name)) {
				secrets = append(secrets, v)
			}
		}
		b.WriteByte('}')
		return b.String(), secrets
	}
	value = func(depth int) (string, []string) {
		switch k := rng.IntN(5); {
		case k == 0 && depth < 3:
			return object(depth)
		case k == 1 && depth < 3:
			a, s1 := value(depth + 1)
			c, s2 := value(depth + 1)
			return "[" + a + "," + c + "]", append(s1, s2...)
		case k == 2:
			return fmt.Sprint(rng.IntN(1000)), nil
		}
		// A unique marker keeps each value recognisable in the output.
		return fmt.Sprintf(`"%s-%d"`, values[rng.IntN(len(values))], rng.IntN(1<<30)), nil
	}
	for range 3000 {
		line, secrets := object(0)
		got := string(blankSecretFields([]byte(line + "\n")))
		for _, s := range secrets {
			if strings.Contains(got, s) {
				t.Fatalf("secret value %s survived:\n in %s\nout %s", s, line, got)
			}
		}
		// Nothing else changes: the mask stands where secret values were.
		want := line
		for _, s := range secrets {
			want = strings.Replace(want, s, `"`+Mask+`"`, 1)
		}
		if got != want+"\n" {
			t.Fatalf("changed more than the secret values:\n  in %s\n got %s\nwant %s", line, got, want)
		}
	}
}

func BenchmarkWriter(b *testing.B) {
	line := []byte(`{"level":"info","request_id":"f564617811c61dfbfbb585c8a11b509d","method":"GET","path":"/api/v2/accounts","status":200,"duration_ms":1.27,"route":"/","bytes_in":0,"bytes_out":1269,"upstream":"127.0.0.1:18081","session":"9f00ff37cde7","finapi_user":"fp-ykmn7ysnxztde2hs2dr75x6mhrdeww2t","message":"request"}` + "\n")
	w := NewWriter(discard{}, "client-secret-value-123", "identity-secret-0123456789abcdef0123456789")
	b.Run("line", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w.Write(line)
		}
	})
	// As logbuf hands lines over under load: many per write.
	batch := bytes.Repeat(line, 16)
	b.Run("batch16", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w.Write(batch)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*16), "ns/line")
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestContainsFoldMatchesLowering: the fast search agrees with lowering
// the text and searching, on text dense with near misses.
func TestContainsFoldMatchesLowering(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := "bBeEaArRsSiIcC\\\":@ x"
	for range 20000 {
		n := rng.IntN(24)
		p := make([]byte, n)
		for i := range p {
			p[i] = alphabet[rng.IntN(len(alphabet))]
		}
		for _, w := range []string{"bearer", "basic", "secret"} {
			if got, want := containsFold(p, w), strings.Contains(strings.ToLower(string(p)), w); got != want {
				t.Fatalf("containsFold(%q, %q) = %v, want %v", p, w, got, want)
			}
		}
	}
}
