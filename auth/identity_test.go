package auth_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/finproxy/finproxy/auth"
)

const (
	secretA = "identity-secret-A-0123456789abcdef0123456789"
	secretB = "identity-secret-B-0123456789abcdef0123456789"
)

func mustKeys(t *testing.T, secret string) *auth.Keys {
	t.Helper()
	k, err := auth.NewKeys([]byte(secret))
	if err != nil {
		t.Fatalf("NewKeys: %v", err)
	}
	return k
}

var (
	userIDPattern = regexp.MustCompile(`^fp-[a-z0-9\-_.]+$`)
	hex64         = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hex12         = regexp.MustCompile(`^[0-9a-f]{12}$`)
)

func TestNewKeysSecretLength(t *testing.T) {
	tests := []struct {
		name string
		len  int
		ok   bool
	}{
		{"empty", 0, false},
		{"31 bytes", 31, false},
		{"32 bytes", 32, true},
		{"64 bytes", 64, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := strings.Repeat("k", tt.len)
			k, err := auth.NewKeys([]byte(secret))
			if (err == nil) != tt.ok {
				t.Fatalf("NewKeys(%d bytes) error = %v, want ok=%v", tt.len, err, tt.ok)
			}
			if !tt.ok && k != nil {
				t.Errorf("NewKeys returned keys with an error")
			}
			if err != nil && tt.len > 0 && strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the secret", err)
			}
			if tt.ok && len(k.StorageKey()) != 32 {
				t.Errorf("StorageKey is %d bytes, want 32", len(k.StorageKey()))
			}
		})
	}
}

func TestSessionIdentity(t *testing.T) {
	raws := []string{
		"session-0000000000000001",
		"session-0000000000000002",
		"SeSsIoN/with+all=chars~._-0123456789",
		strings.Repeat("x", 512),
	}
	a, b := mustKeys(t, secretA), mustKeys(t, secretB)
	for _, raw := range raws {
		t.Run(raw[:min(len(raw), 40)], func(t *testing.T) {
			s := a.Session(raw)
			id, pw, ref := s.UserID(), s.Password(), s.Reference()

			if !hex64.MatchString(s.ID) {
				t.Errorf("ID = %q, want 64 lowercase hex characters", s.ID)
			}
			if !hex12.MatchString(s.Short()) || !strings.HasPrefix(s.ID, s.Short()) {
				t.Errorf("Short = %q, want the first 12 characters of ID %q", s.Short(), s.ID)
			}
			if s.String() != s.Short() {
				t.Errorf("String = %q, want Short %q", s.String(), s.Short())
			}
			if len(id) > 36 || !userIDPattern.MatchString(id) {
				t.Errorf("UserID = %q (%d chars), want at most 36 chars of [a-z0-9-_.] starting with fp-", id, len(id))
			}
			if len(pw) < 6 || len(pw) > 128 {
				t.Errorf("Password has %d chars, want 6 to 128", len(pw))
			}
			if ref == "" || ref == s.ID || ref == id || ref == pw {
				t.Errorf("Reference %q must differ from ID, user id and password", ref)
			}

			// Nothing derived reveals the raw session, and printing the
			// session in any way shows only the short hash.
			for name, v := range map[string]string{
				"ID": s.ID, "UserID": id, "Password": pw, "Reference": ref,
				//lint:ignore S1025 the test is about how fmt's verbs print a Session
				"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "String": s.String(),
			} {
				if strings.Contains(v, raw) {
					t.Errorf("%s %q contains the raw session", name, v)
				}
			}

			// Stable: the same secret and session give the same identity,
			// also from keys derived anew (a restarted replica).
			again := mustKeys(t, secretA).Session(raw)
			if again.ID != s.ID || again.UserID() != id || again.Password() != pw || again.Reference() != ref {
				t.Errorf("identity not stable for the same secret and session")
			}
			if s.UserID() != id || s.Password() != pw {
				t.Errorf("identity not stable across calls")
			}

			// Another secret gives another identity throughout.
			other := b.Session(raw)
			if other.ID == s.ID || other.UserID() == id || other.Password() == pw || other.Reference() == ref {
				t.Errorf("identity does not change with the identity secret")
			}
		})
	}
}

func TestSessionsDiffer(t *testing.T) {
	k := mustKeys(t, secretA)
	seen := map[string]string{}
	for i := range 200 {
		raw := fmt.Sprintf("session-%016d", i)
		s := k.Session(raw)
		for kind, v := range map[string]string{"ID": s.ID, "UserID": s.UserID(), "Password": s.Password(), "Reference": s.Reference()} {
			if prev, dup := seen[kind+v]; dup {
				t.Fatalf("%s %q of %q equals that of %q", kind, v, raw, prev)
			}
			seen[kind+v] = raw
		}
	}
}

// TestSessionConcurrent derives identities from many goroutines (the MAC
// pool is shared); run with -race.
func TestSessionConcurrent(t *testing.T) {
	k := mustKeys(t, secretA)
	want := k.Session("concurrent-session-1").ID
	done := make(chan struct{})
	for range 50 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 20 {
				if got := k.Session("concurrent-session-1").ID; got != want {
					t.Errorf("concurrent Session ID = %q, want %q", got, want)
				}
				_ = k.Session("other-session-xyz").UserID()
			}
		}()
	}
	for range 50 {
		<-done
	}
}

func TestTokenCodecRoundTrip(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 123456789)
	long := strings.Repeat("x", 70_000) // beyond 16-bit lengths
	for _, tok := range []auth.Token{
		{},
		{AccessToken: "a", RefreshToken: "r", UserID: "fp-user", Issued: t0, Expiry: t0.Add(time.Hour)},
		{AccessToken: "a", Issued: t0, After401: true},
		{RefreshToken: "only-refresh", Expiry: t0},
		{UserID: "conflict-marker", Issued: t0, Expiry: t0.Add(24 * time.Hour)},
		{AccessToken: long, RefreshToken: long + "r", UserID: "u"},
		{AccessToken: "a", Issued: t0, Expiry: t0.Add(time.Hour), ProcessToken: "8f92ec58-b9b9-11ec-8422-0242ac120002", Exchanges: 10},
		{AccessToken: "a", After401: true, ProcessToken: "p", Exchanges: 1},
	} {
		got, err := auth.TokenCodec.Decode(auth.TokenCodec.Encode(tok))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if got.AccessToken != tok.AccessToken || got.RefreshToken != tok.RefreshToken || got.UserID != tok.UserID ||
			got.After401 != tok.After401 || got.ProcessToken != tok.ProcessToken || got.Exchanges != tok.Exchanges || !got.Expiry.Equal(tok.Expiry) || !got.Issued.Equal(tok.Issued) ||
			got.Expiry.IsZero() != tok.Expiry.IsZero() || got.Issued.IsZero() != tok.Issued.IsZero() {
			t.Errorf("round trip of %.40v gave %.40v", tok, got)
		}
	}
	for _, bad := range []string{"", "short", strings.Repeat("\xff", 25)} {
		if _, err := auth.TokenCodec.Decode(bad); err == nil {
			t.Errorf("Decode(%q) accepted garbage", bad)
		}
	}
}
