package notify

import (
	"context"
	"strconv"
	"strings"

	"github.com/lockbox-oss/lockbox/internal/streamgroup"
)

// backingOff reports, for each outbox entry a visit took over from another
// replica, whether that replica left it pending on purpose: it had written
// the entry's retry schedule for a time after it last read the entry (a
// failed attempt backing off, a receiver's Retry-After, a kind this
// version leaves for a newer replica). From about the sixth attempt the
// backoff outlasts ClaimAfter, so with two replicas or more such entries
// change hands routinely, and the replica that had them is alive. An
// entry read and never scheduled, or read again once its retry was due,
// was being sent when its replica died or stalled: that is the takeover
// worth telling, and every doubt (a schedule that can't be read) counts as
// one.
//
// Redis dates the last read by the entry's idle time; the schedule is in
// this process's clock, which the replicas and Redis share closely enough
// for a retry's backoff (5s at least) to tell the two apart.
func (w *Worker) backingOff(ctx context.Context, stream string, taken []streamgroup.Taken) []bool {
	t, ok := outboxTenant(stream)
	if !ok {
		return nil
	}
	ids := make([]string, len(taken))
	for i, tk := range taken {
		ids[i] = tk.ID
	}
	states, err := w.cfg.Redis.HMGet(ctx, retryKey(t), ids...).Result()
	if err != nil {
		return nil
	}
	now := w.cfg.Now()
	expected := make([]bool, len(taken))
	for i, st := range states {
		s, ok := st.(string)
		if !ok {
			continue // never scheduled
		}
		_, ms, _ := strings.Cut(s, ":")
		at, err := strconv.ParseInt(ms, 10, 64)
		expected[i] = err == nil && at > now.Add(-taken[i].Idle).UnixMilli()
	}
	return expected
}

// outboxTenant returns the tenant whose outbox stream is.
func outboxTenant(stream string) (string, bool) {
	i, j := strings.IndexByte(stream, '{'), strings.IndexByte(stream, '}')
	if i < 0 || j < i {
		return "", false
	}
	t := stream[i+1 : j]
	return t, OutboxKey(t) == stream
}
