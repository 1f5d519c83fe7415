package finapi

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
)

// A DataDecryptionKey is the client's data decryption key (DDK): finAPI
// encrypts what it hands a client outside any user context with it, the
// passwordChangeToken of a client-side password change among it.
//
// finAPI's help page "How to decrypt data with your data decryption key
// (DDK)" states the algorithm: AES-128 in CBC mode with PKCS#5 padding, the
// key PBKDF2 with HMAC-SHA1, password the DDK, salt the DDK read as a
// hexadecimal number into bytes, 1000 iterations, 128 bits. The page as
// found does not state the initialisation vector. The published finAPI
// client helpers that decrypt with a DDK (JavaScript, CryptoJS, their
// parameter named dataDecryptionKey) take the DDK's bytes, hex-decoded, as
// the IV too and read the ciphertext as base64: that is our reading, tried
// first. Decrypt then tolerates two other readings (an IV of zeros, an IV
// sent before the ciphertext), each accepted only when it gives a token of
// the documented pattern [0-9a-f-]: a wrong IV garbles only the first
// block and leaves the padding intact, so the padding alone cannot tell.
type DataDecryptionKey struct {
	block cipher.Block
	iv    []byte
}

// NewDataDecryptionKey derives the AES key from ddk, finAPI's hexadecimal
// data decryption key.
func NewDataDecryptionKey(ddk string) (*DataDecryptionKey, error) {
	salt, err := hex.DecodeString(ddk)
	if err != nil || len(salt) == 0 {
		return nil, errors.New("finapi: the data decryption key is not hexadecimal")
	}
	key, err := pbkdf2.Key(sha1.New, ddk, salt, 1000, 16)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	iv := make([]byte, aes.BlockSize)
	copy(iv, salt) // a DDK of 16 bytes is the IV itself; a shorter one is padded with zeros, a longer one cut
	return &DataDecryptionKey{block: block, iv: iv}, nil
}

// tokenPattern is the pattern finAPI documents for a decrypted
// passwordChangeToken.
var tokenPattern = regexp.MustCompile(`^[0-9a-f-]+$`)

// DecryptToken decrypts a passwordChangeToken as finAPI encrypted it
// (base64 of the ciphertext), trying our reading of the IV first (see
// DataDecryptionKey), and returns it only if it has the documented pattern.
func (k *DataDecryptionKey) DecryptToken(encrypted string) (string, error) {
	raw, err := decodeBase64(encrypted)
	if err != nil {
		return "", errors.New("finapi: passwordChangeToken is not base64")
	}
	tries := [][2][]byte{{k.iv, raw}, {make([]byte, aes.BlockSize), raw}}
	if len(raw) >= 2*aes.BlockSize {
		tries = append(tries, [2][]byte{raw[:aes.BlockSize], raw[aes.BlockSize:]})
	}
	for _, t := range tries {
		if plain, ok := k.decrypt(t[0], t[1]); ok && tokenPattern.Match(plain) {
			return string(plain), nil
		}
	}
	return "", errors.New("finapi: passwordChangeToken does not decrypt with the data decryption key (FINPROXY_DATA_DECRYPTION_KEY)")
}

// Encrypt encrypts plain as finAPI does, in our reading (the DDK's bytes
// as IV), base64-encoded. finproxy only decrypts; Encrypt is for tests and
// the round trip.
func (k *DataDecryptionKey) Encrypt(plain []byte) string {
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	buf := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(k.block, k.iv).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf)
}

func (k *DataDecryptionKey) decrypt(iv, ct []byte) ([]byte, bool) {
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, false
	}
	buf := bytes.Clone(ct)
	cipher.NewCBCDecrypter(k.block, iv).CryptBlocks(buf, buf)
	pad := int(buf[len(buf)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, false
	}
	for _, b := range buf[len(buf)-pad:] {
		if int(b) != pad {
			return nil, false
		}
	}
	return buf[:len(buf)-pad], true
}

// decodeBase64 reads standard base64, padded or not, or its URL variant.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
