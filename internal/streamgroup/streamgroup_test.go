package streamgroup_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/streamgroup"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// testRedis returns the Redis of a test: a database of the package's
// redis-server, or the shared cluster within TestOnRedisCluster.
var testRedis = func(t testing.TB) redis.UniversalClient { return redistest.Client(t) }

// TestOnRedisCluster runs the tests again on a Redis Cluster.
func TestOnRedisCluster(t *testing.T) {
	prev := testRedis
	testRedis = func(t testing.TB) redis.UniversalClient { return redistest.SharedCluster(t).Client(t) }
	t.Cleanup(func() { testRedis = prev })
	for name, test := range map[string]func(*testing.T){
		"GroupCreatedOnce":              TestGroupCreatedOnce,
		"OwnPendingReadAfterRestart":    TestOwnPendingReadAfterRestart,
		"PendingPagesPastUnfinished":    TestPendingPagesPastUnfinished,
		"TakesOverADeadConsumer":        TestTakesOverADeadConsumer,
		"TakeOverHandsOnDeletedEntries": TestTakeOverHandsOnDeletedEntries,
		"DeletedStreamRecovers":         TestDeletedStreamRecovers,
		"MaxBatches":                    TestMaxBatches,
		"ForgetsGoneConsumers":          TestForgetsGoneConsumers,
		"KeepIdle":                      TestKeepIdle,
		"TakeoverLog":                   TestTakeoverLog,
		"NothingIdleNoClaim":            TestNothingIdleNoClaim,
	} {
		t.Run(name, test)
	}
}

const group = "g"

// stream is the test's stream key, with a hash tag like Lockbox's keys.
func stream(t *testing.T) string { return "{t}:" + strings.ReplaceAll(t.Name(), "/", ":") }

func add(t *testing.T, rdb redis.UniversalClient, key string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: key, Values: []any{"n", i}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

func reader(t *testing.T, rdb redis.UniversalClient, consumer string, edit ...func(*streamgroup.Config)) *streamgroup.Reader {
	t.Helper()
	cfg := streamgroup.Config{Redis: rdb, Group: group, Consumer: consumer, ClaimAfter: time.Minute}
	for _, e := range edit {
		e(&cfg)
	}
	r, err := streamgroup.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// handler records the batches it gets and acknowledges the entries ack
// says it finished (all of them when ack is nil).
type handler struct {
	mu      sync.Mutex
	batches [][]string
	r       *streamgroup.Reader
	key     string
	ack     func(id string) bool
	fail    error
}

func (h *handler) handle(ctx context.Context, msgs []redis.XMessage) error {
	h.mu.Lock()
	var ids, done []string
	for _, m := range msgs {
		ids = append(ids, m.ID)
		if h.ack == nil || h.ack(m.ID) {
			done = append(done, m.ID)
		}
	}
	h.batches = append(h.batches, ids)
	fail := h.fail
	h.mu.Unlock()
	if fail != nil {
		return fail
	}
	return h.r.Ack(ctx, h.key, done...)
}

func (h *handler) ids() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Concat(h.batches...)
}

// pendingAt returns the ids pending at consumer.
func pendingAt(t *testing.T, rdb redis.UniversalClient, key, consumer string) []string {
	t.Helper()
	ps, err := rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{
		Stream: key, Group: group, Start: "-", End: "+", Count: 1000, Consumer: consumer,
	}).Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	return ids
}

// countXGroup counts the XGROUP commands sent through rdb.
type countXGroup struct{ n atomic.Int64 }

func (c *countXGroup) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *countXGroup) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "xgroup" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *countXGroup) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// Each Reader asks Redis for the group once, however often it visits; a
// second replica finds the group there (BUSYGROUP) and reads through it,
// so the two share the entries instead of each getting all of them.
func TestGroupCreatedOnce(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	var calls countXGroup
	rdb.AddHook(&calls)
	key := stream(t)
	a, b := reader(t, rdb, "a"), reader(t, rdb, "b")
	ha, hb := &handler{r: a, key: key}, &handler{r: b, key: key}
	ids := add(t, rdb, key, 5)
	for range 3 {
		if _, err := a.Visit(ctx, key, ha.handle); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.n.Load(); n != 1 {
		t.Fatalf("%d XGROUP calls for three visits, want 1", n)
	}
	if _, err := b.Visit(ctx, key, hb.handle); err != nil {
		t.Fatalf("the second replica's visit: %v", err)
	}
	if n := calls.n.Load(); n != 2 {
		t.Fatalf("%d XGROUP calls for two replicas, want 2", n)
	}
	if got := ha.ids(); !slices.Equal(got, ids) {
		t.Errorf("a read %v, want %v", got, ids)
	}
	if got := hb.ids(); len(got) != 0 {
		t.Errorf("b read %v again", got)
	}
	more := add(t, rdb, key, 2)
	if _, err := b.Visit(ctx, key, hb.handle); err != nil || !slices.Equal(hb.ids(), more) {
		t.Errorf("b read %v (%v), want %v", hb.ids(), err, more)
	}
	groups, err := rdb.XInfoGroups(ctx, key).Result()
	if err != nil || len(groups) != 1 || groups[0].Name != group {
		t.Errorf("groups %+v, %v", groups, err)
	}
}

// A consumer's entries left pending when it stopped (a failed batch, or
// a crash) are the first it reads when it starts again under its name.
func TestOwnPendingReadAfterRestart(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	key := stream(t)
	old := add(t, rdb, key, 3)
	before := reader(t, rdb, "r1")
	down := errors.New("sink down")
	if _, err := before.Visit(ctx, key, (&handler{r: before, key: key, fail: down}).handle); !errors.Is(err, down) {
		t.Fatalf("visit with a failing handler: %v", err)
	}
	if got := pendingAt(t, rdb, key, "r1"); !slices.Equal(got, old) {
		t.Fatalf("pending at r1: %v, want %v", got, old)
	}
	// Another replica leaves them alone: r1 is not idle for ClaimAfter.
	other := reader(t, rdb, "r2")
	ho := &handler{r: other, key: key}
	if _, err := other.Visit(ctx, key, ho.handle); err != nil || len(ho.ids()) != 0 {
		t.Fatalf("r2 read %v, %v", ho.ids(), err)
	}
	newer := add(t, rdb, key, 2)
	after := reader(t, rdb, "r1") // the restart
	h := &handler{r: after, key: key}
	if _, err := after.Visit(ctx, key, h.handle); err != nil {
		t.Fatal(err)
	}
	if len(h.batches) < 2 || !slices.Equal(h.batches[0], old) || !slices.Equal(h.ids(), slices.Concat(old, newer)) {
		t.Fatalf("batches %v, want %v first, then %v", h.batches, old, newer)
	}
	if got := pendingAt(t, rdb, key, "r1"); len(got) != 0 {
		t.Errorf("still pending: %v", got)
	}
}

// Entries the handler leaves pending (a retry not due yet) don't hide
// the pending entries after them.
func TestPendingPagesPastUnfinished(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	key := stream(t)
	ids := add(t, rdb, key, 5)
	r := reader(t, rdb, "r1", func(c *streamgroup.Config) { c.Batch = 2 })
	none := func(string) bool { return false }
	if _, err := r.Visit(ctx, key, (&handler{r: r, key: key, ack: none}).handle); err != nil {
		t.Fatal(err)
	}
	// The first two are still backing off; the others are due.
	h := &handler{r: r, key: key, ack: func(id string) bool { return id != ids[0] && id != ids[1] }}
	if _, err := r.Visit(ctx, key, h.handle); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(h.ids(), ids) {
		t.Fatalf("read %v, want %v", h.batches, ids)
	}
	if got := pendingAt(t, rdb, key, "r1"); !slices.Equal(got, ids[:2]) {
		t.Errorf("pending %v, want %v", got, ids[:2])
	}
}

// A dead consumer's entries are taken over once Redis has seen them idle
// for ClaimAfter, not before.
func TestTakesOverADeadConsumer(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	key := stream(t)
	ids := add(t, rdb, key, 3)
	dead := reader(t, rdb, "dead")
	if _, err := dead.Visit(ctx, key, (&handler{r: dead, key: key, ack: func(string) bool { return false }}).handle); err != nil {
		t.Fatal(err)
	}
	live := reader(t, rdb, "live")
	h := &handler{r: live, key: key}
	if _, err := live.Visit(ctx, key, h.handle); err != nil || len(h.ids()) != 0 {
		t.Fatalf("took over %v (%v) before ClaimAfter", h.ids(), err)
	}
	// Make Redis see the entries idle for two minutes, past ClaimAfter,
	// without waiting for it: XCLAIM to the same consumer with IDLE.
	args := []any{"XCLAIM", key, group, "dead", 0}
	for _, id := range ids {
		args = append(args, id)
	}
	if err := rdb.Do(ctx, append(args, "IDLE", 2*time.Minute.Milliseconds(), "JUSTID")...).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := live.Visit(ctx, key, h.handle); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(h.ids(), ids) {
		t.Fatalf("took over %v, want %v", h.ids(), ids)
	}
	for _, c := range []string{"dead", "live"} {
		if got := pendingAt(t, rdb, key, c); len(got) != 0 {
			t.Errorf("pending at %s: %v", c, got)
		}
	}
}

// TestKeepIdle: a live consumer that reads its pending entries again at
// every visit and fails on them holds them for good, since Redis counts
// each read as a new delivery, unless KeepIdle is set: its reads then leave
// the entries' idle time alone, hand them over whole (fields, order,
// paging; a deleted one without fields), and another consumer takes them
// over once they have been idle for ClaimAfter.
func TestKeepIdle(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(map[bool]string{false: "off", true: "on"}[keep], func(t *testing.T) {
			ctx := context.Background()
			rdb := testRedis(t)
			key := stream(t)
			ids := add(t, rdb, key, 3)
			held := reader(t, rdb, "held", func(c *streamgroup.Config) { c.Batch, c.KeepIdle = 2, keep })
			none := func(string) bool { return false }
			if _, err := held.Visit(ctx, key, (&handler{r: held, key: key, ack: none}).handle); err != nil {
				t.Fatal(err)
			}
			// Idle for two minutes, past ClaimAfter, without waiting.
			args := []any{"XCLAIM", key, group, "held", 0}
			for _, id := range ids {
				args = append(args, id)
			}
			if err := rdb.Do(ctx, append(args, "IDLE", 2*time.Minute.Milliseconds(), "JUSTID")...).Err(); err != nil {
				t.Fatal(err)
			}
			if err := rdb.XDel(ctx, key, ids[1]).Err(); err != nil {
				t.Fatal(err)
			}
			// The holder retries them, and fails on the last.
			var got []redis.XMessage
			down := errors.New("sink down")
			if _, err := held.Visit(ctx, key, func(ctx context.Context, msgs []redis.XMessage) error {
				for _, m := range msgs {
					if streamgroup.Deleted(ctx, key, m.ID) {
						t.Errorf("Deleted names %s, the holder's own entry, still pending", m.ID)
					}
				}
				if got = append(got, msgs...); len(got) == len(ids) {
					return down
				}
				return nil
			}); !errors.Is(err, down) {
				t.Fatalf("retry: %v", err)
			}
			if len(got) != 3 || got[0].ID != ids[0] || got[1].ID != ids[1] || got[2].ID != ids[2] {
				t.Fatalf("retried %v, want %v", got, ids)
			}
			if got[0].Values["n"] != "0" || got[1].Values != nil || got[2].Values["n"] != "2" {
				t.Fatalf("retried entries' fields: %v, want n=0, none (deleted), n=2", got)
			}
			live := reader(t, rdb, "live")
			h := &handler{r: live, key: key}
			if _, err := live.Visit(ctx, key, h.handle); err != nil {
				t.Fatal(err)
			}
			// (XAUTOCLAIM names deleted entries apart, after the others.)
			want, left := []string{ids[0], ids[2], ids[1]}, []string(nil)
			if !keep {
				// Redis does not count a read of the deleted entry as a
				// delivery either way; the others stay held.
				want, left = []string{ids[1]}, []string{ids[0], ids[2]}
			}
			if !slices.Equal(h.ids(), want) {
				t.Fatalf("KeepIdle %v: the live consumer took over %v, want %v", keep, h.ids(), want)
			}
			if got := pendingAt(t, rdb, key, "held"); !slices.Equal(got, left) {
				t.Fatalf("KeepIdle %v: still held %v, want %v", keep, got, left)
			}
		})
	}
}

// A stream deleted with its group (by hand, or by a FLUSHDB) and written
// again is read from its new start within the same visit.
func TestDeletedStreamRecovers(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	key := stream(t)
	r := reader(t, rdb, "r1")
	h := &handler{r: r, key: key}
	add(t, rdb, key, 2)
	if _, err := r.Visit(ctx, key, h.handle); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	again := add(t, rdb, key, 3)
	h2 := &handler{r: r, key: key}
	if _, err := r.Visit(ctx, key, h2.handle); err != nil {
		t.Fatalf("visit after the stream was deleted: %v", err)
	}
	if !slices.Equal(h2.ids(), again) {
		t.Fatalf("read %v, want %v", h2.ids(), again)
	}
}

// MaxBatches bounds one visit's work; the next visit goes on.
func TestMaxBatches(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	key := stream(t)
	ids := add(t, rdb, key, 7)
	r := reader(t, rdb, "r1", func(c *streamgroup.Config) { c.Batch, c.MaxBatches = 2, 2 })
	h := &handler{r: r, key: key}
	more, err := r.Visit(ctx, key, h.handle)
	if err != nil || !more || !slices.Equal(h.ids(), ids[:4]) {
		t.Fatalf("first visit: more %v, %v, read %v", more, err, h.ids())
	}
	more, err = r.Visit(ctx, key, h.handle)
	if err != nil || more || !slices.Equal(h.ids(), ids) {
		t.Fatalf("second visit: more %v, %v, read %v", more, err, h.ids())
	}
}

func TestConfig(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	ok := streamgroup.Config{Redis: rdb, Group: "g", Consumer: "c", ClaimAfter: time.Second}
	for i, edit := range []func(*streamgroup.Config){
		func(c *streamgroup.Config) { c.Redis = nil },
		func(c *streamgroup.Config) { c.Group = "" },
		func(c *streamgroup.Config) { c.Consumer = "" },
		func(c *streamgroup.Config) { c.ClaimAfter = 0 },
		func(c *streamgroup.Config) { c.MaxBatches = -1 },
	} {
		c := ok
		edit(&c)
		if _, err := streamgroup.New(c); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
	if _, err := streamgroup.New(ok); err != nil {
		t.Error(err)
	}
}

// TestTakeOverHandsOnDeletedEntries: entries a dead consumer left pending
// and that were then deleted from the stream (retention trimmed them) are
// handed to the handler without fields when taken over, as its own are,
// so that the caller knows of them (the SIEM forwarder counts them as
// skipped). XAUTOCLAIM drops them from the pending list and names them
// apart from the entries it claims, and Deleted tells them apart too:
// nothing hands them over again, even when the handler's acknowledgement
// fails, so a caller counting them must not wait for it.
func TestTakeOverHandsOnDeletedEntries(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	key := stream(t)
	ids := add(t, rdb, key, 3)
	dead := reader(t, rdb, "dead")
	if _, err := dead.Visit(ctx, key, (&handler{r: dead, key: key, ack: func(string) bool { return false }}).handle); err != nil {
		t.Fatal(err)
	}
	// Idle past ClaimAfter, as in TestTakesOverADeadConsumer (before the
	// deletion: XCLAIM too drops deleted entries from the pending list).
	args := []any{"XCLAIM", key, group, "dead", 0}
	for _, id := range ids {
		args = append(args, id)
	}
	if err := rdb.Do(ctx, append(args, "IDLE", 2*time.Minute.Milliseconds(), "JUSTID")...).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.XDel(ctx, key, ids[0], ids[2]).Err(); err != nil {
		t.Fatal(err)
	}
	live := reader(t, rdb, "live")
	var mu sync.Mutex
	fields := map[string]bool{}
	var deleted []string
	if _, err := live.Visit(ctx, key, func(ctx context.Context, msgs []redis.XMessage) error {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			fields[m.ID] = m.Values["n"] != nil
			if streamgroup.Deleted(ctx, key, m.ID) {
				deleted = append(deleted, m.ID)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{ids[0], ids[2]}; !slices.Equal(deleted, want) {
		t.Errorf("Deleted named %v, want %v", deleted, want)
	}
	want := map[string]bool{ids[0]: false, ids[1]: true, ids[2]: false}
	if len(fields) != len(want) {
		t.Fatalf("handed %v, want %v (id: has fields)", fields, want)
	}
	for id, f := range want {
		if got, ok := fields[id]; !ok || got != f {
			t.Fatalf("handed %v, want %v (id: has fields)", fields, want)
		}
	}
	if got := pendingAt(t, rdb, key, "live"); !slices.Equal(got, ids[1:2]) {
		t.Errorf("pending at live: %v, want %v", got, ids[1:2])
	}
}

// consumers returns the group's consumers on key by name, with how long
// Redis has seen each idle.
func consumers(t *testing.T, rdb redis.UniversalClient, key string) map[string]time.Duration {
	t.Helper()
	cs, err := rdb.XInfoConsumers(context.Background(), key, group).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Duration{}
	for _, c := range cs {
		out[c.Name] = c.Idle
	}
	return out
}

// TestForgetsGoneConsumers: every consumer name a replica ever used (a new
// pod name at each rollout) stayed in the group for good, on every stream
// it visited. A visit now removes the consumers that have nothing pending
// and have been idle for ForgetAfter; one with a pending entry stays
// however long it has been idle (the entry is taken over from it, not
// deleted with it), and so does the visitor.
func TestForgetsGoneConsumers(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	key := stream(t)
	add(t, rdb, key, 3)
	gone := reader(t, rdb, "gone")
	if _, err := gone.Visit(ctx, key, (&handler{r: gone, key: key}).handle); err != nil {
		t.Fatal(err)
	}
	kept := add(t, rdb, key, 1)
	live := reader(t, rdb, "live")
	if _, err := live.Visit(ctx, key, (&handler{r: live, key: key, ack: func(string) bool { return false }}).handle); err != nil {
		t.Fatal(err)
	}
	if got := pendingAt(t, rdb, key, "live"); !slices.Equal(got, kept) {
		t.Fatalf("pending at live: %v, want %v", got, kept)
	}

	// Not idle for an hour: nobody is forgotten.
	hour := reader(t, rdb, "me", func(c *streamgroup.Config) { c.ForgetAfter = time.Hour })
	if _, err := hour.Visit(ctx, key, (&handler{r: hour, key: key}).handle); err != nil {
		t.Fatal(err)
	}
	if got := consumers(t, rdb, key); len(got) != 3 {
		t.Fatalf("consumers after a visit forgetting those idle for an hour: %v, want gone, live and me", got)
	}

	// Idle past ForgetAfter, as Redis measures it: wait for Redis to say
	// so (the deadline only bounds a failure).
	const forgetAfter = 20 * time.Millisecond
	deadline := time.Now().Add(10 * time.Second)
	for c := consumers(t, rdb, key); c["gone"] < forgetAfter || c["live"] < forgetAfter; c = consumers(t, rdb, key) {
		if time.Now().After(deadline) {
			t.Fatalf("consumers not idle for %v in 10s: %v", forgetAfter, c)
		}
		time.Sleep(5 * time.Millisecond)
	}
	me := reader(t, rdb, "me", func(c *streamgroup.Config) { c.ForgetAfter = forgetAfter })
	if _, err := me.Visit(ctx, key, (&handler{r: me, key: key}).handle); err != nil {
		t.Fatal(err)
	}
	got := consumers(t, rdb, key)
	if _, ok := got["gone"]; ok {
		t.Errorf("a consumer with nothing pending, idle past ForgetAfter, stayed: %v", got)
	}
	if _, ok := got["live"]; !ok {
		t.Errorf("a consumer with a pending entry was forgotten: %v", got)
	}
	if _, ok := got["me"]; !ok {
		t.Errorf("the visitor forgot itself: %v", got)
	}
	if got := pendingAt(t, rdb, key, "live"); !slices.Equal(got, kept) {
		t.Errorf("pending at live after the visit: %v, want %v", got, kept)
	}
}

func TestDefaultForgetAfter(t *testing.T) {
	for _, c := range []struct{ claimAfter, want time.Duration }{
		{time.Minute, 24 * time.Hour},
		{2 * time.Minute, 24 * time.Hour},
		{24 * time.Hour / 100, 24 * time.Hour},
		{time.Hour, 100 * time.Hour},
		{time.Duration(math.MaxInt64) / 50, time.Duration(math.MaxInt64)},
	} {
		if got := streamgroup.DefaultForgetAfter(c.claimAfter); got != c.want {
			t.Errorf("DefaultForgetAfter(%v) = %v, want %v", c.claimAfter, got, c.want)
		}
	}
}

// TestTakeoverLog: a takeover the caller expected (Config.Expected: the
// holder keeps the entry pending on purpose) is logged at debug, and so is
// one of this consumer's own entries; the others at info, naming the
// consumers that held them. Expected is asked about the others only, with
// who held each and for how long.
func TestTakeoverLog(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	key := stream(t)
	ids := add(t, rdb, key, 4)
	// "backing" holds ids[0], "dead" ids[1] and ids[2], "me" ids[3].
	if err := reader(t, rdb, "me").Ensure(ctx, key); err != nil {
		t.Fatal(err)
	}
	for i, c := range []string{"backing", "dead", "dead", "me"} {
		if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: group, Consumer: c, Streams: []string{key, ">"}, Count: 1, Block: -1,
		}).Err(); err != nil {
			t.Fatal(err)
		}
		if got := pendingAt(t, rdb, key, c); !slices.Contains(got, ids[i]) {
			t.Fatalf("pending at %s: %v, want %s", c, got, ids[i])
		}
	}
	for i, c := range []string{"backing", "dead", "dead", "me"} {
		if err := rdb.Do(ctx, "XCLAIM", key, group, c, 0, ids[i], "IDLE", 2*time.Minute.Milliseconds(), "JUSTID").Err(); err != nil {
			t.Fatal(err)
		}
	}
	var logs strings.Builder
	var mu sync.Mutex
	var asked []streamgroup.Taken
	me := reader(t, rdb, "me", func(c *streamgroup.Config) {
		c.KeepIdle = true
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.Expected = func(_ context.Context, s string, taken []streamgroup.Taken) []bool {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, taken...)
			out := make([]bool, len(taken))
			for i, tk := range taken {
				out[i] = tk.Consumer == "backing"
			}
			return out
		}
	})
	// Its own entry is read first, as its own, and left unfinished: with
	// KeepIdle it stays idle, and is taken back with the others.
	offered := 0
	h := &handler{r: me, key: key, ack: func(id string) bool {
		if id != ids[3] {
			return true
		}
		offered++
		return offered > 1
	}}
	if _, err := me.Visit(ctx, key, h.handle); err != nil {
		t.Fatal(err)
	}
	if got := h.ids(); !slices.Equal(got, []string{ids[3], ids[0], ids[1], ids[2], ids[3]}) {
		t.Fatalf("handled %v", got)
	}
	if len(asked) != 3 {
		t.Fatalf("Expected asked about %+v, want the entries of backing and dead", asked)
	}
	for i, tk := range asked {
		if want := []string{"backing", "dead", "dead"}[i]; tk.ID != ids[i] || tk.Consumer != want || tk.Idle < 2*time.Minute {
			t.Errorf("asked about %+v, want %s held by %s idle 2m or more", tk, ids[i], want)
		}
	}
	var info, debug []string
	for l := range strings.Lines(logs.String()) {
		switch {
		case !strings.Contains(l, "took "):
		case strings.Contains(l, `"level":"INFO"`):
			info = append(info, l)
		case strings.Contains(l, `"level":"DEBUG"`):
			debug = append(debug, l)
		}
	}
	if len(info) != 1 || !strings.Contains(info[0], `"count":2`) || !strings.Contains(info[0], `"consumers":["dead"]`) {
		t.Errorf("logged at info %q, want the two entries of dead", info)
	}
	if len(debug) != 2 || !strings.Contains(debug[0], "on purpose") || !strings.Contains(debug[1], "own entries") {
		t.Errorf("logged at debug %q, want the entry of backing, then its own", debug)
	}
}

// countCmd counts the commands named name sent through rdb.
type countCmd struct {
	name string
	n    atomic.Int64
}

func (c *countCmd) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *countCmd) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == c.name {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *countCmd) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestNothingIdleNoClaim: a visit lists the entries idle for ClaimAfter
// before it takes them over, to know who held them; one that finds none
// sends no XAUTOCLAIM, so the list costs most visits nothing.
func TestNothingIdleNoClaim(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	key := stream(t)
	add(t, rdb, key, 2)
	other := reader(t, rdb, "other")
	if _, err := other.Visit(ctx, key, (&handler{r: other, key: key, ack: func(string) bool { return false }}).handle); err != nil {
		t.Fatal(err)
	}
	claims := &countCmd{name: "xautoclaim"}
	rdb.AddHook(claims)
	r := reader(t, rdb, "r")
	h := &handler{r: r, key: key}
	if _, err := r.Visit(ctx, key, h.handle); err != nil || len(h.ids()) != 0 {
		t.Fatalf("took over %v (%v) before ClaimAfter", h.ids(), err)
	}
	if n := claims.n.Load(); n != 0 {
		t.Errorf("%d XAUTOCLAIM with nothing idle for ClaimAfter, want none", n)
	}
}
