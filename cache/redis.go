package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gocache "github.com/patrickmn/go-cache"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// DefaultRedisPrefix starts every key a Redis store or RedisLocker writes
// when no prefix is configured.
const DefaultRedisPrefix = "finproxy:"

// DefaultL1TTL is how long a Redis store serves a value from its in-process
// L1 without asking Redis, when RedisConfig.L1TTL is zero.
const DefaultL1TTL = 2 * time.Second

// DefaultL1MaxAge is how long a Redis store serves a value from its L1
// without asking Redis while its invalidation channel proves itself, when
// RedisConfig.L1MaxAge is zero.
const DefaultL1MaxAge = 30 * time.Second

// RedisConfig configures a Redis store.
type RedisConfig struct {
	// Conn talks to Redis (a single node, Sentinel or Cluster; see
	// ParseRedisURL) with a deadline per command and a breaker. The store
	// does not close it. Required.
	Conn *Conn
	// Prefix starts every key and the invalidation channel, so that
	// several deployments can share one Redis. Optional. Default value
	// DefaultRedisPrefix.
	Prefix string
	// Sealer encrypts and authenticates values at rest. Required.
	Sealer *Sealer
	// L1TTL is how long a value read or written by this replica is served
	// from process memory without asking Redis. It is the staleness bound
	// when invalidations are lost (see Redis). Optional. Default value
	// DefaultL1TTL; negative turns the L1 off.
	L1TTL time.Duration
	// L1MaxAge is how long a value is served from the L1 without asking
	// Redis while the invalidation channel proves that it hears every
	// invalidation: a heartbeat this replica published after it read the
	// value, and less than L1TTL ago, came back on it. It bounds how long
	// a change made in Redis without an invalidation (an eviction, a
	// manual DEL) goes unseen. Ignored for a Cluster. Optional. Default
	// value DefaultL1MaxAge; negative, or not above L1TTL, leaves L1TTL
	// the only bound.
	L1MaxAge time.Duration
	// NoStaleOnError stops the store from serving an L1 copy older than
	// L1TTL while Redis cannot answer. Optional. Default false: during a
	// Redis outage a value this replica holds is served until its own
	// time to live ends.
	NoStaleOnError bool
	// Log receives unreadable entries, once per kind, and resubscriptions
	// of the invalidation channel; never values or keys (outages are the
	// Conn's to log). Optional. Default value: no logging.
	Log zerolog.Logger
}

// Redis is a Store shared by all replicas through Redis, with a short-lived
// in-process L1 (go-cache) in front, so that the hot path costs no network
// round trip for a value the replica already holds.
//
// At rest, a value is JSON, sealed with the Sealer under its key (AES-GCM,
// key version in the value); the key is the prefix and the caller's key
// (a keyed hash of the session; the store does not hash), and every key
// has a time to live, so Redis never grows without bound. An entry that
// does not open or decode is a miss, logged once per kind.
//
// Staleness: Set and Delete publish the key on the channel prefix +
// "invalidate" in the same script as the write, so a write is never
// without its invalidation, and every replica drops its L1 copy when it
// hears it. Another replica's logout is therefore honoured at once while
// pub/sub works, and within L1TTL at most when it does not (a lost
// message, a broken subscription); after the subscription reconnects the
// L1 is flushed: no copy is served before Redis is asked again (the
// copies stay for the fallback that follows). A copy is served without
// asking Redis for L1TTL after it was read or written, and for up to
// L1MaxAge while the channel proves itself (not in a Cluster, see
// NewRedis): every beatEvery (or L1TTL/2, when shorter) the store
// publishes a heartbeat on a channel of its own,
// and Redis delivers a subscription's messages in the order it processed
// the publishes, so a heartbeat that came back has been preceded by every
// invalidation published before it. A copy is extended only by a
// heartbeat sent after it was read, on the subscription in place at the
// read, and only for L1TTL after that heartbeat was sent: a channel that
// falls silent leaves L1TTL the bound. With NoStaleOnError unset, a replica
// that cannot reach Redis at all keeps serving its own L1 copies past
// L1TTL (availability over freshness; such a token is still refused by
// finAPI once revoked, which makes finproxy drop it).
//
// Redis trouble: every command goes through the Conn (its own deadline, a
// breaker that stops asking a failing Redis). Set and Delete update the L1
// and return the error; Get returns an error only when the L1 cannot answer
// either. go-redis reconnects by itself. Ping reports the outage.
type Redis[V any] struct {
	conn    *Conn
	client  redis.UniversalClient
	sealer  *Sealer
	prefix  string
	channel string
	l1TTL   time.Duration // <= 0: no L1
	maxAge  time.Duration // <= l1TTL: no copy served past l1TTL
	stale   bool          // serve old L1 copies while Redis fails
	log     zerolog.Logger
	id      string // names this replica's invalidations
	l1      *gocache.Cache
	seed    maphash.Seed
	stripes [64]stripe
	warned  sync.Map // kind → struct{}: unreadable entries logged once
	beat    string   // this replica's own channel, for its heartbeat
	epoch   time.Time
	// heard is when (since epoch) the newest heartbeat that came back was
	// sent, 0 for none; subscribed when the subscription in place was
	// confirmed, 0 before the first.
	heard      atomic.Int64
	subscribed atomic.Int64
	subMu      sync.Mutex // guards pubsub and closed
	pubsub     *redis.PubSub
	closed     bool
	done       chan struct{} // closed when subscribe returns
	ready      chan struct{} // closed when first subscribed
	closeOne   sync.Once
}

// A stripe orders L1 writes for the keys that hash to it: a Redis read
// that raced with an invalidation or a local write must not refill the L1
// with what it read.
type stripe struct {
	mu  sync.Mutex
	gen uint64
}

// l1Entry is a value in the L1: served without asking Redis until fresh,
// and until `until` while heartbeats come back (see Redis), and, while
// Redis fails, until go-cache expires it with the value's own time to
// live. The times are offsets from the store's epoch (monotonic); a zero
// fresh and until is a stale copy.
type l1Entry[V any] struct {
	v     V
	read  time.Duration // when the value was read from Redis or written
	fresh time.Duration
	until time.Duration
}

var _ Store[int] = (*Redis[int])(nil)

// NewRedis returns a Redis store and, when it has an L1, starts its
// invalidation subscriber; Close stops it. It panics when Conn or Sealer
// is nil.
func NewRedis[V any](cfg RedisConfig) *Redis[V] {
	if cfg.Conn == nil || cfg.Sealer == nil {
		panic("cache: NewRedis needs a Conn and a Sealer")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultRedisPrefix
	}
	if cfg.L1TTL == 0 {
		cfg.L1TTL = DefaultL1TTL
	}
	if cfg.L1MaxAge == 0 {
		cfg.L1MaxAge = DefaultL1MaxAge
	}
	// In a Cluster an invalidation reaches the subscription's node over
	// the cluster bus from the key's node, and a heartbeat over another
	// link: its coming back proves nothing of the other, and a bus link
	// that resets drops what it held. L1TTL stays the only bound there.
	_, cluster := cfg.Conn.Client().(*redis.ClusterClient)
	if cluster && cfg.L1TTL > 0 && cfg.L1MaxAge > cfg.L1TTL {
		cfg.Log.Info().Msg("cache: redis cluster: L1 copies are read from Redis again after the L1 TTL; the L1 max age does not apply")
		cfg.L1MaxAge = -1
	}
	var id [8]byte
	rand.Read(id[:])
	r := &Redis[V]{
		conn:    cfg.Conn,
		client:  cfg.Conn.Client(),
		sealer:  cfg.Sealer,
		prefix:  cfg.Prefix,
		channel: cfg.Prefix + "invalidate",
		l1TTL:   cfg.L1TTL,
		maxAge:  cfg.L1MaxAge,
		stale:   !cfg.NoStaleOnError,
		log:     cfg.Log,
		id:      hex.EncodeToString(id[:]),
		seed:    maphash.MakeSeed(),
		done:    make(chan struct{}),
		ready:   make(chan struct{}),
		epoch:   time.Now(),
	}
	r.beat = r.channel + ":" + r.id
	if r.l1TTL > 0 {
		r.l1 = gocache.New(gocache.NoExpiration, max(r.l1TTL, time.Minute))
	}
	if r.l1 == nil {
		// Without an L1 nothing is invalidated: no subscription, which
		// would take a connection and every replica's every message (the
		// Backend's index store is such a store).
		close(r.ready)
		close(r.done)
		return r
	}
	r.pubsub = r.client.Subscribe(context.Background()) // dials later, in subscribe
	go r.subscribe()
	go r.watch()
	return r
}

// Get implements Store. The L1 is consulted first; a value it holds fresh
// (see Redis) is returned without asking Redis, and a value it holds past
// that is returned when Redis cannot answer (unless NoStaleOnError).
func (r *Redis[V]) Get(ctx context.Context, key string) (V, bool, error) {
	return r.get(ctx, key, false)
}

// Reload is Get without the L1's fresh copy: it asks Redis, so that a
// caller holding the cross-replica lock sees what another replica stored.
// While Redis cannot answer it serves the L1 copy as Get does.
func (r *Redis[V]) Reload(ctx context.Context, key string) (V, bool, error) {
	return r.get(ctx, key, true)
}

func (r *Redis[V]) get(ctx context.Context, key string, reload bool) (V, bool, error) {
	var zero V
	var held *l1Entry[V]
	if r.l1 != nil {
		if x, ok := r.l1.Get(key); ok {
			held = x.(*l1Entry[V])
			if !reload && r.fresh(held) {
				return held.v, true, nil
			}
		}
	}
	s := r.stripe(key)
	gen := s.load()
	read := r.now()

	rkey := r.prefix + key
	var get *redis.StringCmd
	var pttl *redis.DurationCmd
	err := r.conn.Do(ctx, func(ctx context.Context) error {
		_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			get = p.Get(ctx, rkey)
			pttl = p.PTTL(ctx, rkey)
			return nil
		})
		return err
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		if held != nil && r.stale {
			return held.v, true, nil
		}
		return zero, false, errorf("get", err)
	}
	sealed, err := get.Bytes()
	if err != nil { // redis.Nil: missing or expired
		r.forget(s, key)
		return zero, false, nil
	}
	v, err := r.decode(rkey, sealed)
	if err != nil {
		r.forget(s, key)
		return zero, false, nil
	}
	if ttl := pttl.Val(); ttl > 0 {
		r.fill(s, gen, key, v, ttl, read)
	}
	return v, true, nil
}

// Set implements Store. The value lands in the L1 even when Redis fails,
// so that this replica keeps the token it just obtained.
func (r *Redis[V]) Set(ctx context.Context, key string, v V, ttl time.Duration) error {
	if ttl <= 0 {
		return r.Delete(ctx, key)
	}
	plain, err := json.Marshal(v)
	if err != nil {
		return errorf("encode", err)
	}
	rkey := r.prefix + key
	sealed := r.sealer.Seal(rkey, plain)
	s := r.stripe(key)
	s.mu.Lock()
	s.gen++
	gen, written := s.gen, r.now()
	r.keep(key, v, ttl, written, false) // not past L1TTL before Redis has it
	s.mu.Unlock()

	err = r.conn.Do(ctx, func(ctx context.Context) error {
		return setScript.Run(ctx, r.client, []string{rkey}, r.channel, r.id+" "+key, sealed, max(ttl.Milliseconds(), 1)).Err()
	})
	// A read of this replica's may have got the old value from Redis
	// before the script ran and filled the L1 with it since: this write
	// is newer, unless an invalidation or a later write came in (gen
	// moved). The increment fails the fills of reads still under way.
	s.mu.Lock()
	if s.gen == gen {
		r.keep(key, v, ttl, written, err == nil)
	}
	s.gen++
	s.mu.Unlock()
	return errorf("set", err)
}

// Delete implements Store.
func (r *Redis[V]) Delete(ctx context.Context, key string) error {
	r.forget(r.stripe(key), key)
	err := r.conn.Do(ctx, func(ctx context.Context) error {
		return deleteScript.Run(ctx, r.client, []string{r.prefix + key}, r.channel, r.id+" "+key).Err()
	})
	// Again: a read of this replica's may have got the value from Redis
	// before the script ran, and this replica hears no invalidation of
	// its own.
	r.forget(r.stripe(key), key)
	return errorf("delete", err)
}

// setScript and deleteScript write KEYS[1] and publish its invalidation
// (ARGV[2] on channel ARGV[1]) at once: Redis runs a script whole, so a
// write is never without its invalidation, even when the answer is lost
// (a timeout: both ran or neither). The publish comes first because a
// script that fails halfway keeps what it did: an invalidation without
// its write (Redis out of memory) costs a reread, a write without it a
// stale copy for L1MaxAge. A script's keys must be in one slot of a
// Cluster; PUBLISH takes none and reaches every node.
var (
	setScript = redis.NewScript(`
redis.call("PUBLISH", ARGV[1], ARGV[2])
return redis.call("SET", KEYS[1], ARGV[3], "PX", ARGV[4])`)
	deleteScript = redis.NewScript(`
redis.call("PUBLISH", ARGV[1], ARGV[2])
return redis.call("DEL", KEYS[1])`)
)

// Ping reports whether Redis answers, for readiness checks.
func (r *Redis[V]) Ping(ctx context.Context) error {
	return errorf("ping", r.conn.Ping(ctx))
}

// Len returns the number of L1 entries, expired ones not yet swept
// included. Unless NoStaleOnError, entries stay (not fresh) for their
// whole time to live, so Len counts the sessions this replica served
// recently, as a Memory store's Len would.
func (r *Redis[V]) Len() int {
	if r.l1 == nil {
		return 0
	}
	return r.l1.ItemCount()
}

// Close stops the invalidation subscriber; it does not close the Client.
// The store still works afterwards, with L1TTL as its only staleness
// bound.
func (r *Redis[V]) Close() error {
	var err error
	r.closeOne.Do(func() {
		r.subMu.Lock()
		r.closed = true
		ps := r.pubsub
		r.subMu.Unlock()
		if ps != nil {
			err = ps.Close()
		}
		<-r.done
		r.heard.Store(0) // no more heartbeats: L1TTL is the bound
	})
	return errorf("close", err)
}

// subscribe drops the L1 copies that other replicas invalidate until the
// store is closed, on one subscription after another (see resubscribe). A
// resubscription (after a reconnect, or on a new subscription) may have
// missed messages, so it flushes the L1.
func (r *Redis[V]) subscribe() {
	defer close(r.done)
	subscribed := false
	for {
		r.subMu.Lock()
		ps, closed := r.pubsub, r.closed
		r.subMu.Unlock()
		if closed {
			return
		}
		// A failed first attempt is retried by go-redis, which keeps the
		// channels and resubscribes when it reconnects.
		_ = ps.Subscribe(context.Background(), r.channel, r.beat)
		for m := range ps.ChannelWithSubscriptions(redis.WithChannelHealthCheckInterval(time.Second)) {
			switch m := m.(type) {
			case *redis.Subscription:
				if m.Kind != "subscribe" || m.Channel != r.channel {
					continue
				}
				r.subscribed.Store(int64(r.now()))
				if subscribed && r.l1 != nil {
					r.flush()
					r.log.Info().Msg("cache: redis invalidation channel resubscribed; L1 flushed")
				}
				if !subscribed {
					close(r.ready)
				}
				subscribed = true
			case *redis.Message:
				if m.Channel == r.beat {
					if sent, err := strconv.ParseInt(m.Payload, 10, 64); err == nil && sent > r.heard.Load() {
						r.heard.Store(sent)
					}
					continue
				}
				from, key, ok := strings.Cut(m.Payload, " ")
				if ok && from != r.id {
					r.forget(r.stripe(key), key)
				}
			}
		}
	}
}

// beatEvery is how often a store checks that its subscription hears what
// is published where it writes, and how long a heartbeat may take to come
// back before the store subscribes anew.
const beatEvery = time.Second

// watch publishes a heartbeat on the store's own channel every beatEvery,
// or every L1TTL/2 when that is shorter and copies are served past L1TTL,
// so that they stay servable (see Redis); the payload is the time it was
// sent. It starts a new subscription when a heartbeat has not come back
// within beatEvery.
// A subscription can outlive its node's role: go-redis moves a
// Sentinel client's commands to a new master but leaves its subscriptions
// on the old one, which, alive and demoted (SENTINEL FAILOVER, a healed
// partition), hears nothing published on the new master until the
// sentinels make it a replica, if ever. Only a new subscription dials the
// new master. The heartbeat goes past the Conn: it is no request's, and
// neither waits for nor opens the breaker; it is skipped while the breaker
// is open.
func (r *Redis[V]) watch() {
	every := beatEvery
	if half := r.l1TTL / 2; half < every && r.maxAge > r.l1TTL {
		every = max(half, 10*time.Millisecond)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	select {
	case <-r.done:
		return
	case <-r.ready:
	}
	var awaited time.Duration // the oldest heartbeat not back yet, 0 for none
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
		}
		if r.conn.Down() {
			awaited = 0
			continue
		}
		now := r.now()
		if awaited != 0 && time.Duration(r.heard.Load()) >= awaited {
			awaited = 0
		}
		if awaited != 0 && now-awaited >= beatEvery-every/2 { // at the tick a beatEvery after it
			r.log.Info().Msg("cache: redis invalidation channel silent (its node no longer serves this replica's writes?); subscribing anew")
			r.resubscribe()
			awaited = 0
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.conn.timeout)
		err := r.client.Publish(ctx, r.beat, int64(now)).Err()
		cancel()
		switch {
		case err != nil:
			awaited = 0 // the command path fails, not (necessarily) the subscription
		case awaited == 0:
			awaited = now
		}
	}
}

// resubscribe replaces the subscription with a new one; subscribe moves
// over to it when the old one's channel closes.
func (r *Redis[V]) resubscribe() {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	if r.closed {
		return
	}
	old := r.pubsub
	r.pubsub = r.client.Subscribe(context.Background())
	old.Close()
}

// fill stores v, which Redis held with ttl left at read, in the L1, unless
// the key was invalidated or written since gen was loaded.
func (r *Redis[V]) fill(s *stripe, gen uint64, key string, v V, ttl, read time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == gen {
		r.keep(key, v, ttl, read, true)
	}
}

// keep puts v, valid for ttl from read, in the L1: fresh for L1TTL at
// most, servable while heartbeats come back for L1MaxAge at most when
// Redis is known to hold it (inRedis) under the subscription in place,
// and kept for all of ttl when it may be served while Redis fails. The
// caller holds the key's stripe.
func (r *Redis[V]) keep(key string, v V, ttl, read time.Duration, inRedis bool) {
	if r.l1 == nil {
		return
	}
	e := &l1Entry[V]{v: v, read: read, fresh: read + min(r.l1TTL, ttl)}
	end := e.fresh
	if sub := time.Duration(r.subscribed.Load()); inRedis && r.maxAge > r.l1TTL && sub != 0 && sub <= read {
		e.until = read + min(r.maxAge, ttl)
		end = e.until
	}
	if r.stale {
		end = read + ttl
	}
	if life := end - r.now(); life > 0 {
		r.l1.Set(key, e, life)
	} else {
		r.l1.Delete(key)
	}
}

// fresh reports whether e may be served without asking Redis.
func (r *Redis[V]) fresh(e *l1Entry[V]) bool {
	now := r.now()
	if now < e.fresh {
		return true
	}
	if now >= e.until {
		return false
	}
	heard := time.Duration(r.heard.Load()) // 0: none
	return heard != 0 && heard >= e.read && now-heard <= r.l1TTL
}

// now is the time since the store's epoch, on the monotonic clock.
func (r *Redis[V]) now() time.Duration { return time.Since(r.epoch) }

// forget drops key from the L1 and keeps racing reads from refilling it.
func (r *Redis[V]) forget(s *stripe, key string) {
	s.mu.Lock()
	s.gen++
	if r.l1 != nil {
		r.l1.Delete(key)
	}
	s.mu.Unlock()
}

// flush makes every L1 copy stale, after a resubscription that may have
// missed invalidations: each is read from Redis before it is served again.
// Unless NoStaleOnError, the copies stay for the fallback: a subscription
// may come back while this replica's commands still fail (a Cluster's
// channel moved to a promoted replica before the breaker closed), and
// dropping them then would lose every session's token at once, a second
// user or process per session.
func (r *Redis[V]) flush() {
	for i := range r.stripes {
		r.stripes[i].mu.Lock()
	}
	for i := range r.stripes {
		r.stripes[i].gen++
	}
	if r.stale {
		for key, it := range r.l1.Items() {
			if life := time.Until(time.Unix(0, it.Expiration)); life > 0 { // keep sets an expiry always
				r.l1.Set(key, &l1Entry[V]{v: it.Object.(*l1Entry[V]).v}, life) // zero fresh: stale
			}
		}
	} else {
		r.l1.Flush()
	}
	for i := range r.stripes {
		r.stripes[i].mu.Unlock()
	}
}

func (r *Redis[V]) stripe(key string) *stripe {
	return &r.stripes[maphash.String(r.seed, key)%uint64(len(r.stripes))]
}

func (s *stripe) load() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// decode opens and decodes a stored value; failures are logged once per
// kind, without the value or key.
func (r *Redis[V]) decode(rkey string, sealed []byte) (V, error) {
	var v V
	plain, err := r.sealer.Open(rkey, sealed)
	if err == nil {
		if err = json.Unmarshal(plain, &v); err != nil {
			err = errors.New("cache: stored value does not decode")
		}
	}
	if err != nil {
		if _, seen := r.warned.LoadOrStore(err.Error(), struct{}{}); !seen {
			r.log.Warn().Err(err).Msg("cache: unreadable redis entry treated as a miss (corrupted, or sealed with a key this replica lacks); logged once per kind")
		}
	}
	return v, err
}
