package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit/record"
)

// TestSearchUnifiedAuditLogReadsOnPastEmptyPages: the API answers a page
// without records, but with a next cursor, when one call's scan budget
// ran out before it found a match (a selective filter over a long log:
// the decisions among a window's hundred thousand operator actions).
// Search-UnifiedAuditLog goes on reading, with or without a filter of its
// own, until it has -ResultSize records or the range ends, as it does
// past a page holding too few: it stopped at the empty page, printed no
// record and exited 0, so Microsoft's documented search for the tenant's
// decisions found none while the log held them.
func TestSearchUnifiedAuditLogReadsOnPastEmptyPages(t *testing.T) {
	// Two empty pages, as two calls' budgets ran out, then the matches.
	pages := map[string]wire.RecordPage{
		"":   {Records: []record.Record{}, NextCursor: "c1"},
		"c1": {Records: []record.Record{}, NextCursor: "c2"},
	}
	var last []record.Record
	for _, id := range []string{"d1", "d2"} {
		r := sampleRecords()[0]
		r.Id = id
		last = append(last, r)
	}
	pages["c2"] = wire.RecordPage{Records: last}
	for _, filter := range [][]string{
		{"-Operations", record.OpTenantDecision},
		{"-Operations", record.OpTenantDecision, "-RecordType", "ExchangeAdmin"},
	} {
		t.Run(strings.Join(filter, " "), func(t *testing.T) {
			var (
				mu      sync.Mutex
				cursors []string
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c := r.URL.Query().Get("cursor")
				mu.Lock()
				cursors = append(cursors, c)
				mu.Unlock()
				p, ok := pages[c]
				if !ok {
					http.Error(w, `{"error":{"code":"invalid_cursor","message":"cursor"}}`, http.StatusBadRequest)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(p)
			}))
			defer srv.Close()
			env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
			argv := append([]string{"Search-UnifiedAuditLog", "-StartDate", "2026-03-01", "-EndDate", "2026-03-05", "-o", "json"}, filter...)
			var stdout, stderr bytes.Buffer
			if code := Run(context.Background(), argv, func(k string) string { return env[k] }, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			var p wire.RecordPage
			if err := json.Unmarshal(stdout.Bytes(), &p); err != nil {
				t.Fatalf("%v: %s", err, stdout.Bytes())
			}
			mu.Lock()
			defer mu.Unlock()
			if ids := recordIDs(p.Records); !slices.Equal(ids, []string{"d1", "d2"}) || p.NextCursor != "" {
				t.Errorf("records %q, next %q (pages read at cursors %q); want d1 and d2, the range read to its end", ids, p.NextCursor, cursors)
			}
		})
	}
}
