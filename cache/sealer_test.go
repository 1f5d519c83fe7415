package cache

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealerRoundTrip(t *testing.T) {
	s := newTestSealer(t)
	plain := []byte(`{"a":"token"}`)
	sealed := s.Seal("k1", plain)
	if bytes.Contains(sealed, plain) || sealed[0] != keyVersion(testKey(1)) || len(sealed) != sealOverhead+len(plain) {
		t.Fatalf("sealed = %x", sealed)
	}
	if again := s.Seal("k1", plain); bytes.Equal(again, sealed) {
		t.Error("two seals of one value are equal (nonce reuse)")
	}
	got, err := s.Open("k1", sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s.Open("k2", sealed); !errors.Is(err, errSealedAuth) {
		t.Errorf("Open under another key: %v, want errSealedAuth", err)
	}
}

func TestSealerRejects(t *testing.T) {
	s := newTestSealer(t)
	sealed := s.Seal("k", []byte("v"))
	other := newTestSealer(t, testKey(9))
	for name, c := range map[string]struct {
		sealed []byte
		want   error
	}{
		"empty":           {nil, errSealedShort},
		"short":           {sealed[:sealOverhead-1], errSealedShort},
		"unknown version": {other.Seal("k", []byte("v")), errSealedVersion},
		"tampered":        {append(bytes.Clone(sealed[:len(sealed)-1]), sealed[len(sealed)-1]^1), errSealedAuth},
	} {
		if _, err := s.Open("k", c.sealed); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
}

func TestSealerRotation(t *testing.T) {
	old := newTestSealer(t, testKey(1))
	rotated := newTestSealer(t, testKey(2), testKey(1))
	if p, err := rotated.Open("k", old.Seal("k", []byte("v"))); err != nil || string(p) != "v" {
		t.Fatalf("rotated Open of an old value = %q, %v", p, err)
	}
	if _, err := old.Open("k", rotated.Seal("k", []byte("v"))); err == nil {
		t.Fatal("the old key opened a value sealed with the new one")
	}
}

// TestSealerVersionCollision: two keys whose version bytes collide are
// both tried.
func TestSealerVersionCollision(t *testing.T) {
	a := testKey(1)
	var b []byte
	for i := 2; ; i++ {
		k := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 16)
		if keyVersion(k) == keyVersion(a) {
			b = k
			break
		}
	}
	both := newTestSealer(t, a, b)
	for _, k := range [][]byte{a, b} {
		if _, err := both.Open("k", newTestSealer(t, k).Seal("k", []byte("v"))); err != nil {
			t.Errorf("key %x: %v", k[:2], err)
		}
	}
}

func TestNewSealerKeySize(t *testing.T) {
	for _, keys := range [][][]byte{{nil}, {make([]byte, 16)}, {testKey(1), make([]byte, 31)}} {
		if _, err := NewSealer(keys[0], keys[1:]...); err == nil {
			t.Errorf("keys of %d bytes accepted", len(keys[len(keys)-1]))
		}
	}
}
