package audit_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

var auditor = identity.Principal{Subject: "sue", Roles: []identity.Role{identity.RoleAuditReader}}

func appendN(t *testing.T, log *audit.Log, n int) {
	t.Helper()
	for i := range n {
		if _, err := log.Append(context.Background(), record.Record{Operation: fmt.Sprintf("Op-%d", i), LockboxTenant: "contoso",
			RecordType: record.RecordTypeDataCenterSecurityCmdlet, Workload: "exchange", UserId: record.OperatorUserID}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestChainCatchesTampering(t *testing.T) {
	ctx := context.Background()
	stream := keys.Audit("contoso")
	tests := []struct {
		name    string
		tamper  func(t *testing.T, rdb redis.UniversalClient, ids []string)
		brokeAt int // index of the first entry reported; -1: the head
		problem string
	}{
		{"intact", func(*testing.T, redis.UniversalClient, []string) {}, 0, ""},
		{"middle record deleted", func(t *testing.T, rdb redis.UniversalClient, ids []string) {
			rdb.XDel(ctx, stream, ids[2])
		}, 3, "link to the previous record"},
		{"first record deleted", func(t *testing.T, rdb redis.UniversalClient, ids []string) {
			rdb.XDel(ctx, stream, ids[0])
		}, 1, "link to the previous record"},
		{"newest record deleted", func(t *testing.T, rdb redis.UniversalClient, ids []string) {
			rdb.XDel(ctx, stream, ids[4])
		}, -1, "head does not match"},
		{"record edited", func(t *testing.T, rdb redis.UniversalClient, ids []string) {
			// Streams can't be edited in place: rebuild the stream with
			// the same ids and one record changed, as an attacker would.
			msgs := rdb.XRange(ctx, stream, "-", "+").Val()
			rdb.Del(ctx, stream)
			for i, m := range msgs {
				r := m.Values["r"].(string)
				if i == 1 {
					r = strings.Replace(r, `"UserId":"Microsoft Operator"`, `"UserId":"nobody"`, 1)
				}
				if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: m.ID, Values: []string{"r", r, "p", m.Values["p"].(string), "h", m.Values["h"].(string)}}).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}, 1, "edited"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rdb := testRedis(t)
			log := audit.NewLog(rdb, clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)).Now)
			onboard(t, rdb, "contoso")
			appendN(t, log, 5)
			var ids []string
			for _, m := range rdb.XRange(ctx, stream, "-", "+").Val() {
				ids = append(ids, m.ID)
			}
			tc.tamper(t, rdb, ids)
			v, err := log.Verify(ctx, auditor, "contoso")
			if err != nil {
				t.Fatal(err)
			}
			if tc.problem == "" {
				if !v.OK || v.Records != 5 {
					t.Fatalf("intact chain: %+v", v)
				}
				return
			}
			if v.OK || !strings.Contains(v.Problem, tc.problem) {
				t.Fatalf("verification = %+v, want a problem mentioning %q", v, tc.problem)
			}
			if tc.brokeAt >= 0 && v.BrokenAt != ids[tc.brokeAt] {
				t.Fatalf("broken at %s, want %s (%+v)", v.BrokenAt, ids[tc.brokeAt], v)
			}
		})
	}
}

// TestChainConcurrentWriters: replicas appending at once never fork the
// chain.
func TestChainConcurrentWriters(t *testing.T) {
	rdb := testRedis(t)
	c := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	onboard(t, rdb, "contoso")
	var wg sync.WaitGroup
	for range 8 {
		log := audit.NewLog(redistest.Clone(t, rdb), c.Now)
		wg.Go(func() {
			for i := range 50 {
				if _, err := log.Append(context.Background(), record.Record{Operation: fmt.Sprint("Op-", i), LockboxTenant: "contoso", RecordType: record.RecordTypeExchangeAdmin, UserId: "x"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	v, err := audit.NewLog(rdb, c.Now).Verify(context.Background(), auditor, "contoso")
	if err != nil || !v.OK || v.Records != 400 {
		t.Fatalf("verification = %+v, %v", v, err)
	}
}

func TestVerifyScope(t *testing.T) {
	rdb := testRedis(t)
	log := newLog(rdb, nil)
	other := identity.Principal{Subject: "fay", TenantID: "fabrikam", Roles: []identity.Role{identity.RoleAuditReader}}
	if _, err := log.Verify(context.Background(), other, "contoso"); err == nil {
		t.Fatal("another tenant's auditor verified contoso's log")
	}
	// A tenant that was never onboarded has no log to verify.
	if v, err := log.Verify(context.Background(), auditor, "contoso"); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("log of a tenant not onboarded: %+v %v, want not found", v, err)
	}
}

// TestVerifyEmptyChain: onboarding writes a tenant's first record, so an
// onboarded tenant whose chain has no record, no head and no anchor lost
// all of them (deleted with the keys that would tell); that is not an
// intact chain of nothing.
func TestVerifyEmptyChain(t *testing.T) {
	rdb := testRedis(t)
	ctx := context.Background()
	onboard(t, rdb, "contoso")
	log := newLog(rdb, nil)
	if _, err := log.Append(ctx, operatorRecord("contoso", 1)); err != nil {
		t.Fatal(err)
	}
	if v, err := log.Verify(ctx, auditor, "contoso"); err != nil || !v.OK || v.Records != 1 {
		t.Fatalf("one record: %+v %v", v, err)
	}
	if err := rdb.Del(ctx, keys.Audit("contoso"), keys.AuditHead("contoso"), keys.AuditAnchor("contoso")).Err(); err != nil {
		t.Fatal(err)
	}
	v, err := log.Verify(ctx, auditor, "contoso")
	if err != nil || v.OK || v.Records != 0 || !strings.Contains(v.Problem, "empty") {
		t.Fatalf("every record deleted: %+v %v, want broken", v, err)
	}
	// Without a directory to ask, an empty chain is an error, not a verdict.
	if v, err := audit.NewLog(rdb, nil).Verify(ctx, auditor, "contoso"); err == nil {
		t.Fatalf("no directory: %+v, want an error", v)
	}
}

// TestVerifyDuringAppends: a verification while another replica appends
// judges the chain as it stood when it began, and never reports the records
// appended meanwhile as a broken head. The stream is longer than one read
// batch, so appends land between the reads.
func TestVerifyDuringAppends(t *testing.T) {
	rdb := testRedis(t)
	onboard(t, rdb, "contoso")
	c := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	log := audit.NewLog(rdb, c.Now)
	appendN(t, log, 1500)
	w := audit.NewLog(redistest.Clone(t, rdb), c.Now)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if _, err := w.Append(context.Background(), record.Record{Operation: fmt.Sprint("Op-", i), LockboxTenant: "contoso", RecordType: record.RecordTypeExchangeAdmin, UserId: "x"}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	bad := 0
	for range 40 {
		v, err := log.Verify(context.Background(), auditor, "contoso")
		if err != nil {
			t.Fatal(err)
		}
		if !v.OK {
			if bad++; bad == 1 {
				t.Errorf("an intact chain reported broken while another replica appended: %+v", v)
			}
		}
	}
	close(done)
	wg.Wait()
	if bad > 1 {
		t.Errorf("%d of 40 verifications failed", bad)
	}
	if v, err := log.Verify(context.Background(), auditor, "contoso"); err != nil || !v.OK {
		t.Fatalf("after the writer stopped: %+v %v", v, err)
	}
}

// TestVerifyTruncatedLongChain: stopping at the snapshot's head must not
// hide deleted newest records when the stream spans several read batches.
func TestVerifyTruncatedLongChain(t *testing.T) {
	ctx := context.Background()
	stream := keys.Audit("contoso")
	for name, tamper := range map[string]func(rdb redis.UniversalClient, ids []string){
		"newest deleted": func(rdb redis.UniversalClient, ids []string) { rdb.XDel(ctx, stream, ids[len(ids)-1]) },
		"newest 600 deleted": func(rdb redis.UniversalClient, ids []string) {
			rdb.XDel(ctx, stream, ids[len(ids)-600:]...)
		},
		"head removed": func(rdb redis.UniversalClient, ids []string) { rdb.Del(ctx, keys.AuditHead("contoso")) },
	} {
		t.Run(name, func(t *testing.T) {
			rdb := testRedis(t)
			onboard(t, rdb, "contoso")
			log := audit.NewLog(rdb, clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)).Now)
			appendN(t, log, 2100)
			var ids []string
			for _, m := range rdb.XRange(ctx, stream, "-", "+").Val() {
				ids = append(ids, m.ID)
			}
			tamper(rdb, ids)
			v, err := log.Verify(ctx, auditor, "contoso")
			if err != nil {
				t.Fatal(err)
			}
			if v.OK || !strings.Contains(v.Problem, "head does not match") {
				t.Fatalf("verification = %+v, want the newest records reported missing", v)
			}
		})
	}
}

// TestVerifyEntryAfterTheHead: an entry added to the stream behind the
// chain's back (an XADD that did not go through the append script, so it
// follows the head the head key names) is in the stream when the
// verification's snapshot is taken, so it is judged, however long the log:
// a stream spanning several read batches is not reported intact because
// its reading stopped at the head's entry.
func TestVerifyEntryAfterTheHead(t *testing.T) {
	ctx := context.Background()
	stream := keys.Audit("contoso")
	// 1000 is one read batch of verify.
	for _, n := range []int{5, 999, 1000, 2000, 2100} {
		for name, values := range map[string]func(head string) []string{
			"no chain fields": func(string) []string { return []string{"r", `{"Operation":"Get-Mailbox"}`} },
			// Linked to the head and hashed as the script would, but the
			// head key was left as it was.
			"linked, head not moved": func(head string) []string {
				r := `{"Operation":"Get-Mailbox"}`
				sum := sha1.Sum([]byte(head + "\n" + r))
				return []string{"r", r, "p", head, "h", hex.EncodeToString(sum[:])}
			},
		} {
			t.Run(fmt.Sprintf("%d records, %s", n, name), func(t *testing.T) {
				rdb := testRedis(t)
				onboard(t, rdb, "contoso")
				log := audit.NewLog(rdb, clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)).Now)
				_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
					for i := range n {
						if err := log.AppendTx(ctx, p, operatorRecord("contoso", i)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if v, err := log.Verify(ctx, auditor, "contoso"); err != nil || !v.OK || v.Records != n {
					t.Fatalf("before: %+v %v", v, err)
				}
				head := rdb.Get(ctx, keys.AuditHead("contoso")).Val()
				id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: values(head)}).Result()
				if err != nil {
					t.Fatal(err)
				}
				v, err := log.Verify(ctx, auditor, "contoso")
				if err != nil {
					t.Fatal(err)
				}
				if v.OK {
					t.Fatalf("entry %s added after the head went unnoticed: %+v", id, v)
				}
			})
		}
	}
}

// TestVerifySaysWhatIsWrongWithTheHead: when the head does not match the
// last record, the verification tells records slipped in from records
// deleted. Entries linked and hashed as the script would but appended
// without moving the head (behind the chain's back) are named, the first
// of them as BrokenAt with its record Id; a head deleted is said to be
// missing; the newest records deleted are said to be missing.
func TestVerifySaysWhatIsWrongWithTheHead(t *testing.T) {
	ctx := context.Background()
	stream := keys.Audit("contoso")
	for _, tc := range []struct {
		name      string
		trimFirst bool
	}{{"whole log", false}, {"after retention trimmed it all", true}} {
		t.Run(tc.name, func(t *testing.T) {
			rdb := testRedis(t)
			onboard(t, rdb, "contoso")
			c := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
			log := audit.NewLog(rdb, c.Now)
			appendN(t, log, 5)
			if tc.trimFirst {
				c.Advance(time.Hour)
				if n, err := log.Trim(ctx, "contoso", c.Now()); err != nil || n != 5 {
					t.Fatalf("trimmed %d, %v", n, err)
				}
			}
			head := rdb.Get(ctx, keys.AuditHead("contoso")).Val()
			var slipped []string
			prev := head
			for i := range 3 {
				r := fmt.Sprintf(`{"Id":"slipped-%d","Operation":"Get-Mailbox","LockboxTenant":"contoso"}`, i)
				sum := sha1.Sum([]byte(prev + "\n" + r))
				h := hex.EncodeToString(sum[:])
				id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"r", r, "p", prev, "h", h}}).Result()
				if err != nil {
					t.Fatal(err)
				}
				slipped, prev = append(slipped, id), h
			}
			v, err := log.Verify(ctx, auditor, "contoso")
			if err != nil {
				t.Fatal(err)
			}
			if v.OK || v.BrokenAt != slipped[0] || v.RecordId != "slipped-0" ||
				!strings.Contains(v.Problem, "this record and the 2 after it were added without moving the head") {
				t.Fatalf("verification = %+v, want the first of the 3 records slipped in behind the head (%s, slipped-0) named", v, slipped[0])
			}

			if err := rdb.Del(ctx, keys.AuditHead("contoso")).Err(); err != nil {
				t.Fatal(err)
			}
			v, err = log.Verify(ctx, auditor, "contoso")
			if err != nil {
				t.Fatal(err)
			}
			if v.OK || v.BrokenAt != "" || !strings.Contains(v.Problem, "the head is missing") {
				t.Fatalf("verification = %+v, want the head reported missing", v)
			}
		})
	}
}
