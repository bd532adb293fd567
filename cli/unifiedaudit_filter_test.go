package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit/record"
)

// filterWorld is a real Lockbox whose contoso log holds its onboarding
// (from 192.0.2.250) and seven requests filed through the API (from
// 127.0.0.1), every other one's reason naming a zebra.
type filterWorld struct {
	t      *testing.T
	addr   string
	tokens map[string]string
	// all is the log as the provider's audit reader reads it, newest
	// first, unfiltered.
	all []record.Record
	ids []string
	// from and to are the range the searches ask: from the day the
	// world began (UTC), as a date, two days on.
	from, to string
}

func newFilterWorld(t *testing.T) *filterWorld {
	t.Helper()
	began := time.Now().UTC()
	addr, tokens := startLockbox(t, t.Cleanup)
	ctx := context.Background()
	op, err := client.New(addr, tokens["operator"])
	if err != nil {
		t.Fatal(err)
	}
	w := &filterWorld{t: t, addr: addr, tokens: tokens, from: began.Format(time.DateOnly), to: began.AddDate(0, 0, 2).Format(time.DateOnly)}
	for i := range 7 {
		reason := fmt.Sprintf("mailbox %d will not open", i)
		if i%2 == 0 {
			reason = fmt.Sprintf("the Zebra mailbox %d will not open", i)
		}
		r, err := op.CreateRequest(ctx, wire.CreateRequest{Tenant: "contoso", Service: "exchange", ServiceRequest: fmt.Sprintf("SR-%d", i),
			Reason: reason, Duration: wire.Duration(time.Hour), Activities: []string{"Get-Mailbox"}})
		if err != nil {
			t.Fatal(err)
		}
		w.ids = append(w.ids, r.ID)
		// One open request per operator and service: the next needs
		// this one ended.
		if _, err := op.Cancel(ctx, r.ID, fmt.Sprintf("withdrawn %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	auditor, err := client.New(addr, tokens["auditor"])
	if err != nil {
		t.Fatal(err)
	}
	p, err := auditor.SearchAudit(ctx, client.AuditQuery{Tenant: "contoso", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if p.NextCursor != "" || len(p.Records) < 15 {
		t.Fatalf("the log: %d records, next %q", len(p.Records), p.NextCursor)
	}
	w.all = p.Records
	return w
}

// search runs Search-UnifiedAuditLog over w's range as the provider's
// audit reader, -o json, and returns its exit code, page and
// stderr.
func (w *filterWorld) search(args ...string) (int, wire.RecordPage, string) {
	w.t.Helper()
	env := map[string]string{EnvAddr: w.addr, EnvToken: w.tokens["auditor"], EnvConfigDir: w.t.TempDir()}
	argv := append([]string{"Search-UnifiedAuditLog", "-StartDate", w.from, "-EndDate", w.to, "--tenant", "contoso", "-o", "json"}, args...)
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), argv, func(k string) string { return env[k] }, &stdout, &stderr)
	var p wire.RecordPage
	if code == exitOK {
		if err := json.Unmarshal(stdout.Bytes(), &p); err != nil {
			w.t.Fatalf("%q: output is not a page: %v\n%s", args, err, stdout.String())
		}
	}
	return code, p, stderr.String()
}

// want returns the ids of the log's records that keep passes, newest
// first, and fails the test unless some records pass and some don't: a
// search that ignored its filter would then return too many.
func (w *filterWorld) want(keep func(record.Record) bool) []string {
	w.t.Helper()
	var ids []string
	for _, r := range w.all {
		if keep(r) {
			ids = append(ids, r.Id)
		}
	}
	if len(ids) == 0 || len(ids) == len(w.all) {
		w.t.Fatalf("%d of the %d records pass: the filter would not be shown to filter", len(ids), len(w.all))
	}
	return ids
}

func recordIDs(recs []record.Record) []string {
	ids := []string{}
	for _, r := range recs {
		ids = append(ids, r.Id)
	}
	return ids
}

// TestSearchUnifiedAuditLogFilters: against a real Lockbox, -RecordType,
// -ObjectIds, -IPAddresses and -FreeText each return exactly the records
// of the log that pass them, newest first, as Microsoft documents them:
// ObjectIds and IPAddresses lists separated by commas, any one matching,
// FreeText a text in any of the record's values, in any case. Ignoring
// any of them would return the records that don't pass too.
func TestSearchUnifiedAuditLogFilters(t *testing.T) {
	w := newFilterWorld(t)
	id2, id5 := w.ids[2], w.ids[5]
	for _, c := range []struct {
		args []string
		keep func(record.Record) bool
	}{
		{[]string{"-FreeText", "ZEBRA"}, func(r record.Record) bool { return strings.Contains(r.Comment, "Zebra") }},
		{[]string{"-ObjectIds", id2 + `,"` + strings.ToUpper(id5) + `"`}, func(r record.Record) bool { return r.ObjectId == id2 || r.ObjectId == id5 }},
		{[]string{"-ObjectIds", "*" + id5[len(id5)-12:]}, func(r record.Record) bool { return r.ObjectId == id5 }},
		{[]string{"-IPAddresses", "192.0.2.250"}, func(r record.Record) bool { return r.ClientIP == "192.0.2.250" }},
		{[]string{"-IPAddresses", "::ffff:127.0.0.1, 198.51.100.1"}, func(r record.Record) bool { return r.ClientIP == "127.0.0.1" }},
		{[]string{"-RecordType", "ExchangeAdmin", "-FreeText", "zebra"}, func(r record.Record) bool {
			return r.RecordType == record.RecordTypeExchangeAdmin && strings.Contains(r.Comment, "Zebra")
		}},
		{[]string{"-recordtype", "1", "-IPAddresses", "192.0.2.250"}, func(r record.Record) bool {
			return r.RecordType == record.RecordTypeExchangeAdmin && r.ClientIP == "192.0.2.250"
		}},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			want := w.want(c.keep)
			code, p, errs := w.search(c.args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if got := recordIDs(p.Records); !slices.Equal(got, want) {
				t.Errorf("records %q, want %q", got, want)
			}
			if p.NextCursor != "" {
				t.Errorf("next cursor %q after the whole range", p.NextCursor)
			}
		})
	}

	// Lockbox writes no operator action here, nor any record of another
	// of Microsoft's types: those searches find nothing, and say so.
	for _, args := range [][]string{{"-RecordType", "DataCenterSecurityCmdlet"}, {"-RecordType", "10"}, {"-RecordType", "sharepoint"}, {"-RecordType", "CopilotInteraction", "-FreeText", "zebra"}} {
		code, p, errs := w.search(args...)
		if code != exitOK || len(p.Records) != 0 || p.NextCursor != "" {
			t.Errorf("%q: exit %d, %d records, next %q: %s", args, code, len(p.Records), p.NextCursor, errs)
		}
	}
	code, _, errs := table(w, "-RecordType", "SharePoint")
	if code != exitOK || !strings.Contains(errs, "No records: Lockbox writes no records of type SharePoint.") {
		t.Errorf("-RecordType SharePoint as a table: exit %d, stderr %q", code, errs)
	}

	// A value that is no record type, or no address, is refused before
	// anything is sent, as PowerShell refuses it, in one line.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-RecordType", "ExchangeAdmn"}, `-RecordType "ExchangeAdmn" is not a record type: give one of Microsoft 365's AuditRecordType values; Lockbox writes ExchangeAdmin (1) and DataCenterSecurityCmdlet (10)`},
		{[]string{"-RecordType", "ExchangeAdmin,DataCenterSecurityCmdlet"}, `-RecordType "ExchangeAdmin,DataCenterSecurityCmdlet" is not a record type`},
		{[]string{"-RecordType", "74"}, `-RecordType "74" is not a record type`},
		{[]string{"-IPAddresses", "127.0.0.1,localhost"}, `-IPAddresses "localhost" is not an IP address`},
		{[]string{"-IPAddresses", "10.0.0.0/8"}, `-IPAddresses "10.0.0.0/8" is not an IP address`},
		{[]string{"-ObjectIds", id2 + ",,"}, `-ObjectIds "` + id2 + `,," holds an empty value`},
		{[]string{"-FreeText", ""}, "-FreeText is empty"},
	} {
		code, _, errs := w.search(c.args...)
		if code != exitUsage || !strings.HasPrefix(errs, "lockboxctl: "+c.want) || strings.Count(errs, "\n") != 2 {
			t.Errorf("%q: exit %d, stderr %q; want exit %d, %q", c.args, code, errs, exitUsage, c.want)
		}
	}
}

// table runs Search-UnifiedAuditLog as w.search does, as a table.
func table(w *filterWorld, args ...string) (int, string, string) {
	w.t.Helper()
	env := map[string]string{EnvAddr: w.addr, EnvToken: w.tokens["auditor"], EnvConfigDir: w.t.TempDir()}
	argv := append([]string{"Search-UnifiedAuditLog", "-StartDate", w.from, "-EndDate", w.to, "--tenant", "contoso"}, args...)
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), argv, func(k string) string { return env[k] }, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestSearchUnifiedAuditLogFilterKeepsResultSize: a filter lockboxctl
// applies still returns at most -ResultSize records, the newest that pass,
// and the cursor it names continues right after the last one shown:
// the search continued returns the rest, none skipped, none twice.
func TestSearchUnifiedAuditLogFilterKeepsResultSize(t *testing.T) {
	w := newFilterWorld(t)
	want := w.want(func(r record.Record) bool { return strings.Contains(r.Comment, "Zebra") })
	if len(want) != 4 {
		t.Fatalf("%d zebras, want 4", len(want))
	}
	var got []string
	code, p, errs := w.search("-FreeText", "zebra", "-ResultSize", "3")
	if code != exitOK || p.NextCursor == "" {
		t.Fatalf("-ResultSize 3: exit %d, next cursor %q: %s", code, p.NextCursor, errs)
	}
	if ids := recordIDs(p.Records); !slices.Equal(ids, want[:3]) {
		t.Fatalf("-ResultSize 3: records %q, want %q", ids, want[:3])
	}
	got = append(got, recordIDs(p.Records)...)
	for cursor := p.NextCursor; cursor != ""; cursor = p.NextCursor {
		if code, p, errs = w.search("-FreeText", "zebra", "-ResultSize", "1", "--cursor", cursor); code != exitOK {
			t.Fatalf("--cursor %s: exit %d: %s", cursor, code, errs)
		}
		if len(p.Records) > 1 {
			t.Fatalf("-ResultSize 1: %d records", len(p.Records))
		}
		got = append(got, recordIDs(p.Records)...)
	}
	if !slices.Equal(got, want) {
		t.Errorf("the search continued page by page returned %q, want %q", got, want)
	}
}

// pagedLog is an audit API over n entries, newest first, whose cursors
// are offsets: entry i is a record of type 10 when op(i), else of type 1,
// or, when bad(i), a record that can't be read. It pages as the API does:
// limit entries from the cursor, a record that can't be read taking a
// place as a record does.
type pagedLog struct {
	n       int
	op, bad func(int) bool
	mu      sync.Mutex
	queries []string
}

func (l *pagedLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	l.mu.Lock()
	l.queries = append(l.queries, "cursor="+q.Get("cursor")+"&limit="+q.Get("limit"))
	l.mu.Unlock()
	from, _ := strconv.Atoi(strings.TrimPrefix(q.Get("cursor"), "c"))
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 1 || limit > 1000 {
		http.Error(w, `{"error":{"code":"invalid_limit","message":"limit"}}`, http.StatusBadRequest)
		return
	}
	p := wire.RecordPage{Records: []record.Record{}}
	to := min(from+limit, l.n)
	for i := from; i < to; i++ {
		if l.bad(i) {
			p.Unreadable = append(p.Unreadable, wire.UnreadableRecord{Tenant: "contoso", StreamID: fmt.Sprintf("%d-0", i), Error: "cannot be read"})
			continue
		}
		rec := sampleRecords()[0]
		rec.Id = strconv.Itoa(i)
		if l.op(i) {
			rec.RecordType = record.RecordTypeDataCenterSecurityCmdlet
		}
		p.Records = append(p.Records, rec)
	}
	if to < l.n {
		p.NextCursor = "c" + strconv.Itoa(to)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(p)
}

// TestSearchUnifiedAuditLogFilterReadsOnPastPages: a filter lockboxctl
// applies reads the API's largest pages and goes on past pages that hold
// too few of the records it keeps, until it has -ResultSize of them,
// never stopping early; it ends a page at the last one it shows, so its
// cursor continues there. A record that can't be read takes a place, as
// it does without a filter, wherever it falls in the page.
func TestSearchUnifiedAuditLogFilterReadsOnPastPages(t *testing.T) {
	run := func(t *testing.T, l *pagedLog, args ...string) (wire.RecordPage, string) {
		t.Helper()
		srv := httptest.NewServer(l)
		defer srv.Close()
		env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
		argv := append([]string{"Search-UnifiedAuditLog", "-StartDate", "2026-03-01", "-EndDate", "2026-03-05", "-o", "json", "-RecordType", "DataCenterSecurityCmdlet"}, args...)
		var stdout, stderr bytes.Buffer
		if code := Run(context.Background(), argv, func(k string) string { return env[k] }, &stdout, &stderr); code != exitOK {
			t.Fatalf("%q: exit %d: %s", args, code, stderr.String())
		}
		var p wire.RecordPage
		if err := json.Unmarshal(stdout.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		return p, stderr.String()
	}
	// The cursors printed carry the -RecordType given (pscursor.go).
	dcs := psFilter{recordType: record.RecordTypeDataCenterSecurityCmdlet, hasRecordType: true}
	cursor := func(c string) string { return wrapPSCursor(c, dcs) }
	every700 := func(i int) bool { return i%700 == 0 }
	none := func(int) bool { return false }

	l := &pagedLog{n: 2500, op: every700, bad: none}
	p, _ := run(t, l, "-ResultSize", "3")
	// The second page holds the third record and no more: it is taken
	// whole, and the third page, not read, is the next.
	if ids := recordIDs(p.Records); !slices.Equal(ids, []string{"0", "700", "1400"}) || p.NextCursor != cursor("c2000") {
		t.Errorf("-ResultSize 3: records %q, next %q; want 0, 700, 1400 and c2000", ids, p.NextCursor)
	}
	if want := []string{"cursor=&limit=1000", "cursor=c1000&limit=1000"}; !slices.Equal(l.queries, want) {
		t.Errorf("queries %q, want %q", l.queries, want)
	}
	l = &pagedLog{n: 2500, op: every700, bad: none}
	if p, _ = run(t, l, "-ResultSize", "2", "--cursor", cursor("c2000")); !slices.Equal(recordIDs(p.Records), []string{"2100"}) || p.NextCursor != "" {
		t.Errorf("continued at c2000: records %q, next %q; want 2100 alone, the range ended", recordIDs(p.Records), p.NextCursor)
	}
	// The API is sent its own cursor, without the checksum.
	if want := []string{"cursor=c2000&limit=1000"}; !slices.Equal(l.queries, want) {
		t.Errorf("continued at c2000: queries %q, want %q", l.queries, want)
	}

	// The first page holds two: it is read again, ending at the first,
	// whose cursor continues before the second.
	l = &pagedLog{n: 2500, op: every700, bad: none}
	if p, _ = run(t, l, "-ResultSize", "1"); !slices.Equal(recordIDs(p.Records), []string{"0"}) || p.NextCursor != cursor("c1") {
		t.Errorf("-ResultSize 1: records %q, next %q; want 0 and c1", recordIDs(p.Records), p.NextCursor)
	}
	if want := []string{"cursor=&limit=1000", "cursor=&limit=1"}; !slices.Equal(l.queries, want) {
		t.Errorf("queries %q, want %q", l.queries, want)
	}

	// Entry 3 can't be read: the newest two places are record 0 and it,
	// though the first page holds record 700 too.
	l = &pagedLog{n: 2500, op: every700, bad: func(i int) bool { return i == 3 }}
	p, errs := run(t, l, "-ResultSize", "2")
	if ids := recordIDs(p.Records); !slices.Equal(ids, []string{"0"}) || len(p.Unreadable) != 1 || p.Unreadable[0].StreamID != "3-0" || p.NextCursor != cursor("c4") {
		t.Errorf("-ResultSize 2 with entry 3 unreadable: records %q, unreadable %+v, next %q; want 0, 3-0 and c4", ids, p.Unreadable, p.NextCursor)
	}
	if strings.Count(errs, "Audit record 3-0 ") != 1 {
		t.Errorf("stderr %q: want entry 3 named once", errs)
	}
}
