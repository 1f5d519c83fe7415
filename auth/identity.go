package auth

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"strings"
	"sync"
)

// UserIDPrefix starts every finAPI user id that finproxy derives, so that
// such users are recognisable in finAPI's user lists.
const UserIDPrefix = "fp-"

// HKDF labels: one key per purpose, so that no derived value reveals another.
const (
	labelSession   = "finproxy v1 session key"
	labelUserID    = "finproxy v1 finapi user id"
	labelPassword  = "finproxy v1 finapi user password"
	labelReference = "finproxy v1 process client reference"
	labelStorage   = "finproxy v1 storage encryption"
	// For finAPI user ids that the identity provider names
	// (FINPROXY_JWT_USER_ID_CLAIM): their own session hash and password,
	// so that neither can equal a value derived from a session.
	labelUserSession  = "finproxy v1 session of a named finapi user id"
	labelUserPassword = "finproxy v1 finapi password of a named user id"
)

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Keys derives everything finproxy needs from FINPROXY_IDENTITY_SECRET: the
// session hash, the finAPI user id and password of a session, and storage
// keys. The derivation is deterministic, so a restarted replica or another
// one reaches the same finAPI user without a database. Keys is safe for
// concurrent use.
type Keys struct {
	session, userID, password, reference, storage []byte
	userSession, userPassword                     []byte    // for named user ids
	macs                                          sync.Pool // of hash.Hash keyed with session
}

// NewKeys derives the keys from the identity secret, which must be at least
// 32 bytes.
func NewKeys(secret []byte) (*Keys, error) {
	if len(secret) < 32 {
		return nil, errors.New("auth: identity secret must be at least 32 bytes")
	}
	derive := func(label string) []byte {
		k, err := hkdf.Key(sha256.New, secret, nil, label, 32)
		if err != nil {
			panic("auth: hkdf: " + err.Error()) // only for lengths beyond 255*32
		}
		return k
	}
	k := &Keys{
		session:   derive(labelSession),
		userID:    derive(labelUserID),
		password:  derive(labelPassword),
		reference: derive(labelReference),
		storage:   derive(labelStorage),

		userSession:  derive(labelUserSession),
		userPassword: derive(labelUserPassword),
	}
	k.macs.New = func() any { return &sessionMAC{h: hmac.New(sha256.New, k.session)} }
	return k, nil
}

// sessionMAC is a pooled session hash with its buffers.
type sessionMAC struct {
	h   hash.Hash
	in  []byte
	sum []byte
}

// maxPooledSession bounds the input buffer a pooled sessionMAC keeps: a
// session longer than any valid one (an identity in jwt mode, an over-long
// header the caller sent) is hashed but its buffer not kept.
const maxPooledSession = 4 << 10

// StorageKey returns the key for encrypting tokens at rest.
func (k *Keys) StorageKey() []byte { return k.storage }

// Session returns the session named by raw, an app session id (header mode)
// or an issuer-qualified subject (jwt mode). Only its keyed hash is
// computed now; the finAPI identity is derived when first asked for.
func (k *Keys) Session(raw string) Session {
	m := k.macs.Get().(*sessionMAC)
	m.h.Reset()
	// Through the pooled buffers: []byte(raw) and the sum would escape
	// through the hash.Hash interface, two allocations per request.
	m.in = append(m.in[:0], raw...)
	m.h.Write(m.in)
	var id [2 * sha256.Size]byte
	m.sum = m.h.Sum(m.sum[:0])
	hex.Encode(id[:], m.sum)
	if cap(m.in) <= maxPooledSession {
		k.macs.Put(m)
	}
	return Session{ID: string(id[:]), raw: raw, keys: k}
}

// MaxUserIDLen is the longest finAPI user id.
const MaxUserIDLen = 36

// ValidUserID reports whether id is a finAPI user id as finAPI Access
// defines it (UserCreateParams.id in the Access API description: "Max
// length is 36 symbols. Only the following symbols are allowed: 0-9, A-Z,
// a-z, -, _, ., +, @", pattern [a-zA-Z0-9\-_\.\+@]*), and not empty.
func ValidUserID(id string) bool {
	if id == "" || len(id) > MaxUserIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
			b == '-' || b == '_' || b == '.' || b == '+' || b == '@') {
			return false
		}
	}
	return true
}

// UserSession returns the session of a finAPI user id named by the
// identity provider (FINPROXY_JWT_USER_ID_CLAIM) rather than derived;
// id must satisfy ValidUserID. finAPI regards user ids case-insensitively
// (createUser: "User identifiers are regarded case-insensitive by
// finAPI"), so the session hash and the password are derived from the
// lowercase id, each with a key of its own: every spelling of one id, from
// any token or subject, is one session with one token and one password.
// The id itself is sent to finAPI as the identity provider spells it.
func (k *Keys) UserSession(id string) Session {
	key := strings.ToLower(id)
	return Session{ID: hex.EncodeToString(mac(k.userSession, key)), raw: key, keys: k, named: id}
}

// A Session is one app session. Its String form is a short keyed hash, safe
// for logs; the raw value never leaves the struct.
type Session struct {
	// ID is the keyed hash of the session (hex HMAC-SHA256), the key of
	// its tokens in every store.
	ID string

	raw  string
	keys *Keys
	// named is the finAPI user id the identity provider named, as it
	// spelled it; raw is then its lowercase form. Empty: derived.
	named string
}

// Short returns the first 12 hex characters of the session hash, enough to
// follow a session through logs and nothing more.
func (s Session) Short() string {
	if len(s.ID) < 12 {
		return s.ID
	}
	return s.ID[:12]
}

// String returns Short, so that a Session printed by accident leaks nothing.
func (s Session) String() string { return s.Short() }

// UserID returns the finAPI user id of the session: the one named (see
// Keys.UserSession), or else UserIDPrefix and 32 lowercase base32
// characters (160 bits of a keyed hash), 35 characters of [a-z0-9-] in
// all, within finAPI's 36.
func (s Session) UserID() string {
	if s.named != "" {
		return s.named
	}
	sum := mac(s.keys.userID, s.raw)
	return UserIDPrefix + lowerBase32.EncodeToString(sum[:20])
}

// Password returns the finAPI password of the session: 43 characters of
// unpadded base64url (256 bits), within finAPI's 6 to 128. For a named
// user id it is derived from the lowercase id with a key of its own.
func (s Session) Password() string {
	key := s.keys.password
	if s.named != "" {
		key = s.keys.userPassword
	}
	sum := mac(key, s.raw)
	return base64.RawURLEncoding.EncodeToString(sum)
}

// Reference returns the client reference that names the session at finAPI's
// Process Controller: a keyed hash, never the raw session.
func (s Session) Reference() string {
	sum := mac(s.keys.reference, s.raw)
	return lowerBase32.EncodeToString(sum[:20])
}

func mac(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
