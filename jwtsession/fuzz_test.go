package jwtsession

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify: whatever arrives as a session token, verification never
// panics, and nothing but the token signed here verifies, always as the
// identity it was signed for: a changed token names no one else.
func FuzzVerify(f *testing.F) {
	secret := []byte("fuzz-hmac-secret-0123456789abcdef0123")
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	good, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "iss": "idp", "exp": now.Add(time.Hour).Unix()}).SignedString(secret)
	if err != nil {
		f.Fatal(err)
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "mallory", "iss": "idp", "exp": now.Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for _, s := range []string{good, none, "", "a.b.c", good + "x", good[:len(good)-2]} {
		f.Add(s)
	}
	v, err := New(context.Background(), Config{HMACSecret: secret, Issuer: "idp", Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.Verify(raw)
		if err != nil {
			return
		}
		if id.Subject != "alice" || id.Issuer != "idp" {
			t.Errorf("%q verified as %+v", raw, id)
		}
	})
}
