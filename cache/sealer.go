package cache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Sealed value layout: version(1) || nonce(12) || AES-256-GCM ciphertext.
const (
	sealKeySize   = 32
	sealNonceSize = 12
	sealOverhead  = 1 + sealNonceSize + 16 // version, nonce, GCM tag
)

// Reasons a sealed value cannot be opened. Callers treat every one of them
// as a miss; they are distinct only so that logs can tell them apart.
var (
	errSealedShort   = errors.New("cache: sealed value too short")
	errSealedVersion = errors.New("cache: sealed value has an unknown key version")
	errSealedAuth    = errors.New("cache: sealed value failed authentication")
)

// A Sealer encrypts and authenticates values at rest with AES-256-GCM.
//
// A sealed value is version(1) || nonce(12) || ciphertext. The version byte
// is the first byte of SHA-256 of the key that sealed it, so it needs no
// numbering that operators must keep in step across replicas: a key is
// recognised by itself, wherever it sits in the list. After a rotation,
// the previous keys still open the entries they sealed until those expire;
// new entries are always sealed with the current key. Two keys that share a
// version byte (1 in 256) are both tried.
//
// The additional authenticated data is the storage key, so a value copied
// or moved to another key does not open.
//
// A Sealer is safe for concurrent use.
type Sealer struct {
	current byte
	aeads   map[byte][]cipher.AEAD // by version; the current key first
}

// NewSealer returns a Sealer that seals with current and opens what current
// or any of previous sealed. Every key must be 32 bytes (finproxy derives
// them with HKDF from FINPROXY_IDENTITY_SECRET, see auth.Keys.StorageKey).
func NewSealer(current []byte, previous ...[]byte) (*Sealer, error) {
	s := &Sealer{aeads: map[byte][]cipher.AEAD{}}
	for i, k := range append([][]byte{current}, previous...) {
		if len(k) != sealKeySize {
			return nil, fmt.Errorf("cache: sealer key %d is %d bytes, want %d", i, len(k), sealKeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("cache: sealer key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("cache: sealer key %d: %w", i, err)
		}
		v := keyVersion(k)
		if i == 0 {
			s.current = v
		}
		s.aeads[v] = append(s.aeads[v], aead)
	}
	return s, nil
}

// keyVersion names a key in sealed values without revealing it.
func keyVersion(key []byte) byte {
	sum := sha256.Sum256(key)
	return sum[0]
}

// Seal encrypts plaintext for storage under key with the current key.
func (s *Sealer) Seal(key string, plaintext []byte) []byte {
	out := make([]byte, 1+sealNonceSize, sealOverhead+len(plaintext))
	out[0] = s.current
	rand.Read(out[1:]) // never fails (crypto/rand, Go 1.24+)
	return s.aeads[s.current][0].Seal(out, out[1:], plaintext, []byte(key))
}

// Open decrypts a value that Seal sealed for key. An unknown key version,
// a value stored under another key, or any tampering is an error; callers
// treat it as a miss.
func (s *Sealer) Open(key string, sealed []byte) ([]byte, error) {
	if len(sealed) < sealOverhead {
		return nil, errSealedShort
	}
	aeads, ok := s.aeads[sealed[0]]
	if !ok {
		return nil, errSealedVersion
	}
	nonce, ct := sealed[1:1+sealNonceSize], sealed[1+sealNonceSize:]
	for _, aead := range aeads {
		if p, err := aead.Open(nil, nonce, ct, []byte(key)); err == nil {
			return p, nil
		}
	}
	return nil, errSealedAuth
}
