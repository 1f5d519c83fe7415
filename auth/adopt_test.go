package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/finproxy/finproxy/cache"
)

func TestAdoptedPassword(t *testing.T) {
	k, err := NewKeys([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewKeys([]byte(strings.Repeat("o", 32)))
	s := k.Session("a-session-of-sixteen")
	p := k.AdoptedPassword(s.UserID())
	switch {
	case p != k.AdoptedPassword(strings.ToUpper(s.UserID())):
		t.Error("the adopted password depends on the case of the id; finAPI ids are case-insensitive")
	case p == s.Password():
		t.Error("the adopted password equals the derived one")
	case p == k.AdoptedPassword("another-user"):
		t.Error("two users share an adopted password")
	case p == other.AdoptedPassword(s.UserID()):
		t.Error("the adopted password does not depend on the identity secret")
	case p != k.UserSession(strings.ToUpper(s.UserID())).Password():
		t.Error("the adopted password differs from the named user id's: a JWT naming the adopted user could not log in")
	case len(p) != 43:
		t.Errorf("adopted password of %d characters, want 43", len(p))
	}
	if k.SessionByHash(s.ID).derivable() || !s.derivable() {
		t.Error("a session known by its hash only must not derive an identity")
	}
}

func TestLookupHash(t *testing.T) {
	k, _ := NewKeys([]byte(strings.Repeat("k", 32)))
	store := cache.NewMemory[Token](0, cache.Codec[Token]{})
	ctx := context.Background()
	s := k.Session("a-session-of-sixteen")
	indexSession(ctx, store, s, time.Hour)
	for name, c := range map[string]struct {
		hash string
		want string
		ok   bool
	}{
		"short":          {s.Short(), s.ID, true},
		"full":           {s.ID, s.ID, true},
		"unknown short":  {"ffffffffffff", "", false},
		"upper case":     {strings.ToUpper(s.Short()), "", false},
		"other length":   {s.ID[:20], "", false},
		"not hex":        {"zzzzzzzzzzzz", "", false},
		"empty":          {"", "", false},
		"index mismatch": {"000000000000", "", false},
	} {
		if name == "index mismatch" {
			store.Set(ctx, shortPrefix+c.hash, Token{UserID: s.ID}, time.Hour) // points at a hash that does not start with it
		}
		got, ok, err := lookupHash(ctx, store, c.hash)
		if err != nil || ok != c.ok || got != c.want {
			t.Errorf("%s: lookupHash(%q) = %q, %v, %v; want %q, %v", name, c.hash, got, ok, err, c.want, c.ok)
		}
	}
}
