// Package jwtsession verifies the JWTs that carry app sessions when finproxy
// runs with FINPROXY_SESSION_AUTH=jwt, and turns a valid token into the
// Identity that finproxy maps to a finAPI user.
//
// Keys come either from a JWKS URL (asymmetric algorithms only) or from an
// HMAC secret (HS256/HS384/HS512 only); the algorithm set is pinned, so
// "alg: none" and HMAC tokens keyed with an RSA public key are refused. A
// token must carry exp; exp, nbf and iat are checked with a small leeway, and
// iss and aud must match when configured.
//
// Verification results are cached by the SHA-256 of the whole token until
// the token expires, so a session's hot path costs one hash and one map
// lookup instead of a signature check. Refusals are cached for a few seconds
// so that replaying one forged token cannot buy a signature check per request.
package jwtsession

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
)

// Defaults and limits.
const (
	// DefaultClaim is the claim that names the app user unless Config.Claim says otherwise.
	DefaultClaim = "sub"
	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// DefaultCacheSize is how many verified tokens are remembered.
	DefaultCacheSize = 100_000
	// DefaultRefreshRateLimit is the least time between two JWKS fetches caused by unknown key ids.
	DefaultRefreshRateLimit = time.Minute
	// DefaultRefreshInterval is how often the JWKS is fetched in the background.
	DefaultRefreshInterval = time.Hour
	// MinHMACSecretLen is the shortest HMAC secret accepted, in bytes.
	MinHMACSecretLen = 32

	// defaultHTTPTimeout bounds one JWKS fetch.
	defaultHTTPTimeout = 10 * time.Second
	// negativeTTL is how long a refusal is remembered.
	negativeTTL = 10 * time.Second
	// maxTokenLen bounds the work an oversized header can cause; real
	// session JWTs are far smaller.
	maxTokenLen = 16 << 10
	// maxClaimLen bounds the issuer and the user claim.
	maxClaimLen = 1024
)

// Algorithms accepted per key source. Nothing else is ever accepted.
var (
	asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	hmacAlgs       = []string{"HS256", "HS384", "HS512"}
)

// ErrInvalid is wrapped by every refusal of Verify. The error's message may
// say why (expired, bad signature, wrong issuer, …) but never contains the
// token or any part of it.
var ErrInvalid = errors.New("jwtsession: invalid token")

// Config configures a Verifier. Exactly one of JWKSURL and HMACSecret is
// required.
type Config struct {
	// JWKSURL is the identity provider's JSON Web Key Set (http or https).
	// Only asymmetric algorithms (RS*, PS*, ES*, EdDSA) are accepted with it.
	// Required unless HMACSecret is set; both together are an error.
	JWKSURL string
	// HMACSecret is the shared secret for HS256, HS384 and HS512, at least
	// MinHMACSecretLen bytes; empty means unset. Required unless JWKSURL is set.
	HMACSecret []byte
	// Issuer, when set, must equal the token's iss; tokens without iss are
	// then refused. Optional. Default value "" (any issuer; the issuer is
	// still part of the Identity).
	Issuer string
	// Audience, when set, must be one of the token's aud values; tokens
	// without aud are then refused. Optional. Default value "" (aud not checked).
	Audience string
	// Claim names the claim that identifies the app user. Its value must be
	// a non-empty string, or a JSON integer, which is used as its decimal
	// string (so 42 and "42" are the same user). Optional. Default value "sub".
	Claim string
	// UserIDClaim, when set, names a claim whose value is the finAPI user
	// id of the app user (FINPROXY_JWT_USER_ID_CLAIM), returned as
	// Identity.UserID: a token without it is refused with ErrNoUserID, one
	// whose value is not a non-empty string or integer with ErrBadUserID.
	// finAPI's own rules for the id are the caller's to check. Optional.
	// Default value "" (no user id).
	UserIDClaim string
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	// Optional. Default value 30s; negative is an error.
	Leeway time.Duration
	// CacheSize bounds the number of verified tokens remembered.
	// Optional. Default value 100_000; negative is an error.
	CacheSize int
	// HTTPClient fetches the JWKS. If its Timeout is zero, a fetch is still
	// bounded to 10s. Optional. Default value a client with a 10s timeout.
	HTTPClient *http.Client
	// RefreshRateLimit is the least time between two JWKS fetches caused by
	// tokens with an unknown key id, so a flood of made-up key ids cannot
	// hammer the identity provider. Optional. Default value 1 minute.
	RefreshRateLimit time.Duration
	// RefreshInterval is how often the JWKS is fetched in the background.
	// Optional. Default value 1 hour.
	RefreshInterval time.Duration
	// Now is the clock. Optional. Default value time.Now.
	Now func() time.Time
	// Log receives JWKS fetch problems; tokens are never logged.
	// Optional. Default value a disabled logger.
	Log zerolog.Logger
	// Derive, if not nil, turns a verified Identity into the caller's own
	// value once per token: it runs when a token is verified, not when a
	// remembered one is seen again, and its value comes back as
	// Identity.Derived from every Verify of that token (finproxy keeps the
	// session's keyed hash there, so a request costs no HMAC). An error
	// refuses the token, wrapping ErrInvalid and the error (reachable with
	// errors.Is and errors.As; the refusal's message does not print it),
	// and is remembered like any refusal.
	// Optional. Default value nil (Derived stays nil).
	Derive func(Identity) (any, error)
}

// Identity is the app user a valid token names.
type Identity struct {
	// Subject is the configured claim's value.
	Subject string
	// Issuer is the token's iss, or "" when it has none.
	Issuer string
	// Expiry is the token's exp.
	Expiry time.Time
	// Key is Issuer + "\x00" + Subject, what finproxy hashes into a session.
	// Neither part may contain a NUL byte, so two identity providers never
	// produce the same Key.
	Key string
	// UserID is the value of Config.UserIDClaim; empty when that is unset.
	UserID string
	// Derived is what Config.Derive returned for the token; nil without it.
	Derived any
}

// A Verifier checks session JWTs. It is safe for concurrent use.
type Verifier struct {
	parser   *jwt.Parser
	claim    string
	userID   string // the user id claim; "" for none
	leeway   time.Duration
	now      func() time.Time
	hmac     []byte // set in HMAC mode
	jwks     *remoteKeySet
	derive   func(Identity) (any, error)
	accepted *boundedCache[accepted]
	refused  *boundedCache[error]

	// verifications counts full (uncached) verifications, for tests.
	verifications atomic.Int64
}

// accepted is a positive cache entry.
type accepted struct {
	id  Identity
	key *publicKey // the JWKS key that verified the token; nil in HMAC mode
}

// New returns a Verifier for c. With a JWKS URL it fetches the key set once
// before returning and then refreshes it in the background until ctx ends. A
// failed first fetch does not fail New: it is logged, Ready reports it, and
// the keys are fetched again later (by the background loop, or by the first
// token with an unknown key id). An invalid configuration is an error that
// lists every problem.
func New(ctx context.Context, c Config) (*Verifier, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	c.setDefaults()

	v := &Verifier{
		claim:    c.Claim,
		userID:   c.UserIDClaim,
		leeway:   c.Leeway,
		now:      c.Now,
		derive:   c.Derive,
		accepted: newBoundedCache[accepted](c.CacheSize),
		// Refusals get their own, smaller cache: a flood of distinct forged
		// tokens must never evict the sessions of real users.
		refused: newBoundedCache[error](max(c.CacheSize/10, 1)),
	}
	algs := asymmetricAlgs
	if len(c.HMACSecret) != 0 {
		algs = hmacAlgs
		v.hmac = append([]byte(nil), c.HMACSecret...)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(c.Leeway),
		jwt.WithTimeFunc(c.Now),
		jwt.WithJSONNumber(), // integer claims keep all their digits
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	v.parser = jwt.NewParser(opts...)

	if c.JWKSURL != "" {
		v.jwks = newRemoteKeySet(ctx, c)
	}
	return v, nil
}

// validate reports every problem of c, one error per problem.
func (c Config) validate() error {
	var errs []error
	switch {
	case c.JWKSURL == "" && len(c.HMACSecret) == 0:
		errs = append(errs, errors.New("jwtsession: one of JWKSURL and HMACSecret is required"))
	case c.JWKSURL != "" && len(c.HMACSecret) != 0:
		errs = append(errs, errors.New("jwtsession: JWKSURL and HMACSecret are mutually exclusive"))
	}
	if len(c.HMACSecret) != 0 && len(c.HMACSecret) < MinHMACSecretLen {
		errs = append(errs, fmt.Errorf("jwtsession: HMACSecret must be at least %d bytes", MinHMACSecretLen))
	}
	if c.JWKSURL != "" {
		u, err := url.Parse(c.JWKSURL)
		switch {
		case err != nil:
			errs = append(errs, errors.New("jwtsession: JWKSURL is not a URL"))
		case u.Scheme != "https" && u.Scheme != "http":
			errs = append(errs, errors.New("jwtsession: JWKSURL must be an http or https URL"))
		case u.Host == "":
			errs = append(errs, errors.New("jwtsession: JWKSURL has no host"))
		}
	}
	if c.Leeway < 0 {
		errs = append(errs, errors.New("jwtsession: Leeway must not be negative"))
	}
	if c.CacheSize < 0 {
		errs = append(errs, errors.New("jwtsession: CacheSize must not be negative"))
	}
	if c.RefreshRateLimit < 0 {
		errs = append(errs, errors.New("jwtsession: RefreshRateLimit must not be negative"))
	}
	if c.RefreshInterval < 0 {
		errs = append(errs, errors.New("jwtsession: RefreshInterval must not be negative"))
	}
	return errors.Join(errs...)
}

// setDefaults fills in every optional field left zero.
func (c *Config) setDefaults() {
	if c.Claim == "" {
		c.Claim = DefaultClaim
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if c.RefreshRateLimit == 0 {
		c.RefreshRateLimit = DefaultRefreshRateLimit
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Ready returns nil once keys are available: always with an HMAC secret,
// after the first successful fetch with a JWKS URL.
func (v *Verifier) Ready() error {
	if v.jwks == nil {
		return nil
	}
	return v.jwks.ready()
}

// Verify checks raw, a compact JWS, and returns the Identity it names. Every
// refusal wraps ErrInvalid. A token seen before costs one SHA-256 and one
// map lookup; its expiry is checked again on every call.
func (v *Verifier) Verify(raw string) (Identity, error) {
	if len(raw) > maxTokenLen {
		return Identity{}, errTooLong
	}
	sum := hashToken(raw)
	now := v.now()
	if a, until, ok := v.accepted.get(&sum); ok {
		switch {
		case !now.Before(until): // until is exp + leeway
			return Identity{}, errExpired
		case a.key == nil || v.jwks.has(a.key):
			return a.id, nil
		}
		// The key that verified the token has left the JWKS: verify again,
		// which refuses it unless the key came back.
		v.accepted.delete(&sum)
	}
	if err, until, ok := v.refused.get(&sum); ok && now.Before(until) {
		return Identity{}, err
	}
	return v.verify(raw, &sum, now)
}

// hashToken returns the SHA-256 of raw without copying it: the conversion
// []byte(raw) would allocate a copy on every request, and sha256 only
// reads its input, so viewing the string's bytes is safe.
func hashToken(raw string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

// verify is the uncached path: signature and claims, then the cache update.
func (v *Verifier) verify(raw string, sum *[32]byte, now time.Time) (Identity, error) {
	v.verifications.Add(1)
	var (
		used      *publicKey
		keyLooked bool // the parser asks for a key only once the alg is allowed
	)
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		keyLooked = true
		if v.jwks == nil {
			return v.hmac, nil // WithValidMethods admits HS* only here
		}
		k, err := v.jwks.key(t)
		if err != nil {
			return nil, err
		}
		used = k
		return k.key, nil
	})
	var id Identity
	if err == nil {
		id, err = v.identity(claims)
	}
	if err == nil && v.derive != nil {
		if id.Derived, err = v.derive(id); err != nil {
			err = &invalidError{reason: "refused by Config.Derive", cause: err}
		}
	}
	if err != nil {
		ie := refusal(err, keyLooked)
		if !ie.transient {
			v.refused.put(sum, ie, now.Add(negativeTTL), now)
		}
		return Identity{}, ie
	}
	v.accepted.put(sum, accepted{id: id, key: used}, id.Expiry.Add(v.leeway), now)
	return id, nil
}

// identity builds the Identity from verified, validated claims.
func (v *Verifier) identity(claims jwt.MapClaims) (Identity, error) {
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil { // the parser already required exp
		return Identity{}, errBadClaim
	}
	var iss string
	if raw, ok := claims["iss"]; ok {
		if iss, ok = raw.(string); !ok {
			return Identity{}, errBadIssuer
		}
	}
	sub, err := claimString(claims[v.claim])
	if err != nil {
		return Identity{}, err
	}
	if len(iss) > maxClaimLen || strings.IndexByte(iss, 0) >= 0 {
		return Identity{}, errBadIssuer
	}
	var userID string
	if v.userID != "" {
		if userID, err = claimString(claims[v.userID]); err != nil {
			if err == errMissingClaim {
				return Identity{}, errNoUserID
			}
			return Identity{}, errBadUserIDClaim
		}
	}
	return Identity{Subject: sub, Issuer: iss, Expiry: exp.Time, Key: iss + "\x00" + sub, UserID: userID}, nil
}

// claimString returns the user claim as a string: a non-empty string as it
// is, a JSON integer as its decimal digits. Fractions, exponents, -0,
// booleans, objects and arrays are refused, so one user has one spelling.
func claimString(raw any) (string, error) {
	var s string
	switch c := raw.(type) {
	case nil:
		return "", errMissingClaim
	case string:
		s = c
	case json.Number:
		if !isCanonicalInt(string(c)) {
			return "", errBadClaim
		}
		s = string(c)
	default:
		return "", errBadClaim
	}
	if s == "" || len(s) > maxClaimLen || strings.IndexByte(s, 0) >= 0 {
		return "", errBadClaim
	}
	return s, nil
}

// isCanonicalInt reports whether s is an integer as JSON spells it without
// fraction or exponent: 0, or an optional minus and digits not starting with 0.
func isCanonicalInt(s string) bool {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || digits[0] == '0' && (len(digits) > 1 || len(digits) != len(s)) {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}
