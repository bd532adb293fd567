package console_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/identity"
)

// streamReads is a go-redis hook that counts the commands that read an
// audit stream's records (XRANGE, XREVRANGE, XREAD), alone or in a
// pipeline.
type streamReads struct{ n *atomic.Int64 }

func (h streamReads) count(cmd redis.Cmder) {
	switch cmd.Name() {
	case "xrange", "xrevrange", "xread":
		h.n.Add(1)
	}
}

func (h streamReads) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h streamReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}
func (h streamReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.count(c)
		}
		return next(ctx, cmds)
	}
}

// TestAuditHeadReadsNoRecord: HEAD of the audit page (verification
// included) and of its CSV export answers the status and headers GET
// answers, without reading the log. The mux serves HEAD with the GET
// handler and net/http discards the body, so a HEAD of ?verify=1 read and
// hashed the tenant's whole log, and a HEAD of the export read the whole
// filtered range, both with no deadline, to send nothing.
func TestAuditHeadReadsNoRecord(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	e.file("contoso")
	e.file("fabrikam")
	var reads atomic.Int64
	e.rdb.AddHook(streamReads{n: &reads})

	for _, tc := range []struct {
		name   string
		who    identity.Principal
		path   string
		status int
	}{
		{"verify as auditor", auditor, "/console/audit?tenant=contoso&verify=1", http.StatusOK},
		{"verify own tenant", contosoAdmin, "/console/audit?verify=1", http.StatusOK},
		{"page of every tenant", auditor, "/console/audit?verify=1", http.StatusOK},
		{"page of a tenant", auditor, "/console/audit?tenant=contoso", http.StatusOK},
		{"verify tenant not onboarded", auditor, "/console/audit?tenant=northwind&verify=1", http.StatusNotFound},
		{"verify bad tenant", auditor, "/console/audit?tenant=Contoso&verify=1", http.StatusBadRequest},
		{"verify bad range", auditor, "/console/audit?tenant=contoso&from=someday&verify=1", http.StatusBadRequest},
		{"verify bad cursor", auditor, "/console/audit?tenant=contoso&cursor=nonsense&verify=1", http.StatusBadRequest},
		{"verify as manager", mia, "/console/audit?tenant=contoso&verify=1", http.StatusForbidden},
		{"verify as approver", contosoApprover, "/console/audit?verify=1", http.StatusForbidden},
		{"export as auditor", auditor, "/console/audit/export.csv?tenant=contoso", http.StatusOK},
		{"export own tenant", contosoAdmin, "/console/audit/export.csv", http.StatusOK},
		{"export every tenant", auditor, "/console/audit/export.csv", http.StatusOK},
		{"export tenant not onboarded", auditor, "/console/audit/export.csv?tenant=northwind", http.StatusNotFound},
		{"export bad range", auditor, "/console/audit/export.csv?tenant=contoso&to=never", http.StatusBadRequest},
		{"export as manager", mia, "/console/audit/export.csv?tenant=contoso", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.signIn(tc.who)
			get := b.get(tc.path)
			reads.Store(0)
			head := b.do(http.MethodHead, tc.path, nil)
			if n := reads.Load(); n != 0 {
				t.Errorf("HEAD read the audit log: %d stream reads", n)
			}
			if get.status != tc.status || head.status != tc.status {
				t.Fatalf("GET answered %d, HEAD %d, want %d\nGET: %s", get.status, head.status, tc.status, get)
			}
			if head.body != "" {
				t.Errorf("HEAD has a body: %q", head.body)
			}
			for _, h := range []string{"Content-Type", "Content-Disposition", "Content-Security-Policy", "Cache-Control", "Retry-After"} {
				if g, hd := get.header.Get(h), head.header.Get(h); g != hd {
					t.Errorf("%s: GET %q, HEAD %q", h, g, hd)
				}
			}
		})
	}
}
