package grants_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// afterReply runs then once, right after Redis answered the first command
// matching when and before the caller sees the reply: what happens in then
// happens while the reply is on its way.
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

// TestGrantCacheAgeCountsFromTheRead: a replica that misses the revocation's
// event stops serving the grant a second after its read of the grant began,
// however late Redis's reply reached it. Here the grant is revoked the
// instant after Redis answered, and the reply takes 300 ms more (network, a
// GC pause) by the cache's clock: counted from the reply, the replica
// would serve the revoked grant for 1.3 s.
func TestGrantCacheAgeCountsFromTheRead(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.tenants.PutSettings(ctx, globalAdmin.Principal, "", "contoso", tenants.Settings{LockboxEnabled: false}); err != nil {
		t.Fatal(err)
	}
	r := e.create(t, 4*time.Hour)
	e.act(t, r.ID, grants.ActionApprove, manager)

	// Replica B, on a client of its own, hears no events (no Listener).
	rdbB := redistest.Clone(t, e.rdb)
	// The lookup's last read is of the grant's request.
	late := &afterReply{when: redistest.Command("get", keys.Request("contoso", r.ID))}
	rdbB.AddHook(late)
	logB := audit.NewLog(rdbB, e.clock.Now)
	sB, err := grants.NewStore(grants.Config{Redis: rdbB, Audit: logB, Tenants: tenants.NewStore(rdbB, logB, e.clock.Now), Catalog: cat, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	cacheB := grants.NewGrantCache(sB, time.Second, e.clock.Now)

	readBegan := e.clock.Now()
	late.then = func() {
		e.act(t, r.ID, grants.ActionRevoke, globalAdmin)
		e.clock.Advance(300 * time.Millisecond)
	}
	late.armed.Store(true)
	if g, err := cacheB.Grant(ctx, "contoso", "alice", "exchange"); err != nil || g.RequestID != r.ID {
		t.Fatalf("B's read: %+v, %v; want the grant as Redis had it before the revocation", g, err)
	}
	if late.armed.Load() {
		t.Fatal("the hook never ran: the test no longer reads the grant's request")
	}
	if _, err := e.store.Grant(ctx, "contoso", "alice", "exchange"); err == nil {
		t.Fatal("the grant is still in Redis after the revocation")
	}
	e.clock.Set(readBegan.Add(999 * time.Millisecond))
	if _, _, at, ok := cacheB.PeekGrant("contoso", "alice", "exchange"); !ok {
		t.Fatal("B's entry is gone before its age: the test no longer exercises the cache")
	} else if !at.Equal(readBegan) {
		// What the proxy bounds a call by: the grant is what Redis held
		// when the read began, not when the reply came.
		t.Errorf("B's entry says its read began at %s, want %s", at, readBegan)
	}
	e.clock.Set(readBegan.Add(time.Second))
	if g, err, _, ok := cacheB.PeekGrant("contoso", "alice", "exchange"); ok && err == nil {
		t.Fatalf("B still serves the revoked grant %s a second after its read began (its age counted from the late reply)", g.RequestID)
	}
}
