package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Defaults of a Conn.
const (
	// DefaultRedisTimeout bounds one Redis command (or pipeline): a Redis
	// that hangs costs a request about this much before the breaker opens.
	DefaultRedisTimeout = 250 * time.Millisecond
	// DefaultRedisProbe is how often an open breaker pings Redis.
	DefaultRedisProbe = 500 * time.Millisecond
)

// ErrRedisDown is returned, without asking Redis, while the breaker is
// open after a failure.
var ErrRedisDown = errors.New("cache: redis unavailable (breaker open; probing in the background)")

// Conn is finproxy's one door to Redis: the Redis store and the
// cross-replica lock send every command through Do, which gives each its
// own deadline, and a breaker that stops asking Redis after a failure. A
// frozen Redis (a failover, a fork stall, a partition) therefore costs one
// request one Timeout, not every request a chain of timeouts: while the
// breaker is open, Do fails at once, callers serve from their own memory,
// and one background probe pings Redis every Probe until it answers. The
// outage is logged once when it starts and once when it ends.
//
// Create one with NewConn; Close stops the probe (not the Client).
type Conn struct {
	client  redis.UniversalClient
	timeout time.Duration
	probe   time.Duration
	log     zerolog.Logger

	open     atomic.Bool
	since    atomic.Int64 // unix nanoseconds the breaker opened
	mu       sync.Mutex
	probing  bool
	closed   chan struct{}
	closeOne sync.Once
	onChange func(down bool)
}

// ConnConfig configures a Conn.
type ConnConfig struct {
	// Client talks to Redis (see ParseRedisURL). Required.
	Client redis.UniversalClient
	// Timeout bounds each command. Optional. Default DefaultRedisTimeout.
	Timeout time.Duration
	// Probe is the ping interval while the breaker is open. Optional.
	// Default DefaultRedisProbe.
	Probe time.Duration
	// Log receives the outage's start and end. Optional.
	Log zerolog.Logger
	// OnChange, if not nil, is told when the breaker opens (true) and
	// closes (false), for metrics.
	OnChange func(down bool)
}

// NewConn returns a Conn; it panics without a Client.
func NewConn(cfg ConnConfig) *Conn {
	if cfg.Client == nil {
		panic("cache: NewConn needs a Client")
	}
	return &Conn{
		client:   cfg.Client,
		timeout:  orDefault(cfg.Timeout, DefaultRedisTimeout),
		probe:    orDefault(cfg.Probe, DefaultRedisProbe),
		log:      cfg.Log,
		closed:   make(chan struct{}),
		onChange: cfg.OnChange,
	}
}

// Client returns the Redis client, for commands outside Do (the
// invalidation subscriber, which go-redis keeps alive by itself).
func (c *Conn) Client() redis.UniversalClient { return c.client }

// Do runs fn with a context bounded by the Conn's timeout, unless the
// breaker is open (ErrRedisDown at once). A failure of Redis (an error
// other than redis.Nil, not the caller giving up) opens the breaker.
func (c *Conn) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	if c.open.Load() {
		return ErrRedisDown
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	err := fn(cctx)
	cancel()
	if failing(err) && ctx.Err() == nil {
		c.trip(err)
	}
	return err
}

// failing reports an error that says Redis cannot answer: a network error
// or a timeout. A reply of Redis's own (a missing key, OOM on a write, a
// script error) is an answer; it opens no breaker, which PING could not
// close again.
func failing(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var reply redis.Error
	return !errors.As(err, &reply)
}

// Down reports whether the breaker is open.
func (c *Conn) Down() bool { return c.open.Load() }

// Ping asks Redis whether it answers, under the Conn's timeout, whatever
// the breaker says; a failure opens the breaker.
func (c *Conn) Ping(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	err := c.client.Ping(cctx).Err()
	if failing(err) && ctx.Err() == nil {
		c.trip(err)
	}
	return err
}

// Close stops the probe. The Conn fails every command afterwards.
func (c *Conn) Close() {
	c.closeOne.Do(func() {
		close(c.closed)
		c.open.Store(true)
	})
}

// trip opens the breaker after err and starts the probe, once per outage.
func (c *Conn) trip(err error) {
	if !c.open.CompareAndSwap(false, true) {
		return
	}
	c.since.Store(time.Now().UnixNano())
	c.log.Error().Err(err).Dur("probe_every", c.probe).
		Msg("cache: redis failing; serving from this replica's memory without shared state until it answers again")
	if c.onChange != nil {
		c.onChange(true)
	}
	c.mu.Lock()
	start := !c.probing
	c.probing = true
	c.mu.Unlock()
	if start {
		go c.probeUntilUp()
	}
}

// probeUntilUp pings Redis every probe interval and closes the breaker
// after two answers in a row (see answers).
func (c *Conn) probeUntilUp() {
	t := time.NewTicker(c.probe)
	defer t.Stop()
	for answered := 0; answered < 2; {
		select {
		case <-c.closed:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		err := answers(ctx, c.client)
		cancel()
		if err != nil {
			answered = 0
			continue
		}
		answered++
	}
	c.mu.Lock()
	c.probing = false
	c.mu.Unlock()
	down := time.Since(time.Unix(0, c.since.Load()))
	c.log.Info().Dur("outage", down.Round(time.Millisecond)).Msg("cache: redis answering again")
	if c.onChange != nil {
		c.onChange(false)
	}
	c.open.Store(false)
}

// answers pings Redis as a whole. A Cluster's PING goes to one node, which
// answers while a dead master's slots are still unreachable: the breaker
// would close and open again every second until the failover ends. So a
// Cluster answers when every master does, after its slot map is read
// again (ForEachMaster reloads it): go-redis itself reloads it only on a
// MOVED reply, which a dead master never sends, or once a minute, and until
// then sends the dead master's slots to the dead master, also after its
// replica took over.
func answers(ctx context.Context, client redis.UniversalClient) error {
	if cc, ok := client.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return m.Ping(ctx).Err()
		})
	}
	return client.Ping(ctx).Err()
}

// errorf wraps a Redis error for op; nil stays nil.
func errorf(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("cache: redis %s: %w", op, err)
}
