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
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// trimOnRead runs trim before each XRANGE that reads on from an entry (a
// "(" start): verify's reads after its snapshot.
type trimOnRead struct{ trim func() }

func (h trimOnRead) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h trimOnRead) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); cmd.Name() == "xrange" && len(args) > 2 && strings.HasPrefix(fmt.Sprint(args[2]), "(") {
			h.trim()
		}
		return next(ctx, cmd)
	}
}
func (h trimOnRead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestVerifyWhileRetentionOvertakesIt: retention working through a
// backlog trims past the verification's reading between two of its reads,
// every time it starts again. The records it removed were retention's
// (the anchor says so), and the chain is intact: it is not reported
// broken. A record deleted where a read begins, retention not having
// reached it, still is.
func TestVerifyWhileRetentionOvertakesIt(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 9000
	setup := func(t *testing.T) (redis.UniversalClient, *audit.Log, *clock.Fake, []string) {
		rdb := testRedis(t)
		onboard(t, rdb, "contoso")
		c := clock.NewFake(t0)
		log := audit.NewLog(rdb, c.Now)
		// A record a second.
		if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range n {
				if err := log.AppendTx(ctx, p, operatorRecord("contoso", i)); err != nil {
					return err
				}
				c.Advance(time.Second)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val() {
			ids = append(ids, m.ID)
		}
		return rdb, log, c, ids
	}

	t.Run("overtaken", func(t *testing.T) {
		rdb, log, c, _ := setup(t)
		// Each read after a snapshot finds the next 1500 records gone,
		// three times: once for each time the old verification started
		// again.
		cut, trims := t0, 0
		verifying := redistest.Clone(t, rdb)
		verifying.AddHook(trimOnRead{trim: func() {
			if trims == 3 {
				return
			}
			trims++
			cut = cut.Add(1500 * time.Second)
			if _, err := log.Trim(ctx, "contoso", cut); err != nil {
				t.Error(err)
			}
		}})
		vlog := newLog(verifying, c.Now)
		v, err := vlog.Verify(ctx, auditor, "contoso")
		if err != nil {
			t.Fatal(err)
		}
		if trims != 3 {
			t.Fatalf("retention trimmed %d times during the verification, want 3", trims)
		}
		if !v.OK {
			t.Fatalf("an intact chain reported broken while retention overtook the verification: %+v", v)
		}
		if v, err := vlog.Verify(ctx, auditor, "contoso"); err != nil || !v.OK || v.Records != n-4500 {
			t.Fatalf("after the trims: %+v, %v; want %d records intact", v, err, n-4500)
		}
	})

	t.Run("deleted where a read begins", func(t *testing.T) {
		rdb, log, c, ids := setup(t)
		// Retention removed the first 100 records before; the second read
		// begins at record 1100, and its first record was deleted.
		if m, err := log.Trim(ctx, "contoso", t0.Add(100*time.Second)); err != nil || m != 100 {
			t.Fatalf("trimmed %d, %v", m, err)
		}
		if err := rdb.XDel(ctx, keys.Audit("contoso"), ids[1100]).Err(); err != nil {
			t.Fatal(err)
		}
		v, err := newLog(rdb, c.Now).Verify(ctx, auditor, "contoso")
		if err != nil {
			t.Fatal(err)
		}
		if v.OK || v.BrokenAt != ids[1101] || !strings.Contains(v.Problem, "link to the previous record") {
			t.Fatalf("verification = %+v, want the record after the deleted one (%s) reported", v, ids[1101])
		}
	})
}
