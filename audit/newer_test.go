package audit_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// newerLog is a log of three tenants whose streams share entry ids (so a
// search of every tenant orders them by tenant within one id), with add
// to append more at its head.
type newerLog struct {
	t    *testing.T
	rdb  redis.UniversalClient
	log  *audit.Log
	next int // the next entry's millisecond, from 1_700_000_000_000
}

var newerTenants = []string{"contoso", "fabrikam", "northwind"}

func newNewerLog(t *testing.T) *newerLog {
	rdb := testRedis(t)
	onboard(t, rdb, newerTenants...)
	return &newerLog{t: t, rdb: rdb, log: newLog(rdb, nil), next: 0}
}

// add appends an entry with the next id to each of tenants, created at
// (within a second of) at; its ObjectId names its id and tenant, and
// its Operation alternates between Op-0 and Op-1.
func (l *newerLog) add(at time.Time, tenants ...string) {
	l.t.Helper()
	id := fmt.Sprintf("%d-%d", 1_700_000_000_000+int64(l.next/3), l.next%3)
	for _, tn := range tenants {
		r := l.log.Prepare(record.Record{
			CreationTime: record.Time{Time: at}, Operation: fmt.Sprintf("Op-%d", l.next%2),
			LockboxTenant: tn, OrganizationId: orgID(tn), RecordType: record.RecordTypeExchangeAdmin, UserType: record.UserTypeAdmin,
			UserId: "gina@" + tn + ".example", Workload: record.WorkloadLockbox, ObjectId: id + "/" + tn,
		})
		if err := l.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: keys.Audit(tn), ID: id,
			Values: []any{"r", string(r.AppendJSON(nil)), "p", "", "h", "x"}}).Err(); err != nil {
			l.t.Fatal(err)
		}
	}
	l.next++
}

func objects(pg audit.Page) []string {
	out := make([]string, 0, len(pg.Records))
	for _, r := range pg.Records {
		out = append(out, r.ObjectId)
	}
	return out
}

// TestSearchNewerWalk walks a search Older, Older, Newer, Older, Newer,
// Newer while records are appended at the head of the log between the
// steps: each page read again is the page it was, going Newer from the
// first page's place leads to the records appended since (when the range
// takes them), the first page has no Prev and the last no Next, and the
// pages read from the newest down at the end hold every record once, in
// the search's order.
func TestSearchNewerWalk(t *testing.T) {
	for _, tc := range []struct {
		name string
		by   identity.Principal
		q    audit.Query
	}{
		{"every tenant", providerAuditor, audit.Query{}},
		{"every tenant, one operation", providerAuditor, audit.Query{Operation: "Op-1"}},
		{"one tenant", providerAuditor, audit.Query{Tenant: "fabrikam"}},
		{"tenant user, one operation", tenantAuditor, audit.Query{Operation: "op-0"}},
		{"date range", providerAuditor, audit.Query{From: t0.Add(time.Second), To: t0.Add(3 * time.Second)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			l := newNewerLog(t)
			for i := range 40 {
				// Some ids in one or two streams only; a second of
				// CreationTime per 8 entries.
				tns := newerTenants[:1+i%3]
				if i%4 == 3 {
					tns = newerTenants[1:]
				}
				l.add(t0.Add(time.Duration(i/8)*time.Second), tns...)
			}
			head := func() { l.add(t0.Add(time.Hour), newerTenants...) }
			q := tc.q
			q.Limit = 3
			page := func(cursor string) audit.Page {
				t.Helper()
				q := q
				q.Cursor = cursor
				pg, err := l.log.Search(ctx, tc.by, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(pg.Records) > q.Limit {
					t.Fatalf("a page of %d records, limit %d", len(pg.Records), q.Limit)
				}
				return pg
			}
			same := func(step string, got, want audit.Page) {
				t.Helper()
				if !slices.Equal(objects(got), objects(want)) {
					t.Fatalf("%s: page\n%v\nwant\n%v", step, objects(got), objects(want))
				}
			}
			first := page("")
			if first.Prev != "" || first.Next == "" {
				t.Fatalf("first page: prev %q next %q", first.Prev, first.Next)
			}
			second := page(first.Next)
			if second.Prev == "" {
				t.Fatal("the second page has no Prev")
			}
			head()
			third := page(second.Next)
			head()
			back := page(third.Prev)
			same("Newer from the third page", back, second)
			if back.Prev == "" || back.Next == "" {
				t.Fatalf("second page read Newer: prev %q next %q", back.Prev, back.Next)
			}
			head()
			same("Older again", page(back.Next), third)
			again := page(back.Prev)
			same("Newer from the second page", again, first)
			top := again
			if q.To.IsZero() {
				if again.Prev == "" {
					t.Fatal("the first page's place has no Prev, though records were appended since")
				}
				top = page(again.Prev)
				same("Older from the records appended since", page(top.Next), first)
			} else if again.Prev != "" {
				t.Fatalf("the first page's place has a Prev %q, though no record after it is in the range", again.Prev)
			}
			for i := 0; top.Prev != ""; i++ {
				if i > 5 {
					t.Fatal("Newer does not end")
				}
				top = page(top.Prev)
			}

			all := q
			all.Limit = audit.MaxLimit
			want, err := l.log.Search(ctx, tc.by, all)
			if err != nil || want.Next != "" {
				t.Fatalf("every record: next %q, %v", want.Next, err)
			}
			got := objects(top)
			for c := top.Next; c != ""; {
				pg := page(c)
				got = append(got, objects(pg)...)
				c = pg.Next
			}
			if !slices.Equal(got, objects(want)) {
				t.Fatalf("walk from the newest:\n%v\nwant\n%v", got, objects(want))
			}
			if tc.by.TenantID != "" {
				for _, o := range got {
					if !strings.HasSuffix(o, "/"+tc.by.TenantID) {
						t.Fatalf("a tenant user was shown record %s", o)
					}
				}
			}
		})
	}
}

// TestSearchNewerCursor: a Prev cursor is refused like a Next one when it
// is changed or belongs to the other kind of search, only a search pages
// back with one, and one with nothing newer leads to the first page.
func TestSearchNewerCursor(t *testing.T) {
	ctx := context.Background()
	l := newNewerLog(t)
	for range 6 {
		l.add(t0, newerTenants...)
	}
	one := audit.Query{Tenant: "contoso", Limit: 2}
	pg, err := l.log.Search(ctx, providerAuditor, one)
	if err != nil {
		t.Fatal(err)
	}
	one.Cursor = pg.Next
	second, err := l.log.Search(ctx, providerAuditor, one)
	if err != nil || second.Prev == "" {
		t.Fatalf("second page: %+v, %v", second, err)
	}
	prev := second.Prev
	flip := []byte(prev)
	flip[len(flip)/2] ^= 1
	invalid := func(name string, err error) {
		t.Helper()
		if fe, ok := errors.AsType[*fault.Error](err); !ok || fe.Kind != fault.ErrInvalid || fe.Code != "invalid_cursor" {
			t.Errorf("%s: err = %v, want invalid_cursor", name, err)
		}
	}
	for _, tc := range []struct {
		name string
		q    audit.Query
	}{
		{"search of every tenant", audit.Query{Cursor: prev}},
		{"changed", audit.Query{Tenant: "contoso", Cursor: string(flip)}},
		{"not canonical", audit.Query{Tenant: "contoso", Cursor: base64.RawURLEncoding.EncodeToString([]byte("n:01700000000000-1"))}},
	} {
		_, err := l.log.Search(ctx, providerAuditor, tc.q)
		invalid(tc.name, err)
		invalid(tc.name+", checked", l.log.CheckRead(ctx, providerAuditor, tc.q))
	}
	q := audit.Query{Tenant: "contoso", Limit: 2, Cursor: prev}
	if err := l.log.CheckRead(ctx, providerAuditor, q); err != nil {
		t.Errorf("CheckRead of a Prev cursor: %v", err)
	}
	invalid("export", l.log.Export(ctx, providerAuditor, q, func(record.Record) error { return nil }))

	// Nothing newer than the newest possible id: the first page.
	q.Cursor = base64.RawURLEncoding.EncodeToString([]byte("n:18446744073709551615-18446744073709551615"))
	top, err := l.log.Search(ctx, providerAuditor, q)
	if err != nil || !slices.Equal(objects(top), objects(pg)) || top.Prev != "" || top.Next != pg.Next {
		t.Fatalf("Newer from the end of ids: %v prev %q next %q, %v; want the first page %v", objects(top), top.Prev, top.Next, err, objects(pg))
	}
}
