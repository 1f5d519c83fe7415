package redact

import (
	"bytes"
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

func BenchmarkWriter(b *testing.B) {
	line := []byte(`{"level":"info","request_id":"f564617811c61dfbfbb585c8a11b509d","method":"GET","path":"/api/v2/accounts","status":200,"duration_ms":1.27,"route":"/","bytes_in":0,"bytes_out":1269,"upstream":"127.0.0.1:18081","session":"9f00ff37cde7","finapi_user":"fp-ykmn7ysnxztde2hs2dr75x6mhrdeww2t","message":"request"}` + "\n")
	w := NewWriter(discard{}, "client-secret-value-123", "identity-secret-0123456789abcdef0123456789")
	b.ReportAllocs()
	for b.Loop() {
		w.Write(line)
	}
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
