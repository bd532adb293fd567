package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/api"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestAuditVerifyOutlivesTheCallDeadline: verification reads and hashes
// the tenant's whole log, which for millions of records takes longer than
// the call's deadline (Config.Timeout). It ran under that deadline, so a
// large log could never be verified: the caller got 503 instead of a
// result. Here the deadline has passed before the handler runs, as it
// would have halfway through a long log.
func TestAuditVerifyOutlivesTheCallDeadline(t *testing.T) {
	e := newEnv(t, func(c *api.Config) {
		c.Auth, c.Timeout = afterDeadline{c.Auth}, time.Millisecond
	})
	// Written directly: every API call of this env runs past its deadline.
	e.operatorActions(grants.Request{ID: "r1", Tenant: "contoso", Service: "exchange", Requester: "alice"}, 3, "Get-Mailbox")
	n, err := e.rdb.XLen(context.Background(), keys.Audit("contoso")).Result()
	if err != nil {
		t.Fatal(err)
	}
	v := decode[audit.Verification](t, e.do(auditor, "GET", "/v1/audit/verify?tenant=contoso", nil), 200)
	if !v.OK || v.Tenant != "contoso" || v.Records != int(n) {
		t.Fatalf("verification = %+v, want contoso's %d records intact", v, n)
	}
}

// TestAuditVerifyEndsWhenTheClientGoesAway: a verification past the call's
// deadline still ends when its client leaves, rather than reading the rest
// of a long log for no one.
func TestAuditVerifyEndsWhenTheClientGoesAway(t *testing.T) {
	probe := &verifyProbe{reading: make(chan struct{}), ended: make(chan error, 1)}
	e := newEnv(t, func(c *api.Config) {
		c.Auth, c.Timeout = afterDeadline{c.Auth}, time.Millisecond
		probe.AuditSearcher = c.Audit
		c.Audit = probe
	})
	ctx, leave := context.WithCancel(context.Background())
	defer leave()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/v1/audit/verify?tenant=contoso", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token(auditor))
	answered := make(chan error, 1)
	go func() {
		resp, err := e.srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	select {
	case <-probe.reading:
	case err := <-answered:
		t.Fatalf("answered before the verification began: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the verification did not start")
	}
	leave()
	<-answered
	if err := <-probe.ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("the verification went on after its client left: %v", err)
	}
}

// verifyProbe holds a verification, as a long log would, until its context
// ends (or 10 s pass); ended gets the context's error.
type verifyProbe struct {
	api.AuditSearcher
	reading chan struct{}
	ended   chan error
}

func (p *verifyProbe) VerifySince(ctx context.Context, who identity.Principal, tenant, since string) (audit.Verification, error) {
	close(p.reading)
	select {
	case <-ctx.Done():
		p.ended <- ctx.Err()
		return audit.Verification{}, ctx.Err()
	case <-time.After(10 * time.Second):
		p.ended <- errStillReading
		return audit.Verification{}, errStillReading
	}
}

// TestAuditVerifyOutlastsTheWriteTimeout: the listener's WriteTimeout
// counts from the request's arrival, so a verification taking longer than
// it had its answer cut, however long the call's deadline: over HTTP/1.1
// the client saw the connection close, over HTTP/2 the stream reset
// (written to or not). The verification moves the write deadline on while
// it reads, as an export does.
func TestAuditVerifyOutlastsTheWriteTimeout(t *testing.T) {
	const timeout = time.Second
	e := newEnv(t, func(c *api.Config) { c.Audit = heldVerify{AuditSearcher: c.Audit, hold: timeout + timeout/2} })
	srv := httptest.NewUnstartedServer(e.srv.Config.Handler)
	srv.EnableHTTP2 = true
	srv.Config.WriteTimeout = timeout
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	for _, h2 := range []bool{false, true} {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		tr.ForceAttemptHTTP2 = h2
		if !h2 {
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
		t.Cleanup(tr.CloseIdleConnections)
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/audit/verify?tenant=contoso", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.token(auditor))
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Errorf("HTTP/2 %t: a verification longer than the WriteTimeout: %v", h2, err)
			continue
		}
		var v audit.Verification
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !v.OK || v.Records == 0 {
			t.Errorf("%s: status %d, %+v, %v", resp.Proto, resp.StatusCode, v, err)
		}
	}
}

// heldVerify verifies from the real log after hold: a verification of a
// log that takes that long to read.
type heldVerify struct {
	api.AuditSearcher
	hold time.Duration
}

func (h heldVerify) VerifySince(ctx context.Context, who identity.Principal, tenant, since string) (audit.Verification, error) {
	select {
	case <-ctx.Done():
		return audit.Verification{}, ctx.Err()
	case <-time.After(h.hold):
	}
	return h.AuditSearcher.VerifySince(ctx, who, tenant, since)
}
