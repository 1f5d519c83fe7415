package finapi

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// The vector was made with OpenSSL, not with this package:
//
//	DDK=5f3a9c2e8b7d41f6a0c3e9b2d4f8a1c7
//	openssl kdf -keylen 16 -kdfopt digest:SHA1 -kdfopt pass:$DDK -kdfopt hexsalt:$DDK -kdfopt iter:1000 PBKDF2
//	  → 79:93:AD:F6:B8:93:11:FC:D3:6F:11:6F:8D:B5:DC:26
//	printf %s c1b2d3e4-0f9a-4b8c-9d7e-6a5b4c3d2e1f | openssl enc -aes-128-cbc -K <key> -iv $DDK -base64 -A
//
// finAPI publishes no vector.
const (
	vectorDDK    = "5f3a9c2e8b7d41f6a0c3e9b2d4f8a1c7"
	vectorPlain  = "c1b2d3e4-0f9a-4b8c-9d7e-6a5b4c3d2e1f"
	vectorCipher = "Tl84EI9gl5EB5bqN3km8CEbSvvgN+poFS7/U6jOl1tVeId2u7VBM0MW8sWuvSi7s"
)

func TestDataDecryptionKeyVector(t *testing.T) {
	k, err := NewDataDecryptionKey(vectorDDK)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.DecryptToken(vectorCipher)
	if err != nil || got != vectorPlain {
		t.Fatalf("DecryptToken = %q, %v; want %q", got, err, vectorPlain)
	}
	if enc := k.Encrypt([]byte(vectorPlain)); enc != vectorCipher {
		t.Errorf("Encrypt = %q, want OpenSSL's %q", enc, vectorCipher)
	}
}

// otherIV encrypts plain with the vector's key but another IV, as a finAPI
// that chose another IV would.
func otherIV(t *testing.T, iv []byte, prepend bool) string {
	salt, _ := hex.DecodeString(vectorDDK)
	key, _ := pbkdf2.Key(sha1.New, vectorDDK, salt, 1000, 16)
	block, _ := aes.NewCipher(key)
	buf := []byte(vectorPlain)
	pad := aes.BlockSize - len(buf)%aes.BlockSize
	for range pad {
		buf = append(buf, byte(pad))
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
	if prepend {
		buf = append(append([]byte{}, iv...), buf...)
	}
	return base64.StdEncoding.EncodeToString(buf)
}

func TestDataDecryptionKeyToleratesOtherIVs(t *testing.T) {
	k, _ := NewDataDecryptionKey(vectorDDK)
	random := []byte("0123456789abcdef")
	for name, enc := range map[string]string{
		"zero IV":      otherIV(t, make([]byte, 16), false),
		"IV prepended": otherIV(t, random, true),
		"unpadded b64": strings.TrimRight(vectorCipher, "="),
		"our reading":  vectorCipher,
	} {
		if got, err := k.DecryptToken(enc); err != nil || got != vectorPlain {
			t.Errorf("%s: DecryptToken = %q, %v", name, got, err)
		}
	}
}

func TestDataDecryptionKeyRefuses(t *testing.T) {
	k, _ := NewDataDecryptionKey(vectorDDK)
	wrong, _ := NewDataDecryptionKey("00112233445566778899aabbccddeeff")
	for name, enc := range map[string]string{
		"not base64":       "%%%",
		"not whole blocks": base64.StdEncoding.EncodeToString([]byte("short")),
		"other key":        wrong.Encrypt([]byte(vectorPlain)),
		"not a token":      k.Encrypt([]byte("Not A Token!")),
	} {
		if got, err := k.DecryptToken(enc); err == nil {
			t.Errorf("%s: DecryptToken = %q, want an error", name, got)
		} else if strings.Contains(err.Error(), vectorDDK) {
			t.Errorf("%s: error names the key: %v", name, err)
		}
	}
	if _, err := NewDataDecryptionKey("not hex"); err == nil {
		t.Error("NewDataDecryptionKey accepted a key that is not hexadecimal")
	}
}
