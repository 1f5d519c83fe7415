package cache

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestParseRedisURL(t *testing.T) {
	for _, c := range []struct {
		name, url string
		check     func(t *testing.T, c redis.UniversalClient)
	}{
		{"single node", "redis://:s3cret@db.example:6380/3", func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.Client).Options()
			if o.Addr != "db.example:6380" || o.DB != 3 || o.Password != "s3cret" || o.TLSConfig != nil {
				t.Errorf("options = %+v", o)
			}
			if o.DialTimeout != defaultDialTimeout || o.ReadTimeout != defaultIOTimeout || o.WriteTimeout != defaultIOTimeout || !o.ContextTimeoutEnabled || o.MaxRetries != 1 {
				t.Errorf("defaults not applied: dial %v read %v write %v ctx %v retries %d", o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.ContextTimeoutEnabled, o.MaxRetries)
			}
			if o.ReadBufferSize != redisBufferSize || o.WriteBufferSize != redisBufferSize || o.PipelinePoolSize != -1 {
				t.Errorf("buffers: read %d write %d, pipeline pool %d; want %d, %d and -1 (none)", o.ReadBufferSize, o.WriteBufferSize, o.PipelinePoolSize, redisBufferSize, redisBufferSize)
			}
		}},
		{"pipeline pool set by the URL", "redis://db.example?pipeline_pool_size=4", func(t *testing.T, c redis.UniversalClient) {
			if o := c.(*redis.Client).Options(); o.PipelinePoolSize != 4 || o.ReadBufferSize != redisBufferSize {
				t.Errorf("pipeline_pool_size=4: pool %d, read buffer %d", o.PipelinePoolSize, o.ReadBufferSize)
			}
		}},
		{"pipeline buffer set by the URL", "redis://db.example?pipeline_read_buffer_size=65536", func(t *testing.T, c redis.UniversalClient) {
			if o := c.(*redis.Client).Options(); o.PipelinePoolSize == -1 || o.PipelineReadBufferSize != 65536 {
				t.Errorf("pipeline_read_buffer_size=65536: pool %d, its read buffer %d", o.PipelinePoolSize, o.PipelineReadBufferSize)
			}
		}},
		{"retries set by the URL", "redis://db.example?max_retries=5", func(t *testing.T, c redis.UniversalClient) {
			if o := c.(*redis.Client).Options(); o.MaxRetries != 5 {
				t.Errorf("max_retries=5 overridden: %d", o.MaxRetries)
			}
		}},
		{"tls with user", "rediss://app:s3cret@db.example?dial_timeout=5s&read_timeout=3s", func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.Client).Options()
			if o.Addr != "db.example:6379" || o.Username != "app" || o.TLSConfig == nil || o.TLSConfig.ServerName != "db.example" {
				t.Errorf("options = %+v", o)
			}
			if o.DialTimeout != 5*time.Second || o.ReadTimeout != 3*time.Second {
				t.Errorf("URL settings overridden: dial %v read %v", o.DialTimeout, o.ReadTimeout)
			}
		}},
		{"unix socket", "unix:///run/redis.sock?db=2", func(t *testing.T, c redis.UniversalClient) {
			if o := c.(*redis.Client).Options(); o.Network != "unix" || o.Addr != "/run/redis.sock" || o.DB != 2 {
				t.Errorf("options = %+v", o)
			}
		}},
		{"cluster", "redis://:s3cret@node1:7000?addr=node2:7000&addr=node3:7000", func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.ClusterClient).Options()
			if strings.Join(o.Addrs, ",") != "node1:7000,node2:7000,node3:7000" || o.Password != "s3cret" || o.DialTimeout != defaultDialTimeout {
				t.Errorf("options = %+v", o)
			}
			if o.ReadBufferSize != redisBufferSize || o.WriteBufferSize != redisBufferSize || o.PipelinePoolSize != -1 {
				t.Errorf("buffers: read %d write %d, pipeline pool %d", o.ReadBufferSize, o.WriteBufferSize, o.PipelinePoolSize)
			}
		}},
		{"sentinel", "redis://:sentinel-s3cret@sent1:26379/1?master_name=mymaster&addr=sent2:26379&password=s3cret", func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.Client).Options() // the master's, through the sentinels
			if o.DB != 1 || o.Password != "s3cret" || o.DialTimeout != defaultDialTimeout || !o.ContextTimeoutEnabled {
				t.Errorf("options = %+v", o)
			}
			if o.ReadBufferSize != redisBufferSize || o.WriteBufferSize != redisBufferSize || o.PipelinePoolSize != -1 {
				t.Errorf("buffers: read %d write %d, pipeline pool %d", o.ReadBufferSize, o.WriteBufferSize, o.PipelinePoolSize)
			}
		}},
		{"sentinel keeps its context setting", "redis://sent1:26379?master_name=m&context_timeout_enabled=false", func(t *testing.T, c redis.UniversalClient) {
			if c.(*redis.Client).Options().ContextTimeoutEnabled {
				t.Error("context_timeout_enabled=false overridden")
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			client, err := ParseRedisURL(c.url)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			c.check(t, client)
		})
	}
}

func TestParseRedisURLErrors(t *testing.T) {
	for name, raw := range map[string]string{
		"bad port":              "redis://:s3cret@host:port/0",
		"other scheme":          "http://:s3cret@host:6379",
		"sentinel scheme":       "redis+sentinel://:s3cret@host:26379/mymaster",
		"unknown option":        "redis://:s3cret@host:6379?colour=blue",
		"bad database":          "redis://:s3cret@host:6379/x",
		"cluster with database": "redis://:s3cret@host:7000/2?addr=host2:7000",
		"sentinel bad option":   "redis://host:26379?master_name=m&password=s3cret&colour=blue",
		"sentinel bad addr":     "redis://:s3cret@host:26379?master_name=m&addr=nohostport",
		"control character":     "redis://:s3cret@host\x7f:6379",
		"slash in password":     "redis://user:s3cr/et@host:6379/0",
		"hash in password":      "redis://:s3cret#x@host/0",
	} {
		t.Run(name, func(t *testing.T) {
			client, err := ParseRedisURL(raw)
			if err == nil {
				client.Close()
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "s3cr") {
				t.Errorf("error shows the password: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "cache: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			t.Log(err)
		})
	}
}
