package console_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
)

// slowAudit exports n generated records, taking pause before each but the
// first: the time an export spends reading a large log whose records the
// filters mostly skip.
type slowAudit struct {
	console.Audit
	n     int
	pause time.Duration
}

func (s slowAudit) Export(ctx context.Context, p identity.Principal, q audit.Query, w func(record.Record) error) error {
	for i := range s.n {
		if i > 0 {
			time.Sleep(s.pause)
		}
		if err := w(record.Record{Id: fmt.Sprintf("rec-%d", i), CreationTime: record.TimeOf(start), Operation: "Get-Mailbox",
			OrganizationId: "contoso", LockboxTenant: "contoso", Workload: "exchange", UserId: record.OperatorUserID}); err != nil {
			return err
		}
	}
	return nil
}

// TestAuditExportOutlastsWriteTimeout: the admin center's export is not
// cut by its listener's WriteTimeout while it keeps going, over HTTP/1.1
// and HTTP/2, though it takes several times that timeout and the server
// writes nothing for longer than it between two records. (Without the
// export moving its write deadline on, the server cuts it at the
// WriteTimeout.)
func TestAuditExportOutlastsWriteTimeout(t *testing.T) {
	// A second: at 300 ms, the sign-in's own answers over TLS sometimes
	// took longer than the WriteTimeout on a loaded machine.
	const timeout = time.Second
	const n = 3
	// The console as newEnv serves it, over TLS with HTTP/2 and a
	// WriteTimeout.
	e := newStores(t, clock.NewFake(start))
	cfg := e.consoleConfig()
	for _, p := range people {
		cfg.DevIdentities = append(cfg.DevIdentities, console.DevIdentity{Principal: p, Description: string(p.Roles[0])})
	}
	cfg.Audit = slowAudit{Audit: cfg.Audit, n: n, pause: 3 * timeout / 2}
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
		// The signed-in browser's cookies, over either protocol.
		client := &http.Client{Transport: tr, Jar: b.c.Jar, Timeout: 20 * timeout}
		res, err := client.Get(srv.URL + "/console/audit/export.csv?tenant=contoso")
		if err != nil {
			t.Errorf("HTTP/2 %t: %v", h2, err)
			continue
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			t.Errorf("%s (HTTP/2 %t): %s after %d bytes, %v", res.Proto, h2, res.Status, len(body), err)
			continue
		}
		t.Logf("%s: %d bytes", res.Proto, len(body))
		rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
		if err != nil || len(rows) != n+1 {
			t.Errorf("%s: %d rows, %v; want the header and %d records\n%.300s", res.Proto, len(rows), err, n, body)
		}
	}
}
