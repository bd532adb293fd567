package audit_test

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// The large log of the "Audit at scale" benchmarks (docs/performance.md):
// one tenant, a year of records, 1 000 000 of them by default
// (LOCKBOX_BENCH_AUDIT_RECORDS changes it). It is written once per test
// binary, on a redis-server of its own, when the first benchmark that needs
// it runs: "go test" without -bench never builds it.
const bigTenant = "bigco"

var (
	bigStart = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	bigSpan  = 365 * 24 * time.Hour
	// Who acts in the large log: 40 engineers through the proxy, and the
	// tenant's approvers in the control-plane records.
	bigEngineers = 40
	bigApprover  = "adam@bigco.example"
	// Operator activities, the first the most common.
	bigOps = []string{"Get-Mailbox", "Get-MailboxFolderStatistics", "Get-InboxRule", "Get-MailboxPermission",
		"Search-Mailbox", "Get-MessageTrace", "Get-SPOSite", "Get-OneDriveFile", "New-MailboxRepairRequest", "Get-CalendarProcessing"}
)

type bigFixture struct {
	rdb  redis.UniversalClient
	log  *audit.Log
	n    int
	took time.Duration
	mem  int64 // Redis used_memory growth
}

var (
	bigOnce sync.Once
	big     bigFixture
	bigErr  error
)

func bigRecords() int {
	if s := os.Getenv("LOCKBOX_BENCH_AUDIT_RECORDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return 1_000_000
}

func bigLog(b *testing.B) *bigFixture {
	b.Helper()
	bigOnce.Do(func() {
		srv, err := redistest.Start()
		if err != nil {
			bigErr = err
			return
		}
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
		before := usedMemory(rdb)
		start := time.Now()
		n := bigRecords()
		if bigErr = writeBig(rdb, n); bigErr != nil {
			return
		}
		big = bigFixture{rdb: rdb, log: newLog(rdb, nil), n: n, took: time.Since(start), mem: usedMemory(rdb) - before}
		fmt.Fprintf(os.Stderr, "audit fixture: %d records written in %s; Redis used_memory +%d MiB (%d B/record)\n",
			n, big.took.Round(time.Millisecond), big.mem>>20, big.mem/int64(n))
	})
	if bigErr != nil {
		b.Fatal(bigErr)
	}
	return &big
}

func usedMemory(rdb redis.UniversalClient) int64 {
	info := rdb.Info(context.Background(), "memory").Val()
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// writeBig writes n records to bigTenant's stream in the stream's own
// format — each entry the record's JSON ("r"), the previous entry's chain
// hash ("p") and its own ("h"), as the append scripts make them — with
// pipelined XADDs rather than a script call each, and ids from the
// records' creation times, as Redis's clock gives them.
func writeBig(rdb redis.UniversalClient, n int) error {
	step := bigSpan / time.Duration(n)
	return writeLog(rdb, n, func(i int) time.Time { return bigStart.Add(time.Duration(i) * step) })
}

// writeLog writes n records to bigTenant's stream, record i created at
// created(i), with stream ids in the order of i (their millisecond from
// the creation time while that keeps them in order).
func writeLog(rdb redis.UniversalClient, n int, created func(int) time.Time) error {
	ctx := context.Background()
	onboard(nopTB{}, rdb, bigTenant)
	org := orgID(bigTenant)
	rng := rand.New(rand.NewPCG(1, 2))
	prev := ""
	var last streamPos
	var buf []byte
	log := audit.NewLog(rdb, nil)
	const chunk = 2000
	for start := 0; start < n; start += chunk {
		p := rdb.Pipeline()
		for i := start; i < min(n, start+chunk); i++ {
			at := created(i)
			r := bigRecord(rng, i, at, org)
			r = log.Prepare(r)
			buf = r.AppendJSON(buf[:0])
			sum := sha1.Sum([]byte(prev + "\n" + string(buf)))
			h := hex.EncodeToString(sum[:])
			last = last.after(at.UnixMilli())
			p.XAdd(ctx, &redis.XAddArgs{Stream: keys.Audit(bigTenant), ID: last.String(),
				Values: []any{"r", string(buf), "p", prev, "h", h}})
			prev = h
		}
		if _, err := p.Exec(ctx); err != nil {
			return err
		}
	}
	return rdb.Set(ctx, keys.AuditHead(bigTenant), prev, 0).Err()
}

// streamPos is a stream entry id, as Redis's clock would give it.
type streamPos struct{ ms, seq int64 }

// after returns the id of the entry appended after p at Unix millisecond ms.
func (p streamPos) after(ms int64) streamPos {
	if ms > p.ms {
		return streamPos{ms, 0}
	}
	return streamPos{p.ms, p.seq + 1}
}

func (p streamPos) String() string { return fmt.Sprintf("%d-%d", p.ms, p.seq) }

// bigRecord is record i: an engineer's call through the proxy, or, one
// time in 200, a tenant approver's decision.
func bigRecord(rng *rand.Rand, i int, at time.Time, org string) record.Record {
	req := fmt.Sprintf("0196%04x-7c2e-7000-8000-%012x", i/500%0xffff, i/500)
	if i%200 == 199 {
		return record.Record{CreationTime: record.Time{Time: at}, Operation: record.OpTenantDecision, LockboxTenant: bigTenant,
			OrganizationId: org, RecordType: record.RecordTypeExchangeAdmin, Workload: "exchange", UserId: bigApprover,
			UserType: record.UserTypeRegular, ClientIP: "203.0.113.7", ObjectId: req, LockboxRequestId: req,
			ApprovalDecision: record.ApprovalApprove, Parameters: []record.Parameter{{Name: "Identity", Value: req}, {Name: "ApprovalDecision", Value: "Approve"}}}
	}
	// Skewed: the first operations and engineers are the busiest.
	op := bigOps[min(len(bigOps)-1, int(rng.ExpFloat64()*2))]
	eng := fmt.Sprintf("eng%02d@provider.example", min(bigEngineers-1, int(rng.ExpFloat64()*10)))
	path := fmt.Sprintf("/tenants/%s/mailboxes/user%04d@bigco.example", bigTenant, rng.IntN(5000))
	approved := record.Time{Time: at.Add(-time.Hour)}
	return record.Record{CreationTime: record.Time{Time: at}, Operation: op, LockboxTenant: bigTenant, OrganizationId: org,
		RecordType: record.RecordTypeDataCenterSecurityCmdlet, Workload: "exchange", UserId: record.OperatorUserID,
		UserType: record.UserTypeDcAdmin, ClientIP: "10.1.2.3", ObjectId: "exchange" + path, LockboxRequestId: req,
		LockboxApprover: bigApprover, LockboxApprovalTime: &approved, LockboxMethod: "GET", LockboxPath: path,
		LockboxPolicyRevision: "sha256:4f1c2a", ProviderUserId: eng}
}

// TestBigFixtureIsARealChain: the fixture's writer makes entries the log
// reads and verifies as its own.
func TestBigFixtureIsARealChain(t *testing.T) {
	rdb := redistest.Client(t)
	if err := writeBig(rdb, 3000); err != nil {
		t.Fatal(err)
	}
	log := audit.NewLog(rdb, nil)
	v, err := log.Verify(context.Background(), providerAuditor, bigTenant)
	if err != nil || !v.OK || v.Records != 3000 {
		t.Fatalf("%+v %v", v, err)
	}
	pg, err := log.Search(context.Background(), providerAuditor, audit.Query{Tenant: bigTenant, User: bigApprover})
	if err != nil || len(pg.Records) != 15 {
		t.Fatalf("approver's records: %d, %v", len(pg.Records), err)
	}
}

// peakHeap runs f and returns the most the live heap grew meanwhile,
// sampled every 100µs.
func peakHeap(f func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Microsecond)
		defer t.Stop()
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// BenchmarkAuditAtScale: one page (100 records) of each kind of search, and
// a whole export, over the large log. ns/op is per page (per export);
// peak-heap-B is the most the live heap grew during one.
func BenchmarkAuditAtScale(b *testing.B) {
	f := bigLog(b)
	day := bigStart.Add(bigSpan / 2)
	tenantUser := identity.Principal{Subject: "gina@" + bigTenant + ".example", TenantID: bigTenant, Roles: []identity.Role{identity.RoleGlobalAdmin}}
	searches := []struct {
		name string
		who  identity.Principal
		q    audit.Query
	}{
		{"search/newest", tenantUser, audit.Query{}},
		{"search/date=one-day-6-months-ago", tenantUser, audit.Query{From: day, To: day.Add(24 * time.Hour)}},
		{"search/user=engineer", providerAuditor, audit.Query{User: "eng03@provider.example"}},
		{"search/user=approver(0.5%)", tenantUser, audit.Query{User: bigApprover}},
		{"search/operation=Get-Mailbox", tenantUser, audit.Query{Operation: "Get-Mailbox"}},
		{"search/operation=Set-AccessToCustomerDataRequest(0.5%)", tenantUser, audit.Query{Operation: record.OpTenantDecision}},
		{"search/date+user=engineer-one-week-6-months-ago", providerAuditor, audit.Query{From: day, To: day.Add(7 * 24 * time.Hour), User: "eng07@provider.example"}},
		// No record matches: each call reads its scan budget and returns
		// an empty page with a cursor.
		{"search/user=nobody(scan-budget)", tenantUser, audit.Query{User: "nobody@bigco.example"}},
	}
	ctx := context.Background()
	for _, s := range searches {
		b.Run(s.name, func(b *testing.B) {
			q := s.q
			q.Tenant, q.Limit = bigTenant, 100
			var got int
			var peak uint64
			b.ReportAllocs()
			for b.Loop() {
				peak = max(peak, peakHeap(func() {
					pg, err := f.log.Search(ctx, s.who, q)
					if err != nil {
						b.Fatal(err)
					}
					got = len(pg.Records)
				}))
			}
			b.ReportMetric(float64(peak), "peak-heap-B")
			b.ReportMetric(float64(got), "records/page")
		})
	}
	// Every page of a selective search, cursor to cursor: what a client
	// pays to read all of a rare user's records.
	for _, s := range []struct {
		name string
		q    audit.Query
	}{
		{"all-pages/user=approver(0.5%)", audit.Query{User: bigApprover}},
		{"all-pages/operation=Search-Mailbox", audit.Query{Operation: "Search-Mailbox"}},
		{"all-pages/user=nobody", audit.Query{User: "nobody@bigco.example"}},
	} {
		b.Run(s.name, func(b *testing.B) {
			var pages, got int
			var peak uint64
			for b.Loop() {
				peak = max(peak, peakHeap(func() {
					q := s.q
					q.Tenant, q.Limit = bigTenant, 100
					pages, got = 0, 0
					for {
						pg, err := f.log.Search(ctx, tenantUser, q)
						if err != nil {
							b.Fatal(err)
						}
						pages++
						got += len(pg.Records)
						if q.Cursor = pg.Next; q.Cursor == "" {
							return
						}
					}
				}))
			}
			b.ReportMetric(float64(peak), "peak-heap-B")
			b.ReportMetric(float64(pages), "pages")
			b.ReportMetric(float64(got), "records")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(pages), "ns/page")
		})
	}
	for _, format := range []string{"jsonl", "csv"} {
		b.Run("export/"+format, func(b *testing.B) {
			var peak uint64
			n := 0
			for b.Loop() {
				peak = max(peak, peakHeap(func() {
					n = 0
					w := bufio.NewWriterSize(io.Discard, 32<<10)
					cw := csv.NewWriter(w)
					var buf []byte
					err := f.log.Export(ctx, tenantUser, audit.Query{Tenant: bigTenant}, func(r record.Record) error {
						n++
						if format == "jsonl" {
							buf = append(r.AppendJSON(buf[:0]), '\n')
							_, err := w.Write(buf)
							return err
						}
						row, err := r.CSVRow()
						if err != nil {
							return err
						}
						return cw.Write(row)
					})
					if err != nil {
						b.Fatal(err)
					}
					cw.Flush()
				}))
			}
			if n != f.n {
				b.Fatalf("exported %d of %d records", n, f.n)
			}
			b.ReportMetric(float64(peak), "peak-heap-B")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/record")
		})
	}
}

type nopTB struct{ testing.TB }

func (nopTB) Helper()                      {}
func (nopTB) Fatal(args ...any)            { panic(fmt.Sprint(args...)) }
func (nopTB) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
