package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestListPrevCursor: a page the API answers with prev_cursor (a page
// after the first) says on stderr how to go back to the newer page, and
// -o json and -o yaml carry prev_cursor as the API does, written exactly
// as writeJSON would.
func TestListPrevCursor(t *testing.T) {
	page := wire.RequestList{Requests: []wire.Request{sampleRequest()}, NextCursor: "older;1", PrevCursor: "newer;1"}
	replies := map[string]reply{"GET /v1/requests": {200, mustJSON(page)}}

	r := run(t, []string{"get", "requests", "--cursor", "c"}, nil, replies)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"More requests: add --cursor 'older;1' (or use --all).", "Newer requests: add --cursor 'newer;1'."} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q lacks %q", r.stderr, want)
		}
	}

	r = run(t, []string{"get", "requests", "--cursor", "c", "-o", "json"}, nil, replies)
	var want bytes.Buffer
	if err := writeJSON(&want, page); err != nil {
		t.Fatal(err)
	}
	if r.code != 0 || r.stdout != want.String() || r.stderr != "" {
		t.Errorf("-o json: exit %d, stdout\n%s\nwant\n%s\nstderr %q", r.code, r.stdout, want.String(), r.stderr)
	}
	r = run(t, []string{"get", "requests", "--cursor", "c", "-o", "yaml"}, nil, replies)
	if r.code != 0 || !strings.Contains(r.stdout, "prev_cursor: newer;1") {
		t.Errorf("-o yaml: exit %d, stdout\n%s", r.code, r.stdout)
	}

	// The first page has none, and says nothing of it.
	first := page
	first.PrevCursor = ""
	r = run(t, []string{"get", "requests"}, nil, map[string]reply{"GET /v1/requests": {200, mustJSON(first)}})
	if strings.Contains(r.stderr, "Newer") {
		t.Errorf("first page: stderr %q", r.stderr)
	}
}

// TestAuditSearchPrevCursor: audit search says how to go back to the
// newer records, and -o json carries prev_cursor.
func TestAuditSearchPrevCursor(t *testing.T) {
	page := wire.RecordPage{Records: sampleRecords(), NextCursor: "b2xkZXI", PrevCursor: "bjpuZXdlcg"}
	replies := map[string]reply{"GET /v1/audit": {200, mustJSON(page)}}
	r := run(t, []string{"audit", "search", "--tenant", "contoso", "--cursor", "c"}, nil, replies)
	if r.code != 0 || !strings.Contains(r.stderr, "Newer records: add --cursor bjpuZXdlcg.") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	r = run(t, []string{"audit", "search", "--tenant", "contoso", "--cursor", "c", "-o", "json"}, nil, replies)
	var got wire.RecordPage
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.PrevCursor != page.PrevCursor || got.NextCursor != page.NextCursor {
		t.Errorf("-o json: %+v, %v; stdout %s", got, err, r.stdout)
	}
}
