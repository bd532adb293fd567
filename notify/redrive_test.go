package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/notify"
)

// redriveEnv is a tenant whose mail server refuses one mailbox for good
// (550 5.1.1, a dead letter at once) and whose webhook receiver answers
// 410 Gone (likewise), until fix makes both take everything.
type redriveEnv struct {
	*env
	srv  *smtpServer
	hook *hookServer
	w    *notify.Worker
	logs *logBuffer
	mu   sync.Mutex
	gone string
}

func newRedriveEnv(t *testing.T, gone string) *redriveEnv {
	t.Helper()
	e := &redriveEnv{env: newEnv(t), srv: startSMTP(t), logs: &logBuffer{}, gone: gone}
	e.srv.stop()
	e.srv.session = func() smtp.Session { return &goneSession{session: session{s: e.srv}, mu: &e.mu, gone: &e.gone} }
	e.srv.start()
	secret := []byte("k")
	e.hook = startHook(t, e.clock.Now, secret, 410)
	e.w = newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
		Logger:   slog.New(slog.NewJSONHandler(e.logs, nil)),
		SMTP:     &notify.SMTPConfig{Addr: e.srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSNone},
		Webhooks: []notify.WebhookConfig{{URL: e.hook.URL, Secret: secret}},
	})
	return e
}

func (e *redriveEnv) fix() {
	e.mu.Lock()
	e.gone = ""
	e.mu.Unlock()
	e.hook.mu.Lock()
	e.hook.status = 0
	e.hook.mu.Unlock()
}

func (e *redriveEnv) hooked() []notify.WebhookPayload {
	e.hook.mu.Lock()
	defer e.hook.mu.Unlock()
	return append([]notify.WebhookPayload(nil), e.hook.bodies...)
}

// redriver is who re-drives in these tests.
const redriver = "ops@jobs-0"

func letterIDs(ls []notify.DeadLetter) []string {
	var ids []string
	for _, l := range ls {
		ids = append(ids, l.ID)
	}
	return ids
}

// brief shows letters in a failure without their stored events.
func brief(ls []notify.DeadLetter) string {
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "\n  %s %s %s %v error=%q problem=%q", l.ID, l.Kind, l.RequestID, l.Recipients, l.Error, l.Problem)
	}
	return b.String()
}

func mustList(t *testing.T, d *notify.DeadLetters, tenant string) []notify.DeadLetter {
	t.Helper()
	ls, err := d.List(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// TestRedriveSendsOnlyTheFailedRecipients: dead letters are listed with
// what they failed, and once the cause is fixed each is put back in the
// outbox and delivered to the recipients it names alone, with fresh
// attempts and under the Message-ID the first attempts had; the others
// already had it. Dead letters were not retried at all: the approver whose
// mailbox was created after the ask died was never asked.
func TestRedriveSendsOnlyTheFailedRecipients(t *testing.T) {
	const eve = "eve@contoso.example"
	e := newRedriveEnv(t, eve)
	ctx := context.Background()
	r := e.create(t, operator(0))
	e.clock.Advance(time.Minute)
	e.act(t, r.ID, grants.ActionApprove, manager)
	drain(t, e.w)

	d := notify.NewDeadLetters(e.rdb, e.log, e.clock.Now, nil)
	letters := mustList(t, d, "contoso")
	type seen struct {
		kind       notify.Kind
		recipients string
		says       string
	}
	var got []seen
	for _, l := range letters {
		if l.RequestID != r.ID || l.Problem != "" || l.Attempts != 1 || l.Entry == "" || !l.At.Equal(e.clock.Now()) {
			t.Errorf("letter %s", brief([]notify.DeadLetter{l}))
		}
		says := "no such user"
		if strings.HasPrefix(l.Recipients[0], "webhook:") {
			says = "status 410"
		}
		if !strings.Contains(l.Error, says) {
			t.Errorf("letter %s error %q lacks %q", l.ID, l.Error, says)
		}
		got = append(got, seen{l.Kind, strings.Join(l.Recipients, ","), says})
	}
	want := []seen{
		{notify.KindCreated, "webhook:0", "status 410"},
		{notify.KindPendingCustomer, "mail:" + eve, "no such user"},
		{notify.KindPendingCustomer, "webhook:0", "status 410"},
	}
	slices.SortFunc(got, func(a, b seen) int { return strings.Compare(string(a.kind)+a.recipients, string(b.kind)+b.recipients) })
	if !slices.Equal(got, want) {
		t.Fatalf("dead letters %+v, want %+v", got, want)
	}
	before := len(e.srv.messages())

	e.fix()
	res, err := d.Redrive(ctx, "contoso", redriver, letterIDs(letters))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res {
		if x.Err != nil || x.Entry == "" {
			t.Errorf("redrive %+v", x)
		}
	}
	if left := mustList(t, d, "contoso"); len(left) != 0 {
		t.Errorf("dead letters left after the redrive: %s", brief(left))
	}
	drain(t, e.w)

	msgs := e.srv.messages()[before:]
	if len(msgs) != 1 || msgs[0].To != eve || !strings.Contains(msgs[0].Subject, "awaits your decision") {
		t.Fatalf("re-driven e-mails %+v; want eve's ask alone", msgs)
	}
	asked := letters[slices.IndexFunc(letters, func(l notify.DeadLetter) bool { return l.Recipients[0] == "mail:"+eve })]
	if !strings.HasPrefix(msgs[0].MessageID, "<"+asked.Entry+".") {
		t.Errorf("Message-ID %s; want the first attempts' (entry %s)", msgs[0].MessageID, asked.Entry)
	}
	var events []string
	for _, p := range e.hooked() {
		events = append(events, string(p.Event))
	}
	slices.Sort(events)
	if !slices.Equal(events, []string{"request.created", "request.pending_customer"}) {
		t.Errorf("webhook got %v; want each event once", events)
	}
	if n, _ := e.rdb.XLen(ctx, notify.DeadKey("contoso")).Result(); n != 0 {
		t.Errorf("%d dead letters after the re-driven ones were delivered", n)
	}

	// A second redrive of the same letters finds none.
	again, err := d.Redrive(ctx, "contoso", redriver, letterIDs(letters))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range again {
		if !errors.Is(x.Err, notify.ErrNoDeadLetter) {
			t.Errorf("second redrive of %s: %v, want ErrNoDeadLetter", x.ID, x.Err)
		}
	}
	if n, _ := e.w.Depth(ctx); n != 0 {
		t.Errorf("outbox depth %d after a second redrive", n)
	}
}

// TestRedrivenAskOfAnEndedRequestIsNotSent: an approver's "awaits your
// decision" that died is re-driven after the request stopped awaiting the
// tenant (an approver denied it, its engineer canceled it, or its decision
// window ran out, swept or not): the approver is not asked to decide a
// request that is gone, and the entry is done with, not dead again.
func TestRedrivenAskOfAnEndedRequestIsNotSent(t *testing.T) {
	const eve = "eve@contoso.example"
	for _, c := range []struct {
		name string
		end  func(t *testing.T, e *env, id string)
	}{
		{"denied", func(t *testing.T, e *env, id string) { e.act(t, id, grants.ActionDeny, adam) }},
		{"canceled", func(t *testing.T, e *env, id string) { e.act(t, id, grants.ActionCancel, operator(0)) }},
		{"expired, not swept yet", func(t *testing.T, e *env, id string) { e.clock.Advance(grants.DecisionWindow + time.Minute) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newRedriveEnv(t, eve)
			e.fix()
			e.mu.Lock()
			e.gone = eve // the webhook takes everything; eve's mailbox does not exist
			e.mu.Unlock()
			ctx := context.Background()
			r := e.create(t, operator(0))
			e.clock.Advance(time.Minute)
			e.act(t, r.ID, grants.ActionApprove, manager)
			drain(t, e.w)
			d := notify.NewDeadLetters(e.rdb, e.log, e.clock.Now, nil)
			letters := mustList(t, d, "contoso")
			if len(letters) != 1 || letters[0].Kind != notify.KindPendingCustomer || letters[0].Recipients[0] != "mail:"+eve {
				t.Fatalf("dead letters %s; want eve's ask", brief(letters))
			}
			e.clock.Advance(time.Minute)
			c.end(t, e.env, r.ID)
			drain(t, e.w)
			e.fix()
			if res, err := d.Redrive(ctx, "contoso", redriver, letterIDs(letters)); err != nil || len(res) != 1 || res[0].Err != nil {
				t.Fatalf("redrive: %+v, %v", res, err)
			}
			drain(t, e.w)
			for _, m := range e.srv.messages() {
				if m.To == eve {
					t.Errorf("eve got %q about a request she was never asked about", m.Subject)
				}
			}
			if n, _ := e.rdb.XLen(ctx, notify.DeadKey("contoso")).Result(); n != 0 {
				t.Errorf("%d dead letters: the re-driven ask died again", n)
			}
			if lines := e.logs.lines("re-driven notification not sent to a recipient it no longer has"); len(lines) != 1 || !strings.Contains(lines[0], eve) {
				t.Errorf("logged %q; want eve's ask passed by, once", lines)
			}
		})
	}
}

// TestRedriveOfOneLetterAtOnceEnqueuesItOnce: operators re-driving the same
// letter at the same time (two terminals, a retried script) put it back
// once: one of them gets the new entry, the others find no letter, and
// the receiver gets the event once.
func TestRedriveOfOneLetterAtOnceEnqueuesItOnce(t *testing.T) {
	e := newRedriveEnv(t, "")
	ctx := context.Background()
	e.create(t, operator(0)) // request.created: to the webhook alone, 410
	drain(t, e.w)
	letters := mustList(t, notify.NewDeadLetters(e.rdb, e.log, e.clock.Now, nil), "contoso")
	if len(letters) != 1 {
		t.Fatalf("dead letters %s; want the webhook's", brief(letters))
	}
	e.fix()
	const redrivers = 8
	results := make([][]notify.Redriven, redrivers)
	errs := make([]error, redrivers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range redrivers {
		d := notify.NewDeadLetters(redistest.Clone(t, e.rdb), e.log, e.clock.Now, nil)
		wg.Go(func() {
			<-start
			results[i], errs[i] = d.Redrive(ctx, "contoso", redriver, []string{letters[0].ID})
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, res := range results {
		if errs[i] != nil || len(res) != 1 {
			t.Fatalf("redriver %d: %+v, %v", i, res, errs[i])
		}
		switch {
		case res[0].Err == nil && res[0].Entry != "":
			won++
		case !errors.Is(res[0].Err, notify.ErrNoDeadLetter):
			t.Errorf("redriver %d: %v; want the entry or ErrNoDeadLetter", i, res[0].Err)
		}
	}
	if won != 1 {
		t.Fatalf("%d redrivers put the letter back; want 1", won)
	}
	if n, _ := e.rdb.XLen(ctx, notify.OutboxKey("contoso")).Result(); n != 1 {
		t.Errorf("outbox holds %d entries; want the re-driven one", n)
	}
	drain(t, e.w)
	if got := e.hooked(); len(got) != 1 || got[0].Event != notify.KindCreated {
		t.Errorf("webhook got %+v; want request.created once", got)
	}
}

// TestRedriveThatFailsAgainCanBeRedrivenAgain: a re-driven event whose
// cause was not fixed after all dies again, as what it is (its own kind,
// the recipients it failed), and is re-driven again once it is.
func TestRedriveThatFailsAgainCanBeRedrivenAgain(t *testing.T) {
	e := newRedriveEnv(t, "")
	ctx := context.Background()
	e.create(t, operator(0))
	drain(t, e.w)
	d := notify.NewDeadLetters(e.rdb, e.log, e.clock.Now, nil)
	first := mustList(t, d, "contoso")
	if _, err := d.Redrive(ctx, "contoso", redriver, letterIDs(first)); err != nil {
		t.Fatal(err)
	}
	drain(t, e.w) // still 410
	second := mustList(t, d, "contoso")
	if len(second) != 1 || second[0].ID == first[0].ID || second[0].Kind != notify.KindCreated ||
		!slices.Equal(second[0].Recipients, []string{"webhook:0"}) || second[0].Problem != "" {
		t.Fatalf("after a failed redrive: %s; want request.created for webhook:0 again, re-drivable", brief(second))
	}
	e.fix()
	if _, err := d.Redrive(ctx, "contoso", redriver, letterIDs(second)); err != nil {
		t.Fatal(err)
	}
	drain(t, e.w)
	if got := e.hooked(); len(got) != 1 || got[0].Event != notify.KindCreated {
		t.Errorf("webhook got %+v; want request.created once", got)
	}
}

// TestUnredrivableDeadLettersAreReported: a letter whose event can't be
// read, or that names no recipient (its recipients could not be worked
// out), is listed with why it can't be re-driven and left in the stream
// by a redrive, which goes on with the others; an id that is no stream id
// ("-" and "+" are ranges to XRANGE) touches nothing.
func TestUnredrivableDeadLettersAreReported(t *testing.T) {
	e := newRedriveEnv(t, "")
	ctx := context.Background()
	e.create(t, operator(0)) // a good letter: the webhook's
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: notify.OutboxKey("contoso"), Values: []any{"event", "{corrupt"}}).Err(); err != nil {
		t.Fatal(err)
	}
	drain(t, e.w)
	good := mustList(t, notify.NewDeadLetters(e.rdb, e.log, e.clock.Now, nil), "contoso")
	if len(good) != 2 {
		t.Fatalf("dead letters %s; want the webhook's and the corrupt entry's", brief(good))
	}
	// A letter of an event whose recipients could not be worked out.
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: notify.DeadKey("contoso"), Values: []any{
		"event", `{"kind":"request.created","request":{"id":"r1","tenant":"contoso"}}`, "entry", "1-0", "attempts", 16,
		"error", "request r1 is corrupt", "recipients", "", "at", e.clock.Now().Format(time.RFC3339),
	}}).Err(); err != nil {
		t.Fatal(err)
	}
	d := notify.NewDeadLetters(e.rdb, e.log, e.clock.Now, nil)
	letters := mustList(t, d, "contoso")
	problems := map[string]string{}
	for _, l := range letters {
		problems[l.ID] = l.Problem
	}
	var fine []string
	for _, l := range letters {
		if l.Problem == "" {
			fine = append(fine, l.ID)
		}
	}
	if len(letters) != 3 || len(fine) != 1 {
		t.Fatalf("letters %s; want 3, one of them re-drivable", brief(letters))
	}
	ids := append(letterIDs(letters), "-", "+", "0", "1-2-3")
	res, err := d.Redrive(ctx, "contoso", redriver, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(ids) {
		t.Fatalf("results %+v for %v", res, ids)
	}
	for _, x := range res {
		var want error
		switch {
		case x.ID == fine[0]:
		case problems[x.ID] != "":
			want = notify.ErrUnredrivable
		default:
			want = keys.ErrInvalid
		}
		if want == nil && (x.Err != nil || x.Entry == "") || want != nil && (!errors.Is(x.Err, want) || x.Entry != "") {
			t.Errorf("redrive of %q: %+v; want %v", x.ID, x, want)
		}
	}
	left := mustList(t, d, "contoso")
	if len(left) != 2 || left[0].Problem == "" || left[1].Problem == "" {
		t.Errorf("left %s; want the two letters that can't be re-driven", brief(left))
	}
}

// TestDeadLettersRefuseABadTenant: a tenant id is checked like everywhere
// else, so that it can't reach another key (a hash tag of its own, a
// wildcard); and a tenant without dead letters has an empty list.
func TestDeadLettersRefuseABadTenant(t *testing.T) {
	rdb := testRedis(t)
	ctx := context.Background()
	d := notify.NewDeadLetters(rdb, audit.NewLog(rdb, nil), nil, nil)
	for _, bad := range []string{"", "Contoso", "contoso}", "a}:outbox:dead{b", "*", strings.Repeat("a", 64)} {
		if _, err := d.List(ctx, bad); !errors.Is(err, keys.ErrInvalid) {
			t.Errorf("List(%q): %v; want keys.ErrInvalid", bad, err)
		}
		if _, err := d.Redrive(ctx, bad, redriver, []string{"1-0"}); !errors.Is(err, keys.ErrInvalid) {
			t.Errorf("Redrive(%q): %v; want keys.ErrInvalid", bad, err)
		}
	}
	if ls, err := d.List(ctx, "contoso"); err != nil || len(ls) != 0 {
		t.Errorf("List of an empty stream: %+v, %v", ls, err)
	}
	if res, err := d.Redrive(ctx, "contoso", redriver, []string{"1-0"}); err != nil || len(res) != 1 || !errors.Is(res[0].Err, notify.ErrNoDeadLetter) {
		t.Errorf("Redrive on an empty stream: %+v, %v", res, err)
	}
	if n, err := rdb.Exists(ctx, notify.OutboxKey("contoso")).Result(); err != nil || n != 0 {
		t.Errorf("the outbox exists (%d, %v) after redrives of nothing", n, err)
	}
}

// TestRedrivenMessageWhoseRecipientsCantBeWorkedOutStaysRedrivable: a
// re-driven message that dies because its recipients can't be worked out
// (its request is unreadable in Redis) still names the recipients it was
// re-driven for, so it can be re-driven again once the request is
// repaired. A dead letter that names no recipient can't be.
func TestRedrivenMessageWhoseRecipientsCantBeWorkedOutStaysRedrivable(t *testing.T) {
	const eve = "eve@contoso.example"
	e := newRedriveEnv(t, eve)
	ctx := context.Background()
	r := e.create(t, operator(0))
	e.clock.Advance(time.Minute)
	e.act(t, r.ID, grants.ActionApprove, manager)
	drain(t, e.w)
	d := notify.NewDeadLetters(e.rdb, e.log, e.clock.Now, nil)
	var asked string
	for _, l := range mustList(t, d, "contoso") {
		if slices.Equal(l.Recipients, []string{"mail:" + eve}) {
			asked = l.ID
		}
	}
	if asked == "" {
		t.Fatal("eve's ask is no dead letter")
	}
	e.fix()
	reqKey := keys.Request("contoso", r.ID)
	stored, err := e.rdb.Get(ctx, reqKey).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Set(ctx, reqKey, "{corrupt", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Redrive(ctx, "contoso", redriver, []string{asked}); err != nil {
		t.Fatal(err)
	}
	once := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 1,
		SMTP: &notify.SMTPConfig{Addr: e.srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSNone}})
	drain(t, once)
	letters := mustList(t, d, "contoso")
	i := slices.IndexFunc(letters, func(l notify.DeadLetter) bool { return strings.Contains(l.Error, "corrupt") })
	if i < 0 || !slices.Equal(letters[i].Recipients, []string{"mail:" + eve}) || letters[i].Problem != "" ||
		letters[i].Kind != notify.KindPendingCustomer {
		t.Fatalf("dead letters %s; want eve's ask again, re-drivable", brief(letters))
	}

	if err := e.rdb.Set(ctx, reqKey, stored, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if res, err := d.Redrive(ctx, "contoso", redriver, []string{letters[i].ID}); err != nil || res[0].Err != nil {
		t.Fatalf("redrive: %+v, %v", res, err)
	}
	drain(t, e.w)
	var got []string
	for _, m := range e.srv.messages() {
		if m.To == eve {
			got = append(got, m.Subject)
		}
	}
	if len(got) != 1 || !strings.Contains(got[0], "awaits your decision") {
		t.Errorf("eve got %q; want her ask once", got)
	}
}

// TestDeadLetterTenants: the tenants with dead letters are found through
// the tenant set, however many tenants it holds (read a page at a time),
// each once, with how many letters; a member that is no tenant id names
// no key and is passed by.
func TestDeadLetterTenants(t *testing.T) {
	rdb := testRedis(t)
	ctx := context.Background()
	members := []any{"x}:outbox:dead{y", "Contoso"}
	for i := range 1200 {
		members = append(members, fmt.Sprintf("tenant-%d", i))
	}
	if err := rdb.SAdd(ctx, keys.Tenants(), members...).Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"tenant-7": 2, "tenant-700": 1, "tenant-1199": 3}
	for tenant, n := range want {
		for range n {
			if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: notify.DeadKey(tenant), Values: []any{"event", "{}", "recipients", "mail:a@b.example"}}).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	d := notify.NewDeadLetters(rdb, audit.NewLog(rdb, nil), nil, nil)
	got, err := d.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int64{}
	for _, c := range got {
		if _, twice := seen[c.Tenant]; twice {
			t.Errorf("tenant %s listed twice", c.Tenant)
		}
		seen[c.Tenant] = c.DeadLetters
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("tenants with dead letters %v, want %v", seen, want)
	}
}

// TestRedriveRefusesUnaudited: a re-drive is a provider action the
// tenant's audit log records; without the log, or without who re-drives,
// nothing is put back.
func TestRedriveRefusesUnaudited(t *testing.T) {
	e := newRedriveEnv(t, "eve@contoso.example")
	r := e.create(t, operator(0))
	e.act(t, r.ID, grants.ActionApprove, manager)
	drain(t, e.w)
	ctx := context.Background()
	letters := mustList(t, notify.NewDeadLetters(e.rdb, e.log, e.clock.Now, nil), "contoso")
	if len(letters) == 0 {
		t.Fatal("no dead letters")
	}
	for name, c := range map[string]struct {
		log notify.Auditor
		by  string
	}{"no audit log": {nil, redriver}, "nobody": {e.log, " "}} {
		d := notify.NewDeadLetters(e.rdb, c.log, e.clock.Now, nil)
		if res, err := d.Redrive(ctx, "contoso", c.by, letterIDs(letters)); err == nil || len(res) != 0 {
			t.Errorf("%s: re-drove %+v, %v", name, res, err)
		}
	}
	if left := mustList(t, notify.NewDeadLetters(e.rdb, e.log, e.clock.Now, nil), "contoso"); len(left) != len(letters) {
		t.Errorf("%d dead letters left of %d", len(left), len(letters))
	}
}

// TestRedriveWithReasonAuditsItAndRefusesControls: the reason of a
// re-drive is each record's Comment; one holding a control character (a
// line break that would forge a line of the log or of a CSV export, an
// escape a terminal acts on), a line separator or a bidirectional control
// (the tenant would read it reordered), or past MaxRedriveReason is
// refused before any letter is put back.
func TestRedriveWithReasonAuditsItAndRefusesControls(t *testing.T) {
	e := newRedriveEnv(t, "")
	e.create(t, operator(0)) // request.created: to the webhook alone, 410
	drain(t, e.w)
	ctx := context.Background()
	d := notify.NewDeadLetters(e.rdb, e.log, e.clock.Now, nil)
	letters := mustList(t, d, "contoso")
	if len(letters) != 1 {
		t.Fatalf("dead letters %s; want the webhook's", brief(letters))
	}
	// Bidirectional controls and line separators too, as every other text
	// a tenant reads: "\u202edevlos ton\u202c" reads "not solved" reversed.
	for _, bad := range []string{"INC-1\r\nCreationTime: forged", "\x1b[2Jfixed", strings.Repeat("x", notify.MaxRedriveReason+1),
		"INC-4711 \u202edevlos ton\u202c: relay fixed", "INC-4711 \u2066fixed\u2069", "INC-4711\u2028Approved by tenant", "INC-4711 \u200fmark"} {
		if res, err := d.RedriveWithReason(ctx, "contoso", redriver, bad, letterIDs(letters)); !errors.Is(err, notify.ErrBadReason) || len(res) != 0 {
			t.Errorf("reason %q: re-drove %+v, %v; want ErrBadReason and nothing", bad, res, err)
		}
	}
	if left := mustList(t, d, "contoso"); len(left) != 1 {
		t.Fatalf("%d dead letters left after refused reasons; want the one", len(left))
	}
	const reason = "INC-4711: webhook URL replaced"
	res, err := d.RedriveWithReason(ctx, "contoso", redriver, reason, letterIDs(letters))
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("redrive: %+v, %v", res, err)
	}
	msgs, err := e.rdb.XRevRangeN(ctx, keys.Audit("contoso"), "+", "-", 1).Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("audit log: %v, %v", msgs, err)
	}
	var rec record.Record
	if err := json.Unmarshal([]byte(msgs[0].Values["r"].(string)), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Operation != notify.OpRedrive || rec.Comment != reason || rec.ProviderUserId != redriver {
		t.Errorf("record %s, Comment %q, ProviderUserId %q; want the re-drive, %q, %q", rec.Operation, rec.Comment, rec.ProviderUserId, reason, redriver)
	}
}
