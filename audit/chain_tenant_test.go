package audit_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestVerifyCatchesAnotherTenantsRecords: the chain's hashes cover the
// records' bytes, not the stream they are in, so another tenant's records
// carried over whole, with their links and hashes, form a chain that
// re-computes. Each record names its tenant, and a record in a tenant's
// chain that names another one was moved there: the chain is broken at
// it, whether the whole log was swapped for another tenant's (nothing
// re-hashed at all) or one record was moved onto the end of the chain.
func TestVerifyCatchesAnotherTenantsRecords(t *testing.T) {
	ctx := context.Background()
	stream := keys.Audit("contoso")
	tests := []struct {
		name string
		// move puts fabrikam's records in contoso's log and returns the
		// stream id of the first one.
		move func(t *testing.T, rdb redis.UniversalClient) string
	}{
		{"whole log swapped", func(t *testing.T, rdb redis.UniversalClient) string {
			msgs := rdb.XRange(ctx, keys.Audit("fabrikam"), "-", "+").Val()
			if err := rdb.Del(ctx, stream, keys.AuditHead("contoso")).Err(); err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: m.ID, Values: m.Values}).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if err := rdb.Set(ctx, keys.AuditHead("contoso"), rdb.Get(ctx, keys.AuditHead("fabrikam")).Val(), 0).Err(); err != nil {
				t.Fatal(err)
			}
			return msgs[0].ID
		}},
		{"one record moved onto the end", func(t *testing.T, rdb redis.UniversalClient) string {
			msgs := rdb.XRevRangeN(ctx, keys.Audit("fabrikam"), "+", "-", 1).Val()
			r := msgs[0].Values["r"].(string)
			head := rdb.Get(ctx, keys.AuditHead("contoso")).Val()
			sum := sha1.Sum([]byte(head + "\n" + r))
			h := hex.EncodeToString(sum[:])
			id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"r", r, "p", head, "h", h}}).Result()
			if err != nil {
				t.Fatal(err)
			}
			if err := rdb.Set(ctx, keys.AuditHead("contoso"), h, 0).Err(); err != nil {
				t.Fatal(err)
			}
			return id
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rdb := testRedis(t)
			onboard(t, rdb, "contoso", "fabrikam")
			log := audit.NewLog(rdb, clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)).Now)
			for i := range 3 {
				for _, tenant := range []string{"contoso", "fabrikam"} {
					if _, err := log.Append(ctx, operatorRecord(tenant, i)); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, tenant := range []string{"contoso", "fabrikam"} {
				if v, err := log.Verify(ctx, auditor, tenant); err != nil || !v.OK || v.Records != 3 {
					t.Fatalf("%s before: %+v %v", tenant, v, err)
				}
			}
			at := tc.move(t, rdb)
			v, err := log.Verify(ctx, auditor, "contoso")
			if err != nil {
				t.Fatal(err)
			}
			if v.OK || v.BrokenAt != at || !strings.Contains(v.Problem, "another tenant") {
				t.Fatalf("verification = %+v, want broken at %s by another tenant's record", v, at)
			}
			if strings.Contains(v.Problem, "fabrikam") {
				t.Fatalf("the problem names the other tenant to this one's readers: %q", v.Problem)
			}
		})
	}
}
