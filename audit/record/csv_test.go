package record

import (
	"bytes"
	"encoding/csv"
	"slices"
	"testing"
	"time"
)

// TestCSVHeaderIsTheUnifiedAuditLogExports: the export's columns are those
// of the unified audit log's export and of Search-UnifiedAuditLog's
// objects, CreationDate first (the AuditData JSON keeps CreationTime, the
// record's own name), so a script that reads $_.CreationDate from
// Microsoft's export reads Lockbox's. The date is the record's
// CreationTime in UTC, RFC 3339.
func TestCSVHeaderIsTheUnifiedAuditLogExports(t *testing.T) {
	want := []string{"CreationDate", "UserIds", "Operations", "AuditData"}
	if got := CSVHeader(); !slices.Equal(got, want) {
		t.Errorf("CSVHeader() = %q, want %q", got, want)
	}
	at := time.Date(2026, 3, 4, 9, 5, 6, 0, time.UTC)
	r := Record{CreationTime: TimeOf(at.In(time.FixedZone("CET", 3600))), Id: "r1", Operation: OpTenantDecision,
		RecordType: RecordTypeExchangeAdmin, UserId: "carol@contoso.example", LockboxTenant: "contoso"}
	var buf bytes.Buffer
	x := NewExportWriter(&buf, ExportCSV)
	if err := x.Write(r); err != nil {
		t.Fatal(err)
	}
	if err := x.Finish(nil); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("%d rows, %v: %s", len(rows), err, buf.Bytes())
	}
	if !slices.Equal(rows[0], want) {
		t.Errorf("header row %q, want %q", rows[0], want)
	}
	date := rows[1][0]
	if got, err := time.Parse(time.RFC3339, date); err != nil || !got.Equal(at) || got.Location() != time.UTC {
		t.Errorf("CreationDate %q (%v, %v): want %s in UTC, RFC 3339", date, got, err, at)
	}
}
