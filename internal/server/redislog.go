package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

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
	redis.SetLogger(newRedisLog(l, time.Now))
}

// redisLogEvery is how often at most a kind of go-redis message is logged.
// While Redis is down every connection the pool tries to open fails with
// its own line, up to the pool's size (ten a CPU) each time Redis goes
// away: a 10 s outage on a 32-CPU machine wrote 354 lines, about 90 a
// second.
const redisLogEvery = 10 * time.Second

// redisLog is go-redis's logger (its internal.Logging). A kind of message
// is its format: the first is logged, others of its kind within
// redisLogEvery are counted, and the next one logged says how many were
// not (repeated). A count is told only with the next message of its kind:
// of an outage's last burst, the log shows the first line alone.
type redisLog struct {
	log *slog.Logger
	now func() time.Time

	mu    sync.Mutex
	kinds map[string]*redisLogKind // by format: go-redis's are constants, a few dozen
}

type redisLogKind struct {
	logged time.Time // when one was last logged
	held   int       // how many were not, since
}

func newRedisLog(l *slog.Logger, now func() time.Time) *redisLog {
	return &redisLog{log: l.With("component", "redis"), now: now, kinds: map[string]*redisLogKind{}}
}

func (r *redisLog) Printf(ctx context.Context, format string, v ...any) {
	if !r.log.Enabled(ctx, slog.LevelWarn) {
		return
	}
	now := r.now()
	r.mu.Lock()
	k := r.kinds[format]
	if k == nil {
		k = &redisLogKind{}
		r.kinds[format] = k
	} else if now.Sub(k.logged) < redisLogEvery {
		k.held++
		r.mu.Unlock()
		return
	}
	held := k.held
	k.logged, k.held = now, 0
	r.mu.Unlock()
	msg := strings.TrimSuffix(fmt.Sprintf(format, v...), "\n")
	if held > 0 {
		r.log.LogAttrs(ctx, slog.LevelWarn, msg, slog.Int("repeated", held))
		return
	}
	r.log.LogAttrs(ctx, slog.LevelWarn, msg)
}
