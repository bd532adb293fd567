package api_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
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

// TestAuditExportHeadReadsNoRecord: HEAD of an export answers what GET
// answers (the status, and on 200 the type and file name of the
// attachment), as HEAD does on every GET route, without reading the log:
// net/http discards a HEAD's body, so an export run for it read the whole
// filtered range for nothing.
func TestAuditExportHeadReadsNoRecord(t *testing.T) {
	e := newEnv(t)
	req := e.file(alice, "contoso", "exchange")
	e.operatorActions(req, 20, "Get-Mailbox")
	var reads atomic.Int64
	e.rdb.AddHook(streamReads{n: &reads})

	for _, tc := range []struct {
		name   string
		who    user
		query  string
		status int
	}{
		{"tenant admin, csv", contosoAdmin, "?tenant=contoso", 200},
		{"own tenant", contosoAdmin, "?format=csv", 200},
		{"provider auditor, jsonl", auditor, "?tenant=contoso&format=jsonl", 200},
		{"every tenant", auditor, "?operation=Get-Mailbox", 200},
		{"manager is no auditor", mia, "?tenant=contoso", 403},
		{"other tenant's admin", fabrikamAdmin, "?tenant=contoso", 403},
		{"bad format", auditor, "?tenant=contoso&format=xml", 400},
		{"bad range", auditor, "?tenant=contoso&from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", 400},
		{"bad tenant", auditor, "?tenant=Contoso", 400},
		{"no token", anonymous, "?tenant=contoso", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/v1/audit/export" + tc.query
			get := e.do(tc.who, http.MethodGet, path, nil)
			reads.Store(0)
			head := e.do(tc.who, http.MethodHead, path, nil)
			if n := reads.Load(); n != 0 {
				t.Errorf("HEAD read the audit log: %d stream reads", n)
			}
			if get.status != tc.status || head.status != tc.status {
				t.Fatalf("GET answered %d, HEAD %d, want %d", get.status, head.status, tc.status)
			}
			if len(head.body) != 0 {
				t.Errorf("HEAD has a body: %q", head.body)
			}
			for _, h := range []string{"Content-Type", "Content-Disposition", "Allow", "WWW-Authenticate", "Retry-After"} {
				if g, hd := get.header.Get(h), head.header.Get(h); g != hd {
					t.Errorf("%s: GET %q, HEAD %q", h, g, hd)
				}
			}
			if tc.status == 200 && !strings.HasPrefix(head.header.Get("Content-Disposition"), "attachment; ") {
				t.Errorf("HEAD Content-Disposition = %q", head.header.Get("Content-Disposition"))
			}
		})
	}
}
