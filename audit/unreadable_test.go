package audit_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

type lockedLogs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestUnreadableAuditRecord: one audit record that does not decode made
// the tenant's audit search fail as a whole (500); now a search shows the
// others and names that one by its stream id in its place, page by page,
// and logs and counts it. The export, a compliance artefact, leaves no
// record out: it stops at that one with an error naming it.
func TestUnreadableAuditRecord(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	log := newLog(rdb, c.Now)
	reg := prometheus.NewRegistry()
	logs := &lockedLogs{}
	if err := log.ReportUnreadable(reg, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
		t.Fatal(err)
	}
	onboard(t, rdb, "contoso", "fabrikam")
	ctx := context.Background()
	add := func(op string) {
		t.Helper()
		c.Advance(time.Second)
		if _, err := log.Append(ctx, record.Record{Operation: op, LockboxTenant: "contoso", RecordType: record.RecordTypeExchangeAdmin,
			Workload: "exchange", UserId: record.OperatorUserID, UserType: record.UserTypeDcAdmin, ProviderUserId: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	add("Get-Mailbox")
	c.Advance(time.Second)
	if err := audit.AppendStored(ctx, rdb, "contoso", `{"Id":"x","UserId":"jane.doe@contoso.example","CreationTime":"2026-`); err != nil {
		t.Fatal(err)
	}
	add("Set-Mailbox")
	msgs, err := rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Result()
	if err != nil || len(msgs) != 3 {
		t.Fatalf("stream: %d entries, %v", len(msgs), err)
	}
	bad := msgs[1].ID

	sue := identity.Principal{Subject: "sue", Roles: []identity.Role{identity.RoleAuditReader}}
	tom := identity.Principal{Subject: "tom@contoso.example", TenantID: "contoso", Roles: []identity.Role{identity.RoleAuditReader}}
	day := c.Now().Add(-time.Hour)
	for _, tc := range []struct {
		name string
		who  identity.Principal
		q    audit.Query
	}{
		{"provider, one tenant", sue, audit.Query{Tenant: "contoso"}},
		{"provider, every tenant", sue, audit.Query{}},
		{"tenant reader", tom, audit.Query{}},
		{"date range", sue, audit.Query{Tenant: "contoso", From: day, To: c.Now().Add(time.Hour)}},
		{"operation filter", sue, audit.Query{Tenant: "contoso", Operation: "Get-Mailbox"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pg, err := log.Search(ctx, tc.who, tc.q)
			if err != nil {
				t.Fatalf("search failed: %v", err)
			}
			want := 2
			if tc.q.Operation != "" {
				want = 1
			}
			if len(pg.Records) != want {
				t.Errorf("%d records, want %d: %+v", len(pg.Records), want, pg.Records)
			}
			if len(pg.Unreadable) != 1 || pg.Unreadable[0] != (audit.UnreadableRecord{Tenant: "contoso", StreamID: bad}) {
				t.Errorf("unreadable %+v, want contoso %s", pg.Unreadable, bad)
			}
		})
	}

	// Pages of one: the unreadable record has its own, and the cursors
	// lead past it both ways.
	var seen []string
	q := audit.Query{Tenant: "contoso", Limit: 1}
	var prevs []string
	for range 4 {
		pg, err := log.Search(ctx, sue, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(pg.Records)+len(pg.Unreadable) != 1 {
			t.Fatalf("a page of %d records and %d unreadable, want one entry", len(pg.Records), len(pg.Unreadable))
		}
		for _, r := range pg.Records {
			seen = append(seen, r.Operation)
		}
		for _, u := range pg.Unreadable {
			seen = append(seen, u.StreamID)
		}
		prevs = append(prevs, pg.Prev)
		if pg.Next == "" {
			break
		}
		q.Cursor = pg.Next
	}
	if got, want := strings.Join(seen, ","), "Set-Mailbox,"+bad+",Get-Mailbox"; got != want {
		t.Fatalf("pages of one: %s, want %s", got, want)
	}
	back, err := log.Search(ctx, sue, audit.Query{Tenant: "contoso", Limit: 1, Cursor: prevs[2]})
	if err != nil || len(back.Unreadable) != 1 || back.Unreadable[0].StreamID != bad {
		t.Fatalf("the page before the last: %+v, %v; want the unreadable one", back, err)
	}

	var exported []string
	err = log.Export(ctx, sue, audit.Query{Tenant: "contoso"}, func(r record.Record) error {
		exported = append(exported, r.Operation)
		return nil
	})
	fe, ok := errors.AsType[*fault.Error](err)
	if !ok || !errors.Is(err, fault.ErrUnreadable) || fe.Code != "record_unreadable" || !strings.Contains(fe.Message, bad) {
		t.Fatalf("export = %v, want record_unreadable naming %s", err, bad)
	}
	if strings.Join(exported, ",") != "Set-Mailbox" {
		t.Fatalf("exported %v before stopping, want the newer record", exported)
	}
	// A range that ends well before Redis appended it (the stream id's
	// time) does not hold it: that export goes through.
	ms, _, _ := strings.Cut(bad, "-")
	appended, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	before := time.UnixMilli(appended).Add(-audit.ClockSkew - time.Minute)
	if err := log.Export(ctx, sue, audit.Query{Tenant: "contoso", To: before}, func(record.Record) error { return nil }); err != nil {
		t.Fatalf("export of a range ending before the unreadable record: %v", err)
	}

	out := logs.String()
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "stream_id="+bad) || !strings.Contains(out, keys.Audit("contoso")) {
		t.Errorf("no error line names the record %s: %q", bad, out)
	}
	if strings.Contains(out, "jane.doe") {
		t.Errorf("the log repeats the record's content: %q", out)
	}
	if n := auditUnreadable(t, reg); n < 7 {
		t.Errorf("lockbox_unreadable_records_total{kind=\"audit\"} = %v, want a count for each read that met it", n)
	}
}

// auditUnreadable is lockbox_unreadable_records_total{kind="audit"}.
func auditUnreadable(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	return unreadableCount(t, reg, "audit")
}

// unreadableCount is lockbox_unreadable_records_total{kind=kind}.
func unreadableCount(t *testing.T, reg *prometheus.Registry, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "lockbox_unreadable_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == kind {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("lockbox_unreadable_records_total{kind=%q} is not exported", kind)
	return 0
}

// TestOrganizationIDOfUnreadableEntry: a registry entry that does not
// decode, or holds no valid organization id, gave OrganizationID (and so
// every append for the tenant by a log that had not cached the GUID) a
// bare error, which callers took for the store failing (503, to be
// retried). It now wraps fault.ErrUnreadable, code record_unreadable,
// naming the registry entry as the tenant registry does, and never the
// store's failure; the key is in the error for the call's log line.
//
// Each such read also counts the entry in
// lockbox_unreadable_records_total{kind="tenant"} and logs it at error
// with its key, as the tenant registry's reads do: on a replica that had
// not cached the GUID, the proxy's audited calls of the tenant and the
// lifecycle's records failed on it without a word to the alert.
func TestOrganizationIDOfUnreadableEntry(t *testing.T) {
	ctx := context.Background()
	for name, stored := range map[string]string{
		"cut short":          `{"id":"contoso","organization_id":"6f96`,
		"no organization id": `{"id":"contoso","organization_id":"not a guid"}`,
	} {
		t.Run(name, func(t *testing.T) {
			rdb := testRedis(t)
			if err := rdb.Set(ctx, keys.Tenant("contoso"), stored, 0).Err(); err != nil {
				t.Fatal(err)
			}
			l := audit.NewLog(rdb, clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)).Now)
			reg, logs := prometheus.NewRegistry(), &lockedLogs{}
			if err := l.ReportUnreadable(reg, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
				t.Fatal(err)
			}
			_, err := l.OrganizationID(ctx, "contoso")
			fe, ok := errors.AsType[*fault.Error](err)
			if !ok || !errors.Is(err, fault.ErrUnreadable) || errors.Is(err, fault.ErrUnavailable) || fe.Code != "record_unreadable" {
				t.Fatalf("error %v (%T), want record_unreadable and not the store's failure", err, err)
			}
			if !strings.Contains(fe.Message, "registry entry of tenant contoso cannot be read") || strings.Contains(fe.Message, "6f96") {
				t.Errorf("message %q: want it to name the entry, not its content", fe.Message)
			}
			if !strings.Contains(err.Error(), keys.Tenant("contoso")) {
				t.Errorf("error %q does not name the key for the log", err)
			}
			// An append for the tenant fails alike, writing nothing.
			_, err = l.Append(ctx, record.Record{Operation: "Get-Mailbox", LockboxTenant: "contoso", UserId: record.OperatorUserID,
				RecordType: record.RecordTypeExchangeAdmin, UserType: record.UserTypeDcAdmin})
			if !errors.Is(err, fault.ErrUnreadable) {
				t.Errorf("append: %v, want record_unreadable", err)
			}
			if n, err := rdb.XLen(ctx, keys.Audit("contoso")).Result(); err != nil || n != 0 {
				t.Errorf("the stream holds %d records (%v), want none", n, err)
			}
			// Two reads of the entry, each counted once.
			if n := unreadableCount(t, reg, "tenant"); n != 2 {
				t.Errorf(`lockbox_unreadable_records_total{kind="tenant"} = %v after two reads, want 2`, n)
			}
			line := logs.String()
			if strings.Count(line, "level=ERROR") != 2 || !strings.Contains(line, "key="+keys.Tenant("contoso")) || !strings.Contains(line, "kind=tenant") {
				t.Errorf("log %q: want an error line naming the key for each read", line)
			}
			if strings.Contains(line, "6f96") {
				t.Errorf("the log repeats the entry's content: %q", line)
			}
		})
	}
}

// TestRecordedOrganizationID: the organization id a record of a request
// ending is written with when the registry entry can't be read is the one
// the tenant's newest record that decodes and names the tenant carries,
// damaged records passed over; a log with none has none.
func TestRecordedOrganizationID(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	l := audit.NewLog(rdb, clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)).Now)
	if id, err := l.RecordedOrganizationID(ctx, "contoso"); err == nil {
		t.Fatalf("an empty log gave %q", id)
	}
	const guid = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
	if _, err := l.Append(ctx, record.Record{Operation: "Get-Mailbox", LockboxTenant: "contoso", OrganizationId: guid,
		UserId: record.OperatorUserID, RecordType: record.RecordTypeExchangeAdmin, UserType: record.UserTypeDcAdmin}); err != nil {
		t.Fatal(err)
	}
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Audit("contoso"), Values: []string{"r", `{"Id":"cut`}}).Err(); err != nil {
		t.Fatal(err)
	}
	if id, err := l.RecordedOrganizationID(ctx, "contoso"); err != nil || id != guid {
		t.Errorf("RecordedOrganizationID = %q, %v; want %q from the record before the damaged one", id, err, guid)
	}
}
