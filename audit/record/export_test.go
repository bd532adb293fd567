package record

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func exportRecord(i int) Record {
	return Record{
		CreationTime: TimeOf(time.Date(2026, 3, 1, 10, 0, i, 0, time.UTC)), Id: "r" + string(rune('a'+i%26)),
		Operation: OpNewRequest, RecordType: RecordTypeExchangeAdmin, UserId: OperatorUserID,
		LockboxTenant: "contoso", Comment: "a <b> & c, \"quoted\"\nline",
	}
}

// TestExportWriterWritesNothingBeforeBegin: Begin runs once, before the
// first byte, and the CSV header is written once, right after it.
func TestExportWriterBeginsOnceWithOneHeader(t *testing.T) {
	for _, n := range []int{0, 1, 600} {
		var buf bytes.Buffer
		begins := 0
		x := NewExportWriter(&buf, ExportCSV)
		x.Begin = func() {
			if buf.Len() != 0 {
				t.Errorf("%d records: Begin ran after %d bytes", n, buf.Len())
			}
			begins++
		}
		for i := range n {
			if err := x.Write(exportRecord(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := x.Finish(nil); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatalf("%d records: not CSV: %v", n, err)
		}
		if begins != 1 || len(rows) != n+1 || strings.Join(rows[0], ",") != strings.Join(CSVHeader(), ",") {
			t.Fatalf("%d records: Begin ran %d times, %d rows, first %v", n, begins, len(rows), rows[0])
		}
		for i, row := range rows[1:] {
			var r Record
			if err := json.Unmarshal([]byte(row[3]), &r); err != nil || r.Id != exportRecord(i).Id || r.Comment != exportRecord(i).Comment {
				t.Fatalf("row %d: AuditData %q: %+v, %v", i, row[3], r, err)
			}
			if row[2] != OpNewRequest || row[1] != OperatorUserID {
				t.Fatalf("row %d = %v", i, row)
			}
		}
		if x.Records() != n {
			t.Errorf("Records() = %d, want %d", x.Records(), n)
		}
	}
}

func TestExportWriterJSONL(t *testing.T) {
	var buf bytes.Buffer
	x := NewExportWriter(&buf, ExportJSONL)
	if err := x.WriteAll([]Record{exportRecord(0), exportRecord(1)}); err != nil {
		t.Fatal(err)
	}
	if err := x.Finish(nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %q", len(lines), buf.String())
	}
	// HTML characters are left as they are, as the export always wrote them.
	if !strings.Contains(lines[0], `a <b> & c`) {
		t.Errorf("line %s", lines[0])
	}
	var empty bytes.Buffer
	if err := NewExportWriter(&empty, ExportJSONL).Finish(nil); err != nil || empty.Len() != 0 {
		t.Errorf("empty JSONL export = %q, %v", empty.String(), err)
	}
}

// countingWriter counts the bytes that reached it.
type countingWriter struct{ n int }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

// TestExportWriterFlushes: every FlushEvery records the buffered bytes
// reach the writer and Flush runs, so a reader sees progress.
func TestExportWriterFlushes(t *testing.T) {
	var w countingWriter
	flushes := 0
	x := NewExportWriter(&w, ExportJSONL)
	x.FlushEvery = 3
	x.Flush = func() error { flushes++; return nil }
	for i := range 2 {
		if err := x.Write(exportRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if w.n != 0 || flushes != 0 {
		t.Fatalf("after 2 records: %d bytes out, %d flushes; want it buffered", w.n, flushes)
	}
	if err := x.Write(exportRecord(2)); err != nil {
		t.Fatal(err)
	}
	if w.n == 0 || flushes != 1 {
		t.Fatalf("after 3 records: %d bytes out, %d flushes; want one flush", w.n, flushes)
	}
	_ = x.Write(exportRecord(3))
	if err := x.Finish(nil); err != nil || flushes != 2 {
		t.Fatalf("Finish: %v, %d flushes", err, flushes)
	}
}

// TestExportWriterFailures: a failure before the first byte is returned as
// it is (an ordinary error response); one after it is ErrExportCut, with
// what was written before it flushed.
func TestExportWriterFailures(t *testing.T) {
	redisDown := errors.New("redis down")

	var buf bytes.Buffer
	x := NewExportWriter(&buf, ExportCSV)
	x.Begin = func() { t.Error("Begin ran for an export that failed before its first record") }
	if err := x.Finish(redisDown); err != redisDown || buf.Len() != 0 || x.Started() {
		t.Errorf("failure before the first record: %v, %q", err, buf.String())
	}

	buf.Reset()
	x = NewExportWriter(&buf, ExportCSV)
	_ = x.Write(exportRecord(0))
	err := x.Finish(redisDown)
	if !errors.Is(err, ErrExportCut) || !errors.Is(err, redisDown) || !x.Started() {
		t.Fatalf("failure mid-stream: %v", err)
	}
	rows, _ := csv.NewReader(&buf).ReadAll()
	if len(rows) != 2 {
		t.Errorf("mid-stream failure: want the header and the record written so far, got %q", buf.String())
	}
}

// TestExportContext: the export's context outlives its call's deadline but
// not the call's cancellation.
func TestExportContext(t *testing.T) {
	parent, cancelParent := context.WithTimeout(context.Background(), time.Hour)
	ctx, cancel := ExportContext(parent)
	defer cancel()
	if _, ok := ctx.Deadline(); ok {
		t.Error("the export's context has its call's deadline")
	}
	cancelParent()
	<-ctx.Done() // canceled with its parent; the test times out otherwise

	expired, cancelExpired := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancelExpired()
	<-expired.Done()
	ctx, cancel = ExportContext(expired)
	defer cancel()
	if ctx.Err() != nil {
		t.Errorf("a passed deadline ended the export: %v", ctx.Err())
	}
}

// TestExportContextOfACall: an export served under a call's context
// (CallContext) is still canceled when the request the call serves is, once
// the call's deadline has passed, and not by that deadline.
func TestExportContextOfACall(t *testing.T) {
	request, leave := context.WithCancel(context.Background())
	defer leave()
	call, cancelCall := CallContext(request, time.Nanosecond)
	defer cancelCall()
	<-call.Done() // the call's deadline has passed
	ctx, cancel := ExportContext(call)
	defer cancel()
	if ctx.Err() != nil {
		t.Fatalf("a passed deadline ended the export: %v", ctx.Err())
	}
	leave()
	<-ctx.Done() // canceled with the request; the test times out otherwise
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("export's context ended with %v", ctx.Err())
	}
}

func TestParseExportFormat(t *testing.T) {
	for _, s := range []string{"csv", "jsonl"} {
		if f, err := ParseExportFormat(s); err != nil || string(f) != s {
			t.Errorf("%q: %v %v", s, f, err)
		}
	}
	if _, err := ParseExportFormat("xml"); err == nil {
		t.Error("xml accepted")
	}
}

// TestExportCarriesTheQuery: an operator action's query, and the length of
// one cut to MaxQueryBytes, are in both export forms, after the tenant's
// view was taken (the query is the tenant's data, not a provider identity);
// the CSV keeps the unified audit log's four columns, the record in
// AuditData.
func TestExportCarriesTheQuery(t *testing.T) {
	long := "search=" + strings.Repeat("a", MaxQueryBytes)
	kept, length := QueryOf(long)
	recs := []Record{
		{CreationTime: TimeOf(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)), Id: "q1", Operation: "Get-MailboxMessage",
			RecordType: RecordTypeDataCenterSecurityCmdlet, UserId: OperatorUserID, ProviderUserId: "alice@provider.example",
			LockboxMethod: "GET", LockboxPath: "/tenants/contoso/mailboxes/megan/messages", LockboxQuery: "search=ceo+salary&top=10"},
		{CreationTime: TimeOf(time.Date(2026, 3, 1, 10, 0, 1, 0, time.UTC)), Id: "q2", Operation: "Get-MailboxMessage",
			RecordType: RecordTypeDataCenterSecurityCmdlet, UserId: OperatorUserID,
			LockboxMethod: "GET", LockboxPath: "/tenants/contoso/mailboxes/megan/messages", LockboxQuery: kept, LockboxQueryLength: length},
	}
	for i := range recs {
		recs[i] = recs[i].TenantView()
	}
	check := func(form string, i int, data string) {
		t.Helper()
		var got Record
		if err := json.Unmarshal([]byte(data), &got); err != nil {
			t.Fatalf("%s record %d: %v", form, i, err)
		}
		if got.LockboxQuery != recs[i].LockboxQuery || got.LockboxQueryLength != recs[i].LockboxQueryLength {
			t.Errorf("%s record %d: LockboxQuery %q, LockboxQueryLength %d; want %q, %d",
				form, i, got.LockboxQuery, got.LockboxQueryLength, recs[i].LockboxQuery, recs[i].LockboxQueryLength)
		}
	}
	var c bytes.Buffer
	x := NewExportWriter(&c, ExportCSV)
	if err := x.WriteAll(recs); err != nil {
		t.Fatal(err)
	}
	if err := x.Finish(nil); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&c).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("CSV: %d rows, %v", len(rows), err)
	}
	if got := strings.Join(rows[0], ","); got != "CreationDate,UserIds,Operations,AuditData" {
		t.Errorf("CSV header %s", got)
	}
	for i, row := range rows[1:] {
		check("CSV", i, row[3])
	}
	var j bytes.Buffer
	x = NewExportWriter(&j, ExportJSONL)
	if err := x.WriteAll(recs); err != nil {
		t.Fatal(err)
	}
	if err := x.Finish(nil); err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(strings.TrimSuffix(j.String(), "\n"), "\n") {
		check("JSONL", i, line)
	}
}
