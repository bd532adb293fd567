package api_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/api"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/readlimit"
)

// wait bounds every wait of these tests: only a failure takes it.
const wait = 20 * time.Second

// heldReads runs every export and verification on the real log, but holds
// each (an export at its first record, a verification before it reads the
// chain), as a long log would, until the test says how it goes on or its
// context ends.
type heldReads struct {
	api.AuditSearcher
	started chan heldRead
}

// heldRead is one read being held; next takes how it goes on: "done" reads
// on to the end, "fail" fails it, "panic" panics in it.
type heldRead struct {
	name string // the request's X-Test-Read
	next chan string
}

// errHeldFailed is what a read told to "fail" returns.
var errHeldFailed = errors.New("the held read failed")

func (h *heldReads) Export(ctx context.Context, who identity.Principal, q audit.Query, w func(record.Record) error) error {
	first := true
	return h.AuditSearcher.Export(ctx, who, q, func(r record.Record) error {
		if first {
			first = false
			if err := h.hold(ctx); err != nil {
				return err
			}
		}
		return w(r)
	})
}

func (h *heldReads) VerifySince(ctx context.Context, who identity.Principal, tenant, since string) (audit.Verification, error) {
	if err := h.hold(ctx); err != nil {
		return audit.Verification{}, err
	}
	return h.AuditSearcher.VerifySince(ctx, who, tenant, since)
}

func (h *heldReads) hold(ctx context.Context) error {
	name, _ := ctx.Value(readName{}).(string)
	r := heldRead{name: name, next: make(chan string, 1)}
	h.started <- r
	timer := time.NewTimer(3 * wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return errStillReading
	case how := <-r.next:
		switch how {
		case "fail":
			return errHeldFailed
		case "panic":
			panic("the held read panics")
		}
		return nil
	}
}

// readName is the context key of a request's X-Test-Read on the server.
type readName struct{}

// readsEnv serves the API of e, with its long reads held, on a server that
// tells the test when the handler of each request has returned.
type readsEnv struct {
	*env
	held     *heldReads
	finished chan string // X-Test-Read of each request whose handler returned
}

func newReadsEnv(t *testing.T, opts ...func(*api.Config)) *readsEnv {
	t.Helper()
	held := &heldReads{started: make(chan heldRead, 64)}
	e := newEnv(t, append([]func(*api.Config){func(c *api.Config) {
		held.AuditSearcher = c.Audit
		c.Audit = held
	}}, opts...)...)
	req := e.file(alice, "contoso", "exchange")
	e.operatorActions(req, 3, "Get-Mailbox")
	req = e.file(bob, "fabrikam", "exchange")
	e.operatorActions(req, 3, "Get-Mailbox")

	finished := make(chan string, 64)
	h := e.srv.Config.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.Header.Get("X-Test-Read")
		if name != "" {
			// Deferred: a handler that panics has ended too.
			defer func() { finished <- name }()
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), readName{}, name)))
	}))
	t.Cleanup(srv.Close)
	e.srv = srv
	return &readsEnv{env: e, held: held, finished: finished}
}

// read is one request sent by start.
type read struct {
	name  string
	leave context.CancelFunc // the client goes away
	done  chan result
}

// start sends method path as u, named name, without waiting for the answer.
func (e *readsEnv) start(name string, u user, method, path string) *read {
	e.t.Helper()
	ctx, leave := context.WithCancel(context.Background())
	// Before the server's Close, which waits for every request to end.
	e.t.Cleanup(leave)
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token(u))
	req.Header.Set("X-Test-Read", name)
	rd := &read{name: name, leave: leave, done: make(chan result, 1)}
	go func() {
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			rd.done <- result{status: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			b = []byte(err.Error())
		}
		rd.done <- result{status: resp.StatusCode, header: resp.Header, body: b}
	}()
	return rd
}

// held waits until rd is held at its read.
func (e *readsEnv) heldAt(rd *read) heldRead {
	e.t.Helper()
	select {
	case h := <-e.held.started:
		if h.name != rd.name {
			e.t.Fatalf("read %s began, want %s", h.name, rd.name)
		}
		return h
	case r := <-rd.done:
		e.t.Fatalf("%s answered %d %s before it read the log", rd.name, r.status, r.body)
	case <-time.After(wait):
		e.t.Fatalf("%s did not begin to read", rd.name)
	}
	panic("unreachable")
}

// answer waits for rd's answer and checks it against openapi.yaml.
func (e *readsEnv) answer(rd *read, method, path string) result {
	e.t.Helper()
	select {
	case r := <-rd.done:
		if r.status < 0 {
			e.t.Fatalf("%s: %s", rd.name, r.body)
		}
		e.checkInvariants(method, path, r)
		return r
	case h := <-e.held.started:
		e.t.Fatalf("%s: read %s began; want %s refused", rd.name, h.name, rd.name)
	case <-time.After(wait):
		e.t.Fatalf("%s: no answer", rd.name)
	}
	panic("unreachable")
}

// refused fails the test unless method path as u is refused with 429
// too_many_reads and a Retry-After, without reading.
func (e *readsEnv) refused(name string, u user, method, path, msg string) {
	e.t.Helper()
	r := e.answer(e.start(name, u, method, path), method, path)
	wantError(e.t, r, http.StatusTooManyRequests, "too_many_reads", msg)
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		e.t.Errorf("%s: Retry-After = %q, want a whole number of seconds, at least 1", name, r.header.Get("Retry-After"))
	}
}

// ended waits until the handler of rd has returned, and with it the
// deferred calls of the read.
func (e *readsEnv) ended(rd *read) {
	e.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case name := <-e.finished:
			// Refused and HEAD requests end on their own.
			if name == rd.name {
				return
			}
		case <-deadline:
			e.t.Fatalf("%s did not end", rd.name)
		}
	}
}

const (
	contosoExport = "/v1/audit/export?tenant=contoso"
	contosoVerify = "/v1/audit/verify?tenant=contoso"
)

// TestAuditLongReadsAreBoundedPerCaller: exports and verifications run
// until done or until their client leaves, so one caller could start as
// many as it liked at once (hundreds of streams on one HTTP/2 connection),
// each reading a whole audit stream. A caller runs at most
// readlimit.DefaultPerCaller of them, exports and verifications
// together; one more is 429 too_many_reads with Retry-After, before it
// reads anything. HEAD, which reads nothing, is not counted, other callers
// are not held back, and the slot of a read whose client left is free
// again.
func TestAuditLongReadsAreBoundedPerCaller(t *testing.T) {
	e := newReadsEnv(t)
	if readlimit.DefaultPerCaller != 2 {
		t.Fatalf("readlimit.DefaultPerCaller = %d; this test holds 2", readlimit.DefaultPerCaller)
	}
	export := e.start("export", contosoAdmin, http.MethodGet, contosoExport)
	e.heldAt(export)
	verify := e.start("verify", contosoAdmin, http.MethodGet, contosoVerify)
	e.heldAt(verify)

	e.refused("third export", contosoAdmin, http.MethodGet, contosoExport, "one caller")
	e.refused("third verify", contosoAdmin, http.MethodGet, "/v1/audit/verify", "one caller")
	e.refused("jsonl export", contosoAdmin, http.MethodGet, "/v1/audit/export?format=jsonl", "one caller")
	for _, path := range []string{contosoExport, contosoVerify} {
		if r := e.answer(e.start("head", contosoAdmin, http.MethodHead, path), http.MethodHead, path); r.status != http.StatusOK {
			t.Errorf("HEAD %s: %d, want 200", path, r.status)
		}
	}

	// Other callers read as before, also of the same tenant.
	for _, c := range []struct {
		who  user
		path string
	}{
		{fabrikamAdmin, "/v1/audit/export?format=csv"},
		{contosoAuditor, contosoExport},
		{auditor, contosoVerify},
	} {
		rd := e.start("other "+c.who.sub, c.who, http.MethodGet, c.path)
		e.heldAt(rd).next <- "done"
		if r := e.answer(rd, http.MethodGet, c.path); r.status != http.StatusOK {
			t.Errorf("%s GET %s while contoso's admin is at the bound: %d %s", c.who.sub, c.path, r.status, r.body)
		}
	}

	// The export's client leaves: its slot is free again.
	export.leave()
	e.ended(export)
	again := e.start("again", contosoAdmin, http.MethodGet, contosoExport)
	e.heldAt(again)
	e.refused("after again", contosoAdmin, http.MethodGet, contosoVerify, "one caller")
}

// TestAuditLongReadSlotIsFreedHoweverTheReadEnds: a read's slot is given
// back when it ends, whether it read to the end, its client left, it
// failed or it panicked, for exports and verifications alike; a slot kept
// would leave the caller refused for good.
func TestAuditLongReadSlotIsFreedHoweverTheReadEnds(t *testing.T) {
	for _, how := range []string{"done", "client gone", "fail", "panic"} {
		for _, path := range []string{contosoExport, contosoVerify} {
			t.Run(how+" "+path, func(t *testing.T) {
				e := newReadsEnv(t)
				first := e.start("first", contosoAdmin, http.MethodGet, path)
				firstHeld := e.heldAt(first)
				second := e.start("second", contosoAdmin, http.MethodGet, contosoExport)
				e.heldAt(second)
				e.refused("refused", contosoAdmin, http.MethodGet, contosoVerify, "one caller")

				want := map[string]int{"done": 200, "fail": 500, "panic": 500}[how]
				if how == "client gone" {
					first.leave()
				} else {
					firstHeld.next <- how
				}
				e.ended(first)
				if want != 0 {
					if r := e.answer(first, http.MethodGet, path); r.status != want {
						t.Errorf("first read answered %d %s, want %d", r.status, r.body, want)
					}
				}
				e.heldAt(e.start("third", contosoAdmin, http.MethodGet, path))
				e.refused("fourth", contosoAdmin, http.MethodGet, contosoExport, "one caller")
			})
		}
	}
}

// TestAuditLongReadsAreBoundedPerReplica: many callers together can't
// keep more long reads running on a replica than Config.LongReads allows;
// one more is 429 too_many_reads too, whoever asks, until one ends.
func TestAuditLongReadsAreBoundedPerReplica(t *testing.T) {
	lim, err := readlimit.New(2, 3)
	if err != nil {
		t.Fatal(err)
	}
	e := newReadsEnv(t, func(c *api.Config) { c.LongReads = lim })
	var held []*read
	for i, who := range []user{contosoAdmin, fabrikamAdmin, auditor} {
		rd := e.start("held "+who.sub, who, http.MethodGet, []string{contosoExport, "/v1/audit/export?format=csv", contosoVerify}[i])
		e.heldAt(rd)
		held = append(held, rd)
	}
	e.refused("contoso auditor", contosoAuditor, http.MethodGet, contosoExport, "this server")
	e.refused("contoso admin", contosoAdmin, http.MethodGet, contosoVerify, "this server")

	held[1].leave()
	e.ended(held[1])
	e.heldAt(e.start("after", contosoAuditor, http.MethodGet, contosoExport))
}

// TestAuditReadsRefusedAreCounted: a refused long read was only logged, so
// an SRE could not tell from the metrics that callers meet the bounds. The
// Limiter counts each refusal by the bound it met (caller, replica), both
// at zero from the start, and shows how many long reads run now.
func TestAuditReadsRefusedAreCounted(t *testing.T) {
	lim, err := readlimit.New(2, 3)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := lim.Register(reg); err != nil {
		t.Fatal(err)
	}
	want := func(caller, replica, running float64) {
		t.Helper()
		got := map[string]float64{}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				name := mf.GetName()
				for _, l := range m.GetLabel() {
					name += "{" + l.GetName() + "=" + l.GetValue() + "}"
				}
				got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		exp := map[string]float64{
			"lockbox_audit_reads_refused_total{bound=caller}":  caller,
			"lockbox_audit_reads_refused_total{bound=replica}": replica,
			"lockbox_audit_reads_running":                      running,
		}
		if !maps.Equal(got, exp) {
			t.Errorf("metrics = %v, want %v", got, exp)
		}
	}
	want(0, 0, 0)

	e := newReadsEnv(t, func(c *api.Config) { c.LongReads = lim })
	first := e.start("first", contosoAdmin, http.MethodGet, contosoExport)
	e.heldAt(first)
	e.heldAt(e.start("second", contosoAdmin, http.MethodGet, contosoVerify))
	want(0, 0, 2)
	e.refused("third", contosoAdmin, http.MethodGet, contosoExport, "one caller")
	e.refused("fourth", contosoAdmin, http.MethodGet, contosoVerify, "one caller")
	want(2, 0, 2)

	e.heldAt(e.start("fabrikam", fabrikamAdmin, http.MethodGet, "/v1/audit/export?format=csv"))
	e.refused("auditor", auditor, http.MethodGet, contosoVerify, "this server")
	want(2, 1, 3)

	// A read that ends no longer runs.
	first.leave()
	e.ended(first)
	want(2, 1, 2)
}

// TestAuditLongReadBoundedOnlyWhenItWouldRun: the bound on long reads was
// judged before whether the read may run at all, so a caller at its bound,
// or anyone while the replica was at its own, got 429 too_many_reads,
// "retry when one has ended", for an export or a verification it may never
// run (403) or of a tenant never onboarded (404), and was counted as a
// long read refused. What the read would answer before reading comes
// first; only a read that would run meets the bound.
func TestAuditLongReadBoundedOnlyWhenItWouldRun(t *testing.T) {
	lim, err := readlimit.New(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := lim.Register(reg); err != nil {
		t.Fatal(err)
	}
	e := newReadsEnv(t, func(c *api.Config) { c.LongReads = lim })
	e.heldAt(e.start("held", contosoAdmin, http.MethodGet, contosoExport))

	for _, c := range []struct {
		name   string
		who    user
		path   string
		status int
		code   string
	}{
		{"operator's export", alice, contosoExport, http.StatusForbidden, "forbidden"},
		{"operator's verification", alice, contosoVerify, http.StatusForbidden, "forbidden"},
		{"another tenant's export", contosoAdmin, "/v1/audit/export?tenant=fabrikam", http.StatusForbidden, "forbidden"},
		{"another tenant's verification", contosoAdmin, "/v1/audit/verify?tenant=fabrikam", http.StatusForbidden, "forbidden"},
		{"export of a tenant never onboarded", auditor, "/v1/audit/export?tenant=nowhere", http.StatusNotFound, "tenant_not_found"},
		{"verification of a tenant never onboarded", auditor, "/v1/audit/verify?tenant=nowhere", http.StatusNotFound, "tenant_not_found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.answer(e.start(c.name, c.who, http.MethodGet, c.path), http.MethodGet, c.path)
			wantError(t, r, c.status, c.code, "")
			if ra := r.header.Get("Retry-After"); ra != "" {
				t.Errorf("Retry-After = %q on a call no retry can make pass", ra)
			}
		})
	}
	// A read that would run still meets the bounds.
	e.refused("contoso's own", contosoAdmin, http.MethodGet, contosoVerify, "one caller")
	e.refused("auditor's", auditor, http.MethodGet, contosoVerify, "this server")

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	refused := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "lockbox_audit_reads_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				refused[l.GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if want := map[string]float64{"caller": 1, "replica": 1}; !maps.Equal(refused, want) {
		t.Errorf("lockbox_audit_reads_refused_total by bound = %v, want %v: only reads that would run are refused reads", refused, want)
	}
}
