package console_test

import (
	"context"
	"errors"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/readlimit"
	"github.com/prometheus/client_golang/prometheus"
)

// wait bounds every wait of these tests: only a failure takes it.
const wait = 20 * time.Second

// heldReads runs every export and verification on the real log, but holds
// each (an export at its first record, a verification before it reads the
// chain), as a long log would, until the test says how it goes on or its
// context ends.
type heldReads struct {
	console.Audit
	started chan heldRead
}

// heldRead is one read being held; next takes how it goes on: "done" reads
// on to the end, "fail" fails it, "panic" panics in it.
type heldRead struct {
	name string // the request's X-Test-Read
	next chan string
}

func (h *heldReads) Export(ctx context.Context, who identity.Principal, q audit.Query, w func(record.Record) error) error {
	first := true
	return h.Audit.Export(ctx, who, q, func(r record.Record) error {
		if first {
			first = false
			if err := h.hold(ctx); err != nil {
				return err
			}
		}
		return w(r)
	})
}

func (h *heldReads) Verify(ctx context.Context, who identity.Principal, tenant string) (audit.Verification, error) {
	if err := h.hold(ctx); err != nil {
		return audit.Verification{}, err
	}
	return h.Audit.Verify(ctx, who, tenant)
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
			return errors.New("the held read failed")
		case "panic":
			panic("the held read panics")
		}
		return nil
	}
}

// readName is the context key of a request's X-Test-Read on the server.
type readName struct{}

// readsEnv serves the console of e, with its long reads held, on a server
// that tells the test when the handler of each request has returned.
type readsEnv struct {
	*env
	held     *heldReads
	finished chan string // X-Test-Read of each request whose handler returned
	url      string
}

func newReadsEnv(t *testing.T, opts ...func(*console.Config)) *readsEnv {
	t.Helper()
	held := &heldReads{started: make(chan heldRead, 64)}
	e := newEnv(t, append(opts, func(c *console.Config) {
		held.Audit = c.Audit
		c.Audit = held
	})...)
	e.file("contoso")
	e.file("fabrikam")
	finished := make(chan string, 64)
	h := e.srv.Config.Handler
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.Header.Get("X-Test-Read")
		if name != "" {
			// Deferred: a handler that panics has ended too.
			defer func() { finished <- name }()
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), readName{}, name)))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the "panic" reads
	srv.Start()
	t.Cleanup(srv.Close)
	return &readsEnv{env: e, held: held, finished: finished, url: srv.URL}
}

// read is one request sent by start.
type read struct {
	name  string
	leave context.CancelFunc // the browser goes away
	done  chan resp
}

// start sends method path from b, named name, without waiting for the
// answer.
func (e *readsEnv) start(b *browser, name, method, path string) *read {
	e.t.Helper()
	ctx, leave := context.WithCancel(context.Background())
	// Before the server's Close, which waits for every request to end.
	e.t.Cleanup(leave)
	req, err := http.NewRequestWithContext(ctx, method, e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("X-Test-Read", name)
	rd := &read{name: name, leave: leave, done: make(chan resp, 1)}
	go func() {
		res, err := b.c.Do(req)
		if err != nil {
			rd.done <- resp{status: -1, body: err.Error()}
			return
		}
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		if err != nil {
			raw = []byte(err.Error())
		}
		rd.done <- resp{status: res.StatusCode, header: res.Header, body: string(raw)}
	}()
	return rd
}

// heldAt waits until rd is held at its read.
func (e *readsEnv) heldAt(rd *read) heldRead {
	e.t.Helper()
	select {
	case h := <-e.held.started:
		if h.name != rd.name {
			e.t.Fatalf("read %s began, want %s", h.name, rd.name)
		}
		return h
	case r := <-rd.done:
		e.t.Fatalf("%s answered before it read the log: %s", rd.name, r)
	case <-time.After(wait):
		e.t.Fatalf("%s did not begin to read", rd.name)
	}
	panic("unreachable")
}

// answer waits for rd's answer.
func (e *readsEnv) answer(rd *read) resp {
	e.t.Helper()
	select {
	case r := <-rd.done:
		if r.status < 0 {
			e.t.Fatalf("%s: %s", rd.name, r.body)
		}
		return r
	case h := <-e.held.started:
		e.t.Fatalf("%s: read %s began; want %s refused", rd.name, h.name, rd.name)
	case <-time.After(wait):
		e.t.Fatalf("%s: no answer", rd.name)
	}
	panic("unreachable")
}

// refused fails the test unless method path from b is refused with a 429
// page that says why, and a Retry-After, without reading.
func (e *readsEnv) refused(b *browser, name, method, path, msg string) {
	e.t.Helper()
	r := e.answer(e.start(b, name, method, path))
	if r.status != http.StatusTooManyRequests {
		e.t.Fatalf("%s: %s, want 429", name, r)
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		e.t.Errorf("%s: Retry-After = %q, want a whole number of seconds, at least 1", name, r.header.Get("Retry-After"))
	}
	if method == http.MethodGet {
		mustContain(e.t, name, r, msg, "Too many audit reads")
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
	contosoExport = "/console/audit/export.csv?tenant=contoso"
	contosoVerify = "/console/audit?tenant=contoso&verify=1"
)

// TestAuditLongReadsAreBoundedPerUser: the admin center's exports and
// verifications run until done or until the browser leaves, so one user
// could start as many as they liked at once (each tab, or a script with
// the session's cookie, reading a whole audit stream). A user runs at most
// two, exports and verifications together; one more is a 429 page that
// says why, before it reads anything. HEAD, which reads nothing, is not
// counted, other users are not held back, and the slot of a read whose
// browser left is free again.
func TestAuditLongReadsAreBoundedPerUser(t *testing.T) {
	parallel(t)
	e := newReadsEnv(t)
	b := e.signIn(contosoAdmin)
	export := e.start(b, "export", http.MethodGet, contosoExport)
	e.heldAt(export)
	verify := e.start(b, "verify", http.MethodGet, contosoVerify)
	e.heldAt(verify)

	// Another browser of the same user counts with the first.
	b2 := e.signIn(contosoAdmin)
	e.refused(b, "third export", http.MethodGet, "/console/audit/export.csv", "at once")
	e.refused(b2, "third verify", http.MethodGet, "/console/audit?verify=1", "at once")
	for _, path := range []string{contosoExport, contosoVerify} {
		if r := e.answer(e.start(b, "head", http.MethodHead, path)); r.status != http.StatusOK {
			t.Errorf("HEAD %s: %d, want 200", path, r.status)
		}
	}

	// Other users read as before, also of the same tenant.
	for _, c := range []struct {
		who  identity.Principal
		path string
	}{
		{fabrikamAdmin, "/console/audit/export.csv"},
		{auditor, contosoExport},
		{auditor, contosoVerify},
	} {
		rd := e.start(e.signIn(c.who), "other "+c.who.Subject+" "+c.path, http.MethodGet, c.path)
		e.heldAt(rd).next <- "done"
		if r := e.answer(rd); r.status != http.StatusOK {
			t.Errorf("%s GET %s while contoso's admin is at the bound: %s", c.who.Subject, c.path, r)
		}
	}

	// The export's browser leaves: its slot is free again.
	export.leave()
	e.ended(export)
	e.heldAt(e.start(b, "again", http.MethodGet, contosoExport))
	e.refused(b, "after again", http.MethodGet, contosoVerify, "at once")
}

// TestAuditLongReadSlotIsFreedHoweverTheReadEnds: a read's slot is given
// back when it ends, whether it read to the end, the browser left, it
// failed or it panicked, for exports and verifications alike.
func TestAuditLongReadSlotIsFreedHoweverTheReadEnds(t *testing.T) {
	parallel(t)
	for _, how := range []string{"done", "browser gone", "fail", "panic"} {
		for _, path := range []string{contosoExport, contosoVerify} {
			t.Run(how+" "+strings.TrimPrefix(path, "/console/"), func(t *testing.T) {
				parallel(t)
				e := newReadsEnv(t)
				b := e.signIn(auditor)
				first := e.start(b, "first", http.MethodGet, path)
				firstHeld := e.heldAt(first)
				e.heldAt(e.start(b, "second", http.MethodGet, contosoExport))
				e.refused(b, "refused", http.MethodGet, contosoVerify, "at once")

				if how == "browser gone" {
					first.leave()
				} else {
					firstHeld.next <- how
				}
				e.ended(first)
				e.heldAt(e.start(b, "third", http.MethodGet, path))
				e.refused(b, "fourth", http.MethodGet, contosoExport, "at once")
			})
		}
	}
}

// TestAuditLongReadBoundedOnlyWhenItWouldRun: the bound on long reads was
// judged before whether the read may run at all, so a user at their
// bound, or anyone while the server was at its own, got the 429 "too many
// audit reads, try again" page, with a Retry-After, for an export or a
// verification they may never run (403) or of a tenant never onboarded
// (404), and was counted as a long read refused. What the read would
// answer before reading comes first; only a read that would run meets the
// bound.
func TestAuditLongReadBoundedOnlyWhenItWouldRun(t *testing.T) {
	parallel(t)
	lim, err := readlimit.New(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := lim.Register(reg); err != nil {
		t.Fatal(err)
	}
	e := newReadsEnv(t, func(c *console.Config) { c.LongReads = lim })
	admin := e.signIn(contosoAdmin)
	e.heldAt(e.start(admin, "held", http.MethodGet, contosoExport))

	for _, c := range []struct {
		name   string
		who    identity.Principal
		path   string
		status int
	}{
		{"operator's export", alice, contosoExport, http.StatusForbidden},
		{"operator's verification", alice, contosoVerify, http.StatusForbidden},
		{"export of a tenant never onboarded", auditor, "/console/audit/export.csv?tenant=nowhere", http.StatusNotFound},
		{"verification of a tenant never onboarded", auditor, "/console/audit?tenant=nowhere&verify=1", http.StatusNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.answer(e.start(e.signIn(c.who), c.name, http.MethodGet, c.path))
			if r.status != c.status {
				t.Errorf("%s", r)
				t.Fatalf("GET %s as %s: %d, want %d", c.path, c.who.Subject, r.status, c.status)
			}
			if ra := r.header.Get("Retry-After"); ra != "" {
				t.Errorf("Retry-After = %q on a read no retry can make run", ra)
			}
		})
	}
	// A read that would run still meets the bounds.
	e.refused(admin, "contoso's own", http.MethodGet, contosoVerify, "at once")
	e.refused(e.signIn(auditor), "auditor's", http.MethodGet, contosoVerify, "Try again in a minute")

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
