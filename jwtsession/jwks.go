package jwtsession

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
)

const (
	// maxJWKSBytes bounds a JWKS response body.
	maxJWKSBytes = 1 << 20
	// firstRetry is the first background retry delay while no key set has
	// been fetched yet; it doubles up to maxRetry.
	firstRetry = time.Second
	maxRetry   = time.Minute
)

// A publicKey is one usable key of the JWKS. Its pointer identifies it: a
// refresh that returns the same key under the same kid keeps the pointer, so
// cached verifications stay valid; a removed or replaced key gets none.
type publicKey struct {
	kid string
	alg string           // the JWK's own alg, "" if it names none
	key crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// A keySet is one fetched JWKS; it is never modified once published.
type keySet struct {
	byKID map[string]*publicKey
	all   []*publicKey
}

// A remoteKeySet holds the keys of a JWKS URL, refreshed in the background
// every interval and on demand when a token names an unknown kid, at most
// once per minGap. Concurrent refreshes are merged into one fetch.
//
// keyfunc/v3 (jwkset) offers the same, but its unknown-kid refresh waits on
// a rate.Limiter for up to RateLimitWaitMax and bounds the fetch itself by
// that same deadline, so a flood of unknown kids either parks request
// goroutines or starves the fetch. Here a refused refresh refuses at once,
// and jwkset is only used to parse and validate the JWKs.
type remoteKeySet struct {
	ctx      context.Context
	url      string
	client   *http.Client
	timeout  time.Duration // per fetch, when the client has no Timeout
	log      zerolog.Logger
	now      func() time.Time
	minGap   time.Duration
	interval time.Duration

	keys atomic.Pointer[keySet] // nil until the first successful fetch

	mu           sync.Mutex
	lastOnDemand time.Time     // last unknown-kid refresh
	inflight     chan struct{} // closed when the running fetch ends
	fetchErr     error         // outcome of the last fetch
}

// newRemoteKeySet fetches the JWKS once and starts the refresh loop, which
// ends with ctx.
func newRemoteKeySet(ctx context.Context, c Config) *remoteKeySet {
	r := &remoteKeySet{
		ctx:      ctx,
		url:      c.JWKSURL,
		client:   c.HTTPClient,
		log:      c.Log,
		now:      c.Now,
		minGap:   c.RefreshRateLimit,
		interval: c.RefreshInterval,
	}
	if r.client.Timeout == 0 {
		r.timeout = defaultHTTPTimeout
	}
	if u, err := url.Parse(c.JWKSURL); err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		r.log.Warn().Str("url", u.Redacted()).Msg("jwtsession: JWKS fetched over plain http; anyone on the path can forge sessions")
	}
	r.refresh()
	go r.loop()
	return r
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loop refreshes every interval; until a first fetch succeeds it retries
// sooner, with a doubling delay.
func (r *remoteKeySet) loop() {
	retry := firstRetry
	next := func() time.Duration {
		if r.keys.Load() != nil {
			return r.interval
		}
		d := retry
		retry = min(retry*2, maxRetry, r.interval)
		return min(d, r.interval)
	}
	t := time.NewTimer(next())
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
			r.refresh()
			t.Reset(next())
		}
	}
}

// ready returns nil once a key set has been fetched.
func (r *remoteKeySet) ready() error {
	if r.keys.Load() != nil {
		return nil
	}
	r.mu.Lock()
	err := r.fetchErr
	r.mu.Unlock()
	if err == nil {
		return errors.New("jwtsession: JWKS not fetched yet")
	}
	return fmt.Errorf("jwtsession: JWKS not fetched yet: %w", err)
}

// has reports whether k is still part of the current key set.
func (r *remoteKeySet) has(k *publicKey) bool {
	ks := r.keys.Load()
	if ks == nil {
		return false
	}
	if k.kid != "" {
		return ks.byKID[k.kid] == k
	}
	return slices.Contains(ks.all, k)
}

// key returns the key for t, refreshing the set once (rate-limited) when
// the key is not known. The key is checked to fit t's alg: type, curve and
// the JWK's own alg, so an RSA key can never verify an HMAC or ECDSA token.
func (r *remoteKeySet) key(t *jwt.Token) (*publicKey, error) {
	alg := t.Method.Alg()
	var kid string
	if raw, ok := t.Header["kid"]; ok {
		if kid, ok = raw.(string); !ok {
			return nil, errKeyMismatch
		}
	}
	k, err := r.find(kid, alg)
	if (err == errUnknownKey || err == errNoKeys) && r.refreshUnknown() {
		k, err = r.find(kid, alg)
	}
	if err != nil {
		return nil, err
	}
	if !fits(k, alg) {
		return nil, errKeyMismatch
	}
	return k, nil
}

// find looks kid up in the current set. Without a kid, the one key that
// fits alg is used; several such keys make the token ambiguous.
func (r *remoteKeySet) find(kid, alg string) (*publicKey, error) {
	ks := r.keys.Load()
	if ks == nil {
		return nil, errNoKeys
	}
	if kid != "" {
		if k, ok := ks.byKID[kid]; ok {
			return k, nil
		}
		return nil, errUnknownKey
	}
	var found *publicKey
	for _, k := range ks.all {
		if fits(k, alg) {
			if found != nil {
				return nil, errAmbiguousKey
			}
			found = k
		}
	}
	if found == nil {
		return nil, errUnknownKey
	}
	return found, nil
}

// refreshUnknown refreshes the set for an unknown kid unless one such
// refresh happened less than minGap ago; it joins a fetch already running.
// It reports whether a fetch took place, without waiting on the rate limit.
func (r *remoteKeySet) refreshUnknown() bool {
	r.mu.Lock()
	if ch := r.inflight; ch != nil {
		r.mu.Unlock()
		r.wait(ch)
		return true
	}
	now := r.now()
	if !r.lastOnDemand.IsZero() && now.Sub(r.lastOnDemand) < r.minGap {
		r.mu.Unlock()
		return false
	}
	r.lastOnDemand = now
	ch := r.start()
	r.mu.Unlock()
	r.run(ch)
	return true
}

// refresh fetches the set now, or waits for the fetch already running.
func (r *remoteKeySet) refresh() {
	r.mu.Lock()
	if ch := r.inflight; ch != nil {
		r.mu.Unlock()
		r.wait(ch)
		return
	}
	ch := r.start()
	r.mu.Unlock()
	r.run(ch)
}

// start marks a fetch as running; r.mu must be held.
func (r *remoteKeySet) start() chan struct{} {
	ch := make(chan struct{})
	r.inflight = ch
	return ch
}

// run performs the fetch that start announced and publishes its outcome.
func (r *remoteKeySet) run(ch chan struct{}) {
	err := r.fetch()
	if err != nil {
		r.log.Warn().Err(err).Msg("jwtsession: JWKS refresh failed; keeping the previous keys")
	}
	r.mu.Lock()
	r.inflight = nil
	r.fetchErr = err
	r.mu.Unlock()
	close(ch)
}

// wait blocks until the running fetch ends or r.ctx does.
func (r *remoteKeySet) wait(ch chan struct{}) {
	select {
	case <-ch:
	case <-r.ctx.Done():
	}
}

// fetch downloads and parses the JWKS and publishes it. A set without a
// single usable key counts as a failure and leaves the previous set in place.
func (r *remoteKeySet) fetch() error {
	ctx := r.ctx
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return fmt.Errorf("jwtsession: JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("jwtsession: fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jwtsession: fetch JWKS: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("jwtsession: read JWKS: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return fmt.Errorf("jwtsession: JWKS larger than %d bytes", maxJWKSBytes)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("jwtsession: decode JWKS: %w", err)
	}
	ks := r.parse(doc.Keys)
	if len(ks.all) == 0 {
		return errors.New("jwtsession: JWKS has no usable signing key")
	}
	r.keys.Store(ks)
	r.log.Debug().Int("keys", len(ks.all)).Msg("jwtsession: JWKS refreshed")
	return nil
}

// parse builds a key set from raw JWKs, skipping (and logging) the ones
// that cannot verify tokens. Keys equal to ones of the current set keep
// their pointers.
func (r *remoteKeySet) parse(raws []json.RawMessage) *keySet {
	old := r.keys.Load()
	ks := &keySet{byKID: make(map[string]*publicKey, len(raws))}
	for i, raw := range raws {
		k, err := parseKey(raw)
		if err != nil {
			r.log.Warn().Err(err).Int("index", i).Msg("jwtsession: JWKS key skipped")
			continue
		}
		if k.kid != "" {
			if _, dup := ks.byKID[k.kid]; dup {
				r.log.Warn().Str("kid", k.kid).Msg("jwtsession: JWKS key skipped: duplicate kid")
				continue
			}
		}
		if old != nil {
			k = old.same(k)
		}
		if k.kid != "" {
			ks.byKID[k.kid] = k
		}
		ks.all = append(ks.all, k)
	}
	return ks
}

// same returns the key of ks equal to k (same kid, alg and material), or k.
func (ks *keySet) same(k *publicKey) *publicKey {
	for _, o := range ks.all {
		if o.kid == k.kid && o.alg == k.alg && o.key.(interface{ Equal(crypto.PublicKey) bool }).Equal(k.key) {
			return o
		}
	}
	return k
}

// parseKey turns one JWK into a verification key. Keys meant for
// encryption, symmetric keys, private-key material and algorithms outside
// the pinned set are refused.
func parseKey(raw json.RawMessage) (*publicKey, error) {
	var m jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("jwtsession: JWK: %w", err)
	}
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, fmt.Errorf("jwtsession: JWK %q: use %q is not sig", m.KID, m.USE)
	}
	if len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify) {
		return nil, fmt.Errorf("jwtsession: JWK %q: key_ops lacks verify", m.KID)
	}
	if m.ALG != "" && !slices.Contains(asymmetricAlgs, string(m.ALG)) {
		return nil, fmt.Errorf("jwtsession: JWK %q: alg %q is not allowed", m.KID, m.ALG)
	}
	if m.KTY == jwkset.KtyOct {
		return nil, fmt.Errorf("jwtsession: JWK %q: symmetric keys are not used from a JWKS", m.KID)
	}
	// Private parameters are ignored (Private: false): only the public half is kept.
	jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return nil, fmt.Errorf("jwtsession: JWK %q: %w", m.KID, err)
	}
	k := &publicKey{kid: m.KID, alg: string(m.ALG), key: jwk.Key()}
	switch key := k.key.(type) {
	case *rsa.PublicKey, ed25519.PublicKey:
	case *ecdsa.PublicKey:
		if ecdsaAlg(key.Curve) == "" {
			return nil, fmt.Errorf("jwtsession: JWK %q: unsupported curve", m.KID)
		}
	default:
		return nil, fmt.Errorf("jwtsession: JWK %q: unsupported key type %T", m.KID, key)
	}
	if k.alg != "" && !fits(k, k.alg) {
		return nil, fmt.Errorf("jwtsession: JWK %q: alg %q does not fit its key", m.KID, k.alg)
	}
	return k, nil
}

// fits reports whether k may verify a token signed with alg.
func fits(k *publicKey, alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch key := k.key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		return ecdsaAlg(key.Curve) == alg
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// ecdsaAlg is the one JWS algorithm for an ECDSA curve (RFC 7518, 3.4).
func ecdsaAlg(c elliptic.Curve) string {
	switch c {
	case elliptic.P256():
		return "ES256"
	case elliptic.P384():
		return "ES384"
	case elliptic.P521():
		return "ES512"
	}
	return ""
}
