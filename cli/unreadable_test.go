package cli

import (
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestRequestListTellsUnreadable: a page naming a request that can't be
// read lists the others on stdout, as ever, and says on stderr which one
// can't be read, once however many listings met it; lockboxctl dropped it
// without a word.
func TestRequestListTellsUnreadable(t *testing.T) {
	page := mustJSON(wire.RequestList{Requests: []wire.Request{sampleRequest()},
		Unreadable: []wire.UnreadableRequest{{ID: "0190a1b2-0000-7000-8000-000000000001", Tenant: "contoso", Error: "cannot be read"}}})
	for _, args := range [][]string{
		{"get", "requests"},
		{"get", "requests", "-o", "json"},
		{"get", "requests", "--all"},
		{"get", "requests", "--state", "pending"},
		{"get", "requests", "--state", "pending", "--all"},
	} {
		res := run(t, args, nil, map[string]reply{"GET /v1/requests": {200, page}})
		if res.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.code, res.stderr)
		}
		const want = "Request 0190a1b2-0000-7000-8000-000000000001 of tenant contoso cannot be read"
		if strings.Count(res.stderr, want) != 1 {
			t.Errorf("%v: stderr does not say once that the request cannot be read: %q", args, res.stderr)
		}
		if !strings.Contains(res.stdout, sampleRequest().ID) {
			t.Errorf("%v: the readable request is not listed: %q", args, res.stdout)
		}
	}
}

// TestAuditSearchTellsUnreadable: a search page naming an audit record
// that can't be read shows the others on stdout and says on stderr which
// one can't be read.
func TestAuditSearchTellsUnreadable(t *testing.T) {
	page := mustJSON(wire.RecordPage{Records: sampleRecords(),
		Unreadable: []wire.UnreadableRecord{{StreamID: "1764000000000-0", Tenant: "contoso", Error: "cannot be read"}}})
	for _, args := range [][]string{
		{"audit", "search", "--tenant", "contoso"},
		{"audit", "search", "--tenant", "contoso", "-o", "json"},
		{"audit", "search", "--tenant", "contoso", "--all"},
	} {
		res := run(t, args, nil, map[string]reply{"GET /v1/audit": {200, page}})
		if res.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.code, res.stderr)
		}
		const want = "Audit record 1764000000000-0 of tenant contoso cannot be read"
		if strings.Count(res.stderr, want) != 1 {
			t.Errorf("%v: stderr does not say once that the record cannot be read: %q", args, res.stderr)
		}
		if !strings.Contains(res.stdout, sampleRecords()[0].Operation) {
			t.Errorf("%v: the readable records are not shown: %q", args, res.stdout)
		}
	}
}
