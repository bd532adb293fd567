package audit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

func TestRetentionKeepsTheChainVerifiable(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	onboard(t, rdb, "contoso")
	for range 10 {
		appendN(t, log, 1)
		c.Advance(time.Hour)
	}
	// Records at t0 .. t0+9h; keep those from t0+4h on.
	n, err := log.Trim(ctx, "contoso", t0.Add(4*time.Hour))
	if err != nil || n != 4 {
		t.Fatalf("trimmed %d, %v", n, err)
	}
	v, err := log.Verify(ctx, auditor, "contoso")
	if err != nil || !v.OK || v.Records != 6 {
		t.Fatalf("after trimming: %+v %v", v, err)
	}
	// Trimming again at the same cutoff removes nothing.
	if n, _ := log.Trim(ctx, "contoso", t0.Add(4*time.Hour)); n != 0 {
		t.Fatalf("second trim removed %d", n)
	}
	// Replicas trimming at once, with different cutoffs, leave a
	// verifiable chain.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if _, err := log.Trim(ctx, "contoso", t0.Add(time.Duration(5+i)*time.Hour)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	v, err = log.Verify(ctx, auditor, "contoso")
	if err != nil || !v.OK || v.Records != 2 {
		t.Fatalf("after concurrent trims: %+v %v", v, err)
	}
	// Deleting the oldest remaining record is still caught.
	first := rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()[0]
	rdb.XDel(ctx, keys.Audit("contoso"), first.ID)
	if v, _ := log.Verify(ctx, auditor, "contoso"); v.OK {
		t.Fatal("a record deleted after trimming went unnoticed")
	}
}

func TestTrimAll(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	onboard(t, rdb, "contoso")
	rdb.SAdd(ctx, keys.Tenants(), "contoso")
	appendN(t, log, 3)
	c.Advance(48 * time.Hour)
	appendN(t, log, 1)
	if n, err := log.TrimAll(ctx, 24*time.Hour); err != nil || n != 3 {
		t.Fatalf("TrimAll: %d %v", n, err)
	}
	if v, _ := log.Verify(ctx, auditor, "contoso"); !v.OK || v.Records != 1 {
		t.Fatalf("after TrimAll: %+v", v)
	}
}

// TestRetentionAcrossReplicasWithOneKilled: three replicas apply retention
// to many tenants at once after a fourth was killed between reading a
// tenant's oldest records and trimming them; every tenant loses exactly its
// records past retention, and every chain still verifies. Each tenant is
// visited when its oldest record passes retention, not before.
func TestRetentionAcrossReplicasWithOneKilled(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	var tenants []string
	for i := range 10 {
		tenants = append(tenants, fmt.Sprintf("tenant-%d", i))
	}
	onboard(t, rdb, tenants...)
	// Each tenant: 3 records a day for 4 days.
	for range 4 {
		for range 3 {
			for _, tn := range tenants {
				if _, err := log.Append(ctx, record.Record{Operation: "Get-Mailbox", LockboxTenant: tn,
					RecordType: record.RecordTypeDataCenterSecurityCmdlet, Workload: "exchange", UserId: record.OperatorUserID}); err != nil {
					t.Fatal(err)
				}
			}
		}
		c.Advance(24 * time.Hour)
	}
	// Now t0+96h: the records of t0 and t0+24h are past retention.
	const retention = 60 * time.Hour
	replicaLog := func(rdb redis.UniversalClient) *audit.Log { return audit.NewLog(rdb, c.Now) }
	dying := redistest.Killable(t, rdb)
	dying.KillAfter(redistest.Command("xrange"))
	if _, err := replicaLog(dying).TrimAll(ctx, retention); err == nil {
		t.Fatal("the killed replica's pass succeeded")
	}
	var mu sync.Mutex
	removed := 0
	pass := func() {
		var wg sync.WaitGroup
		for range 3 {
			l := replicaLog(redistest.Killable(t, rdb))
			wg.Go(func() {
				n, err := l.TrimAll(ctx, retention)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				removed += n
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	pass()
	c.Advance(time.Minute) // the dead replica's claims end
	pass()
	if removed != 6*len(tenants) {
		t.Fatalf("removed %d records, want %d", removed, 6*len(tenants))
	}
	for _, tn := range tenants {
		v, err := log.Verify(ctx, auditor, tn)
		if err != nil || !v.OK || v.Records != 6 {
			t.Fatalf("%s after retention: %+v %v", tn, v, err)
		}
	}
	// Nothing is due until the oldest remaining day passes retention.
	pass()
	if removed != 6*len(tenants) {
		t.Fatalf("an early pass removed records: %d", removed)
	}
	if s, err := rdb.ZScore(ctx, keys.Due("retention"), tenants[0]).Result(); err != nil || int64(s) != t0.Add(48*time.Hour+retention).UnixMilli() {
		t.Fatalf("next retention visit at %v (%v), want when the oldest kept record is %s old", time.UnixMilli(int64(s)).UTC(), err, retention)
	}
}

// TestVerifyDuringTrim: retention trimming while a verification reads
// moves the chain's anchor; the verification must not take the new first
// record's link for a deleted record.
func TestVerifyDuringTrim(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	onboard(t, rdb, "contoso")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	for range 2500 {
		appendN(t, log, 1)
		c.Advance(time.Second)
	}
	tr := audit.NewLog(redistest.Clone(t, rdb), c.Now)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for cut := t0; ; {
			select {
			case <-done:
				return
			default:
			}
			cut = cut.Add(time.Second)
			if _, err := tr.Trim(ctx, "contoso", cut); err != nil {
				t.Error(err)
				return
			}
		}
	})
	bad := 0
	for range 40 {
		v, err := log.Verify(ctx, auditor, "contoso")
		if err != nil {
			t.Fatal(err)
		}
		if !v.OK {
			if bad++; bad == 1 {
				t.Errorf("an intact chain reported broken while retention trimmed: %+v", v)
			}
		}
	}
	close(done)
	wg.Wait()
	if bad > 1 {
		t.Errorf("%d of 40 verifications failed", bad)
	}
}

// appendAt appends the stored JSON r to tenant's chain as the append script
// does, under a stream id whose time is at: what XADD's generated id holds
// when Redis's clock and the writer's agree.
func appendAt(t *testing.T, rdb redis.UniversalClient, tenant string, at time.Time, r string) {
	t.Helper()
	if err := redis.NewScript(`
local prev = redis.call('GET', KEYS[2]) or ''
local h = redis.sha1hex(prev .. '\n' .. ARGV[2])
redis.call('XADD', KEYS[1], ARGV[1], 'r', ARGV[2], 'p', prev, 'h', h)
redis.call('SET', KEYS[2], h)
return 1`).Run(context.Background(), rdb, []string{keys.Audit(tenant), keys.AuditHead(tenant)},
		fmt.Sprintf("%d-0", at.UnixMilli()), r).Err(); err != nil {
		t.Fatal(err)
	}
}

// storedAt is the JSON Lockbox stores for a record created at at.
func storedAt(log *audit.Log, at time.Time) string {
	r := log.Prepare(record.Record{Operation: "Get-Mailbox", LockboxTenant: "contoso", OrganizationId: orgID("contoso"),
		RecordType: record.RecordTypeDataCenterSecurityCmdlet, Workload: "exchange", UserId: record.OperatorUserID,
		CreationTime: record.Time{Time: at}})
	return string(r.AppendJSON(nil))
}

// TestRetentionPastUnreadableRecords: a stored record retention can't read
// (corrupt, or in a form this version refuses) is dated by its stream id,
// so it neither blocks the tenant's retention for ever nor goes before its
// time; the chain verifies after every cut.
func TestRetentionPastUnreadableRecords(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	onboard(t, rdb, "contoso")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	log := newLog(rdb, clock.NewFake(t0).Now)
	for i, r := range []string{
		storedAt(log, t0),
		`{"Id":"c-1","CreationTime":"2026-01-01T01:00:0`, // cut short
		storedAt(log, t0.Add(2*time.Hour)),
		`{"Id":"n-3","CreationTime":{"at":1767229200},"Operation":"Get-Mailbox"}`, // a form this version refuses
		storedAt(log, t0.Add(4*time.Hour)),
		`not json`,
	} {
		appendAt(t, rdb, "contoso", t0.Add(time.Duration(i)*time.Hour), r)
	}
	for _, step := range []struct {
		cutoff        time.Duration
		removed, kept int
	}{
		{30 * time.Minute, 1, 5},
		{150 * time.Minute, 2, 3}, // through the corrupt record and the next
		{3 * time.Hour, 0, 3},     // the refused one is exactly 3 h old: kept
		{270 * time.Minute, 2, 1},
		{5 * time.Hour, 0, 1},
		{6 * time.Hour, 1, 0},
	} {
		n, err := log.Trim(ctx, "contoso", t0.Add(step.cutoff))
		if err != nil || n != step.removed {
			t.Fatalf("cut at t0+%s: removed %d (%v), want %d", step.cutoff, n, err, step.removed)
		}
		if v, err := log.Verify(ctx, auditor, "contoso"); err != nil || !v.OK || v.Records != step.kept {
			t.Fatalf("after the cut at t0+%s: %+v %v, want %d records", step.cutoff, v, err, step.kept)
		}
	}
}

// TestRetentionKeepsARecordWithoutCreationTime: a record that parses but
// carries no CreationTime is not taken for one from the year 1: it is
// dated by its stream id like any record retention can't date.
func TestRetentionKeepsARecordWithoutCreationTime(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	onboard(t, rdb, "contoso")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	log := newLog(rdb, clock.NewFake(t0).Now)
	appendAt(t, rdb, "contoso", t0, storedAt(log, t0))
	appendAt(t, rdb, "contoso", t0.Add(time.Hour), `{"Id":"z-1","Operation":"Get-Mailbox"}`)
	appendAt(t, rdb, "contoso", t0.Add(2*time.Hour), storedAt(log, t0.Add(2*time.Hour)))
	if n, err := log.Trim(ctx, "contoso", t0.Add(30*time.Minute)); err != nil || n != 1 {
		t.Fatalf("removed %d (%v), want only the record older than the cutoff", n, err)
	}
	if v, err := log.Verify(ctx, auditor, "contoso"); err != nil || !v.OK || v.Records != 2 {
		t.Fatalf("after trimming: %+v %v", v, err)
	}
}

// TestRetentionScheduleOfAnUnreadableOldestRecord: when the oldest record
// left can't be read, the tenant's next retention visit is when its stream
// id passes retention, not a whole retention period from now.
func TestRetentionScheduleOfAnUnreadableOldestRecord(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	onboard(t, rdb, "contoso")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewFake(t0)
	log := newLog(rdb, c.Now)
	appendAt(t, rdb, "contoso", t0, storedAt(log, t0))
	appendAt(t, rdb, "contoso", t0.Add(time.Hour), `{"Id":"c-1","CreationTime":"2026-01-01T01:00:0`)
	log.Written(ctx, "contoso")
	const retention = 24 * time.Hour
	c.Set(t0.Add(retention + 30*time.Minute))
	if n, err := log.TrimAll(ctx, retention); err != nil || n != 1 {
		t.Fatalf("TrimAll: %d %v", n, err)
	}
	s, err := rdb.ZScore(ctx, keys.Due("retention"), "contoso").Result()
	if want := t0.Add(time.Hour + retention); err != nil || int64(s) != want.UnixMilli() {
		t.Fatalf("next retention visit at %v (%v), want %v", time.UnixMilli(int64(s)).UTC(), err, want)
	}
}
