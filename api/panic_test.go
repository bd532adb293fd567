package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
)

// panickingRequests panics where a store with a bug would.
type panickingRequests struct{ api.Requests }

func (panickingRequests) Get(context.Context, identity.Principal, string) (grants.Request, error) {
	panic("assignment to entry in nil map")
}

// panickingExport panics after the first record is on its way.
type panickingExport struct{ api.AuditSearcher }

func (p panickingExport) Export(ctx context.Context, pr identity.Principal, q audit.Query, w func(record.Record) error) error {
	n := 0
	return p.AuditSearcher.Export(ctx, pr, q, func(r record.Record) error {
		if n++; n > 1 {
			panic("index out of range")
		}
		return w(r)
	})
}

// TestPanicIsAnInternalError: a handler that panics before it answered
// gets the JSON error document every other failure gets (500 internal,
// its cause logged under the trace id, not shown), not a connection
// closed without an answer. One that panics after the status line went
// out still cuts the stream: a 500 can no longer be sent, and a short
// body must not look complete.
func TestPanicIsAnInternalError(t *testing.T) {
	e := newEnv(t, func(c *api.Config) {
		c.Requests = panickingRequests{c.Requests}
		c.Audit = panickingExport{c.Audit}
	})
	req := e.file(alice, "contoso", "exchange")

	r := e.do(mia, "GET", "/v1/requests/"+req.ID, nil)
	wantError(t, r, http.StatusInternalServerError, "internal", "internal error")
	if strings.Contains(string(r.body), "nil map") {
		t.Errorf("body leaks the panic: %s", r.body)
	}
	logs := e.logs.String()
	if id := r.header.Get("X-Request-Id"); !strings.Contains(logs, `"trace_id":"`+id+`"`) || !strings.Contains(logs, "nil map") {
		t.Errorf("log lacks the trace id %s or the panic:\n%s", id, logs)
	}
	// The server goes on serving.
	decode[any](t, e.do(mia, "GET", "/v1/requests", nil), http.StatusOK)

	t.Run("after the status line", func(t *testing.T) {
		hreq, err := http.NewRequest("GET", e.srv.URL+"/v1/audit/export?tenant=contoso&format=jsonl", nil)
		if err != nil {
			t.Fatal(err)
		}
		hreq.Header.Set("Authorization", "Bearer "+e.token(auditor))
		resp, err := e.srv.Client().Do(hreq)
		if err != nil {
			return // cut before the status line was read: not complete either
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil {
			t.Fatalf("status %d, body read whole (%q): a cut-off export must not look complete", resp.StatusCode, body)
		}
	})
}
