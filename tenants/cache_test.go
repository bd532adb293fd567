package tenants_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// afterReply runs then once, right after Redis answered the first command
// matching when and before the caller sees the reply.
type afterReply struct {
	when  func(redis.Cmder) bool
	then  func()
	armed atomic.Bool
}

func (h *afterReply) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *afterReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if h.when(cmd) && h.armed.CompareAndSwap(true, false) {
			h.then()
		}
		return err
	}
}
func (h *afterReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// noGrants is the Guard of a tenant that has no grants to end.
type noGrants struct{}

func (noGrants) LockboxOnTx(context.Context, *redis.Tx, string, identity.Principal, string) (func(redis.Pipeliner) error, func(), error) {
	return nil, nil, nil
}

func (noGrants) OffboardTx(context.Context, *redis.Tx, string, identity.Principal, string) (func(redis.Pipeliner) error, func(), error) {
	return nil, nil, nil
}

// TestSettingsCacheAgeCountsFromTheRead: a replica that misses the event of
// Customer Lockbox being switched on stops serving "off" a second after its
// read of the settings began, however late the reply reached it (here the
// switch commits right after Redis answered, and the reply takes 300 ms
// more by the cache's clock).
func TestSettingsCacheAgeCountsFromTheRead(t *testing.T) {
	rdb := testRedis(t)
	s, _ := newStoreOn(t, rdb)
	s.SetGuard(noGrants{})
	ctx := context.Background()
	if _, err := s.PutSettings(ctx, admin, "", "contoso", tenants.Settings{LockboxEnabled: false}); err != nil {
		t.Fatal(err)
	}

	// Replica B, on a client of its own, hears no events.
	c := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	rdbB := redistest.Clone(t, rdb)
	late := &afterReply{when: redistest.Command("get", keys.Settings("contoso"))}
	rdbB.AddHook(late)
	cacheB := tenants.NewSettingsCache(tenants.NewStore(rdbB, audit.NewLog(rdbB, c.Now), c.Now), time.Second, c.Now)

	readBegan := c.Now()
	late.then = func() {
		if _, err := s.PutSettings(ctx, admin, "", "contoso", tenants.Settings{LockboxEnabled: true}); err != nil {
			t.Error(err)
		}
		c.Advance(300 * time.Millisecond)
	}
	late.armed.Store(true)
	if st, err := cacheB.Lookup(ctx, "contoso"); err != nil || st.LockboxEnabled {
		t.Fatalf("B's read: %+v, %v; want the settings as Redis had them before the switch", st, err)
	}
	if late.armed.Load() {
		t.Fatal("the hook never ran: the test no longer reads the settings' key")
	}
	if on, _ := s.LockboxEnabled(ctx, "contoso"); !on {
		t.Fatal("the switch is not on in Redis")
	}
	c.Set(readBegan.Add(999 * time.Millisecond))
	if _, ok := cacheB.PeekSettings("contoso"); !ok {
		t.Fatal("B's entry is gone before its age: the test no longer exercises the cache")
	}
	c.Set(readBegan.Add(time.Second))
	if st, ok := cacheB.PeekSettings("contoso"); ok && !st.LockboxEnabled {
		t.Fatal("B still serves Customer Lockbox off a second after its read began (its age counted from the late reply)")
	}
}
