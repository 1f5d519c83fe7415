package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// What a real Cluster and Sentinel did to finproxy (test/redis_topologies_test.go),
// in miniature, with plain redis-servers standing in for the nodes.

// TestConnClusterProbeWaitsForEveryMaster: a Cluster master dies. go-redis
// sends its slots to it until the slot map is read again (a dead master
// sends no MOVED; the periodic reload is a minute away), and a PING goes to
// any node: the probe must neither close the breaker while a master is
// unreachable nor leave the dead master in the slot map once its replica
// took the slots over.
func TestConnClusterProbeWaitsForEveryMaster(t *testing.T) {
	live, dead := freeAddr(t), freeAddr(t)
	runRedisServer(t, live)
	var failedOver atomic.Bool
	client := redis.NewClusterClient(&redis.ClusterOptions{
		ClusterSlots: func(context.Context) ([]redis.ClusterSlot, error) {
			if failedOver.Load() {
				return []redis.ClusterSlot{{Start: 0, End: 16383, Nodes: []redis.ClusterNode{{Addr: live}}}}, nil
			}
			return []redis.ClusterSlot{
				{Start: 0, End: 8191, Nodes: []redis.ClusterNode{{Addr: live}}},
				{Start: 8192, End: 16383, Nodes: []redis.ClusterNode{{Addr: dead}}},
			}, nil
		},
		DialTimeout: 200 * time.Millisecond, MaxRetries: -1, DialerRetries: 1,
	})
	defer client.Close()
	conn := NewConn(ConnConfig{Client: client, Timeout: 200 * time.Millisecond, Probe: 20 * time.Millisecond})
	defer conn.Close()
	get := func(key string) error {
		return conn.Do(context.Background(), func(ctx context.Context) error {
			return client.Get(ctx, key).Err()
		})
	}

	// The first key that lands on the dead master opens the breaker.
	var onDead string
	for i := 0; onDead == "" && i < 64; i++ {
		if key := "k" + strconv.Itoa(i); !errors.Is(get(key), redis.Nil) {
			onDead = key
		}
	}
	if onDead == "" || !conn.Down() {
		t.Fatalf("no key reached the dead master (%q), or the breaker stayed closed (%v)", onDead, conn.Down())
	}
	time.Sleep(500 * time.Millisecond) // some 25 probes, half of a PING's landing on the live node
	if !conn.Down() {
		t.Fatal("the breaker closed while a master serving slots does not answer")
	}

	failedOver.Store(true)
	eventually(t, 5*time.Second, "the breaker closing once every master answers", func() bool { return !conn.Down() })
	if err := get(onDead); !errors.Is(err, redis.Nil) {
		t.Errorf("the dead master's key after the failover: %v, want redis.Nil from the new owner", err)
	}
}

// TestRedisResubscribesWhereItWrites: after a failover that leaves the old
// master alive (SENTINEL FAILOVER), go-redis dials the new master for
// commands but keeps the subscription on the old one, which hears nothing
// published on the new master. The store must notice (its heartbeat does
// not come back) and subscribe anew, where its writes go.
func TestRedisResubscribesWhereItWrites(t *testing.T) {
	oldMaster, newMaster := freeAddr(t), freeAddr(t)
	runRedisServer(t, oldMaster)
	runRedisServer(t, newMaster)
	var master atomic.Value
	master.Store(oldMaster)
	var d net.Dialer
	moving := redis.NewClient(&redis.Options{Dialer: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, master.Load().(string))
	}})
	defer moving.Close()
	logs := new(syncBuffer)
	a := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: moving}), Prefix: "moved:", L1TTL: time.Hour, Log: zerolog.New(logs)})

	master.Store(newMaster) // the failover: a has no command connection yet, only its subscription
	fixed := redis.NewClient(&redis.Options{Addr: newMaster})
	defer fixed.Close()
	b := newTestRedis(t, RedisConfig{Conn: NewConn(ConnConfig{Client: fixed}), Prefix: "moved:", L1TTL: time.Hour})
	ctx := context.Background()
	if err := a.Set(ctx, "s", testValue{Access: "v"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, 10*time.Second, "a subscribing on the new master", func() bool {
		return strings.Contains(logs.String(), "resubscribed")
	})
	t.Logf("subscription moved after %v", time.Since(start).Round(time.Millisecond))
	if err := b.Delete(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "a dropping what b deleted", func() bool {
		_, ok, _ := a.Get(ctx, "s")
		return !ok
	})
}

// TestRedisResubscriptionKeepsFallback: a resubscription may come while
// this replica's commands still fail (a Cluster's channel on a promoted
// replica, the breaker still open). It makes the L1 copies stale, to be
// read from Redis again, but keeps them for the fallback; only a store
// that serves no stale copies drops them.
func TestRedisResubscriptionKeepsFallback(t *testing.T) {
	ctx := context.Background()
	client := newTestClient(t)
	prefix := testPrefix(t, client)
	for _, tc := range []struct {
		noStale bool
		want    bool
	}{{false, true}, {true, false}} {
		t.Run(fmt.Sprintf("NoStaleOnError=%v", tc.noStale), func(t *testing.T) {
			conn := NewConn(ConnConfig{Client: client, Probe: time.Hour})
			defer conn.Close()
			r := newTestRedis(t, RedisConfig{Conn: conn, Prefix: prefix, L1TTL: time.Hour, NoStaleOnError: tc.noStale})
			if err := r.Set(ctx, "s", testValue{Access: "v"}, time.Minute); err != nil {
				t.Fatal(err)
			}
			conn.trip(errors.New("test: redis failing"))
			r.flush()
			v, ok, err := r.Get(ctx, "s")
			if ok != tc.want || (ok && (err != nil || v.Access != "v")) {
				t.Errorf("Get after a resubscription with the breaker open = %+v, %v, %v; want found %v", v, ok, err, tc.want)
			}
		})
	}
}
