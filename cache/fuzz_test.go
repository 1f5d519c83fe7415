package cache

import (
	"bytes"
	"testing"
)

// FuzzSealerOpen: a sealed value opens to what was sealed under its key,
// and a value with any byte changed, or under another key, never opens.
func FuzzSealerOpen(f *testing.F) {
	f.Add("finproxy:abc", []byte(`{"a":"token"}`), 0, byte(1))
	f.Add("k", []byte{}, 5, byte(0x80))
	f.Add("", []byte("x"), 1000, byte(0xff))
	s := newTestSealer(f)
	f.Fuzz(func(t *testing.T, key string, plain []byte, pos int, flip byte) {
		sealed := s.Seal(key, plain)
		got, err := s.Open(key, sealed)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("Open(Seal(%q)) = %q, %v", plain, got, err)
		}
		if _, err := s.Open(key+"x", sealed); err == nil {
			t.Errorf("opened under another key")
		}
		if flip == 0 || len(sealed) == 0 {
			return
		}
		i := pos % len(sealed)
		if i < 0 {
			i = -i
		}
		tampered := bytes.Clone(sealed)
		tampered[i] ^= flip
		if _, err := s.Open(key, tampered); err == nil {
			t.Errorf("a value with byte %d changed opened", i)
		}
	})
}
