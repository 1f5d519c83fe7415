package test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/finproxy/finproxy/test/emulator"
)

// jwks serves a JSON Web Key Set that a test can rotate.
type jwks struct {
	mu   sync.Mutex
	keys []map[string]string
	hits int
}

func (j *jwks) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.hits++
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"keys": j.keys})
}

func (j *jwks) set(keys ...map[string]string) {
	j.mu.Lock()
	j.keys = keys
	j.mu.Unlock()
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PublicKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]string {
	point, err := k.Bytes() // uncompressed: 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	return map[string]string{"kty": "EC", "kid": kid, "alg": "ES256", "use": "sig", "crv": "P-256",
		"x": b64(point[1:33]), "y": b64(point[33:65])}
}

func sign(t *testing.T, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWTSessions(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys := &jwks{}
	keys.set(rsaJWK("rsa-1", &rsaKey.PublicKey), ecJWK("ec-1", &ecKey.PublicKey))
	idp := httptest.NewServer(keys)
	defer idp.Close()

	f := newFinAPI(t, emulator.Config{})
	env := proxyEnv(f)
	env["FINPROXY_SESSION_AUTH"] = "jwt"
	env["FINPROXY_JWT_JWKS_URL"] = idp.URL
	env["FINPROXY_JWT_ISSUER"] = "https://idp.example.com"
	env["FINPROXY_JWT_AUDIENCE"] = "finproxy"
	p := startProxy(t, f, env)
	p.waitReady()

	now := time.Now()
	claims := func(sub string, mods ...func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "https://idp.example.com", "aud": "finproxy", "sub": sub, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
		for _, m := range mods {
			m(c)
		}
		return c
	}
	call := func(token string, viaBearer bool) (*http.Response, []byte) {
		h := http.Header{}
		if viaBearer {
			h.Set("Authorization", "Bearer "+token)
		} else {
			h.Set("X-Session-Id", token)
		}
		p.mu.Lock()
		p.sessions = append(p.sessions, token)
		p.mu.Unlock()
		return p.do(request{path: "/api/v2/accounts", header: h})
	}

	// Valid RS256 and ES256 tokens of one subject reach the same finAPI user.
	for i, tok := range []string{
		sign(t, jwt.SigningMethodRS256, "rsa-1", rsaKey, claims("alice")),
		sign(t, jwt.SigningMethodES256, "ec-1", ecKey, claims("alice", func(c jwt.MapClaims) { c["jti"] = "2" })),
	} {
		if resp, body := call(tok, i == 1); resp.StatusCode != 200 {
			t.Fatalf("valid token %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if n := f.Count(emulator.CounterUsersCreate); n != 1 {
		t.Errorf("users created for one issuer+subject = %d, want 1", n)
	}

	// Rotation: the identity provider publishes a new key and withdraws
	// the old one; a token with the new kid triggers a refresh.
	newKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	keys.set(rsaJWK("rsa-2", &newKey.PublicKey), ecJWK("ec-1", &ecKey.PublicKey))
	if resp, body := call(sign(t, jwt.SigningMethodRS256, "rsa-2", newKey, claims("carol")), false); resp.StatusCode != 200 {
		t.Errorf("token of the rotated key: %d %s", resp.StatusCode, body)
	}
	before := len(f.Requests())

	hsKey := x509.MarshalPKCS1PublicKey(&newKey.PublicKey)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	refused := map[string]string{
		"expired":            sign(t, jwt.SigningMethodRS256, "rsa-2", newKey, claims("bob", func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() })),
		"not yet valid":      sign(t, jwt.SigningMethodRS256, "rsa-2", newKey, claims("bob", func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })),
		"alg none":           sign(t, jwt.SigningMethodNone, "rsa-2", jwt.UnsafeAllowNoneSignatureType, claims("bob")),
		"HS256 with RSA key": sign(t, jwt.SigningMethodHS256, "rsa-2", hsKey, claims("bob")),
		"wrong signature":    sign(t, jwt.SigningMethodRS256, "rsa-2", otherKey, claims("bob")),
		"withdrawn key":      sign(t, jwt.SigningMethodRS256, "rsa-1", rsaKey, claims("bob")),
		"wrong issuer":       sign(t, jwt.SigningMethodRS256, "rsa-2", newKey, claims("bob", func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com" })),
		"wrong audience":     sign(t, jwt.SigningMethodRS256, "rsa-2", newKey, claims("bob", func(c jwt.MapClaims) { c["aud"] = "someone-else" })),
		"unknown kid":        sign(t, jwt.SigningMethodRS256, "rsa-unknown", otherKey, claims("bob")),
		"garbage":            "not.a.jwt",
	}
	for name, tok := range refused {
		t.Run(name, func(t *testing.T) {
			resp, body := call(tok, false)
			wantError(t, resp, body, 401, "invalid_session")
		})
	}
	if n := len(f.Requests()) - before; n != 0 {
		t.Errorf("refused tokens caused %d calls to finAPI", n)
	}

}
