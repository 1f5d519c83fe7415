package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/finproxy/finproxy/finapi"
)

func TestClientPasswordChange(t *testing.T) {
	const other, otherSecret = "other-app", "other-secret"
	v := newEnv(t, Config{OtherClients: map[string]string{other: otherSecret}})
	client := v.clientToken()
	mine, _ := v.userToken("Alice", "old-password")
	theirs, _ := v.tokens(url.Values{"grant_type": {"password"}, "client_id": {other}, "client_secret": {otherSecret},
		"username": {"alice"}, "password": {"old-password"}})
	post := func(path, token, body string) response {
		return v.do(http.MethodPost, v.access.URL+path, token, "application/json", body, nil)
	}

	if r := post("/api/v2/users/requestPasswordChange", client, `{"userId":"nobody"}`); r.status != 404 || r.errorCode(t) != codeUnknownEntity {
		t.Errorf("unknown user: %d %s", r.status, r.body)
	}
	if r := post("/api/v2/users/requestPasswordChange", mine, `{"userId":"alice"}`); r.status != 403 {
		t.Errorf("with a user token: %d, want 403", r.status)
	}
	r := post("/api/v2/users/requestPasswordChange", client, `{"userId":"ALICE"}`) // ids are case-insensitive
	var pc finapi.PasswordChange
	if r.status != 200 || json.Unmarshal(r.body, &pc) != nil || pc.UserID != "Alice" {
		t.Fatalf("requestPasswordChange: %d %s", r.status, r.body)
	}
	key, _ := finapi.NewDataDecryptionKey(DefaultDataDecryptionKey)
	token, err := key.DecryptToken(pc.PasswordChangeToken) // finproxy's decryption of the emulator's encryption
	if err != nil || !changeTokenPattern.MatchString(token) || token == "" {
		t.Fatalf("the token does not decrypt to [0-9a-f-]: %q %v", token, err)
	}
	execute := func(id, password, token string) response {
		b, _ := json.Marshal(map[string]string{"userId": id, "password": password, "passwordChangeToken": token})
		return post("/api/v2/users/executePasswordChange", client, string(b))
	}
	for name, c := range map[string]struct{ id, password, token string }{
		"short password":   {"alice", "12345", token},
		"long password":    {"alice", string(make([]byte, 129)), token},
		"token pattern":    {"alice", "new-password", "XYZ"},
		"wrong token":      {"alice", "new-password", "0000-1111"},
		"the raw ciphered": {"alice", "new-password", pc.PasswordChangeToken},
	} {
		if r := execute(c.id, c.password, c.token); r.status != 400 {
			t.Errorf("%s: %d, want 400", name, r.status)
		}
	}
	if r := execute("nobody", "new-password", token); r.status != 404 {
		t.Errorf("unknown user: %d, want 404", r.status)
	}
	if r := execute("aLiCe", "new-password", token); r.status != 200 {
		t.Fatalf("executePasswordChange: %d %s", r.status, r.body)
	}
	for name, tok := range map[string]string{"this client's": mine, "another client's": theirs} {
		if r := v.get("/api/v2/users", tok); r.status != 401 {
			t.Errorf("%s token of the user still works (%d): every token is revoked", name, r.status)
		}
	}
	if r := v.tokenRequest(passwordForm("alice", "old-password")); r.status != 400 {
		t.Errorf("old password still works: %d", r.status)
	}
	v.tokens(passwordForm("alice", "new-password"))
	if r := execute("alice", "other-password", token); r.status != 400 {
		t.Errorf("a used change token works again: %d", r.status)
	}
	if n := v.emu.Count(CounterPasswordChangeExecute); n != 1 {
		t.Errorf("executions counted %d, want 1", n)
	}
}
