package grants_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/tenants"
)

const idemKey = "6f1c2a9e-0b7d-4c35-9f0e-1d2c3b4a5968"

func filingInput(tenant, service string) grants.CreateInput {
	return grants.CreateInput{Tenant: tenant, Service: service, ServiceRequest: "SR-7", Reason: "repair", Duration: grants.Duration(time.Hour)}
}

// filingEnv is a store whose notifications are counted.
func filingEnv(t *testing.T) (*env, *recordingOutbox) {
	t.Helper()
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	ts := tenants.NewStore(rdb, log, c.Now)
	ob := &recordingOutbox{}
	s, err := grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: ts, Catalog: cat, Now: c.Now, Outbox: ob})
	if err != nil {
		t.Fatal(err)
	}
	ts.SetGuard(s)
	tenanttest.Onboard(t, ts, "contoso", "fabrikam")
	return &env{rdb: rdb, clock: c, store: s, tenants: ts, log: log}, ob
}

// notifications counts the transitions queued to contoso's test outbox.
func (e *env) notifications(t *testing.T) int {
	t.Helper()
	n, err := e.rdb.XLen(context.Background(), "lockbox:{contoso}:test-outbox").Result()
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func wantKeyReused(t *testing.T, err error) {
	t.Helper()
	fe, ok := errors.AsType[*fault.Error](err)
	if !ok || fe.Code != grants.CodeKeyReused || !errors.Is(err, grants.ErrConflict) {
		t.Fatalf("err = %v, want code %s", err, grants.CodeKeyReused)
	}
}

// TestFilingWithAnIdempotencyKeyIsAnsweredOnce: a filing sent again with
// its Idempotency-Key (its answer lost) gets the request the first one
// filed, files nothing, and writes no second audit record or notification;
// the request it answers is the one as it stands now.
func TestFilingWithAnIdempotencyKeyIsAnsweredOnce(t *testing.T) {
	e, _ := filingEnv(t)
	ctx := context.Background()
	first, replayed, err := e.store.CreateOnce(ctx, operator, filingInput("contoso", "exchange"), idemKey)
	if err != nil || replayed {
		t.Fatalf("first filing: replayed %v, %v", replayed, err)
	}
	e.clock.Advance(time.Minute)
	e.act(t, first.ID, grants.ActionApprove, manager)
	ops, sent := e.operations(t), e.notifications(t)

	again, replayed, err := e.store.CreateOnce(ctx, operator, filingInput("contoso", "exchange"), idemKey)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if !replayed || again.ID != first.ID || again.State != grants.StatePendingCustomer {
		t.Fatalf("retry = %s (%s), replayed %v; want %s as it is now, replayed", again.ID, again.State, replayed, first.ID)
	}
	if got := e.operations(t); len(got) != len(ops) {
		t.Errorf("audit records after the retry = %v, want %v", got, ops)
	}
	if got := e.notifications(t); got != sent {
		t.Errorf("notifications after the retry = %d, want %d", got, sent)
	}
	list, err := e.store.List(ctx, manager.Principal, grants.Filter{Tenant: "contoso"})
	if err != nil || len(list) != 1 {
		t.Fatalf("contoso's requests = %d, %v; want the one", len(list), err)
	}
	ttl, err := e.rdb.PTTL(ctx, keys.Filing("contoso", filingCaller(t, e, first.ID))).Result()
	if err != nil || ttl <= 0 || ttl > grants.IdempotencyWindow {
		t.Errorf("TTL of the key's record = %s, %v; want at most %s", ttl, err, grants.IdempotencyWindow)
	}
}

// filingCaller finds the keys.Filing suffix of the record naming id.
func filingCaller(t *testing.T, e *env, id string) string {
	t.Helper()
	ctx := context.Background()
	found, err := e.rdb.Keys(ctx, keys.Filing("contoso", "*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range found {
		if v, _ := e.rdb.Get(ctx, k).Result(); strings.Contains(v, id) {
			return strings.TrimPrefix(k, keys.Filing("contoso", ""))
		}
	}
	t.Fatalf("no record of the key names %s among %v", id, found)
	return ""
}

// TestIdempotencyKeyReusedForAnotherRequest: the key sent with another
// request (another reason, or another tenant's, whose keys are in another
// slot) is refused, and files nothing.
func TestIdempotencyKeyReusedForAnotherRequest(t *testing.T) {
	e, _ := filingEnv(t)
	ctx := context.Background()
	if _, _, err := e.store.CreateOnce(ctx, operator, filingInput("contoso", "exchange"), idemKey); err != nil {
		t.Fatal(err)
	}
	other := filingInput("contoso", "exchange")
	other.Reason = "another repair"
	_, _, err := e.store.CreateOnce(ctx, operator, other, idemKey)
	wantKeyReused(t, err)
	_, _, err = e.store.CreateOnce(ctx, operator, filingInput("fabrikam", "exchange"), idemKey)
	wantKeyReused(t, err)
	for _, tenant := range []string{"contoso", "fabrikam"} {
		list, err := e.store.List(ctx, manager.Principal, grants.Filter{Tenant: tenant})
		if err != nil || len(list) != map[string]int{"contoso": 1, "fabrikam": 0}[tenant] {
			t.Errorf("%s's requests = %d, %v", tenant, len(list), err)
		}
	}
}

// TestIdempotencyKeyIsTheCallers: another engineer sending the same key
// files their own request; they neither get the first engineer's nor are
// refused for it.
func TestIdempotencyKeyIsTheCallers(t *testing.T) {
	e, _ := filingEnv(t)
	ctx := context.Background()
	bob := who("bob", "", identity.RoleOperator)
	mine, _, err := e.store.CreateOnce(ctx, operator, filingInput("contoso", "exchange"), idemKey)
	if err != nil {
		t.Fatal(err)
	}
	// Bob's the same request, and Carol's another: neither is alice's.
	for _, c := range []struct {
		by grants.Actor
		in grants.CreateInput
	}{{bob, filingInput("contoso", "exchange")}, {who("carol", "", identity.RoleOperator), filingInput("fabrikam", "sharepoint")}} {
		theirs, replayed, err := e.store.CreateOnce(ctx, c.by, c.in, idemKey)
		if err != nil || replayed || theirs.ID == mine.ID || theirs.Requester != c.by.Principal.Subject {
			t.Fatalf("%s's filing with alice's key = %s by %s, replayed %v, %v", c.by.Principal.Subject, theirs.ID, theirs.Requester, replayed, err)
		}
	}
}

// TestIdempotencyKeyForgottenAfterItsWindow: past IdempotencyWindow by the
// store's clock (whatever the key's TTL left in Redis), the key files anew,
// and takes another request.
func TestIdempotencyKeyForgottenAfterItsWindow(t *testing.T) {
	e, _ := filingEnv(t)
	ctx := context.Background()
	first, _, err := e.store.CreateOnce(ctx, operator, filingInput("contoso", "exchange"), idemKey)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(grants.IdempotencyWindow - time.Second)
	if again, replayed, err := e.store.CreateOnce(ctx, operator, filingInput("contoso", "exchange"), idemKey); err != nil || !replayed || again.ID != first.ID {
		t.Fatalf("a second before the window ends: %s, replayed %v, %v", again.ID, replayed, err)
	}
	e.clock.Advance(time.Second)
	// The first expired undecided long ago: this one is filed after it.
	next, replayed, err := e.store.CreateOnce(ctx, operator, filingInput("contoso", "exchange"), idemKey)
	if err != nil || replayed || next.ID == first.ID {
		t.Fatalf("once the window ended: %s, replayed %v, %v; want a new request", next.ID, replayed, err)
	}
	e.clock.Advance(grants.IdempotencyWindow)
	other := filingInput("contoso", "exchange")
	other.Reason = "another repair"
	if _, replayed, err := e.store.CreateOnce(ctx, operator, other, idemKey); err != nil || replayed {
		t.Fatalf("another request with the key, once its window ended: replayed %v, %v", replayed, err)
	}
}

// TestConcurrentFilingsWithOneKeyFileOnce: the same filing sent at once
// over several replicas (a client's retry racing its first try) files one
// request, answered to every one of them, with one audit record and one
// notification.
func TestConcurrentFilingsWithOneKeyFileOnce(t *testing.T) {
	e, _ := filingEnv(t)
	ctx := context.Background()
	replicas := []*grants.Store{e.store}
	for range 2 {
		s, err := grants.NewStore(grants.Config{Redis: e.rdb, Audit: e.log, Tenants: e.tenants, Catalog: cat, Now: e.clock.Now, Outbox: &recordingOutbox{}})
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, s)
	}
	const n = 9
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, _, err := replicas[i%len(replicas)].CreateOnce(ctx, operator, filingInput("contoso", "exchange"), idemKey)
			ids[i], errs[i] = r.ID, err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Errorf("filing %d = %s, %v; want %s", i, ids[i], errs[i], ids[0])
		}
	}
	list, err := e.store.List(ctx, manager.Principal, grants.Filter{Tenant: "contoso"})
	if err != nil || len(list) != 1 {
		t.Fatalf("contoso's requests = %d, %v; want one", len(list), err)
	}
	if ops := e.operations(t); len(ops) != 1 {
		t.Errorf("audit records = %v, want the one filing", ops)
	}
	if got := e.notifications(t); got != 1 {
		t.Errorf("notifications = %d, want 1", got)
	}
}

func TestIdempotencyKeyShape(t *testing.T) {
	for _, k := range []string{"a", idemKey, "01JDX3Q7~_.+/=:-", strings.Repeat("k", grants.MaxIdempotencyKey)} {
		if err := grants.ValidIdempotencyKey(k); err != nil {
			t.Errorf("%q: %v", k, err)
		}
	}
	for _, k := range []string{"", "two words", `a"b`, `a\b`, "tab\there", "caf\u00e9", "nul\x00", strings.Repeat("k", grants.MaxIdempotencyKey+1)} {
		err := grants.ValidIdempotencyKey(k)
		if fe, ok := errors.AsType[*fault.Error](err); !ok || fe.Code != "invalid_idempotency_key" || !errors.Is(err, grants.ErrInvalid) {
			t.Errorf("%q: %v, want invalid_idempotency_key", k, err)
		}
	}
	e := newEnv(t)
	if _, _, err := e.store.CreateOnce(context.Background(), operator, filingInput("contoso", "exchange"), "two words"); !errors.Is(err, grants.ErrInvalid) {
		t.Fatalf("filing with a malformed key: %v", err)
	}
}
