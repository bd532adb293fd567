package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestSearchUnifiedAuditLogHintAtMaxResultSize: a table cut at the
// largest -ResultSize names the cursor that goes on without offering a
// larger -ResultSize, which would be refused; one below it still offers
// it. The same holds for a search read upwards from a prev cursor, whose
// cursor that goes on is the newer one. The API never runs out of
// records here: every page it answers has both cursors, each one new.
func TestSearchUnifiedAuditLogHintAtMaxResultSize(t *testing.T) {
	var pages atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
		if err != nil || limit < 1 || limit > auditPageMax {
			http.Error(w, "bad limit", http.StatusBadRequest)
			return
		}
		n := pages.Add(1)
		p := wire.RecordPage{
			NextCursor: base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "o:%d", n)),
			PrevCursor: base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "n:%d", n)),
		}
		for i := range limit {
			rec := sampleRecords()[0]
			rec.Id = fmt.Sprintf("p%d-%d", n, i)
			p.Records = append(p.Records, rec)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p)
	}))
	defer srv.Close()
	prev := base64.RawURLEncoding.EncodeToString([]byte("n:0"))
	if !newerCursor(prev) {
		t.Fatalf("%q is not read as a prev cursor", prev)
	}
	for _, c := range []struct {
		name string
		args []string
		// want is stderr: the hints, in the order printed.
		want string
	}{
		{"-ResultSize 5000", []string{"-ResultSize", "5000"},
			"More records: add --cursor bzo1.\nNewer records: add --cursor bjox.\n"},
		{"-ResultSize 4999", []string{"-ResultSize", "4999"},
			"More records: add --cursor bzo1 (or a larger -ResultSize, up to 5000).\nNewer records: add --cursor bjox.\n"},
		{"-ResultSize 5000 from a prev cursor", []string{"-ResultSize", "5000", "--cursor", prev},
			"Newer records: add --cursor bjo1.\nOlder records: add --cursor bzox.\n"},
		{"-ResultSize 4999 from a prev cursor", []string{"-ResultSize", "4999", "--cursor", prev},
			"Newer records: add --cursor bjo1 (or a larger -ResultSize, up to 5000).\nOlder records: add --cursor bzox.\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pages.Store(0)
			env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
			argv := append([]string{"Search-UnifiedAuditLog", "-StartDate", "2026-03-01", "-EndDate", "2026-03-02", "--tenant", "contoso"}, c.args...)
			var stdout, stderr bytes.Buffer
			if code := Run(context.Background(), argv, func(k string) string { return env[k] }, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if got := pages.Load(); got != 5 {
				t.Errorf("%d pages read, want 5 (of at most %d records)", got, auditPageMax)
			}
			if stderr.String() != c.want {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), c.want)
			}
		})
	}
}
