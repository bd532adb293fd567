package console_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
)

// TestAuditVerifyOutlivesThePageDeadline: verifying reads and hashes the
// tenant's whole log, which for millions of records takes longer than the
// page's deadline (Config.Timeout). It ran under that deadline, so a large
// log could never be verified: the page failed instead of showing a
// result. Here the page's search takes the whole deadline, so the
// verification begins after it, as one halfway through a long log would
// go on after it.
func TestAuditVerifyOutlivesThePageDeadline(t *testing.T) {
	parallel(t)
	probe := &lateSearch{}
	e := newEnv(t, func(c *console.Config) {
		// Long enough for the sign-in's and the page's store calls on a
		// loaded machine; the page's search waits it out.
		c.Timeout = 2 * time.Second
		probe.Audit = c.Audit
		c.Audit = probe
	})
	b := e.signIn(auditor)
	probe.armed.Store(true)
	r := b.get("/console/audit?tenant=contoso&verify=1")
	if !probe.waited.Load() {
		t.Fatal("the search did not wait out the page's deadline: the test proves nothing")
	}
	if r.status != http.StatusOK {
		t.Fatalf("verification past the page's deadline: %s", r)
	}
	mustContain(t, "verified audit page", r, `data-testid="verification"`, "Hash chain intact")
}

// TestAuditVerifyEndsWhenTheBrowserGoesAway: a verification past the page's
// deadline still ends when its browser leaves, rather than reading the rest
// of a long log for no one.
func TestAuditVerifyEndsWhenTheBrowserGoesAway(t *testing.T) {
	parallel(t)
	probe := &lateSearch{reading: make(chan struct{}), ended: make(chan error, 1)}
	e := newEnv(t, func(c *console.Config) {
		c.Timeout = 2 * time.Second
		probe.Audit = c.Audit
		c.Audit = probe
	})
	b := e.signIn(auditor)
	probe.armed.Store(true)

	ctx, leave := context.WithCancel(context.Background())
	defer leave()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/console/audit?tenant=contoso&verify=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan error, 1)
	go func() {
		res, err := b.c.Do(req)
		if err == nil {
			res.Body.Close()
		}
		answered <- err
	}()
	select {
	case <-probe.reading:
	case err := <-answered:
		t.Fatalf("answered before the verification began: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the verification did not start")
	}
	leave() // the browser goes away; nothing was written to it
	<-answered
	if err := <-probe.ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("the verification went on after its browser left: %v", err)
	}
}

// lateSearch, once armed, has the next search of the audit log answer only
// once its page's deadline has passed. With reading set, it also holds the
// verification that follows until its context ends (or 10 s pass), and
// ended gets the context's error; without, it verifies from the real log.
type lateSearch struct {
	console.Audit
	armed, waited atomic.Bool
	reading       chan struct{}
	ended         chan error
}

func (l *lateSearch) Search(ctx context.Context, p identity.Principal, q audit.Query) (audit.Page, error) {
	page, err := l.Audit.Search(ctx, p, q)
	if !l.armed.CompareAndSwap(true, false) {
		return page, err
	}
	if _, ok := ctx.Deadline(); ok {
		<-ctx.Done()
		l.waited.Store(true)
	}
	return page, err
}

func (l *lateSearch) Verify(ctx context.Context, p identity.Principal, tenant string) (audit.Verification, error) {
	if l.reading == nil {
		return l.Audit.Verify(ctx, p, tenant)
	}
	close(l.reading)
	select {
	case <-ctx.Done():
		l.ended <- ctx.Err()
		return audit.Verification{}, ctx.Err()
	case <-time.After(10 * time.Second):
		l.ended <- errStillReading
		return audit.Verification{}, errStillReading
	}
}

// TestAuditVerifyOutlastsWriteTimeout: the listener's WriteTimeout counts
// from the request's arrival, so a verification that took longer than it
// had its page cut, over HTTP/1.1 and HTTP/2 (whose stream is reset when
// the deadline passes, written to or not). The verification moves the
// write deadline on while it reads, as an export does.
func TestAuditVerifyOutlastsWriteTimeout(t *testing.T) {
	const timeout = time.Second // as TestAuditExportOutlastsWriteTimeout's
	e := newStores(t, clock.NewFake(start))
	cfg := e.consoleConfig()
	for _, p := range people {
		cfg.DevIdentities = append(cfg.DevIdentities, console.DevIdentity{Principal: p, Description: string(p.Roles[0])})
	}
	cfg.Audit = heldVerify{Audit: cfg.Audit, hold: 3 * timeout / 2}
	srv := httptest.NewUnstartedServer(nil)
	cfg.PublicURL = "https://" + srv.Listener.Addr().String()
	c, err := console.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = c
	srv.EnableHTTP2 = true
	srv.Config.WriteTimeout = timeout
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	e.srv, e.cfg = srv, cfg
	b := e.signIn(contosoAdmin)
	for _, h2 := range []bool{false, true} {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		tr.ForceAttemptHTTP2 = h2
		if !h2 {
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
		t.Cleanup(tr.CloseIdleConnections)
		client := &http.Client{Transport: tr, Jar: b.c.Jar, Timeout: 20 * timeout}
		res, err := client.Get(srv.URL + "/console/audit?tenant=contoso&verify=1")
		if err != nil {
			t.Errorf("HTTP/2 %t: %v", h2, err)
			continue
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK || !strings.Contains(string(body), "Hash chain intact") {
			t.Errorf("%s (HTTP/2 %t): %s, %v\n%.2000s", res.Proto, h2, res.Status, err, body)
		}
	}
}

// heldVerify verifies from the real log after hold: a verification of a
// log that takes that long to read.
type heldVerify struct {
	console.Audit
	hold time.Duration
}

func (h heldVerify) Verify(ctx context.Context, p identity.Principal, tenant string) (audit.Verification, error) {
	select {
	case <-ctx.Done():
		return audit.Verification{}, ctx.Err()
	case <-time.After(h.hold):
	}
	return h.Audit.Verify(ctx, p, tenant)
}
