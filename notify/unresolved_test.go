package notify_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/notify"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestUnresolvableRecipientsDeadLetterWithoutBlocking: an entry whose
// recipients can't be worked out (the request it names is corrupt in
// Redis) is retried and dead-lettered like a failed delivery, and the
// tenant's later entries are delivered meanwhile. (One whose kind this
// version does not know is left for a newer replica: see
// TestUnknownKindLeftForNewerReplica.)
func TestUnresolvableRecipientsDeadLetterWithoutBlocking(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r1 := e.create(t, operator(0))
	e.act(t, r1.ID, grants.ActionApprove, manager) // created + pending_customer
	if err := e.rdb.Set(ctx, keys.Request("contoso", r1.ID), "{corrupt", 0).Err(); err != nil {
		t.Fatal(err)
	}
	e.create(t, operator(1))

	mb := &mailbox{}
	reg := prometheus.NewRegistry()
	const attempts = 3
	w := newWorker(t, notify.WithMailer(notify.Config{
		Redis: e.rdb, Now: e.clock.Now, Consumer: "a", Registerer: reg, MaxAttempts: attempts,
		ManagerAddresses: []string{"mary@provider.example"},
	}, mb))
	dead := func() []map[string]any {
		t.Helper()
		ds, err := e.rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var out []map[string]any
		for _, d := range ds {
			out = append(out, d.Values)
		}
		return out
	}
	for i := range attempts {
		if _, err := w.Tick(ctx); err != nil {
			t.Errorf("round %d: %v", i+1, err)
		}
		// The second request's creation is not held up behind the first's
		// entries.
		if got := len(mb.to("mary@provider.example")); got != 2 {
			t.Fatalf("after round %d the manager got %d e-mails, want 2 (both creations)", i+1, got)
		}
		ds := dead()
		switch {
		case i < attempts-1 && len(ds) != 0:
			t.Fatalf("after round %d dead = %v, want none yet", i+1, ds)
		case i == attempts-1 && len(ds) != 1:
			t.Fatalf("after round %d dead = %v, want the unresolvable entry", i+1, ds)
		}
		e.clock.Advance(time.Second)
	}
	ds := dead()
	if ds[0]["attempts"] != "3" || !strings.Contains(ds[0]["error"].(string), "corrupt") ||
		!strings.Contains(ds[0]["event"].(string), string(notify.KindPendingCustomer)) {
		t.Errorf("unresolvable entry's dead letter = %v", ds[0])
	}
	if n, err := w.Depth(ctx); err != nil || n != 0 {
		t.Errorf("depth = %d, %v", n, err)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "dev", "dead")); got != 1 {
		t.Errorf("dev dead = %v, want 1", got)
	}
	// Every attempt of the unresolvable entry.
	if got := testutil.ToFloat64(mustCounter(t, reg, "dev", "error")); got != attempts {
		t.Errorf("dev error = %v, want %d", got, attempts)
	}
}

// unavailableDirectory answers like the tenants store while Redis is
// unreachable, when down is set.
type unavailableDirectory struct {
	notify.Directory
	mu   sync.Mutex
	down bool
}

func (d *unavailableDirectory) set(down bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = down
}

func (d *unavailableDirectory) Get(ctx context.Context, t string) (tenants.Tenant, error) {
	d.mu.Lock()
	down := d.down
	d.mu.Unlock()
	if down {
		return tenants.Tenant{}, fault.Unavailable("tenants: registry", errors.New("dial tcp: connection refused"))
	}
	return d.Directory.Get(ctx, t)
}

// TestStoreOutageResolvingRecipientsIsNotAnAttempt: recipients that can't
// be read because the store is unavailable are retried for as long as it
// takes, never dead-lettered, and delivered once it is back.
func TestStoreOutageResolvingRecipientsIsNotAnAttempt(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.create(t, operator(0))
	e.act(t, r.ID, grants.ActionApprove, manager)
	dir := &unavailableDirectory{Directory: e.tenants, down: true}
	mb := &mailbox{}
	reg := prometheus.NewRegistry()
	w := newWorker(t, notify.WithMailer(notify.Config{
		Redis: e.rdb, Now: e.clock.Now, Consumer: "a", Registerer: reg, MaxAttempts: 2, Tenants: dir,
	}, mb))
	for range 5 {
		if _, err := w.Tick(ctx); !errors.Is(err, fault.ErrUnavailable) {
			t.Errorf("round with the store down: %v, want it unavailable", err)
		}
		e.clock.Advance(time.Second)
	}
	if n, _ := e.rdb.XLen(ctx, notify.DeadKey("contoso")).Result(); n != 0 {
		t.Fatalf("%d entries dead-lettered while the store was down", n)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "dev", "error")); got != 0 {
		t.Errorf("dev error = %v while the store was down, want 0", got)
	}
	dir.set(false)
	drain(t, w)
	if got := len(mb.to("adam@contoso.example")); got != 1 {
		t.Errorf("adam got %d e-mails, want 1", got)
	}
	if n, _ := e.rdb.XLen(ctx, notify.DeadKey("contoso")).Result(); n != 0 {
		t.Errorf("%d entries dead-lettered", n)
	}
}
