package jwtsession

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://idp.example"
	testAudience = "finproxy"
)

// testKeyPairs are generated once per test binary; RSA generation is slow.
type testKeyPairs struct {
	rsa1, rsa2, rsaOther *rsa.PrivateKey
	ec, ec384            *ecdsa.PrivateKey
	ed                   ed25519.PrivateKey
}

var keys = sync.OnceValue(func() testKeyPairs {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var k testKeyPairs
	var err error
	for _, p := range []**rsa.PrivateKey{&k.rsa1, &k.rsa2, &k.rsaOther} {
		*p, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
	}
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// rsaJWK is the public JWK of pub (RFC 7518, 6.3.1): n and e big-endian, unpadded.
func rsaJWK(kid, alg string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "use": "sig", "kid": kid, "alg": alg,
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}
}

// ecJWK is the public JWK of pub (RFC 7518, 6.2.1): x and y each padded to
// the curve's byte size, which the uncompressed point encoding already does.
func ecJWK(kid string, pub *ecdsa.PublicKey) map[string]any {
	e, err := pub.ECDH()
	if err != nil {
		panic(err)
	}
	point := e.Bytes() // 0x04 || X || Y
	n := (len(point) - 1) / 2
	crv, alg := "P-256", "ES256"
	if pub.Curve == elliptic.P384() {
		crv, alg = "P-384", "ES384"
	}
	return map[string]any{
		"kty": "EC", "use": "sig", "kid": kid, "alg": alg, "crv": crv,
		"x": b64(point[1 : 1+n]), "y": b64(point[1+n:]),
	}
}

// edJWK is the public JWK of pub (RFC 8037, 2).
func edJWK(kid string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{"kty": "OKP", "use": "sig", "kid": kid, "alg": "EdDSA", "crv": "Ed25519", "x": b64(pub)}
}

// jwksServer serves a JWKS that tests can change and counts its fetches.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu     sync.Mutex
	keys   []map[string]any
	status int
}

func newJWKSServer(t *testing.T, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if r.Method != http.MethodGet {
			t.Errorf("JWKS fetched with %s", r.Method)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.status != http.StatusOK {
			http.Error(w, "down", s.status)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		if err := json.NewEncoder(w).Encode(map[string]any{"keys": s.keys}); err != nil {
			t.Errorf("encode JWKS: %v", err)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// serve replaces the published keys.
func (s *jwksServer) serve(keys ...map[string]any) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

// fail makes the server answer with status (http.StatusOK heals it).
func (s *jwksServer) fail(status int) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// claims are valid claims for sub at the clock's time.
func (c *clock) claims(sub string) jwt.MapClaims {
	now := c.Now()
	return jwt.MapClaims{
		"iss": testIssuer, "aud": testAudience, "sub": sub,
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
}

// sign signs claims with key; kid is left out when empty.
func sign(tb testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return s
}

// with returns claims changed by f.
func with(c jwt.MapClaims, f func(jwt.MapClaims)) jwt.MapClaims {
	f(c)
	return c
}

// fixture is a JWKS-backed Verifier with the usual keys published.
type fixture struct {
	v   *Verifier
	srv *jwksServer
	clk *clock
}

func newFixture(t *testing.T, change func(*Config)) fixture {
	t.Helper()
	k := keys()
	srv := newJWKSServer(t,
		rsaJWK("rsa1", "RS256", &k.rsa1.PublicKey),
		rsaJWK("rsa-ps", "PS256", &k.rsa1.PublicKey),
		ecJWK("ec1", &k.ec.PublicKey),
		edJWK("ed1", k.ed.Public().(ed25519.PublicKey)),
	)
	clk := newClock()
	c := Config{
		JWKSURL:    srv.URL,
		Issuer:     testIssuer,
		Audience:   testAudience,
		HTTPClient: srv.Client(),
		Now:        clk.Now,
	}
	if change != nil {
		change(&c)
	}
	v, err := New(t.Context(), c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return fixture{v: v, srv: srv, clk: clk}
}

func TestVerifyAcceptsValidTokens(t *testing.T) {
	f := newFixture(t, nil)
	k := keys()
	if err := f.v.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	exp := f.clk.Now().Add(10 * time.Minute).Truncate(time.Second)
	for _, tc := range []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{"RS256", jwt.SigningMethodRS256, k.rsa1, "rsa1"},
		{"PS256", jwt.SigningMethodPS256, k.rsa1, "rsa-ps"},
		{"ES256", jwt.SigningMethodES256, k.ec, "ec1"},
		{"EdDSA", jwt.SigningMethodEdDSA, k.ed, "ed1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := f.v.Verify(sign(t, tc.method, tc.key, tc.kid, f.clk.claims("user-"+tc.name)))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := Identity{Subject: "user-" + tc.name, Issuer: testIssuer, Expiry: exp, Key: testIssuer + "\x00user-" + tc.name}
			if !id.Expiry.Equal(want.Expiry) || id.Subject != want.Subject || id.Issuer != want.Issuer || id.Key != want.Key {
				t.Errorf("Verify = %+v, want %+v", id, want)
			}
		})
	}
}

func TestIdentityKeyIsIssuerPlusSubject(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Issuer = "" }) // any issuer
	k := keys()
	verify := func(claims jwt.MapClaims) Identity {
		t.Helper()
		id, err := f.v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa1, "rsa1", claims))
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		return id
	}
	a := verify(f.clk.claims("alice"))
	f.clk.Add(time.Second) // a different token: other iat and exp
	b := verify(f.clk.claims("alice"))
	c := verify(with(f.clk.claims("alice"), func(c jwt.MapClaims) { c["iss"] = "https://other-idp.example" }))
	d := verify(with(f.clk.claims("alice"), func(c jwt.MapClaims) { delete(c, "iss") }))
	if a.Key != b.Key {
		t.Errorf("same iss+sub, different tokens: keys %q and %q differ", a.Key, b.Key)
	}
	if a.Key == c.Key || a.Key == d.Key || c.Key == d.Key {
		t.Errorf("different issuers share a key: %q, %q, %q", a.Key, c.Key, d.Key)
	}
	if d.Key != "\x00alice" {
		t.Errorf("no iss: Key = %q, want %q", d.Key, "\x00alice")
	}
}

func TestVerifyRefuses(t *testing.T) {
	f := newFixture(t, nil)
	k := keys()
	now := f.clk.Now()
	pubDER, err := x509.MarshalPKIXPublicKey(&k.rsa1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	rs := func(claims jwt.MapClaims) string { return sign(t, jwt.SigningMethodRS256, k.rsa1, "rsa1", claims) }
	valid := f.clk.claims("bob")

	for _, tc := range []struct {
		name  string
		token string
		why   string // part of the error message
	}{
		{"expired beyond leeway", rs(with(f.clk.claims("bob"), func(c jwt.MapClaims) { c["exp"] = now.Add(-31 * time.Second).Unix() })), "expired"},
		{"nbf in the future", rs(with(f.clk.claims("bob"), func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() })), "not valid yet"},
		{"iat in the future", rs(with(f.clk.claims("bob"), func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() })), "issued in the future"},
		{"missing exp", rs(with(f.clk.claims("bob"), func(c jwt.MapClaims) { delete(c, "exp") })), "required claim missing"},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa1", valid), "algorithm not allowed"},
		{"HS256 keyed with the RSA public key PEM", sign(t, jwt.SigningMethodHS256, pubPEM, "rsa1", valid), "algorithm not allowed"},
		{"HS256 keyed with the RSA public key DER", sign(t, jwt.SigningMethodHS256, pubDER, "rsa1", valid), "algorithm not allowed"},
		{"signed by another key under the same kid", sign(t, jwt.SigningMethodRS256, k.rsaOther, "rsa1", valid), "bad signature"},
		{"ES256 under an RSA kid", sign(t, jwt.SigningMethodES256, k.ec, "rsa1", valid), "key does not fit alg"},
		{"PS256 under a kid published for RS256", sign(t, jwt.SigningMethodPS256, k.rsa1, "rsa1", valid), "key does not fit alg"},
		{"ES384 under a P-256 kid", sign(t, jwt.SigningMethodES384, k.ec384, "ec1", valid), "key does not fit alg"},
		{"kid not a string", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, valid)
			tok.Header["kid"] = 7
			s, _ := tok.SignedString(k.rsa1)
			return s
		}(), "key does not fit alg"},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, k.rsaOther, "nobody", valid), "unknown key id"},
		{"wrong iss", rs(with(f.clk.claims("bob"), func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), "wrong issuer"},
		{"missing iss", rs(with(f.clk.claims("bob"), func(c jwt.MapClaims) { delete(c, "iss") })), "required claim missing"},
		{"wrong aud", rs(with(f.clk.claims("bob"), func(c jwt.MapClaims) { c["aud"] = []string{"other", "another"} })), "wrong audience"},
		{"missing aud", rs(with(f.clk.claims("bob"), func(c jwt.MapClaims) { delete(c, "aud") })), "required claim missing"},
		{"missing sub", rs(with(f.clk.claims("bob"), func(c jwt.MapClaims) { delete(c, "sub") })), "user claim missing"},
		{"empty sub", rs(f.clk.claims("")), "user claim"},
		{"sub with a NUL byte", rs(f.clk.claims("a\x00b")), "user claim"},
		{"sub an object", rs(with(f.clk.claims("bob"), func(c jwt.MapClaims) { c["sub"] = map[string]any{"id": 1} })), "user claim"},
		{"malformed", "not.a.jwt", "malformed"},
		{"two segments", "eyJhbGciOiJSUzI1NiJ9.e30", "malformed"},
		{"too long", strings.Repeat("a", maxTokenLen+1), "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.v.Verify(tc.token)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %q does not say %q", err, tc.why)
			}
			for _, part := range strings.Split(tc.token, ".") {
				if len(part) >= 8 && strings.Contains(err.Error(), part) {
					t.Errorf("error %q contains part of the token", err)
				}
			}
		})
	}
}

func TestLeeway(t *testing.T) {
	f := newFixture(t, nil)
	k := keys()
	now := f.clk.Now()
	for _, tc := range []struct {
		name   string
		change func(jwt.MapClaims)
	}{
		{"expired 29s ago", func(c jwt.MapClaims) { c["exp"] = now.Add(-29 * time.Second).Unix() }},
		{"nbf 29s ahead", func(c jwt.MapClaims) { c["nbf"] = now.Add(29 * time.Second).Unix() }},
		{"iat 29s ahead", func(c jwt.MapClaims) { c["iat"] = now.Add(29 * time.Second).Unix() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, jwt.SigningMethodRS256, k.rsa1, "rsa1", with(f.clk.claims("carol"), tc.change))
			if _, err := f.v.Verify(tok); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestUserClaim(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Claim = "uid" })
	k := keys()
	for _, tc := range []struct {
		name string
		uid  any // nil: claim absent
		want string
	}{
		{"string", "u-1", "u-1"},
		{"integer", 42, "42"},
		{"integer as string is the same user", "42", "42"},
		{"negative integer", -7, "-7"},
		{"zero", 0, "0"},
		{"integer beyond float64 precision", json.Number("18446744073709551617"), "18446744073709551617"},
		{"fraction", 1.5, ""},
		{"exponent", json.Number("1e3"), ""},
		{"minus zero", json.Number("-0"), ""},
		{"boolean", true, ""},
		{"array", []string{"a"}, ""},
		{"absent, though sub is there", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims := f.clk.claims("ignored")
			if tc.uid != nil {
				claims["uid"] = tc.uid
			}
			id, err := f.v.Verify(sign(t, jwt.SigningMethodES256, k.ec, "ec1", claims))
			switch {
			case tc.want == "" && !errors.Is(err, ErrInvalid):
				t.Errorf("Verify = %+v, %v; want ErrInvalid", id, err)
			case tc.want != "" && err != nil:
				t.Errorf("Verify: %v", err)
			case tc.want != "" && (id.Subject != tc.want || id.Key != testIssuer+"\x00"+tc.want):
				t.Errorf("Verify = %+v, want subject %q", id, tc.want)
			}
		})
	}
}

func TestUnknownKIDRefreshIsRateLimited(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RefreshRateLimit = time.Minute })
	k := keys()
	if got := f.srv.hits.Load(); got != 1 {
		t.Fatalf("fetches after New = %d, want 1", got)
	}
	unknown := func(i int) error {
		_, err := f.v.Verify(sign(t, jwt.SigningMethodRS256, k.rsaOther, fmt.Sprintf("made-up-%d", i), f.clk.claims("mallory")))
		return err
	}
	for i := range 100 {
		if err := unknown(i); !errors.Is(err, ErrInvalid) {
			t.Fatalf("unknown kid %d: Verify = %v, want ErrInvalid", i, err)
		}
	}
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			if err := unknown(100 + i); !errors.Is(err, ErrInvalid) {
				t.Errorf("unknown kid: Verify = %v, want ErrInvalid", err)
			}
		})
	}
	wg.Wait()
	if got := f.srv.hits.Load(); got != 2 {
		t.Errorf("fetches after 200 unknown kids = %d, want 2 (one refresh)", got)
	}

	f.clk.Add(time.Minute)
	if err := unknown(1000); !errors.Is(err, ErrInvalid) {
		t.Errorf("Verify = %v, want ErrInvalid", err)
	}
	if got := f.srv.hits.Load(); got != 3 {
		t.Errorf("fetches after the rate limit passed = %d, want 3", got)
	}
}

func TestJWKSRotation(t *testing.T) {
	f := newFixture(t, nil)
	k := keys()
	oldTok := sign(t, jwt.SigningMethodRS256, k.rsa1, "rsa1", f.clk.claims("dave"))
	if _, err := f.v.Verify(oldTok); err != nil {
		t.Fatalf("old key: %v", err)
	}

	// Overlap: the new key is published next to the old one.
	f.srv.serve(rsaJWK("rsa1", "RS256", &k.rsa1.PublicKey), rsaJWK("rsa2", "RS256", &k.rsa2.PublicKey))
	newTok := sign(t, jwt.SigningMethodRS256, k.rsa2, "rsa2", f.clk.claims("dave"))
	id, err := f.v.Verify(newTok)
	if err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
	if id.Key != testIssuer+"\x00dave" {
		t.Errorf("Key = %q", id.Key)
	}
	if got := f.srv.hits.Load(); got != 2 {
		t.Errorf("fetches = %d, want 2 (New and one refresh on the unknown kid)", got)
	}
	before := f.v.verifications.Load()
	if _, err := f.v.Verify(oldTok); err != nil {
		t.Errorf("old token while both keys are published: %v", err)
	}
	if got := f.v.verifications.Load() - before; got != 0 {
		t.Errorf("old token verified %d more times; an unchanged key must keep its cache entries", got)
	}

	// The old key is withdrawn: its tokens stop working, cached or not.
	f.srv.serve(rsaJWK("rsa2", "RS256", &k.rsa2.PublicKey))
	f.clk.Add(time.Minute)
	f.v.jwks.refresh() // what the background loop does every RefreshInterval
	if _, err := f.v.Verify(oldTok); !errors.Is(err, ErrInvalid) {
		t.Errorf("cached token of a withdrawn key: Verify = %v, want ErrInvalid", err)
	}
	if _, err := f.v.Verify(newTok); err != nil {
		t.Errorf("new token after the old key left: %v", err)
	}
}

func TestFirstFetchFailureDoesNotPreventStart(t *testing.T) {
	k := keys()
	srv := newJWKSServer(t, rsaJWK("rsa1", "RS256", &k.rsa1.PublicKey))
	srv.fail(http.StatusServiceUnavailable)
	clk := newClock()
	v, err := New(t.Context(), Config{JWKSURL: srv.URL, HTTPClient: srv.Client(), Now: clk.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := v.Ready(); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("Ready = %v, want the fetch error", err)
	}
	tok := sign(t, jwt.SigningMethodRS256, k.rsa1, "rsa1", clk.claims("erin"))
	if _, err := v.Verify(tok); !errors.Is(err, ErrInvalid) {
		t.Errorf("Verify without keys = %v, want ErrInvalid", err)
	}

	srv.fail(http.StatusOK)
	clk.Add(time.Minute)
	if _, err := v.Verify(tok); err != nil {
		t.Errorf("Verify once the JWKS answers: %v", err)
	}
	if err := v.Ready(); err != nil {
		t.Errorf("Ready = %v, want nil", err)
	}
}

func TestHMAC(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	clk := newClock()
	v, err := New(t.Context(), Config{HMACSecret: secret, Audience: testAudience, Now: clk.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := v.Ready(); err != nil {
		t.Errorf("Ready = %v", err)
	}
	k := keys()
	for _, tc := range []struct {
		name  string
		token string
		ok    bool
	}{
		{"HS256", sign(t, jwt.SigningMethodHS256, secret, "", clk.claims("frank")), true},
		{"HS384", sign(t, jwt.SigningMethodHS384, secret, "", clk.claims("frank")), true},
		{"HS512 with a kid", sign(t, jwt.SigningMethodHS512, secret, "whatever", clk.claims("frank")), true},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte("fedcba9876543210fedcba9876543210"), "", clk.claims("frank")), false},
		{"RS256", sign(t, jwt.SigningMethodRS256, k.rsa1, "", clk.claims("frank")), false},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", clk.claims("frank")), false},
		{"expired", sign(t, jwt.SigningMethodHS256, secret, "", with(clk.claims("frank"), func(c jwt.MapClaims) { c["exp"] = clk.Now().Add(-time.Hour).Unix() })), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.Verify(tc.token)
			switch {
			case tc.ok && err != nil:
				t.Errorf("Verify: %v", err)
			case tc.ok && id.Key != testIssuer+"\x00frank":
				t.Errorf("Key = %q", id.Key)
			case !tc.ok && !errors.Is(err, ErrInvalid):
				t.Errorf("Verify = %+v, %v; want ErrInvalid", id, err)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	secret := make([]byte, 32)
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"no key source", Config{}, "one of JWKSURL and HMACSecret"},
		{"both key sources", Config{JWKSURL: "https://idp.example/jwks", HMACSecret: secret}, "mutually exclusive"},
		{"short secret", Config{HMACSecret: secret[:31]}, "at least 32 bytes"},
		{"empty secret counts as unset", Config{HMACSecret: []byte{}}, "one of JWKSURL and HMACSecret"},
		{"relative URL", Config{JWKSURL: "/jwks"}, "http or https"},
		{"ftp URL", Config{JWKSURL: "ftp://idp.example/jwks"}, "http or https"},
		{"unparsable URL", Config{JWKSURL: "https://idp.example:bad/"}, "not a URL"},
		{"no host", Config{JWKSURL: "https:///jwks"}, "no host"},
		{"negative leeway", Config{HMACSecret: secret, Leeway: -time.Second}, "Leeway"},
		{"negative cache size", Config{HMACSecret: secret, CacheSize: -1}, "CacheSize"},
		{"negative rate limit", Config{HMACSecret: secret, RefreshRateLimit: -1}, "RefreshRateLimit"},
		{"negative interval", Config{HMACSecret: secret, RefreshInterval: -1}, "RefreshInterval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(t.Context(), tc.c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, %v; want an error saying %q", v, err, tc.want)
			}
		})
	}
}

func TestVerificationCache(t *testing.T) {
	f := newFixture(t, nil)
	k := keys()
	tok := sign(t, jwt.SigningMethodRS256, k.rsa1, "rsa1", f.clk.claims("grace"))
	for range 3 {
		if _, err := f.v.Verify(tok); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	if got := f.v.verifications.Load(); got != 1 {
		t.Errorf("signature checks for one token verified 3 times = %d, want 1", got)
	}

	// Past exp plus leeway a cached token is refused without a new check.
	f.clk.Add(10*time.Minute + DefaultLeeway)
	if _, err := f.v.Verify(tok); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("cached token past exp: Verify = %v, want expired", err)
	}
	if got := f.v.verifications.Load(); got != 1 {
		t.Errorf("signature checks = %d, want still 1", got)
	}
}

func TestRefusalCache(t *testing.T) {
	f := newFixture(t, nil)
	k := keys()
	forged := sign(t, jwt.SigningMethodRS256, k.rsaOther, "rsa1", f.clk.claims("heidi"))
	for range 5 {
		if _, err := f.v.Verify(forged); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Verify = %v, want ErrInvalid", err)
		}
	}
	if got := f.v.verifications.Load(); got != 1 {
		t.Errorf("signature checks for one forged token sent 5 times = %d, want 1", got)
	}
	f.clk.Add(negativeTTL)
	if _, err := f.v.Verify(forged); !errors.Is(err, ErrInvalid) {
		t.Errorf("Verify = %v, want ErrInvalid", err)
	}
	if got := f.v.verifications.Load(); got != 2 {
		t.Errorf("signature checks after the refusal expired = %d, want 2", got)
	}

	// A token that is merely early is not remembered as refused: it must
	// work as soon as it becomes valid.
	early := sign(t, jwt.SigningMethodRS256, k.rsa1, "rsa1", with(f.clk.claims("heidi"), func(c jwt.MapClaims) {
		c["nbf"] = f.clk.Now().Add(time.Minute).Unix()
	}))
	if _, err := f.v.Verify(early); !errors.Is(err, ErrInvalid) {
		t.Fatalf("early token: Verify = %v, want ErrInvalid", err)
	}
	f.clk.Add(31 * time.Second)
	if _, err := f.v.Verify(early); err != nil {
		t.Errorf("early token once valid: %v", err)
	}
}

func TestFitsPinsKeyTypeToAlg(t *testing.T) {
	k := keys()
	rsaKey := &publicKey{key: &k.rsa1.PublicKey}
	ecKey := &publicKey{key: &k.ec.PublicKey}
	edKey := &publicKey{key: k.ed.Public()}
	for _, tc := range []struct {
		key  *publicKey
		alg  string
		want bool
	}{
		{rsaKey, "RS256", true},
		{rsaKey, "PS512", true},
		{rsaKey, "HS256", false}, // the RSA public key as an HMAC secret
		{rsaKey, "ES256", false},
		{rsaKey, "none", false},
		{ecKey, "ES256", true},
		{ecKey, "ES384", false}, // wrong curve
		{ecKey, "HS256", false},
		{edKey, "EdDSA", true},
		{edKey, "ES256", false},
		{&publicKey{alg: "RS256", key: &k.rsa1.PublicKey}, "PS256", false},
	} {
		if got := fits(tc.key, tc.alg); got != tc.want {
			t.Errorf("fits(%T, %s) = %v, want %v", tc.key.key, tc.alg, got, tc.want)
		}
	}
}

func TestParseKeySkipsUnusableKeys(t *testing.T) {
	k := keys()
	priv := rsaJWK("with-private", "RS256", &k.rsa1.PublicKey)
	priv["d"] = b64(k.rsa1.D.Bytes())
	priv["p"] = b64(k.rsa1.Primes[0].Bytes())
	priv["q"] = b64(k.rsa1.Primes[1].Bytes())
	for _, tc := range []struct {
		name string
		jwk  map[string]any
		ok   bool
	}{
		{"RSA", rsaJWK("a", "RS256", &k.rsa1.PublicKey), true},
		{"RSA without alg", rsaJWK("a", "", &k.rsa1.PublicKey), true},
		{"EC", ecJWK("a", &k.ec.PublicKey), true},
		{"Ed25519", edJWK("a", k.ed.Public().(ed25519.PublicKey)), true},
		{"private parameters are ignored", priv, true},
		{"encryption key", with(rsaJWK("a", "RS256", &k.rsa1.PublicKey), func(m jwt.MapClaims) { m["use"] = "enc" }), false},
		{"symmetric key", map[string]any{"kty": "oct", "kid": "a", "k": b64([]byte("0123456789abcdef0123456789abcdef"))}, false},
		{"HMAC alg on an RSA key", rsaJWK("a", "HS256", &k.rsa1.PublicKey), false},
		{"ES256 alg on an RSA key", rsaJWK("a", "ES256", &k.rsa1.PublicKey), false},
		{"key_ops without verify", with(rsaJWK("a", "RS256", &k.rsa1.PublicKey), func(m jwt.MapClaims) { m["key_ops"] = []string{"encrypt"} }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := json.Marshal(tc.jwk)
			pk, err := parseKey(raw)
			if (err == nil) != tc.ok {
				t.Fatalf("parseKey = %v, %v; want ok %v", pk, err, tc.ok)
			}
			if err == nil {
				if _, isPub := pk.key.(interface{ Public() crypto.PublicKey }); isPub {
					t.Errorf("parseKey kept a private key (%T)", pk.key)
				}
			}
		})
	}
}

// BenchmarkVerifyCached is the hot path: a session's token seen before.
func BenchmarkVerifyCached(b *testing.B) {
	v, tok := benchVerifier(b)
	if _, err := v.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCachedParallel is the hot path under concurrency.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	v, tok := benchVerifier(b)
	if _, err := v.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyUncached is a cache miss: hash, parse, RS256 signature
// check, claim checks and the cache update.
func BenchmarkVerifyUncached(b *testing.B) {
	v, tok := benchVerifier(b)
	sum := sha256.Sum256([]byte(tok))
	b.ReportAllocs()
	for b.Loop() {
		v.accepted.delete(&sum)
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func benchVerifier(b *testing.B) (*Verifier, string) {
	k := keys()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{rsaJWK("rsa1", "RS256", &k.rsa1.PublicKey)}})
	}))
	b.Cleanup(srv.Close)
	clk := newClock()
	v, err := New(b.Context(), Config{JWKSURL: srv.URL, HTTPClient: srv.Client(), Issuer: testIssuer, Audience: testAudience, Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	return v, sign(b, jwt.SigningMethodRS256, k.rsa1, "rsa1", clk.claims("bench-user"))
}

func TestUserIDClaim(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.UserIDClaim = "finapi_user" })
	k := keys()
	for _, tc := range []struct {
		name    string
		uid     any // nil: claim absent
		want    string
		wantErr error
	}{
		{"string", "Alice@Example", "Alice@Example", nil},
		{"integer", 42, "42", nil},
		{"absent", nil, "", ErrNoUserID},
		{"empty", "", "", ErrBadUserID},
		{"object", map[string]string{"id": "a"}, "", ErrBadUserID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims := f.clk.claims("sub-1")
			if tc.uid != nil {
				claims["finapi_user"] = tc.uid
			}
			id, err := f.v.Verify(sign(t, jwt.SigningMethodES256, k.ec, "ec1", claims))
			switch {
			case tc.wantErr != nil && (!errors.Is(err, tc.wantErr) || !errors.Is(err, ErrInvalid)):
				t.Errorf("Verify = %+v, %v; want %v", id, err, tc.wantErr)
			case tc.wantErr == nil && (err != nil || id.UserID != tc.want || id.Subject != "sub-1"):
				t.Errorf("Verify = %+v, %v; want user id %q", id, err, tc.want)
			}
		})
	}

	// Without UserIDClaim the claim is ignored.
	plain := newFixture(t, nil)
	claims := plain.clk.claims("sub-1")
	claims["finapi_user"] = "alice"
	if id, err := plain.v.Verify(sign(t, jwt.SigningMethodES256, k.ec, "ec1", claims)); err != nil || id.UserID != "" {
		t.Errorf("Verify without UserIDClaim = %+v, %v; want no user id", id, err)
	}
}

// TestDerive: Config.Derive runs once per verified token, its value comes
// back with every Verify of that token, and its error refuses the token
// and is remembered like any refusal.
func TestDerive(t *testing.T) {
	var calls atomic.Int64
	errNope := errors.New("no such tenant")
	f := newFixture(t, func(c *Config) {
		c.Derive = func(id Identity) (any, error) {
			calls.Add(1)
			if id.Subject == "mallory" {
				return nil, errNope
			}
			return "derived:" + id.Subject, nil
		}
	})
	k := keys()
	grace := sign(t, jwt.SigningMethodRS256, k.rsa1, "rsa1", f.clk.claims("grace"))
	for i := range 3 {
		id, err := f.v.Verify(grace)
		if err != nil {
			t.Fatalf("Verify %d: %v", i, err)
		}
		if id.Derived != "derived:grace" {
			t.Errorf("Verify %d: Derived = %v, want derived:grace", i, id.Derived)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("Derive ran %d times for one token verified 3 times, want 1", got)
	}

	mallory := sign(t, jwt.SigningMethodRS256, k.rsa1, "rsa1", f.clk.claims("mallory"))
	for i := range 3 {
		id, err := f.v.Verify(mallory)
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, errNope) || id.Derived != nil {
			t.Fatalf("Verify %d of a token Derive refuses = %+v, %v; want ErrInvalid wrapping its error", i, id, err)
		}
		if strings.Contains(err.Error(), mallory) {
			t.Fatalf("the refusal holds the token: %v", err)
		}
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("Derive ran %d times in all, want 2 (its refusal remembered)", got)
	}
	if got := f.v.verifications.Load(); got != 2 {
		t.Errorf("signature checks = %d, want 2", got)
	}
}
