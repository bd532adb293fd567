package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// warnedMargin keeps a warning's marker a while after the window it was
// for has ended, so a replica whose clock is a little behind can't warn
// again.
const warnedMargin = time.Hour

// queueWarnings queues KindExpiring for each of the tenant's grants whose
// window ends within Config.ExpiryWarning of now, once per grant however
// many replicas run it: the request's marker (WarnedKey) is checked under
// WATCH and set in the same MULTI that adds the entry to the tenant's
// outbox, all in the tenant's hash slot. A grant that ended (revoked,
// completed) has left the tenant's active set and gets no warning, and
// nor does a window no longer than the lead time, whose approval e-mail
// said when it ends. It returns how many warnings it queued.
func (w *Worker) queueWarnings(ctx context.Context, t string, now time.Time) (int, error) {
	lead := w.cfg.ExpiryWarning
	if lead <= 0 {
		return 0, nil
	}
	ids, err := w.cfg.Redis.ZRangeByScore(ctx, keys.TenantActive(t), &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(now.UnixMilli(), 10),
		Max: strconv.FormatInt(now.Add(lead).UnixMilli(), 10),
	}).Result()
	if err != nil {
		return 0, err
	}
	n := 0
	// A request that can't be read is reported and passed over, as the
	// sweep passes it over: it comes first in expiry order at every
	// visit, and would hold up the warnings of the tenant's later grants
	// until its own window had ended. Redis failing ends the visit.
	var bad []error
	for _, id := range ids {
		queued, err := w.warn(ctx, t, id, now)
		if errors.Is(err, errUnreadableRequest) {
			bad = append(bad, fmt.Errorf("expiry warning of %s: %w", id, err))
			continue
		}
		if err != nil {
			return n, fmt.Errorf("expiry warning of %s: %w", id, err)
		}
		if queued {
			n++
		}
	}
	return n, errors.Join(bad...)
}

// errUnreadableRequest is a request that does not decode.
var errUnreadableRequest = errors.New("request is corrupt")

// warn queues the expiry warning of request id if it is due and was not
// queued yet, and reports whether it did.
func (w *Worker) warn(ctx context.Context, t, id string, now time.Time) (bool, error) {
	marker, reqKey := WarnedKey(t, id), keys.Request(t, id)
	queued := false
	err := w.cfg.Redis.Watch(ctx, func(tx *redis.Tx) error {
		if n, err := tx.Exists(ctx, marker).Result(); err != nil || n > 0 {
			return err
		}
		b, err := tx.Get(ctx, reqKey).Bytes()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		var r grants.Request
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%w: %w", errUnreadableRequest, err)
		}
		if !warningDue(r, now, w.cfg.ExpiryWarning) {
			return nil
		}
		ev := Event{Kind: KindExpiring, Request: r, Event: grants.Event{
			Actor: grants.SystemActor, ActorKind: grants.KindSystem, From: r.State, To: r.State, At: now.UTC(),
		}}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, marker, now.UTC().Format(time.RFC3339), r.ExpiresAt.Sub(now)+warnedMargin)
			return enqueue(ctx, p, ev)
		})
		queued = err == nil
		return err
	}, marker, reqKey)
	if errors.Is(err, redis.TxFailedErr) {
		// Another replica queued it, or the request changed meanwhile: the
		// next round looks again.
		return false, nil
	}
	if queued {
		w.cfg.Logger.InfoContext(ctx, "expiry warning queued", "tenant", t, "request_id", id)
	}
	return queued, err
}

// warningDue reports whether r's engineer should be warned at now that the
// access window ends within lead. A window no longer than lead gets no
// warning: it would arrive with, or right after, the approval, which
// already says when access ends.
func warningDue(r grants.Request, now time.Time, lead time.Duration) bool {
	if r.State != grants.StateApproved || r.ExpiresAt == nil || r.Duration.Std() <= lead {
		return false
	}
	left := r.ExpiresAt.Sub(now)
	return left > 0 && left <= lead
}
