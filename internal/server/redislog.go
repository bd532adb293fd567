package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// SetRedisLogger makes go-redis log through l, at warn with
// component=redis. Left alone, go-redis writes its messages ("redis:
// connection pool: failed to dial after 5 attempts: ...", on every dial
// that fails while Redis is down) straight to stderr in a format of its
// own: with LOCKBOX_LOG_FORMAT=json, lines a log pipeline can't parse, with
// no level and no component. go-redis has one logger for the whole
// process, so this is called once, at start-up, before any client exists.
//
// Its messages name servers by address (host:port) and quote network and
// Redis errors; none holds the credentials of LOCKBOX_REDIS_URL.
func SetRedisLogger(l *slog.Logger) {
	redis.SetLogger(redisLog{l.With("component", "redis")})
}

// redisLog is go-redis's logger (its internal.Logging).
type redisLog struct{ log *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	if !r.log.Enabled(ctx, slog.LevelWarn) {
		return
	}
	r.log.Log(ctx, slog.LevelWarn, strings.TrimSuffix(fmt.Sprintf(format, v...), "\n"))
}
