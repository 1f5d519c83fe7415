package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// errBodyTimeout is a request body that stopped arriving.
var errBodyTimeout = errors.New("request body stalled")

// drainBodyTimeout is the idle bound of request bodies once the process
// drains: an upload that keeps sending goes on, a stalled one is cut.
const drainBodyTimeout = time.Second

type connKey struct{}

// ConnContext is an http.Server ConnContext that lets the proxy reach the
// connection of a request, to bound how long its body may stall
// (Config.BodyTimeout). Without it there is no body timeout.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// bodies bounds how long request bodies may stall, and cuts the stalled
// ones when the process drains.
type bodies struct {
	timeout atomic.Int64 // nanoseconds; 0: no bound
	mu      sync.Mutex
	active  map[*idleBody]struct{}
}

func newBodies(timeout time.Duration) *bodies {
	b := &bodies{active: map[*idleBody]struct{}{}}
	b.timeout.Store(int64(timeout))
	return b
}

// wrap bounds the body of a request on conn: every read must make progress
// within the timeout, or the read fails with errBodyTimeout (and the
// connection's read deadline ends the stalled read at once). The returned
// function releases the body's registration.
func (b *bodies) wrap(ctx context.Context, body io.ReadCloser) (io.ReadCloser, func()) {
	conn, _ := ctx.Value(connKey{}).(net.Conn)
	if conn == nil || b.timeout.Load() <= 0 {
		return body, func() {}
	}
	ib := &idleBody{ReadCloser: body, conn: conn, bodies: b}
	b.mu.Lock()
	b.active[ib] = struct{}{}
	b.mu.Unlock()
	return ib, func() {
		b.mu.Lock()
		delete(b.active, ib)
		b.mu.Unlock()
		ib.release()
	}
}

// drain shortens the idle bound of every body, the ones being read now
// included, to drainBodyTimeout.
func (b *bodies) drain() {
	if t := b.timeout.Load(); t <= 0 || t > int64(drainBodyTimeout) {
		b.timeout.Store(int64(drainBodyTimeout))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for ib := range b.active {
		ib.extend()
	}
}

// idleBody is a request body whose every read is bounded by a read
// deadline on the connection.
type idleBody struct {
	io.ReadCloser
	conn   net.Conn
	bodies *bodies
	mu     sync.Mutex
	done   bool // EOF, an error, or released: no deadline any more
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.extend()
	n, err := b.ReadCloser.Read(p)
	var ne net.Error
	switch {
	case err == nil:
	case errors.As(err, &ne) && ne.Timeout():
		// Closed before the handler ends, net/http closes the
		// connection after the answer instead of reading on to reuse
		// it (which would wait for the stalled client).
		b.Close()
		err = errors.Join(errBodyTimeout, err)
	default:
		// After the body, net/http reads the connection in the
		// background to notice a client going away; a deadline left
		// behind would look like one.
		b.clear()
	}
	return n, err
}

// extend moves the connection's read deadline to the current idle bound.
func (b *idleBody) extend() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.conn.SetReadDeadline(time.Now().Add(time.Duration(b.bodies.timeout.Load())))
	}
}

// clear removes the deadline for good.
func (b *idleBody) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.done = true
		b.conn.SetReadDeadline(time.Time{})
	}
}

// Close closes a body not read to its end without waiting for it:
// net/http's Close reads on (up to 256 KiB) to reuse the connection, which
// a stalled client would make wait forever; with the read deadline now it
// gives up at once and closes the connection after the answer instead.
func (b *idleBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return b.ReadCloser.Close()
	}
	b.done = true
	b.conn.SetReadDeadline(time.Now())
	err := b.ReadCloser.Close()
	b.conn.SetReadDeadline(time.Time{})
	return err
}

// release ends the body's bound when its request is done; a body not read
// to its end is closed (see Close).
func (b *idleBody) release() { b.Close() }

// isBodyTimeout reports a body cut off by its idle bound.
func isBodyTimeout(err error) bool { return errors.Is(err, errBodyTimeout) }
