package jwtsession_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/finproxy/finproxy/jwtsession"
)

// A Verifier turns a session JWT into the Identity finproxy maps to a finAPI
// user. With a JWKS URL instead of an HMAC secret, keys are fetched and
// refreshed in the background until ctx ends.
func Example() {
	secret := []byte("an-hmac-secret-of-at-least-32-bytes")
	v, err := jwtsession.New(context.Background(), jwtsession.Config{
		HMACSecret: secret,
		Issuer:     "https://idp.example",
		Audience:   "finproxy",
	})
	if err != nil {
		panic(err)
	}

	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "https://idp.example",
		"aud": "finproxy",
		"sub": "user-42",
		"exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(secret)

	id, err := v.Verify(tok)
	fmt.Printf("%q %v\n", id.Key, err)

	_, err = v.Verify(tok + "x")
	fmt.Println(errors.Is(err, jwtsession.ErrInvalid), err)
	// Output:
	// "https://idp.example\x00user-42" <nil>
	// true jwtsession: invalid token: bad signature
}
