package finapi

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
)

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request id, so that finAPI calls
// and audit events made for the request name it (X-Request-Id).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// IsRequestIDKey reports whether key is the context key RequestID looks
// up. A context node that carries a request's state of its own (proxy's)
// answers it with the id as a string, and saves the WithRequestID node and
// its boxed string on every request.
func IsRequestIDKey(key any) bool {
	_, ok := key.(requestIDKey)
	return ok
}

// RequestID returns the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// NewRequestID returns a fresh request id: 32 lowercase hex digits (128
// random bits), well within finAPI's 255 characters. A request id names a
// request in logs, never authorises anything: it needs to be unique, not
// secret, so its bits come from math/rand/v2 (the runtime's ChaCha8
// generator, seeded by the system per thread, no system call) rather than
// crypto/rand, a cost on every request that sends none.
func NewRequestID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	var out [32]byte
	hex.Encode(out[:], b[:])
	return string(out[:])
}
