package emulator

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"
)

// DefaultDataDecryptionKey is the emulated client's data decryption key
// unless Config.DataDecryptionKey names another: 32 hexadecimal digits, as
// finAPI hands them out.
const DefaultDataDecryptionKey = "5f3a9c2e8b7d41f6a0c3e9b2d4f8a1c7"

// Counters of the client-side password change.
const (
	// CounterPasswordChangeRequest counts requestPasswordChange answered 200.
	CounterPasswordChangeRequest = "users.password_change.request"
	// CounterPasswordChangeExecute counts executePasswordChange answered 200.
	CounterPasswordChangeExecute = "users.password_change.execute"
)

// changeTokenPattern is the pattern of a decrypted passwordChangeToken.
var changeTokenPattern = regexp.MustCompile(`^[0-9a-f-]*$`)

// encryptDDK encrypts plain with the data decryption key ddk as finAPI's
// DDK page describes it, the IV being our reading (see the package doc).
func encryptDDK(ddk string, plain string) string {
	salt, err := hex.DecodeString(ddk)
	if err != nil {
		panic("emulator: DataDecryptionKey is not hexadecimal")
	}
	key, err := pbkdf2.Key(sha1.New, ddk, salt, 1000, 16)
	if err != nil {
		panic(err)
	}
	block, _ := aes.NewCipher(key)
	iv := make([]byte, aes.BlockSize)
	copy(iv, salt)
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	buf := append([]byte(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf)
}

// serveRequestPasswordChange is POST /api/v2/users/requestPasswordChange,
// with the client's token.
func (e *Emulator) serveRequestPasswordChange(w http.ResponseWriter, r *http.Request) {
	e.locked(func(r *http.Request) reply {
		caller, rep := e.authorizeLocked(r, roleClient, false)
		if rep != nil {
			return rep
		}
		ac := e.authContext(caller)
		var p struct {
			UserID *string `json:"userId"`
		}
		if err := decodeJSON(r.Body, &p); err != nil || deref(p.UserID) == "" {
			return e.errReply(http.StatusBadRequest, codeBadRequest, "Malformed request body or no userId", ac)
		}
		u := e.users[strings.ToLower(*p.UserID)]
		if u == nil {
			return e.errReply(http.StatusNotFound, codeUnknownEntity, "User not found", ac)
		}
		token := newUUID()
		e.changes[strings.ToLower(u.id)] = token
		e.incLocked(CounterPasswordChangeRequest)
		return jsonReply(http.StatusOK, map[string]any{
			"userId":              u.id,
			"userEmail":           emptyToNil(encryptOptional(e.cfg.DataDecryptionKey, deref(u.email))),
			"passwordChangeToken": encryptDDK(e.cfg.DataDecryptionKey, token),
		})
	})(w, r)
}

func encryptOptional(ddk, s string) string {
	if s == "" {
		return ""
	}
	return encryptDDK(ddk, s)
}

// serveExecutePasswordChange is POST /api/v2/users/executePasswordChange,
// with the client's token.
func (e *Emulator) serveExecutePasswordChange(w http.ResponseWriter, r *http.Request) {
	e.locked(func(r *http.Request) reply {
		caller, rep := e.authorizeLocked(r, roleClient, false)
		if rep != nil {
			return rep
		}
		ac := e.authContext(caller)
		var p struct {
			UserID   *string `json:"userId"`
			Password *string `json:"password"`
			Token    *string `json:"passwordChangeToken"`
		}
		if err := decodeJSON(r.Body, &p); err != nil || p.UserID == nil || p.Password == nil || p.Token == nil {
			return e.errReply(http.StatusBadRequest, codeBadRequest, "Malformed request body: userId, password and passwordChangeToken are required", ac)
		}
		u := e.users[strings.ToLower(*p.UserID)]
		if u == nil {
			return e.errReply(http.StatusNotFound, codeUnknownEntity, "User not found", ac)
		}
		switch n := utf8.RuneCountInString(*p.Password); {
		case n < 6 || n > 128:
			return e.errReply(http.StatusBadRequest, codeBadRequest, "The password must be between 6 and 128 characters long", ac)
		case !changeTokenPattern.MatchString(*p.Token):
			return e.errReply(http.StatusBadRequest, codeBadRequest, "passwordChangeToken must match [0-9a-f-]*", ac)
		case *p.Token == "" || e.changes[strings.ToLower(u.id)] != *p.Token:
			return e.errReply(http.StatusBadRequest, codeBadRequest, "Invalid passwordChangeToken", ac)
		}
		delete(e.changes, strings.ToLower(u.id))
		u.password = *p.Password
		e.revokeUserLocked(u) // "all tokens ... are revoked", for every client
		e.incLocked(CounterPasswordChangeExecute)
		return emptyReply(http.StatusOK)
	})(w, r)
}
