package auth_test

import (
	"strings"
	"testing"

	"github.com/finproxy/finproxy/auth"
)

// TestDerivedIdentityUnchanged pins what a session derives: the values
// below were computed by finproxy before user ids could be named
// (FINPROXY_JWT_USER_ID_CLAIM), so existing sessions keep their finAPI
// users and passwords.
func TestDerivedIdentityUnchanged(t *testing.T) {
	k := mustKeys(t, secretA)
	for _, tt := range []struct{ raw, id, userID, password, reference string }{
		{"session-0000000000000001", "10eb22fd5691cd587017e04a5773367c379f5ddaf657440538c6113832522b18",
			"fp-zf75ajlx5prxgyjpveedxudb26sbpo6y", "MOUl1lvL8-R0WrBpfGXaeBnj9TZgx7cVroRy37lTHFI", "qdwpvbedhcpe5i57ypfiezxau7dzg5wr"},
		{"https://idp.example.com\x00alice", "101062c07f97729ab6e9ea8407689f847cd404dc424a266e9beb10f1a2a0f482",
			"fp-4brz24mpxbvcjw5k4fmdl73xnjnbvco4", "bmG5Hj7vYjoAp0QNliGv0r5QPJ5tPKV1FJGt9ZTCA9w", "qxrdpimzpkp6lgzp4mw5udi7bbadc54n"},
	} {
		s := k.Session(tt.raw)
		if s.ID != tt.id || s.UserID() != tt.userID || s.Password() != tt.password || s.Reference() != tt.reference {
			t.Errorf("session %q derives %s %s %s %s; want the values of before", tt.raw, s.ID, s.UserID(), s.Password(), s.Reference())
		}
	}
}

func TestValidUserID(t *testing.T) {
	for id, want := range map[string]bool{
		"alice":                      true,
		"Alice.Smith+finapi@example": true,
		"user_42-x":                  true,
		strings.Repeat("a", 36):      true,
		strings.Repeat("a", 37):      false,
		"":                           false,
		"alice smith":                false,
		"alice/smith":                false,
		"älice":                      false,
		"alice\x00":                  false,
		"alice%40example":            false,
	} {
		if got := auth.ValidUserID(id); got != want {
			t.Errorf("ValidUserID(%q) = %v, want %v", id, got, want)
		}
	}
}

// TestUserSession: a named user id is sent as spelled, and every spelling
// of it is one session with one password; neither equals what a session
// derives, nor depends on anything but the secret and the lowercase id.
func TestUserSession(t *testing.T) {
	k := mustKeys(t, secretA)
	a, b := k.UserSession("Alice.Smith@Example"), k.UserSession("alice.smith@example")
	if a.UserID() != "Alice.Smith@Example" || b.UserID() != "alice.smith@example" {
		t.Errorf("user ids sent: %q, %q; want them as named", a.UserID(), b.UserID())
	}
	if a.ID != b.ID || a.Password() != b.Password() {
		t.Errorf("case variants of one id differ in session or password")
	}
	if !hex64.MatchString(a.ID) || len(a.Password()) != 43 {
		t.Errorf("session %q, password of %d characters", a.ID, len(a.Password()))
	}
	// Domain separation: the derived session of the same string, and a
	// jwt session naming it, are other sessions with other passwords.
	for _, raw := range []string{"alice.smith@example", "\x00alice.smith@example"} {
		if d := k.Session(raw); d.ID == a.ID || d.Password() == a.Password() {
			t.Errorf("named user id collides with the derived session of %q", raw)
		}
	}
	if c := k.UserSession("bob"); c.ID == a.ID || c.Password() == a.Password() {
		t.Errorf("two user ids share a session or password")
	}
	if o := mustKeys(t, secretB).UserSession("alice.smith@example"); o.ID == a.ID || o.Password() == a.Password() {
		t.Errorf("another identity secret derives the same password")
	}
	if strings.Contains(a.String(), "lice") {
		t.Errorf("String() %q shows the user id", a.String())
	}
}
