package jwtsession

import (
	"errors"

	"github.com/golang-jwt/jwt/v5"
)

// An invalidError is a refusal. Its message is a fixed reason, never text
// derived from the token; the underlying cause stays reachable through
// errors.Is and errors.As.
type invalidError struct {
	reason string
	cause  error
	// transient marks refusals that may turn into acceptance for the same
	// token (a key not fetched yet, a token not valid yet); they are not
	// remembered in the refusal cache.
	transient bool
}

// Error returns the package prefix and the reason, nothing from the token.
func (e *invalidError) Error() string { return "jwtsession: invalid token: " + e.reason }

// Unwrap returns ErrInvalid and the cause, if any.
func (e *invalidError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrInvalid}
	}
	return []error{ErrInvalid, e.cause}
}

// ErrNoUserID and ErrBadUserID are wrapped by refusals of a token without
// the user id claim (Config.UserIDClaim) and with one that is not a
// non-empty string or integer; callers that check the id's format further
// refuse with ErrBadUserID too.
var (
	ErrNoUserID  = errors.New("jwtsession: user id claim missing")
	ErrBadUserID = errors.New("jwtsession: user id claim invalid")
)

// Refusals produced by this package itself.
var (
	errNoUserID       = &invalidError{reason: "user id claim missing", cause: ErrNoUserID}
	errBadUserIDClaim = &invalidError{reason: "user id claim is not a non-empty string or integer", cause: ErrBadUserID}
	errTooLong        = &invalidError{reason: "too long"}
	errExpired        = &invalidError{reason: "expired", cause: jwt.ErrTokenExpired}
	errMissingClaim   = &invalidError{reason: "user claim missing"}
	errBadClaim       = &invalidError{reason: "user claim is not a non-empty string or integer"}
	errBadIssuer      = &invalidError{reason: "iss is not a valid string"}

	// Returned by the JWKS key lookup; transient because the key set changes.
	errUnknownKey   = &invalidError{reason: "unknown key id", transient: true}
	errAmbiguousKey = &invalidError{reason: "no kid and several keys fit", transient: true}
	errNoKeys       = &invalidError{reason: "no keys available yet", transient: true}
	// Returned when a JWKS key does not fit the token's alg (type, curve or
	// the key's own alg); deterministic for a given key.
	errKeyMismatch = &invalidError{reason: "key does not fit alg"}
)

// refusal turns an error from parsing or claim checks into an *invalidError.
// keyLooked tells whether the parser got as far as asking for a key, which
// it does only for allowed algorithms.
func refusal(err error, keyLooked bool) *invalidError {
	var ie *invalidError
	if errors.As(err, &ie) {
		return ie
	}
	r := &invalidError{cause: err}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		r.reason = "malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && !keyLooked,
		errors.Is(err, jwt.ErrTokenUnverifiable) && !keyLooked:
		r.reason = "algorithm not allowed"
	case errors.Is(err, jwt.ErrInvalidKeyType):
		r.reason = "key does not fit alg"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		r.reason = "bad signature"
	case errors.Is(err, jwt.ErrTokenExpired):
		r.reason = "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		r.reason, r.transient = "not valid yet (nbf)", true
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		r.reason, r.transient = "issued in the future (iat)", true
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		r.reason = "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		r.reason = "wrong audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		r.reason = "required claim missing (exp, or iss/aud when configured)"
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		r.reason = "invalid claims"
	default:
		r.reason = "unverifiable"
	}
	return r
}
