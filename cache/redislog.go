package cache

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// SetRedisLogger sends go-redis's own log lines (reconnects, pool trouble)
// to log instead of stderr, so that every line finproxy writes is JSON and
// passes the same redaction.
func SetRedisLogger(log zerolog.Logger) {
	redis.SetLogger(redisLogger{log.With().Str("source", "go-redis").Logger()})
}

type redisLogger struct{ log zerolog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn().Msg(fmt.Sprintf(format, v...))
}
