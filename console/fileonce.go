package console

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// validFormID reports whether id can be a form id the new-request form
// carries (rand.Text: 26 characters of the base32 alphabet), so that no
// other text reaches a Redis key.
func validFormID(id string) bool {
	if len(id) != 26 {
		return false
	}
	for _, r := range id {
		if (r < 'A' || r > 'Z') && (r < '2' || r > '7') {
			return false
		}
	}
	return true
}

// fileOnce files the request of the new-request form formID of sess with
// file, which returns its id, once: the same form sent again — a double
// click, or a browser sending it again after the answer was lost — gets
// the id of the request the first filed, not a second request (a second
// review for the manager, a second mail to the tenant's approvers). One
// sent while the first is being filed waits for it, until ctx ends. A
// refused filing files nothing, so the form sent again (corrected) is
// filed then. A form without a valid id is filed as it is.
func (c *Console) fileOnce(ctx context.Context, sess Session, formID string, file func() (string, error)) (string, error) {
	if !validFormID(formID) {
		return file()
	}
	key := keys.ConsoleForm(sess.id, formID)
	// The form can't be sent from its session after the session's
	// absolute limit.
	ttl := c.cfg.MaxAge
	wait := 5 * time.Millisecond
	for {
		ok, err := c.cfg.Redis.SetNX(ctx, key, "", ttl).Result()
		if err != nil {
			return "", fault.Unavailable("console: record the form", err)
		}
		if ok {
			id, err := file()
			// Written, or released, even when the request's context is
			// done: a form sent again waits on it.
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			if err != nil {
				_ = c.cfg.Redis.Del(wctx, key).Err()
				return "", err
			}
			if err := c.cfg.Redis.Set(wctx, key, id, ttl).Err(); err != nil {
				// Filed all the same; only a form sent again now
				// waits until its deadline, and says so.
				c.log.WarnContext(ctx, "console: could not record the filed form", "request", id, "error", err)
			}
			return id, nil
		}
		id, err := c.cfg.Redis.Get(ctx, key).Result()
		switch {
		case errors.Is(err, redis.Nil):
			continue // the first filing was refused: this one tries
		case err != nil:
			return "", fault.Unavailable("console: read the form", err)
		case id != "":
			return id, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fault.Unavailable("console: wait for the form sent before", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}
