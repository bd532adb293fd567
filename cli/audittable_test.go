package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit/record"
)

// TestAuditSearchTableHasNoEmptyTable: audit search prints its table a
// chunk of tableChunk records at a time. When the records read filled the
// last chunk exactly (pages of 1000, the API's largest, and no more), an
// empty table, its header alone, came after them: a header under the
// records, as if another table had none. get requests never did
// (tableRequests).
func TestAuditSearchTableHasNoEmptyTable(t *testing.T) {
	for _, pages := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d pages", pages), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v1/audit" {
					http.NotFound(w, r)
					return
				}
				page := 1
				if c := r.URL.Query().Get("cursor"); c != "" {
					fmt.Sscanf(c, "p%d", &page)
				}
				body := wire.RecordPage{Records: make([]record.Record, tableChunk)}
				for i := range body.Records {
					body.Records[i] = sampleRecords()[0]
					body.Records[i].Id = fmt.Sprintf("a%d-%d", page, i)
				}
				if page < pages {
					body.NextCursor = fmt.Sprintf("p%d", page+1)
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(body)
			}))
			defer srv.Close()
			env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), []string{"audit", "search", "--tenant", "contoso", "--limit", "1000", "--all"},
				func(k string) string { return env[k] }, &stdout, &stderr)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
			headers := 0
			for _, l := range lines {
				if strings.HasPrefix(l, "CreationDate") {
					headers++
				}
			}
			// A table per page here, each its header and its records.
			if headers != pages || len(lines) != pages*(tableChunk+1) {
				t.Errorf("%d lines, %d headers; want %d records under %d headers; the last lines:\n%s",
					len(lines), headers, pages*tableChunk, pages, strings.Join(lines[max(0, len(lines)-2):], "\n"))
			}
			if last := lines[len(lines)-1]; strings.HasPrefix(last, "CreationDate") {
				t.Errorf("the output ends with a header: %q", last)
			}
		})
	}
}

// TestAuditTableDateColumnIsCreationDate: the tables of audit records head
// their date column CreationDate, the name the -o csv and export columns
// carry and the one Microsoft's tooling shows for it (Search-UnifiedAuditLog's
// results, the audit search's export), not the record's JSON field
// CreationTime; the other columns, the value (UTC) and their order stay.
func TestAuditTableDateColumnIsCreationDate(t *testing.T) {
	want := []string{"CreationDate", "LockboxTenant", "Operation", "UserId", "ApprovalDecision", "ObjectId", "ClientIP", "LockboxQuery"}
	for _, args := range [][]string{
		{"audit", "search", "--tenant", "contoso"},
		{"request", "activity", reqID},
		{"get", "activity", reqID},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			r := run(t, args, nil, nil)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			if len(lines) != 2 {
				t.Fatalf("%d lines, want a header and one record:\n%s", len(lines), r.stdout)
			}
			if got := strings.Fields(lines[0]); !slices.Equal(got, want) {
				t.Errorf("header %q, want %q", got, want)
			}
			// The record's date, in UTC, is the first cell under it.
			if !strings.HasPrefix(lines[1], "2026-03-04 10:00:00Z ") {
				t.Errorf("record row %q, want it to begin with its CreationTime in UTC", lines[1])
			}
		})
	}
}
