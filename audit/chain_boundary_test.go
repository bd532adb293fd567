package audit_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestVerifyTamperingAtABatchBoundary: verification reads the stream 1000
// entries at a time, the first batch in the snapshot's transaction and
// the others after it. A record deleted or edited on either side of a
// batch's end, or the oldest record kept after retention trimmed the
// log, is reported where it is, not passed over between two reads.
func TestVerifyTamperingAtABatchBoundary(t *testing.T) {
	ctx := context.Background()
	stream := keys.Audit("contoso")
	const n = 2100
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	edit := func(rdb redis.UniversalClient, at string) error {
		// Streams can't be edited in place: rebuild it with the same ids
		// and one record changed, as an attacker would.
		msgs, err := rdb.XRange(ctx, stream, "-", "+").Result()
		if err != nil {
			return err
		}
		if err := rdb.Del(ctx, stream).Err(); err != nil {
			return err
		}
		for _, m := range msgs {
			r := m.Values["r"].(string)
			if m.ID == at {
				r = strings.Replace(r, `"ObjectId":"`, `"ObjectId":"x`, 1)
			}
			if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: m.ID, Values: []string{"r", r, "p", m.Values["p"].(string), "h", m.Values["h"].(string)}}).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	for _, trimmed := range []int{0, 500} {
		// Record i is the k-th of those left: 0 is the oldest kept.
		for _, k := range []int{0, 999, 1000, 1999, 2000} {
			i := trimmed + k
			for _, how := range []string{"deleted", "edited"} {
				if i > n-1 || how == "deleted" && i == n-1 {
					continue // none; the newest deleted is a head problem, TestVerifyTruncatedLongChain's
				}
				t.Run(fmt.Sprintf("%d trimmed, record %d %s", trimmed, i, how), func(t *testing.T) {
					rdb := testRedis(t)
					onboard(t, rdb, "contoso")
					c := clock.NewFake(t0)
					log := audit.NewLog(rdb, c.Now)
					_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
						for j := range n {
							c.Advance(time.Second)
							if err := log.AppendTx(ctx, p, operatorRecord("contoso", j)); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
					if trimmed > 0 {
						if got, err := log.Trim(ctx, "contoso", t0.Add(time.Duration(trimmed)*time.Second+time.Second/2)); err != nil || got != trimmed {
							t.Fatalf("trimmed %d, %v; want %d", got, err, trimmed)
						}
					}
					var ids []string
					for _, m := range rdb.XRange(ctx, stream, "-", "+").Val() {
						ids = append(ids, m.ID)
					}
					if len(ids) != n-trimmed {
						t.Fatalf("%d entries, want %d", len(ids), n-trimmed)
					}
					if v, err := log.Verify(ctx, auditor, "contoso"); err != nil || !v.OK || v.Records != n-trimmed {
						t.Fatalf("before: %+v %v", v, err)
					}
					at := ids[k]
					want, broken := "edited", at
					if how == "deleted" {
						if err := rdb.XDel(ctx, stream, at).Err(); err != nil {
							t.Fatal(err)
						}
						want, broken = "link to the previous record", ids[k+1]
					} else if err := edit(rdb, at); err != nil {
						t.Fatal(err)
					}
					v, err := log.Verify(ctx, auditor, "contoso")
					if err != nil {
						t.Fatal(err)
					}
					if v.OK || v.BrokenAt != broken || !strings.Contains(v.Problem, want) || v.Records != k {
						t.Fatalf("verification = %+v; want broken at %s (%q) after %d good records", v, broken, want, k)
					}
				})
			}
		}
	}
}
