package audit_test

import (
	"context"
	"testing"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// BenchmarkAuditAppend is the proxy's write of one operator-action record:
// "single" is one record per round trip (Log.Append, a transaction with the
// chain script); "batched" is GroupCommit with 16 callers at once, as under
// load, where records share round trips. Each op is one record written and
// acknowledged.
func BenchmarkAuditAppend(b *testing.B) {
	rdb := redistest.Client(b)
	onboard(b, rdb, "contoso")
	log := audit.NewLog(rdb, nil)
	ctx := context.Background()
	b.Run("single", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := log.Append(ctx, operatorRecord("contoso", i)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	g, err := audit.NewGroupCommit(audit.GroupCommitConfig{Log: log})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	b.Run("batched-sequential", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := g.Append(ctx, operatorRecord("contoso", i)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("batched-16", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8) // 16 goroutines on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := g.Append(ctx, operatorRecord("contoso", i)); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}
