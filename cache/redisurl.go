package cache

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeouts ParseRedisURL uses unless the URL sets its own: a Redis outage
// should cost a request about a second before finproxy goes on degraded,
// not go-redis's 5s per attempt and five dials per connection.
const (
	defaultDialTimeout = 2 * time.Second
	defaultIOTimeout   = time.Second
)

// redisBufferSize is each connection's read and write buffer. finproxy's
// commands and replies are small (a sealed session token is well under
// 1 KiB; a longer reply is read past the buffer), and go-redis's own
// sizes, 32 KiB each way per connection and 128 KiB each way for every
// connection of a separate pipeline pool, come to several MiB of live heap
// under load: heap that counts against the heap floor's headroom, so that
// the collector ran about 1.5 times as often with the Redis store as with
// the memory store (docs/performance.md, "The Redis store").
const redisBufferSize = 4 << 10

// ParseRedisURL returns a client for a Redis URL (FINPROXY_REDIS_URL), in
// exactly the forms go-redis v9 parses:
//
//	redis://[user:password@]host[:port][/db][?option=value…]   one node
//	rediss://…                                                 the same over TLS
//	unix://[user:password@]/path/to/socket[?db=n&…]            a unix socket
//	redis[s]://[user:password@]host:port?addr=host2:port[&addr=…]
//	    Cluster: every address is a seed node
//	redis[s]://[user:password@]sentinel:port[/db]?master_name=name[&addr=sentinel2:port…][&username=u&password=p]
//	    Sentinel: the user info authenticates to the sentinels; username and
//	    password parameters to the master
//
// Options are go-redis's field names in snake case (dial_timeout,
// read_timeout, pool_size, max_retries, skip_verify…); an unknown one is an
// error. Unless the URL sets them (where go-redis lets it), dial_timeout
// is 2s, a connection is dialled once per attempt (dialer_retries=1), a
// failed command is retried once (max_retries=1: enough for a pooled
// connection that a Redis restart broke; go-redis's default is 3),
// read_timeout and write_timeout are 1s, and context deadlines are
// honoured (context_timeout_enabled), so the Conn's per-command deadline
// bounds every attempt. Every connection reads and writes through 4 KiB
// buffers (go-redis: 32 KiB), and pipelines share the one pool of
// connections (pipeline_pool_size=-1; go-redis keeps up to 10 more, with
// 128 KiB buffers) unless the URL sets pipeline_pool_size or a pipeline
// buffer size. Errors never contain a password.
func ParseRedisURL(raw string) (redis.UniversalClient, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// net/url's errors quote the URL or parts of it, which may be
		// the password: say nothing of the value.
		return nil, errors.New("cache: not a valid redis URL (percent-encode special characters in the password)")
	}
	q := u.Query()
	fail := func(err error) (redis.UniversalClient, error) {
		return nil, fmt.Errorf("cache: redis URL %s: %w", redactURL(u), err)
	}
	t := defaults{dial: !q.Has("dial_timeout"), dials: !q.Has("dialer_retries"), retries: !q.Has("max_retries"), read: !q.Has("read_timeout"), write: !q.Has("write_timeout"), ctx: !q.Has("context_timeout_enabled"),
		onePool: !q.Has("pipeline_pool_size") && !q.Has("pipeline_read_buffer_size") && !q.Has("pipeline_write_buffer_size")}
	switch {
	case strings.Contains(u.Scheme, "+"):
		return fail(fmt.Errorf("scheme %q is not supported; for Sentinel use redis://sentinel:port?master_name=name&addr=sentinel2:port", u.Scheme))
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return fail(err)
		}
		t.apply(&o.DialTimeout, &o.DialerRetries, &o.MaxRetries, &o.ReadTimeout, &o.WriteTimeout, &o.ContextTimeoutEnabled)
		t.buffers(&o.ReadBufferSize, &o.WriteBufferSize, &o.PipelinePoolSize)
		return redis.NewFailoverClient(o), nil
	case q.Has("addr"):
		if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
			return fail(errors.New("a cluster has no databases but database 0"))
		}
		o, err := redis.ParseClusterURL(raw)
		if err != nil {
			return fail(err)
		}
		t.apply(&o.DialTimeout, &o.DialerRetries, &o.MaxRetries, &o.ReadTimeout, &o.WriteTimeout, &o.ContextTimeoutEnabled)
		// Each node's client gets the options, a pipeline pool of its own
		// included (whatever ClusterOptions' comment says, go-redis
		// passes PipelinePoolSize through to every node's client).
		t.buffers(&o.ReadBufferSize, &o.WriteBufferSize, &o.PipelinePoolSize)
		return redis.NewClusterClient(o), nil
	default:
		o, err := redis.ParseURL(raw)
		if err != nil {
			return fail(err)
		}
		t.apply(&o.DialTimeout, &o.DialerRetries, &o.MaxRetries, &o.ReadTimeout, &o.WriteTimeout, &o.ContextTimeoutEnabled)
		t.buffers(&o.ReadBufferSize, &o.WriteBufferSize, &o.PipelinePoolSize)
		return redis.NewClient(o), nil
	}
}

// defaults records which of ParseRedisURL's defaults the URL left to it.
type defaults struct{ dial, dials, retries, read, write, ctx, onePool bool }

// buffers sets the connections' buffers, and turns the separate pipeline
// pool off unless the URL configures it.
func (t defaults) buffers(read, write, pipelinePool *int) {
	*read, *write = redisBufferSize, redisBufferSize
	if t.onePool {
		*pipelinePool = -1
	}
}

func (t defaults) apply(dial *time.Duration, dials, retries *int, read, write *time.Duration, ctx *bool) {
	if t.dial {
		*dial = defaultDialTimeout
	}
	if t.dials {
		*dials = 1
	}
	if t.retries {
		*retries = 1
	}
	if t.read {
		*read = defaultIOTimeout
	}
	if t.write {
		*write = defaultIOTimeout
	}
	if t.ctx {
		*ctx = true
	}
}

// redactURL is u for error messages: without the user info's password or
// a password parameter (Sentinel's master password).
func redactURL(u *url.URL) string {
	c := *u
	if q := c.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		c.RawQuery = q.Encode()
	}
	return c.Redacted()
}

// CheckRedisURL reports whether raw is a Redis URL ParseRedisURL accepts,
// without connecting; the error never contains a password.
func CheckRedisURL(raw string) error {
	client, err := ParseRedisURL(raw)
	if err != nil {
		return err
	}
	return client.Close()
}
