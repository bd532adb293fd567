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

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/fault"
)

// TestCursorIsBoundToItsFilters: a search's cursor was only a place in
// the log, so one returned for operation=Op-0 and sent with operation=Op-1
// answered a page of the Op-1 search from Op-0's place: a page of another
// listing, handed out as this one's. Every cursor now carries a checksum
// of the filters it was returned for, and one sent with others is refused
// (invalid_cursor, saying which values must stay the same). The filters
// are compared as the search matches them (user and operation in any
// case), and only limit may change. A cursor of the old form, without the
// checksum, is still taken, so cursors handed out before an upgrade, or by
// a replica not yet upgraded, go on working.
func TestCursorIsBoundToItsFilters(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	onboard(t, rdb, "contoso", "fabrikam")
	log := newLog(rdb, nil)
	for i := range 30 {
		for _, tn := range []string{"contoso", "fabrikam"} {
			if _, err := log.Append(ctx, record.Record{Operation: fmt.Sprintf("Op-%d", i%2), LockboxTenant: tn,
				RecordType: record.RecordTypeExchangeAdmin, UserType: record.UserTypeAdmin, UserId: fmt.Sprintf("user%d@%s.example", i%3, tn),
				Workload: record.WorkloadLockbox, ObjectId: fmt.Sprint(i), LockboxRequestId: requestID(i % 5),
				CreationTime: record.Time{Time: t0.Add(time.Duration(i) * time.Minute)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ids := func(pg audit.Page) []string {
		var out []string
		for _, r := range pg.Records {
			out = append(out, r.LockboxTenant+"/"+r.ObjectId)
		}
		return out
	}
	for _, base := range []audit.Query{
		{Tenant: "contoso", Operation: "Op-1"},
		{Operation: "Op-1"}, // every tenant
		{Tenant: "contoso", User: "user1@contoso.example", From: t0.Add(2 * time.Minute), To: t0.Add(25 * time.Minute)},
		{Tenant: "contoso", RequestID: requestID(2)},
		{Tenant: "contoso"},
	} {
		t.Run(fmt.Sprintf("%+v", base), func(t *testing.T) {
			q := base
			q.Limit = 2
			first, err := log.Search(ctx, providerAuditor, q)
			if err != nil || first.Next == "" {
				t.Fatalf("first page: next %q, %v", first.Next, err)
			}
			q.Cursor = first.Next
			second, err := log.Search(ctx, providerAuditor, q)
			if err != nil || second.Prev == "" {
				t.Fatalf("second page: prev %q, %v", second.Prev, err)
			}

			// The same filters, written as the search matches them, and
			// another limit: the cursors work.
			same := q
			same.Operation, same.User, same.Limit = strings.ToUpper(q.Operation), strings.ToUpper(q.User), 3
			if pg, err := log.Search(ctx, providerAuditor, same); err != nil || len(pg.Records) == 0 {
				t.Errorf("the same filters: %d records, %v", len(pg.Records), err)
			}
			same.Cursor = second.Prev
			if pg, err := log.Search(ctx, providerAuditor, same); err != nil || len(pg.Records) == 0 {
				t.Errorf("the same filters, back: %d records, %v", len(pg.Records), err)
			}

			// Any other filter: refused, by Search, Export and
			// CheckRead alike, whichever way the cursor goes.
			others := []func(*audit.Query){
				func(o *audit.Query) { o.Operation += "x" },
				func(o *audit.Query) { o.User = "user2@contoso.example" },
				func(o *audit.Query) { o.RequestID = requestID(9) },
				func(o *audit.Query) { o.From = t0.Add(time.Minute) },
				func(o *audit.Query) { o.To = t0.Add(26 * time.Minute) },
				func(o *audit.Query) { o.HasFrom, o.From = true, time.Time{} },
			}
			if base.Tenant != "" {
				others = append(others, func(o *audit.Query) { o.Tenant = "fabrikam" })
			}
			for i, change := range others {
				for _, cur := range []string{first.Next, second.Prev} {
					o := q
					change(&o)
					if o == q {
						continue // the change is no change for this base
					}
					o.Cursor = cur
					pg, err := log.Search(ctx, providerAuditor, o)
					var fe *fault.Error
					if !errors.As(err, &fe) || !errors.Is(err, fault.ErrInvalid) || fe.Code != "invalid_cursor" || !strings.Contains(fe.Message, "other filters") {
						t.Errorf("change %d: %d records (%v), %v; want invalid_cursor for other filters", i, len(pg.Records), ids(pg), err)
					}
					if o.Cursor == first.Next {
						if err := log.Export(ctx, providerAuditor, o, func(record.Record) error { return nil }); !errors.Is(err, fault.ErrInvalid) {
							t.Errorf("change %d: export: %v", i, err)
						}
					}
					if err := log.CheckRead(ctx, providerAuditor, o); !errors.Is(err, fault.ErrInvalid) {
						t.Errorf("change %d: check: %v", i, err)
					}
				}
			}

			// The old form of the same cursor (its text without the
			// checksum) reads the same page, whatever the filters.
			b, err := base64.RawURLEncoding.DecodeString(first.Next)
			if err != nil {
				t.Fatal(err)
			}
			text, _, ok := strings.Cut(string(b), "~")
			if !ok {
				t.Fatalf("cursor %q carries no checksum", b)
			}
			old := q
			old.Cursor = base64.RawURLEncoding.EncodeToString([]byte(text))
			pg, err := log.Search(ctx, providerAuditor, old)
			if err != nil || !slices.Equal(ids(pg), ids(second)) {
				t.Errorf("old cursor: %v, %v; want %v", ids(pg), err, ids(second))
			}
		})
	}
}
