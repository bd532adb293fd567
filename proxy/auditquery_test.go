package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
)

// TestAuditedQuery: the record of a permitted call names the query the
// upstream received, byte for byte, or none when the target had none (an
// empty "?" forwards none either); one longer than record.MaxQueryBytes is
// forwarded whole but recorded as its first MaxQueryBytes bytes with its
// whole length beside them, so the record stays bounded and the cut can't
// be taken for the query's end.
func TestAuditedQuery(t *testing.T) {
	long := "search=" + strings.Repeat("ceo+salary+", 400) + "&top=10"
	for _, tc := range []struct {
		name, query string
		wantQuery   string
		wantLength  int
	}{
		{"none", "", "", 0},
		{"empty", "?", "", 0},
		{"search", "?search=ceo+salary&%24top=10&q=a%20%3Cb%3E", "search=ceo+salary&%24top=10&q=a%20%3Cb%3E", 0},
		{"at the bound", "?q=" + strings.Repeat("x", record.MaxQueryBytes-2), "q=" + strings.Repeat("x", record.MaxQueryBytes-2), 0},
		{"longer", "?" + long, long[:record.MaxQueryBytes], len(long)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.grantFor(alice, "contoso", "exchange", 2*time.Hour)
			res := e.send(as(alice, http.MethodGet, mailboxes+"/alice/messages"+tc.query)(e))
			if res.status != http.StatusOK {
				t.Fatalf("status = %d, body %s", res.status, res.body)
			}
			got := e.up["exchange"].requests()
			if len(got) != 1 {
				t.Fatalf("upstream received %d requests, want 1", len(got))
			}
			_, forwarded, _ := strings.Cut(got[0].RequestURI, "?")
			recs, err := e.audit.List(context.Background(), "contoso", 1)
			if err != nil || len(recs) != 1 {
				t.Fatalf("audit: %v %v", recs, err)
			}
			r := recs[0]
			if r.LockboxQuery != tc.wantQuery || r.LockboxQueryLength != tc.wantLength {
				t.Errorf("record: LockboxQuery %.80q (%d bytes), LockboxQueryLength %d; want %.80q (%d bytes), %d",
					r.LockboxQuery, len(r.LockboxQuery), r.LockboxQueryLength, tc.wantQuery, len(tc.wantQuery), tc.wantLength)
			}
			// What is recorded is what was forwarded, or its start.
			if !strings.HasPrefix(forwarded, r.LockboxQuery) || r.LockboxQueryLength == 0 && forwarded != r.LockboxQuery ||
				r.LockboxQueryLength != 0 && r.LockboxQueryLength != len(forwarded) {
				t.Errorf("upstream received query %.80q (%d bytes); the record says %.80q, length %d",
					forwarded, len(forwarded), r.LockboxQuery, r.LockboxQueryLength)
			}
		})
	}
}
