package notify_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// naming lists the keys that name id, in their name or in what they
// hold, with id in their names written ID.
func naming(t *testing.T, rdb redis.UniversalClient, id string) []string {
	t.Helper()
	ctx := context.Background()
	ks, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range ks {
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var held any
		switch typ {
		case "string":
			held, err = rdb.Get(ctx, k).Result()
		case "hash":
			held, err = rdb.HGetAll(ctx, k).Result()
		case "set":
			held, err = rdb.SMembers(ctx, k).Result()
		case "zset":
			held, err = rdb.ZRange(ctx, k, 0, -1).Result()
		case "list":
			held, err = rdb.LRange(ctx, k, 0, -1).Result()
		case "stream":
			held, err = rdb.XRange(ctx, k, "-", "+").Result()
		default:
			t.Fatalf("key %s of type %s", k, typ)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(k, id) || strings.Contains(fmt.Sprint(held), id) {
			out = append(out, strings.ReplaceAll(k, id, "ID"))
		}
	}
	slices.Sort(out)
	return out
}

// TestRequestRetentionDeletesItsDeadLetters: a notification given up on
// keeps, in the tenant's dead-letter stream, a copy of its request with
// its history (who decided, from where, their comments). When request
// retention deletes the request, its dead letters go with it, each
// logged; a live request's stay. Afterwards only the tenant's audit log
// still names the deleted request: audit retention, never shorter than
// request retention, removes those records.
func TestRequestRetentionDeletesItsDeadLetters(t *testing.T) {
	e := newRedriveEnv(t, "") // the webhook receiver answers 410: a dead letter at once
	ctx := context.Background()
	old := e.create(t, operator(0))
	e.act(t, old.ID, grants.ActionCancel, operator(0))
	live := e.create(t, operator(1))
	drain(t, e.w)
	d := notify.NewDeadLetters(e.rdb, nil, e.clock.Now, slog.New(slog.NewJSONHandler(e.logs, nil)))
	requests := func() []string {
		var ids []string
		for _, l := range mustList(t, d, "contoso") {
			if !slices.Contains(ids, l.RequestID) {
				ids = append(ids, l.RequestID)
			}
		}
		slices.Sort(ids)
		return ids
	}
	both := []string{old.ID, live.ID}
	slices.Sort(both)
	if got := requests(); !slices.Equal(got, both) {
		t.Fatalf("dead letters name requests %q, want both %q", got, both)
	}

	e.clock.Advance(2 * 24 * time.Hour)
	s, err := grants.NewStore(grants.Config{Redis: e.rdb, Audit: e.log, Tenants: e.tenants, Catalog: cat,
		Now: e.clock.Now, Outbox: notify.NewOutbox(), DeadLetters: d})
	if err != nil {
		t.Fatal(err)
	}
	if n, _, err := s.DeleteEnded(ctx, 24*time.Hour); err != nil || n != 1 {
		t.Fatalf("DeleteEnded = %d, %v; want 1 (the canceled request)", n, err)
	}
	if got := requests(); !slices.Equal(got, []string{live.ID}) {
		t.Errorf("after retention dead letters name requests %q, want the live one's %q only", got, live.ID)
	}
	if left := naming(t, e.rdb, old.ID); !slices.Equal(left, []string{"lockbox:{contoso}:audit"}) {
		t.Errorf("keys still naming the deleted request: %q, want its audit records' only", left)
	}
	if lines := e.logs.lines("dead letter deleted with its request"); len(lines) == 0 || !strings.Contains(lines[0], old.ID) {
		t.Errorf("no log line of the dead letters deleted with request %s: %q", old.ID, lines)
	}
}

// deadReads is a hook that counts the reads of a dead-letter stream.
type deadReads struct{ n atomic.Int64 }

func (h *deadReads) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *deadReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if redistest.Command("xrange", notify.DeadKey("contoso"))(cmd) {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *deadReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestRequestRetentionReadsDeadLettersOnlyAfterDeleting: a tenant's
// dead letters, up to 10,000, are read only when request retention
// deleted one of its requests since they were last gone through, not at
// every run: a backlog's runs come a minute apart. A run stopped between
// deleting a request and going through the letters leaves that for the
// next run, though it deletes nothing.
func TestRequestRetentionReadsDeadLettersOnlyAfterDeleting(t *testing.T) {
	e := newRedriveEnv(t, "") // the webhook receiver answers 410: a dead letter at once
	ctx := context.Background()
	old := e.create(t, operator(0))
	e.act(t, old.ID, grants.ActionCancel, operator(0))
	drain(t, e.w)
	replica := func(rdb redis.UniversalClient) *grants.Store {
		s, err := grants.NewStore(grants.Config{Redis: rdb, Audit: e.log, Tenants: e.tenants, Catalog: cat,
			Now: e.clock.Now, Outbox: notify.NewOutbox(), DeadLetters: notify.NewDeadLetters(rdb, nil, e.clock.Now, nil)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	reads := &deadReads{}
	watched := redistest.Clone(t, e.rdb)
	watched.AddHook(reads)

	// Nothing due yet: nothing deleted, the letters not read.
	if n, _, err := replica(watched).DeleteEnded(ctx, 24*time.Hour); err != nil || n != 0 {
		t.Fatalf("DeleteEnded with nothing due = %d, %v; want 0", n, err)
	}
	if n := reads.n.Load(); n != 0 {
		t.Errorf("a run that deleted nothing read the dead letters %d times", n)
	}

	// Due: a replica killed once the request is deleted, before it goes
	// through the letters.
	e.clock.Advance(2 * 24 * time.Hour)
	k := redistest.Killable(t, e.rdb)
	k.KillAfter(redistest.Command("hdel", keys.RequestsDeleting("contoso")))
	if _, _, err := replica(k).DeleteEnded(ctx, 24*time.Hour); err == nil {
		t.Fatal("DeleteEnded on a replica killed part way reported no error")
	}
	if _, err := e.store.Get(ctx, manager.Principal, old.ID); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("the killed run did not delete the request: %v", err)
	}
	if left := naming(t, e.rdb, old.ID); !slices.Contains(left, "lockbox:{contoso}:outbox:dead") {
		t.Fatalf("the killed run went through the dead letters: keys naming the request %q", left)
	}
	// The next run has nothing to delete, and goes through them.
	if n, _, err := replica(watched).DeleteEnded(ctx, 24*time.Hour); err != nil || n != 0 {
		t.Fatalf("next run: DeleteEnded = %d, %v; want 0", n, err)
	}
	if left := naming(t, e.rdb, old.ID); !slices.Equal(left, []string{"lockbox:{contoso}:audit"}) {
		t.Errorf("after the next run keys still naming the deleted request: %q, want its audit records' only", left)
	}
	// And the one after it no longer reads them.
	reads.n.Store(0)
	if _, _, err := replica(watched).DeleteEnded(ctx, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := reads.n.Load(); n != 0 {
		t.Errorf("a run after the letters were gone through read them %d times", n)
	}
}

// TestNoDeadLetterForDeletedRequest: notifications of a request that
// request retention deleted before they were delivered fail for good (the
// webhook receiver answers 410). Their dead letters would carry a copy of
// the deleted request and its history until the tenant's next deletion,
// which may never come: none is written, each is logged instead, and the
// entries leave the outbox. A live request's failure is a dead letter as
// before.
func TestNoDeadLetterForDeletedRequest(t *testing.T) {
	e := newRedriveEnv(t, "") // the webhook receiver answers 410: a dead letter at once
	ctx := context.Background()
	old := e.create(t, operator(0))
	e.act(t, old.ID, grants.ActionCancel, operator(0))
	e.clock.Advance(2 * 24 * time.Hour)
	live := e.create(t, operator(1))
	d := notify.NewDeadLetters(e.rdb, nil, e.clock.Now, nil)
	s, err := grants.NewStore(grants.Config{Redis: e.rdb, Audit: e.log, Tenants: e.tenants, Catalog: cat,
		Now: e.clock.Now, Outbox: notify.NewOutbox(), DeadLetters: d})
	if err != nil {
		t.Fatal(err)
	}
	if n, _, err := s.DeleteEnded(ctx, 24*time.Hour); err != nil || n != 1 {
		t.Fatalf("DeleteEnded = %d, %v; want 1 (the canceled request)", n, err)
	}
	drain(t, e.w)
	var named []string
	for _, l := range mustList(t, d, "contoso") {
		named = append(named, l.RequestID)
	}
	if !slices.Equal(named, []string{live.ID}) {
		t.Errorf("dead letters name requests %q, want one, the live request's %q (the deleted one is %q)", named, live.ID, old.ID)
	}
	if n, err := e.w.Depth(ctx); err != nil || n != 0 {
		t.Errorf("depth = %d, %v; want every entry finished", n, err)
	}
	if lines := e.logs.lines("no dead letter kept: its request was deleted"); len(lines) != 2 || !strings.Contains(lines[0], old.ID) {
		t.Errorf("log lines of the deleted request's notifications given up on: %q, want two naming %s", lines, old.ID)
	}
	if left := naming(t, e.rdb, old.ID); !slices.Equal(left, []string{"lockbox:{contoso}:audit"}) {
		t.Errorf("keys still naming the deleted request: %q, want its audit records' only", left)
	}
}

// TestGivenUpOnForDeletedRequestIsNotCountedDead: a notification given up
// on once its request was deleted leaves no dead letter, and so must not
// be counted as one: LockboxNotificationDeadLettered fires on
// result="dead", and on-call would find nothing in
// `lockbox notify dead-letters`. It is counted as result="deleted"; a live
// request's failure is still dead, one for each letter listed.
func TestGivenUpOnForDeletedRequestIsNotCountedDead(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hook := startHook(t, e.clock.Now, []byte("k"), http.StatusGone) // a dead letter at once
	reg := prometheus.NewRegistry()
	w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", Registerer: reg, DevDir: t.TempDir(),
		Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: []byte("k")}}})
	old := e.create(t, operator(0))
	e.act(t, old.ID, grants.ActionCancel, operator(0)) // request.created and request.canceled
	e.clock.Advance(2 * 24 * time.Hour)
	live := e.create(t, operator(1))
	d := notify.NewDeadLetters(e.rdb, nil, e.clock.Now, nil)
	s, err := grants.NewStore(grants.Config{Redis: e.rdb, Audit: e.log, Tenants: e.tenants, Catalog: cat,
		Now: e.clock.Now, Outbox: notify.NewOutbox(), DeadLetters: d})
	if err != nil {
		t.Fatal(err)
	}
	if n, _, err := s.DeleteEnded(ctx, 24*time.Hour); err != nil || n != 1 {
		t.Fatalf("DeleteEnded = %d, %v; want 1 (the canceled request)", n, err)
	}
	drain(t, w)
	letters := mustList(t, d, "contoso")
	if len(letters) != 1 || letters[0].RequestID != live.ID {
		t.Fatalf("dead letters %v, want the live request's one", letters)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "webhook", "dead")); got != float64(len(letters)) {
		t.Errorf(`webhook result="dead" = %v, want %d: one per dead letter on-call can list`, got, len(letters))
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "webhook", "deleted")); got != 2 {
		t.Errorf(`webhook result="deleted" = %v, want 2: the deleted request's notifications given up on`, got)
	}
}
