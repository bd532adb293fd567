package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit/record"
)

// TestAuditSearchTableShowsTheQuery: audit search's table has the
// operator action's query in a last column, "-" for a record without one,
// and a cut query followed by how much of how long a query it is.
func TestAuditSearchTableShowsTheQuery(t *testing.T) {
	long := "q=" + strings.Repeat("z", record.MaxQueryBytes)
	kept, length := record.QueryOf(long)
	recs := []record.Record{sampleRecords()[0], sampleRecords()[0], sampleRecords()[0]}
	recs[0].LockboxQuery = "search=ceo+salary&top=10"
	recs[1].LockboxQuery, recs[1].LockboxQueryLength = kept, length
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(wire.RecordPage{Records: recs})
	}))
	defer srv.Close()
	env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
	var stdout, stderr bytes.Buffer
	if code := Run(context.Background(), []string{"audit", "search", "--tenant", "contoso"}, func(k string) string { return env[k] }, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines:\n%s", len(lines), stdout.String())
	}
	if f := strings.Fields(lines[0]); f[len(f)-1] != "LockboxQuery" || f[len(f)-2] != "ClientIP" {
		t.Errorf("header %q: want LockboxQuery after ClientIP, last", lines[0])
	}
	for i, want := range []string{" search=ceo+salary&top=10", " " + kept + " (first 2048 of 2050 bytes)", " -"} {
		if !strings.HasSuffix(lines[i+1], want) {
			t.Errorf("row %d = %.120q...; want it to end with %.60q", i, lines[i+1], want)
		}
	}
}
