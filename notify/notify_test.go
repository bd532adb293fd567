package notify_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/notify"
	"github.com/lockbox-oss/lockbox/tenants"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// urlRE matches anything a mail client could make a link of.
var urlRE = regexp.MustCompile(`(?i)https?|://|www\.`)

type catalog map[string][]string

func (c catalog) Activities(s string) ([]string, bool) { a, ok := c[s]; return a, ok }

var cat = catalog{"exchange": {"Get-Mailbox", "Get-InboxRule"}, "sharepoint": {"Get-SPOSite"}, "onedrive": {"Get-OneDriveFile"}}

func who(sub, tid string, roles ...identity.Role) grants.Actor {
	return grants.Actor{Principal: identity.Principal{Subject: sub, TenantID: tid, Roles: roles}, ClientIP: "198.51.100.4"}
}

var (
	manager     = who("mary@provider.example", "", identity.RoleSupportManager)
	globalAdmin = who("gina@contoso.example", "contoso", identity.RoleGlobalAdmin)
	adam        = who("adam@contoso.example", "contoso", identity.RoleApprover)
)

func operator(n int) grants.Actor {
	return who(fmt.Sprintf("alice%d@provider.example", n), "", identity.RoleOperator)
}

type env struct {
	rdb     redis.UniversalClient
	clock   *clock.Fake
	store   *grants.Store
	tenants *tenants.Store
	log     *audit.Log
}

// testRedis returns the Redis of a test: a database of the package's
// redis-server, or the shared cluster within TestOnRedisCluster.
var testRedis = func(t testing.TB) redis.UniversalClient { return redistest.Client(t) }

func newEnv(t *testing.T) *env {
	t.Helper()
	rdb := testRedis(t)
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	ts := tenants.NewStore(rdb, log, c.Now)
	s, err := grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: ts, Catalog: cat, Now: c.Now, Outbox: notify.NewOutbox()})
	if err != nil {
		t.Fatal(err)
	}
	ts.SetGuard(s)
	tenanttest.Onboard(t, ts, "contoso")
	ctx := context.Background()
	for _, a := range []string{"adam@contoso.example", "eve@contoso.example"} {
		if err := ts.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.PutSettings(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", tenants.Settings{
		LockboxEnabled: true, NotificationAddresses: []string{"security@contoso.example"},
	}); err != nil {
		t.Fatal(err)
	}
	return &env{rdb: rdb, clock: c, store: s, tenants: ts, log: log}
}

const evilReason = "mailbox repair, see https://evil.example/x and www.evil.example\r\nBcc: x@evil.example"

func (e *env) create(t *testing.T, op grants.Actor) grants.Request {
	t.Helper()
	r, err := e.store.Create(context.Background(), op, grants.CreateInput{
		Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-7", Reason: evilReason, Duration: grants.Duration(2 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *env) act(t *testing.T, id string, a grants.Action, by grants.Actor) {
	t.Helper()
	if _, err := e.store.Act(context.Background(), id, a, by, "ok"); err != nil {
		t.Fatalf("%s by %s: %v", a, by.Principal.Subject, err)
	}
}

// smtpServer is a real SMTP server (emersion/go-smtp) that keeps what it
// receives and can be stopped and restarted on the same port.
type smtpServer struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	got  []received
	srv  *smtp.Server
	l    net.Listener
	// session makes sessions; plain ones by default.
	session      func() smtp.Session
	insecureAuth bool
	// tls, when set, has the server offer STARTTLS with it.
	tls *tls.Config
}

type received struct {
	To, Subject, MessageID, Body string
	Raw                          string
}

func startSMTP(t *testing.T) *smtpServer {
	s := &smtpServer{t: t, addr: "127.0.0.1:0"}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *smtpServer) start() {
	s.t.Helper()
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.addr = l.Addr().String()
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		if s.session != nil {
			return s.session(), nil
		}
		return &session{s: s}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = s.insecureAuth
	srv.TLSConfig = s.tls
	srv.ReadTimeout, srv.WriteTimeout = 5*time.Second, 5*time.Second
	s.mu.Lock()
	s.srv, s.l = srv, l
	s.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

func (s *smtpServer) stop() {
	s.mu.Lock()
	srv, l := s.srv, s.l
	s.srv, s.l = nil, nil
	s.mu.Unlock()
	if srv != nil {
		// Close the listener ourselves too: Serve may not have started yet.
		_ = l.Close()
		_ = srv.Close()
	}
}

func (s *smtpServer) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

type session struct {
	s  *smtpServer
	to []string
}

func (x *session) Reset()        { x.to = nil }
func (x *session) Logout() error { return nil }
func (x *session) Mail(string, *smtp.MailOptions) error {
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}
func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		return err
	}
	var body []byte
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body, err = io.ReadAll(quotedprintable.NewReader(m.Body))
	} else {
		body, err = io.ReadAll(m.Body)
	}
	if err != nil {
		return err
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	for _, to := range x.to {
		x.s.got = append(x.s.got, received{To: to, Subject: subj, MessageID: m.Header.Get("Message-ID"), Body: string(body), Raw: string(raw)})
	}
	return nil
}

type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []notify.WebhookPayload
	raw    []string
	bad    int
	status int
}

// startHook starts a webhook receiver that verifies each delivery as of
// now (the test's clock, which signed it) and refuses a bad one.
func startHook(t *testing.T, now func() time.Time, secret []byte, status int) *hookServer {
	h := &hookServer{status: status}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if notify.Verify(secret, b, r.Header.Get(notify.DeliveryHeader), r.Header.Get(notify.TimestampHeader),
			r.Header.Get(notify.SignatureHeader), now(), 0) != nil || r.Header.Get(notify.DeliveryHeader) == "" {
			h.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if h.status != 0 {
			w.WriteHeader(h.status)
			return
		}
		var p notify.WebhookPayload
		if err := json.Unmarshal(b, &p); err != nil {
			h.bad++
		}
		h.bodies = append(h.bodies, p)
		h.raw = append(h.raw, string(b))
	}))
	t.Cleanup(h.Close)
	return h
}

func newWorker(t *testing.T, cfg notify.Config) *notify.Worker {
	t.Helper()
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	cfg.Backoff = func(int) time.Duration { return 0 }
	w, err := notify.NewWorker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// drain runs rounds until the outbox is empty.
func drain(t *testing.T, w *notify.Worker) {
	t.Helper()
	ctx := context.Background()
	for range 50 {
		if _, err := w.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := w.Depth(ctx); err != nil {
			t.Fatal(err)
		} else if n == 0 {
			return
		}
	}
	t.Fatal("outbox never drained")
}

// lifecycle files a request, has it approved by the manager and adam, then
// revoked by the tenant's global admin gina: 4 outbox entries (created,
// pending_customer, approved, revoked) and, without manager addresses, 14
// e-mails: the requester 3, the tenant's global admin contact
// (admin@contoso.example), adam, eve and security@ the pending request,
// the admin, eve and security@ adam's decision, and the admin, adam, eve
// and security@ gina's revocation.
// asked, when set, runs while the request awaits the tenant (a worker
// delivering then): the tenant's "awaits your decision" e-mails go out only
// while it does, so delivered after the whole lifecycle the 4 of them are
// stale, what follows them goes to nobody they never reached but adam,
// who approved, and 4 e-mails go out (lateMails).
func (e *env) lifecycle(t *testing.T, n int, asked func()) grants.Request {
	r := e.create(t, operator(n))
	e.clock.Advance(time.Minute)
	e.act(t, r.ID, grants.ActionApprove, manager)
	if asked != nil {
		asked()
	}
	e.clock.Advance(time.Minute)
	e.act(t, r.ID, grants.ActionApprove, adam)
	e.clock.Advance(time.Minute)
	e.act(t, r.ID, grants.ActionRevoke, globalAdmin)
	return r
}

func TestDeliversEveryMessageWithoutLinks(t *testing.T) {
	e := newEnv(t)
	srv := startSMTP(t)
	secret := []byte("s3cret")
	hook := startHook(t, e.clock.Now, secret, 0)
	w := newWorker(t, notify.Config{
		Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
		SMTP:     &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", StartTLS: notify.StartTLSOpportunistic},
		Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: secret}},
	})
	r := e.lifecycle(t, 0, func() { drain(t, w) })
	drain(t, w)

	byTo := map[string][]received{}
	for _, m := range srv.messages() {
		byTo[m.To] = append(byTo[m.To], m)
		for _, s := range []string{m.Subject, m.Body} {
			if urlRE.MatchString(s) {
				t.Errorf("message to %s contains a link: %q", m.To, s)
			}
		}
		if strings.Contains(m.Raw, "\nBcc:") {
			t.Errorf("header injected: %q", m.Raw)
		}
	}
	want := map[string]int{"admin@contoso.example": 3, "adam@contoso.example": 2, "eve@contoso.example": 3, "security@contoso.example": 3, "alice0@provider.example": 3}
	for to, n := range want {
		if len(byTo[to]) != n {
			t.Errorf("%s got %d messages, want %d: %+v", to, len(byTo[to]), n, byTo[to])
		}
	}
	if len(byTo) != len(want) {
		t.Errorf("recipients = %v", byTo)
	}
	pending := byTo["adam@contoso.example"][0]
	decideBy := t0.Add(time.Minute + grants.DecisionWindow).Format("2006-01-02 15:04 UTC")
	for _, s := range []string{"contoso", "exchange", "SR-7", "mailbox repair", "Requested duration:      2h\n",
		"Requested activities:    all read activities\n", decideBy, r.ID} {
		if !strings.Contains(strings.ReplaceAll(pending.Body, "\r\n", "\n"), s) {
			t.Errorf("pending e-mail lacks %q:\n%s", s, pending.Body)
		}
	}
	if strings.Contains(pending.Body, "alice0") {
		t.Errorf("tenant e-mail names the engineer:\n%s", pending.Body)
	}
	if !strings.Contains(pending.Subject, r.ID) {
		t.Errorf("subject = %q", pending.Subject)
	}
	already := byTo["eve@contoso.example"][1]
	if !strings.Contains(already.Subject, "already approved by adam@contoso.example") {
		t.Errorf("already-decided subject = %q", already.Subject)
	}
	var outcomes []string
	for _, m := range byTo["alice0@provider.example"] {
		outcomes = append(outcomes, m.Subject)
	}
	for i, s := range []string{"awaits the tenant", "was approved (", "was revoked"} {
		if !strings.Contains(outcomes[i], s) {
			t.Errorf("requester message %d = %q, want %q", i, outcomes[i], s)
		}
	}

	hook.mu.Lock()
	defer hook.mu.Unlock()
	if hook.bad != 0 || len(hook.bodies) != 4 {
		t.Fatalf("webhook: %d bad, %d good (want 4): %+v", hook.bad, len(hook.bodies), hook.bodies)
	}
	var events []string
	for _, p := range hook.bodies {
		events = append(events, string(p.Event))
		if p.RequestID != r.ID || p.Tenant != "contoso" || strings.Contains(p.Summary, "alice") || urlRE.MatchString(p.Summary) ||
			p.Duration != "2h" || p.Activities == nil {
			t.Errorf("webhook payload %+v", p)
		}
	}
	if got := strings.Join(events, ","); got != "request.created,request.pending_customer,request.approved,request.revoked" {
		t.Errorf("webhook events = %s", got)
	}
}

// lateMails is how many e-mails a lifecycle delivered only after it ended
// sends: the requester 3, and adam, who approved, gina's revocation; not
// the tenant's stale "awaits your decision", nor what follows it to those
// it never reached (adam's decision, gina's revocation).
const lateMails = 4

func TestSMTPDownThenBackDeliversEverything(t *testing.T) {
	e := newEnv(t)
	e.lifecycle(t, 0, nil)
	srv := startSMTP(t)
	srv.stop()
	reg := prometheus.NewRegistry()
	w := newWorker(t, notify.Config{
		Redis: e.rdb, Now: e.clock.Now, Consumer: "a", Registerer: reg, MaxAttempts: 100, Batch: 2,
		SMTP: &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", Timeout: 2 * time.Second},
	})
	ctx := context.Background()
	for range 3 {
		if _, err := w.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The creation's entry has no recipient without manager addresses or
	// webhooks: it is done; the other three wait.
	if n, _ := w.Depth(ctx); n != 3 {
		dead, _ := e.rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
		t.Fatalf("depth with SMTP down = %d, want 3; dead %v", n, dead)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "smtp", "error")); got < lateMails*3 {
		t.Errorf("smtp errors = %v", got)
	}
	srv.start()
	drain(t, w)
	msgs := srv.messages()
	if len(msgs) != lateMails {
		t.Fatalf("delivered %d messages after restart, want %d", len(msgs), lateMails)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		k := m.MessageID + " " + m.To
		if seen[k] {
			t.Errorf("sent twice: %s", k)
		}
		seen[k] = true
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "smtp", "ok")); got != lateMails {
		t.Errorf("smtp ok = %v", got)
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, channel, result string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "lockbox_notifications_sent_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["channel"] == channel && labels["result"] == result {
				c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
				c.Add(m.GetCounter().GetValue())
				return c
			}
		}
	}
	t.Fatalf("no sent_total{%s,%s}", channel, result)
	return nil
}

// TestTwoReplicasSendEachMessageOnce: two replicas delivering one outbox
// send each message once. The replicas' rounds are counted, so that the
// test stops them only once the outbox is drained and each replica has
// run a whole round after that: a replica still holding a message another
// one delivered would have sent it by then, however late it came.
func TestTwoReplicasSendEachMessageOnce(t *testing.T) {
	e := newEnv(t)
	const requests = 8
	for i := range requests {
		e.lifecycle(t, i, nil)
	}
	srv := startSMTP(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // also when the test fails early
	workers := make([]*notify.Worker, 2)
	rounds := make([]atomic.Int64, len(workers)) // rounds finished, by replica
	for i := range workers {
		rdb := redistest.Clone(t, e.rdb)
		cfg := notify.Config{
			Redis: rdb, Now: e.clock.Now, Consumer: fmt.Sprintf("replica-%d", i), PollInterval: 5 * time.Millisecond,
			Batch: 3, SMTP: &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example"},
		}
		workers[i] = newWorker(t, cfg)
		// What Run does, counting the rounds.
		wg.Go(func() {
			for {
				_, _ = workers[i].Tick(ctx)
				rounds[i].Add(1)
				select {
				case <-ctx.Done():
					return
				case <-time.After(cfg.PollInterval):
				}
			}
		})
	}
	// waitFor bounds each wait generously; what the test asserts is what
	// it finds after, not how soon.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 30s: %s; delivered %d of %d", what, len(srv.messages()), lateMails*requests)
			}
		}
	}
	waitFor("the outbox is not drained", func() bool {
		n, err := workers[0].Depth(context.Background())
		return err == nil && n == 0 && len(srv.messages()) >= lateMails*requests
	})
	// A round that began before the drain may still hold a message; the
	// second one from now began after it.
	drained := make([]int64, len(workers))
	for i := range workers {
		drained[i] = rounds[i].Load()
	}
	waitFor("a replica has not run two rounds since the outbox drained", func() bool {
		for i := range workers {
			if rounds[i].Load() < drained[i]+2 {
				return false
			}
		}
		return true
	})
	cancel()
	wg.Wait()
	msgs := srv.messages()
	if len(msgs) != lateMails*requests {
		t.Errorf("delivered %d, want %d", len(msgs), lateMails*requests)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		k := m.MessageID + " " + m.To
		if seen[k] {
			t.Errorf("sent twice: %s", k)
		}
		seen[k] = true
	}
}

func TestDeadLetterAfterMaxAttempts(t *testing.T) {
	e := newEnv(t)
	r := e.create(t, operator(0))
	e.act(t, r.ID, grants.ActionApprove, manager) // created + pending_customer entries
	secret := []byte("k")
	hook := startHook(t, e.clock.Now, secret, http.StatusInternalServerError)
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	w := newWorker(t, notify.Config{
		Redis: e.rdb, Now: e.clock.Now, Consumer: "a", Registerer: reg, MaxAttempts: 3, DevDir: dir,
		Webhooks: []notify.WebhookConfig{{URL: hook.URL, Secret: secret}},
	})
	ctx := context.Background()
	for i := range 3 {
		if _, err := w.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if n, _ := e.rdb.XLen(ctx, notify.DeadKey("contoso")).Result(); (i < 2) != (n == 0) {
			t.Fatalf("after attempt %d dead = %d", i+1, n)
		}
	}
	dead, err := e.rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
	if err != nil || len(dead) != 2 {
		t.Fatalf("dead = %v, %v", dead, err)
	}
	if dead[0].Values["recipients"] != "webhook:0" || !strings.Contains(dead[0].Values["error"].(string), "500") {
		t.Errorf("dead entry = %v", dead[0].Values)
	}
	if n, _ := w.Depth(ctx); n != 0 {
		t.Errorf("depth = %d", n)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "webhook", "dead")); got != 2 {
		t.Errorf("webhook dead = %v", got)
	}
	// The e-mails (requester, global admin, adam, eve, security@) went out
	// once each through the dev sink, despite the retries.
	if got := testutil.ToFloat64(mustCounter(t, reg, "dev", "ok")); got != 5 {
		t.Errorf("dev ok = %v, want 5", got)
	}
	files, _ := filepathGlob(dir)
	if len(files) != 5 {
		t.Errorf("dev files = %v", files)
	}
}

// TestWebhookErrorsKeepTheURLsCredential: a receiver's URL may carry its
// credential in the path or query (Slack's and Teams' incoming webhooks
// do); a failed delivery names the receiver by origin in the log and the
// dead-letter stream, never with that credential.
func TestWebhookErrorsKeepTheURLsCredential(t *testing.T) {
	const token = "T0KEN-in-the-path"
	secret := []byte("k")
	refusing := startStatusHook(t, answer{status: http.StatusInternalServerError})
	gone := startStatusHook(t, answer{status: http.StatusGone}) // dead-lettered at once
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // nothing listens there any more: a connection error
	for _, tc := range []struct{ name, base, says string }{
		{"error status", refusing.URL, "status 500"}, {"gone", gone.URL, "status 410"}, {"connection refused", closed.URL, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.create(t, operator(0))
			var logs bytes.Buffer
			w := newWorker(t, notify.Config{
				Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 1, DevDir: t.TempDir(),
				Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
				Webhooks: []notify.WebhookConfig{{URL: tc.base + "/services/" + token + "?code=" + token, Secret: secret}},
			})
			ctx := context.Background()
			if _, err := w.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			dead, err := e.rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
			if err != nil || len(dead) == 0 {
				t.Fatalf("dead = %v, %v", dead, err)
			}
			for _, d := range dead {
				msg := d.Values["error"].(string)
				if strings.Contains(msg, token) || !strings.Contains(msg, tc.base) || !strings.Contains(msg, tc.says) {
					t.Errorf("dead-letter error %q: want the origin %s without the URL's path and query, and %q", msg, tc.base, tc.says)
				}
			}
			if strings.Contains(logs.String(), token) {
				t.Errorf("the log holds the URL's credential:\n%s", logs.String())
			}
			if !strings.Contains(logs.String(), tc.base) {
				t.Errorf("the log does not name the receiver's origin %s:\n%s", tc.base, logs.String())
			}
		})
	}
}
