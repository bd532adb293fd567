package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/audit/siemcheck"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// memSink collects lines; it fails every write while failing is set, and
// after okWrites successful writes when okWrites > 0.
type memSink struct {
	mu       sync.Mutex
	lines    []string
	failing  bool
	okWrites int
	attempts int
}

func (s *memSink) Write(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	if s.failing || (s.okWrites > 0 && len(s.lines) >= s.okWrites) {
		return errors.New("sink down")
	}
	s.lines = append(s.lines, string(line))
	return nil
}

func (s *memSink) set(failing bool, okWrites int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing, s.okWrites = failing, okWrites
}

func (s *memSink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// siemAppend appends n operator records to each tenant, interleaved, and
// registers the tenants.
func siemAppend(t *testing.T, rdb redis.UniversalClient, log *audit.Log, n int, tenants ...string) {
	t.Helper()
	ctx := context.Background()
	onboard(t, rdb, tenants...)
	for _, tn := range tenants {
		if err := rdb.SAdd(ctx, keys.Tenants(), tn).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		for _, tn := range tenants {
			if _, err := log.Append(ctx, record.Record{
				Operation: fmt.Sprintf("Get-Mailbox-%d", i), LockboxTenant: tn, Workload: "exchange",
				RecordType: record.RecordTypeDataCenterSecurityCmdlet,
				UserId:     record.OperatorUserID, UserType: record.UserTypeDcAdmin, LockboxMethod: "GET",
				ProviderUserId: "alice", ClientIP: "10.0.0.1",
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// streamRecords returns each tenant's records in stream order, as the json
// format's lines should carry them: the stored JSON, with its place in the
// chain (entry id, previous and own hash) appended.
func streamRecords(t *testing.T, rdb redis.UniversalClient, tenants ...string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tn := range tenants {
		msgs, err := rdb.XRange(context.Background(), keys.Audit(tn), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			line := siemcheck.Place([]byte(m.Values["r"].(string)), m.ID, m.Values["p"].(string), m.Values["h"].(string))
			out[tn] = append(out[tn], string(line))
		}
	}
	return out
}

// byTenant groups JSON lines by LockboxTenant, keeping their order.
func byTenant(t *testing.T, lines []string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, l := range lines {
		var r record.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out[r.LockboxTenant] = append(out[r.LockboxTenant], l)
	}
	return out
}

func newForwarder(t *testing.T, cfg audit.ForwarderConfig) *audit.Forwarder {
	t.Helper()
	fw, err := audit.NewForwarder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return fw
}

// stopForwarder stops fw as a replica that shuts down does: its Run
// returns, giving up the consumer name, so that a forwarder started under
// the same name (the replica's next process) forwards at once.
func stopForwarder(t *testing.T, fw *audit.Forwarder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := fw.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

func pending(t *testing.T, rdb redis.UniversalClient, tenant string) int64 {
	t.Helper()
	p, err := rdb.XPending(context.Background(), keys.Audit(tenant), audit.SIEMGroup).Result()
	if err != nil {
		t.Fatal(err)
	}
	return p.Count
}

func TestSIEMForwardsEveryRecordOnceInOrder(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	// Written before the forwarder ever ran: still forwarded.
	siemAppend(t, rdb, log, 5, "contoso", "fabrikam")

	var buf bytes.Buffer
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: audit.NewWriterSink(&buf), Consumer: "r1", BatchSize: 3})
	if n, err := fw.Poll(ctx); err != nil || n != 10 {
		t.Fatalf("first pass wrote %d, %v", n, err)
	}
	if n, err := fw.Poll(ctx); err != nil || n != 0 {
		t.Fatalf("second pass wrote %d, %v", n, err)
	}
	siemAppend(t, rdb, log, 4, "contoso", "fabrikam", "northwind")
	if n, err := fw.Poll(ctx); err != nil || n != 12 {
		t.Fatalf("third pass wrote %d, %v", n, err)
	}
	out := buf.String()
	if !strings.HasSuffix(out, "\n") {
		t.Fatal("output is not newline-terminated")
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 22 {
		t.Fatalf("%d lines", len(lines))
	}
	want := streamRecords(t, rdb, "contoso", "fabrikam", "northwind")
	got := byTenant(t, lines)
	for tn, w := range want {
		if strings.Join(got[tn], "\n") != strings.Join(w, "\n") {
			t.Errorf("%s: lines are not the stored records in stream order:\n got %q\nwant %q", tn, got[tn], w)
		}
	}
	// The provider's view: provider-only fields are kept.
	if !strings.Contains(lines[0], `"ProviderUserId":"alice"`) {
		t.Errorf("line lacks the provider view: %s", lines[0])
	}
	for _, tn := range []string{"contoso", "fabrikam", "northwind"} {
		if p := pending(t, rdb, tn); p != 0 {
			t.Errorf("%s: %d records left pending", tn, p)
		}
	}
}

func TestSIEMReplicasWriteEachRecordOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	tenants := []string{"contoso", "fabrikam"}
	siemAppend(t, rdb, log, 1, tenants...)

	sinks := []*memSink{{}, {}}
	var fws []*audit.Forwarder
	for i, s := range sinks {
		fws = append(fws, newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: s, Consumer: fmt.Sprintf("r%d", i), BatchSize: 4}))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, fw := range fws {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := fw.Poll(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	siemAppend(t, rdb, log, 150, tenants...)
	close(stop)
	wg.Wait()
	for _, fw := range fws {
		if _, err := fw.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	all := append(sinks[0].got(), sinks[1].got()...)
	seen := map[string]int{}
	for _, l := range all {
		seen[l]++
	}
	want := streamRecords(t, rdb, tenants...)
	total := 0
	for _, recs := range want {
		for _, r := range recs {
			total++
			if seen[r] != 1 {
				t.Fatalf("record written %d times: %s", seen[r], r)
			}
		}
	}
	if len(all) != total {
		t.Fatalf("%d lines for %d records", len(all), total)
	}
	t.Logf("replica 0 wrote %d, replica 1 wrote %d", len(sinks[0].got()), len(sinks[1].got()))
}

func TestSIEMFailingSinkLosesNothing(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	siemAppend(t, rdb, log, 6, "contoso")
	reg := prometheus.NewRegistry()
	sink := &memSink{okWrites: 2}
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r1", BatchSize: 4, Registerer: reg})
	n, err := fw.Poll(ctx)
	if err == nil || n != 2 {
		t.Fatalf("pass with a failing sink: wrote %d, err %v", n, err)
	}
	if p := pending(t, rdb, "contoso"); p != 2 {
		// The first batch's 2 unwritten records; the rest never read.
		t.Fatalf("%d pending", p)
	}
	sink.set(true, 0)
	if n, err := fw.Poll(ctx); err == nil || n != 0 {
		t.Fatalf("pass with the sink down: wrote %d, err %v", n, err)
	}
	sink.set(false, 0)
	if n, err := fw.Poll(ctx); err != nil || n != 4 {
		t.Fatalf("pass after recovery: wrote %d, %v", n, err)
	}
	if got, want := sink.got(), streamRecords(t, rdb, "contoso")["contoso"]; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if p := pending(t, rdb, "contoso"); p != 0 {
		t.Fatalf("%d pending", p)
	}
	gather := func(result string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "lockbox_siem_records_total" {
				continue
			}
			for _, mt := range mf.GetMetric() {
				if mt.GetLabel()[0].GetValue() == result {
					return mt.GetCounter().GetValue()
				}
			}
		}
		t.Fatalf("no %s series", result)
		return 0
	}
	if w, f, s := gather("written"), gather("failed"), gather("skipped"); w != 6 || f != 2 || s != 0 {
		t.Fatalf("metrics written=%v failed=%v skipped=%v", w, f, s)
	}
}

func TestSIEMTakesOverADeadReplicasRecords(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	siemAppend(t, rdb, log, 5, "contoso")
	// Replica r1 reads every record, fails to write them, and dies.
	dead := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: &memSink{failing: true}, Consumer: "r1"})
	if _, err := dead.Poll(ctx); err == nil {
		t.Fatal("dead replica's pass succeeded")
	}
	if p := pending(t, rdb, "contoso"); p != 5 {
		t.Fatalf("%d pending at the dead replica", p)
	}
	// A ClaimAfter no pause of a loaded machine reaches between the two
	// passes, then Redis told the records have been idle longer and the
	// schedule's clock moved past it, rather than a short one waited out:
	// with 100 ms, a pause before the first pass let it take them over.
	const claimAfter = time.Minute
	clk := clock.NewFake(time.Now())
	sink := &memSink{}
	live := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r2", ClaimAfter: claimAfter, Now: clk.Now})
	if n, err := live.Poll(ctx); err != nil || n != 0 {
		t.Fatalf("took over records idle for less than ClaimAfter: %d, %v", n, err)
	}
	// Idle at r1 past ClaimAfter: XCLAIM to the same consumer with IDLE.
	msgs, err := rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Result()
	if err != nil || len(msgs) != 5 {
		t.Fatalf("stream: %v, %v", msgs, err)
	}
	args := []any{"XCLAIM", keys.Audit("contoso"), audit.SIEMGroup, "r1", 0}
	for _, m := range msgs {
		args = append(args, m.ID)
	}
	if err := rdb.Do(ctx, append(args, "IDLE", 2*claimAfter.Milliseconds(), "JUSTID")...).Err(); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * claimAfter)
	if n, err := live.Poll(ctx); err != nil || n != 5 {
		t.Fatalf("take-over pass wrote %d, %v", n, err)
	}
	if got, want := sink.got(), streamRecords(t, rdb, "contoso")["contoso"]; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if p := pending(t, rdb, "contoso"); p != 0 {
		t.Fatalf("%d pending", p)
	}
}

func TestSIEMPendingRecordsTrimmedByRetention(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	siemAppend(t, rdb, log, 3, "contoso")
	sink := &memSink{failing: true}
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r1"})
	if _, err := fw.Poll(ctx); err == nil {
		t.Fatal("pass with the sink down succeeded")
	}
	if _, err := log.Trim(ctx, "contoso", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	sink.set(false, 0)
	if n, err := fw.Poll(ctx); err != nil || n != 0 {
		t.Fatalf("wrote %d, %v", n, err)
	}
	if p := pending(t, rdb, "contoso"); p != 0 {
		t.Fatalf("trimmed records stay pending: %d", p)
	}
}

func TestSIEMOCSF(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	if err := rdb.SAdd(ctx, keys.Tenants(), "contoso").Err(); err != nil {
		t.Fatal(err)
	}
	onboard(t, rdb, "contoso")
	const reqID = "0190a4b4-1c2d-7e3f-8a9b-0c1d2e3f4a5b"
	op := record.Record{LockboxTenant: "contoso", Workload: "exchange", UserId: record.OperatorUserID,
		RecordType: record.RecordTypeDataCenterSecurityCmdlet,
		UserType:   record.UserTypeDcAdmin, ClientIP: "10.0.0.7", ProviderUserId: "alice", LockboxRequestId: reqID}
	get, del := op, op
	get.Operation, get.LockboxMethod, get.LockboxPath = "Get-Mailbox", "GET", "/exchange/mailboxes/bob"
	del.Operation, del.LockboxMethod, del.LockboxPath = "Remove-MailboxItem", "DELETE", "/exchange/mailboxes/bob/items/1"
	decision := record.Record{Operation: record.OpTenantDecision, LockboxTenant: "contoso", Workload: "exchange",
		RecordType: record.RecordTypeExchangeAdmin, UserType: record.UserTypeAdmin,
		UserId: "carol@contoso.example", ClientIP: "192.0.2.4", ObjectId: reqID, LockboxRequestId: reqID,
		ApprovalDecision: record.ApprovalApprove, Comment: "ok for 2h"}
	var recs []record.Record
	for _, r := range []record.Record{get, del, decision} {
		r, err := log.Append(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	sink := &memSink{}
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r1", Format: audit.FormatOCSF})
	if n, err := fw.Poll(ctx); err != nil || n != 3 {
		t.Fatalf("wrote %d, %v", n, err)
	}
	wants := []struct {
		activity int
		user     string
		uid      string
	}{
		{audit.OCSFActivityRead, record.OperatorUserID, "alice"},
		{audit.OCSFActivityDelete, record.OperatorUserID, "alice"},
		{audit.OCSFActivityUpdate, "carol@contoso.example", ""},
	}
	lines := sink.got()
	for i, w := range wants {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatal(err)
		}
		var e audit.OCSFEvent
		if err := json.Unmarshal([]byte(lines[i]), &e); err != nil {
			t.Fatal(err)
		}
		r := recs[i]
		if e.ClassUID != 6003 || e.CategoryUID != 6 || e.ActivityID != w.activity || e.TypeUID != 600300+w.activity {
			t.Errorf("%s: class %d category %d activity %d type %d", r.Operation, e.ClassUID, e.CategoryUID, e.ActivityID, e.TypeUID)
		}
		if e.Time != r.CreationTime.UnixMilli() || e.Status != "Success" || e.StatusID != 1 || e.SeverityID != 1 {
			t.Errorf("%s: time %d status %s/%d severity %d", r.Operation, e.Time, e.Status, e.StatusID, e.SeverityID)
		}
		if e.Metadata.Version != "1.1.0" || e.Metadata.UID != r.Id || e.Metadata.Product.Name != "Lockbox" || e.Metadata.Product.VendorName != "Lockbox" {
			t.Errorf("%s: metadata %+v", r.Operation, e.Metadata)
		}
		if e.Actor.User.Name != w.user || e.Actor.User.UID != w.uid || e.SrcEndpoint.IP != r.ClientIP {
			t.Errorf("%s: actor %+v src %+v", r.Operation, e.Actor, e.SrcEndpoint)
		}
		if e.API.Operation != r.Operation || e.API.Request == nil || e.API.Request.UID != reqID {
			t.Errorf("%s: api %+v", r.Operation, e.API)
		}
		if e.Unmapped["OrganizationId"] != orgID("contoso") || e.Unmapped["LockboxTenant"] != "contoso" || e.Unmapped["Workload"] != "exchange" {
			t.Errorf("%s: unmapped %v", r.Operation, e.Unmapped)
		}
		for _, k := range []string{"class_uid", "category_uid", "activity_id", "type_uid", "time", "metadata", "actor", "src_endpoint", "api"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: no %s", r.Operation, k)
			}
		}
		if _, ok := m["raw_data"]; ok {
			t.Errorf("%s: raw_data set", r.Operation)
		}
	}
	var d audit.OCSFEvent
	_ = json.Unmarshal([]byte(lines[2]), &d)
	if d.Unmapped["ApprovalDecision"] != "Approve" || d.Unmapped["Comment"] != "ok for 2h" {
		t.Errorf("decision: unmapped %v", d.Unmapped)
	}
}

func TestSIEMFileSinkAppendsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	path := filepath.Join(t.TempDir(), "siem.jsonl")
	run := func(n int) {
		t.Helper()
		siemAppend(t, rdb, log, n, "contoso")
		sink, closer, err := audit.OpenSink("file:"+path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r1", BatchSize: 2})
		if got, err := fw.Poll(ctx); err != nil || got != n {
			t.Fatalf("wrote %d, %v", got, err)
		}
		stopForwarder(t, fw)
		if err := closer.Close(); err != nil {
			t.Fatal(err)
		}
	}
	run(3)
	run(2)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(streamRecords(t, rdb, "contoso")["contoso"], "\n") + "\n"
	if string(b) != want {
		t.Fatalf("file:\n%s\nwant:\n%s", b, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
}

// TestSIEMFileSinkFollowsRotation: logrotate's default rotation renames
// the file (and, with "create", makes a new one), and a file may be
// removed outright. The sink kept writing to the file it had opened: the
// renamed one, which the shipper tailing the path no longer reads and
// logrotate later compresses or deletes, or a deleted inode, for ever,
// while Redis counted every record forwarded. Each batch now goes to the
// file the path names, created if need be.
func TestSIEMFileSinkFollowsRotation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rotate func(t *testing.T, path string)
		kept   bool // the first records stay in path.1
	}{
		{"renamed and created again", func(t *testing.T, path string) {
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"renamed", func(t *testing.T, path string) {
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"removed", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rdb := testRedis(t)
			log := audit.NewLog(rdb, nil)
			path := filepath.Join(t.TempDir(), "siem.jsonl")
			sink, closer, err := audit.OpenSink("file:"+path, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer closer.Close()
			fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r1", BatchSize: 2})
			forward := func(n int) {
				t.Helper()
				siemAppend(t, rdb, log, n, "contoso")
				if got, err := fw.Poll(ctx); err != nil || got != n {
					t.Fatalf("wrote %d, %v; want %d", got, err, n)
				}
			}
			read := func(p string) string {
				t.Helper()
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			lines := func(recs []string) string { return strings.Join(recs, "\n") + "\n" }

			forward(2)
			tc.rotate(t, path)
			forward(3)
			recs := streamRecords(t, rdb, "contoso")["contoso"]
			if got := read(path); got != lines(recs[2:]) {
				t.Errorf("%s after rotation:\n%s\nwant the records written since:\n%s", path, got, lines(recs[2:]))
			}
			if tc.kept {
				if got := read(path + ".1"); got != lines(recs[:2]) {
					t.Errorf("rotated file:\n%s\nwant the records written before:\n%s", got, lines(recs[:2]))
				}
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v, mode %v; want 0600", path, err, fi.Mode().Perm())
			}
		})
	}
}

func TestSIEMConfig(t *testing.T) {
	if s, c, err := audit.OpenSink("off", nil, nil); s != nil || c != nil || err != nil {
		t.Fatalf("off: %v %v %v", s, c, err)
	}
	if s, _, err := audit.OpenSink("stdout", nil, nil); s == nil || err != nil {
		t.Fatalf("stdout: %v %v", s, err)
	}
	for _, bad := range []string{"file:", "syslog", "File:/x"} {
		if _, _, err := audit.OpenSink(bad, nil, nil); err == nil {
			t.Errorf("sink %q accepted", bad)
		}
	}
	if _, err := audit.ParseFormat("cef"); err == nil {
		t.Error("format cef accepted")
	}
	rdb := testRedis(t)
	if _, err := audit.NewForwarder(audit.ForwarderConfig{Redis: rdb, Sink: &memSink{}}); err == nil {
		t.Error("forwarder without a consumer name accepted")
	}
}

func TestSIEMRunUntilCanceled(t *testing.T) {
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	sink := &memSink{}
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r1", Block: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	// A tenant that appears after Run started is picked up.
	siemAppend(t, rdb, log, 3, "contoso")
	deadline := time.Now().Add(5 * time.Second)
	for len(sink.got()) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(sink.got()); n != 3 {
		t.Fatalf("Run wrote %d records", n)
	}
}

// A sink that fails pass after pass (a pipe without a reader fails a pass
// a second) is logged when it starts failing and when it recovers, not on
// every pass.
func TestSIEMRunLogsAFailureOnceNotEveryPass(t *testing.T) {
	rdb := testRedis(t)
	siemAppend(t, rdb, audit.NewLog(rdb, nil), 1, "contoso")
	sink := &memSink{failing: true}
	var logs syncBuffer
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r1", Block: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("waited 10s for %s", what)
			}
		}
	}
	waitFor("20 failed writes", func() bool { sink.mu.Lock(); defer sink.mu.Unlock(); return sink.attempts >= 20 })
	sink.set(false, 0)
	waitFor("the record written", func() bool { return len(sink.got()) == 1 })
	// The record reaches the sink inside the pass, before Run sees the
	// pass succeed and logs the recovery: cancelling now could end Run
	// first.
	waitFor("the recovery logged", func() bool { return strings.Contains(logs.String(), "siem forwarding resumed") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if n := strings.Count(out, "siem forwarding failed"); n != 1 {
		t.Errorf("20 failed passes logged %d warnings, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "siem forwarding resumed"); n != 1 || !strings.Contains(out, "failed_for=") {
		t.Errorf("the recovery logged %d times, want once with how long it failed:\n%s", n, out)
	}
}

// Run times its failure log by the forwarder's clock (ForwarderConfig.Now),
// as the SIEM schedule does: while forwarding keeps failing it repeats its
// warning once that clock has moved FailureLogEvery, and says for how long
// by it, and the recovery says how long the failure lasted by it too.
func TestSIEMRunTimesItsFailureLogByItsClock(t *testing.T) {
	rdb := testRedis(t)
	siemAppend(t, rdb, audit.NewLog(rdb, nil), 1, "contoso")
	sink := &memSink{failing: true}
	// From the writers' time, which marked the tenant due.
	clk := clock.NewFake(time.Now())
	var logs syncBuffer
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r1", Block: time.Millisecond,
		Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	attempts := func() int { sink.mu.Lock(); defer sink.mu.Unlock(); return sink.attempts }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				cancel()
				<-done
				t.Fatalf("waited 10s for %s; log:\n%s", what, logs.String())
			}
		}
	}
	// A pass's write fails before Run logs that pass: once the write of a
	// later pass failed, the earlier pass is logged.
	afterPasses := func(n int) {
		a := attempts()
		waitFor(fmt.Sprintf("%d more failed passes", n), func() bool { return attempts() >= a+n })
	}
	afterPasses(3)
	if n := strings.Count(logs.String(), "siem forwarding failed"); n != 1 {
		t.Fatalf("the clock stood still and %d warnings were logged, want 1:\n%s", n, logs.String())
	}
	clk.Advance(audit.FailureLogEvery)
	afterPasses(2)
	out := logs.String()
	if n := strings.Count(out, "siem forwarding failed"); n != 2 {
		t.Fatalf("after the clock moved %s, %d warnings were logged, want 2:\n%s", audit.FailureLogEvery, n, out)
	}
	if !strings.Contains(out, "failing_for=1m0s") {
		t.Errorf("the repeated warning does not say the failure lasted 1m0s by the forwarder's clock:\n%s", out)
	}
	clk.Advance(30 * time.Second)
	sink.set(false, 0)
	waitFor("the recovery logged", func() bool { return strings.Contains(logs.String(), "siem forwarding resumed") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); !strings.Contains(out, "failed_for=1m30s") {
		t.Errorf("the recovery does not say the failure lasted 1m30s by the forwarder's clock:\n%s", out)
	}
}

// TestSIEMReplicaKilledMidPass: three forwarders share many tenants'
// streams after a fourth was killed in the middle of its pass, right after
// Redis handed it a batch. If its lines never reached the SIEM (a file
// sink's unflushed buffer dies with the process), the others write every
// record exactly once. If they did reach it, and only the acknowledgement
// was lost, those records are written again — the window where
// exactly-once needs the SIEM's help — with the same record Id to
// deduplicate on, and no other record twice.
func TestSIEMReplicaKilledMidPass(t *testing.T) {
	for _, landed := range []bool{false, true} {
		t.Run(fmt.Sprintf("dead replica's lines reached the SIEM=%v", landed), func(t *testing.T) {
			ctx := context.Background()
			rdb := testRedis(t)
			log := audit.NewLog(rdb, nil)
			var tenants []string
			for i := range 12 {
				tenants = append(tenants, fmt.Sprintf("tenant-%02d", i))
			}
			siemAppend(t, rdb, log, 30, tenants...)
			const claimAfter = 200 * time.Millisecond
			const batch = 8
			dying := redistest.Killable(t, rdb)
			dying.KillAfter(redistest.Command("xreadgroup", ">"))
			deadSink := &memSink{}
			if _, err := newForwarder(t, audit.ForwarderConfig{Redis: dying, Sink: deadSink, Consumer: "dying", ClaimAfter: claimAfter, BatchSize: batch}).Poll(ctx); err == nil {
				t.Fatal("the killed replica's pass succeeded")
			}
			if got := len(deadSink.got()); got != batch {
				t.Fatalf("the killed replica wrote %d lines, want its one batch of %d", got, batch)
			}
			sinks := []*memSink{{}, {}, {}}
			var fws []*audit.Forwarder
			for i, s := range sinks {
				fws = append(fws, newForwarder(t, audit.ForwarderConfig{Redis: redistest.Killable(t, rdb), Sink: s,
					Consumer: fmt.Sprintf("live-%d", i), ClaimAfter: claimAfter, BatchSize: batch}))
			}
			want := streamRecords(t, rdb, tenants...)
			total := 0
			for _, recs := range want {
				total += len(recs)
			}
			lines := func() []string {
				var all []string
				if landed {
					all = deadSink.got()
				}
				for _, s := range sinks {
					all = append(all, s.got()...)
				}
				return all
			}
			wantLines := total
			if landed {
				wantLines += batch
			}
			deadline := time.Now().Add(20 * time.Second)
			for len(lines()) < wantLines && time.Now().Before(deadline) {
				var wg sync.WaitGroup
				for _, fw := range fws {
					wg.Go(func() {
						if _, err := fw.Poll(ctx); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
				// Redis hands the dead replica's batch over once it has
				// been idle for ClaimAfter.
				time.Sleep(claimAfter / 4)
			}
			seen := map[string]int{}
			for _, l := range lines() {
				seen[l]++
			}
			dups := 0
			for _, recs := range want {
				for _, r := range recs {
					switch n := seen[r]; {
					case n == 0:
						t.Fatalf("record never written: %s", r)
					case n > 1:
						dups += n - 1
					}
				}
			}
			if wantDups := len(lines()) - total; dups != wantDups || landed && dups != batch || !landed && dups != 0 {
				t.Fatalf("%d duplicate lines (landed %v), %d lines for %d records", dups, landed, len(lines()), total)
			}
			for _, tn := range tenants {
				if p := pending(t, rdb, tn); p != 0 {
					t.Fatalf("%d records of %s still pending", p, tn)
				}
			}
		})
	}
}

// TestSIEMFileSinkRecoversFromAFullDisk: a write cut short (disk full)
// leaves no torn line and does not break the sink: once there is room, the
// batch written again lands as whole lines after the last complete one.
func TestSIEMFileSinkRecoversFromAFullDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "siem.jsonl")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	disk := &audit.FullDisk{File: f, Room: -1}
	s := audit.NewFileSinkOn(disk)
	defer s.Close()
	if err := s.Write([]byte(`{"Id":"one"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	disk.Room = 5 // a torn line
	if err := s.Write([]byte(`{"Id":"two"}`)); err != nil {
		t.Fatal(err) // buffered
	}
	if err := s.Flush(); err == nil {
		t.Fatal("flush on a full disk succeeded")
	}
	if b, _ := os.ReadFile(path); string(b) != `{"Id":"one"}`+"\n" {
		t.Fatalf("after the failed flush the file holds %q, want only the complete line", b)
	}
	disk.Room = -1 // room again
	for _, l := range []string{`{"Id":"two"}`, `{"Id":"three"}`} {
		if err := s.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("the sink still fails once the disk has room: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != `{"Id":"one"}`+"\n"+`{"Id":"two"}`+"\n"+`{"Id":"three"}`+"\n" {
		t.Fatalf("file %q", b)
	}
}

// TestSIEMForwarderAcrossAFullDisk: the forwarder acknowledges no record
// of a batch the disk could not take, and every record ends up in the file
// once, as a line of valid JSON.
func TestSIEMForwarderAcrossAFullDisk(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	siemAppend(t, rdb, log, 6, "contoso")
	path := filepath.Join(t.TempDir(), "siem.jsonl")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	disk := &audit.FullDisk{File: f, Room: -1}
	s := audit.NewFileSinkOn(disk)
	defer s.Close()
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: s, Consumer: "r1", BatchSize: 3})
	recs := streamRecords(t, rdb, "contoso")["contoso"]
	disk.Room = int64(len(recs[0])+len(recs[1])+len(recs[2])) + 3 + 10 // the first batch and part of a line
	if n, err := fw.Poll(ctx); err == nil || n != 3 {
		t.Fatalf("poll on a filling disk: %d, %v; want the first batch written and an error", n, err)
	}
	disk.Room = -1
	if n, err := fw.Poll(ctx); err != nil || n != 3 {
		t.Fatalf("poll with room again: %d, %v", n, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("torn line %q", l)
		}
	}
	if strings.Join(lines, "\n") != strings.Join(recs, "\n") {
		t.Fatalf("file:\n%s\nwant every record once:\n%s", b, strings.Join(recs, "\n"))
	}
	if p := pending(t, rdb, "contoso"); p != 0 {
		t.Fatalf("%d records still pending", p)
	}
}

// TestSIEMFileSinkCutsATornTail: a file left ending in a partial line (a
// crash mid-write) is cut back to its last complete line when opened, so
// the record written again does not extend the torn one.
func TestSIEMFileSinkCutsATornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "siem.jsonl")
	for name, tc := range map[string]struct{ before, after string }{
		"torn":      {`{"Id":"one"}` + "\n" + `{"Id":"tw`, `{"Id":"one"}` + "\n"},
		"only torn": {`{"Id":"tw`, ""},
		"whole":     {`{"Id":"one"}` + "\n", `{"Id":"one"}` + "\n"},
		"empty":     {"", ""},
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tc.before), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := audit.NewFileSink(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Write([]byte(`{"Id":"two"}`)); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(path); string(b) != tc.after+`{"Id":"two"}`+"\n" {
				t.Fatalf("file %q, want %q", b, tc.after+`{"Id":"two"}`+"\n")
			}
		})
	}
}

// TestSIEMFileSinkAfterCopytruncate: logrotate's copytruncate empties the
// file before or during a batch that then fails part-way. Whatever the
// file held when the batch began, the batch's bytes are cut off, and the
// batch written again lands as whole lines.
func TestSIEMFileSinkAfterCopytruncate(t *testing.T) {
	big := `{"Id":"two","pad":"` + strings.Repeat("x", 40) + `"}`
	for _, tc := range []struct {
		name   string
		before bool // emptied before the batch's first line, else after it
	}{{"before the batch", true}, {"during the batch", false}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "siem.jsonl")
			f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			disk := &audit.FullDisk{File: f, Room: -1}
			s := audit.NewFileSinkOn(disk)
			defer s.Close()
			if err := s.Write([]byte(`{"Id":"one"}`)); err != nil {
				t.Fatal(err)
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			if tc.before {
				if err := os.Truncate(path, 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Write([]byte(big)); err != nil {
				t.Fatal(err)
			}
			if !tc.before {
				if err := os.Truncate(path, 0); err != nil {
					t.Fatal(err)
				}
			}
			disk.Room = 30 // more than the file held before, less than the line
			if err := s.Flush(); err == nil {
				t.Fatal("flush on a full disk succeeded")
			}
			if b, _ := os.ReadFile(path); len(b) != 0 {
				t.Fatalf("after the failed flush the file holds %q, want it empty", b)
			}
			disk.Room = -1
			if err := s.Write([]byte(big)); err != nil {
				t.Fatal(err)
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(path); string(b) != big+"\n" {
				t.Fatalf("file %q, want the one line", b)
			}
		})
	}
}

// TestSIEMFileSinkOnAPipe: a named pipe is written without reading it
// back, cutting or fsyncing it.
func TestSIEMFileSinkOnAPipe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "siem.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// The reader is there before the first write (opened without waiting
	// for a writer); TestSIEMNamedPipeWithoutReader has it come later.
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := audit.NewFileSink(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Read once the sink holds the write end: before any writer opened
	// it, a pipe reads as empty.
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r) // until the sink closes its end
		got <- string(b)
	}()
	for _, l := range []string{`{"Id":"one"}`, `{"Id":"two"}`} {
		if err := s.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("flush to a pipe: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; b != `{"Id":"one"}`+"\n"+`{"Id":"two"}`+"\n" {
		t.Fatalf("the pipe's reader got %q", b)
	}
}

// syncBuffer is a bytes.Buffer a logger may write from another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSIEMRecordsTrimmedAtADeadReplicaAreSkipped: records a replica read
// and died with, and that retention trimmed before another took them over,
// are counted as skipped like the trimmed records of a live replica: the
// take-over is the last moment anything knows of them (XAUTOCLAIM drops
// them from the pending list).
func TestSIEMRecordsTrimmedAtADeadReplicaAreSkipped(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	siemAppend(t, rdb, log, 3, "contoso")
	dead := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: &memSink{failing: true}, Consumer: "r1"})
	if _, err := dead.Poll(ctx); err == nil {
		t.Fatal("dead replica's pass succeeded")
	}
	msgs, err := rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Result()
	if err != nil || len(msgs) != 3 {
		t.Fatalf("stream: %v, %v", msgs, err)
	}
	// Idle at r1 past the live replica's ClaimAfter, without waiting for
	// it: XCLAIM to the same consumer with IDLE.
	args := []any{"XCLAIM", keys.Audit("contoso"), audit.SIEMGroup, "r1", 0}
	for _, m := range msgs {
		args = append(args, m.ID)
	}
	if err := rdb.Do(ctx, append(args, "IDLE", 2*time.Minute.Milliseconds(), "JUSTID")...).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := log.Trim(ctx, "contoso", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	sink := &memSink{}
	live := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r2", ClaimAfter: time.Minute, Registerer: reg})
	if n, err := live.Poll(ctx); err != nil || n != 0 {
		t.Fatalf("take-over pass wrote %d, %v", n, err)
	}
	if p := pending(t, rdb, "contoso"); p != 0 {
		t.Fatalf("%d pending", p)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	skipped := -1.0
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			if mf.GetName() == "lockbox_siem_records_total" && mt.GetLabel()[0].GetValue() == "skipped" {
				skipped = mt.GetCounter().GetValue()
			}
		}
	}
	if skipped != 3 {
		t.Fatalf("skipped %v records, want the 3 trimmed", skipped)
	}
}

// siemConsumers returns the SIEM group's consumers on tenant's stream, by
// name, with how long Redis has seen each idle.
func siemConsumers(t *testing.T, rdb redis.UniversalClient, tenant string) map[string]time.Duration {
	t.Helper()
	cs, err := rdb.XInfoConsumers(context.Background(), keys.Audit(tenant), audit.SIEMGroup).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Duration{}
	for _, c := range cs {
		out[c.Name] = c.Idle
	}
	return out
}

// TestSIEMForgetsGoneReplicas: each rollout's pod names a new consumer,
// and every one stayed in the SIEM group of every tenant's stream it read,
// for good. A forwarder visiting a tenant now removes the consumers there
// with nothing pending that have been idle for ForgetAfter; a replica
// holding records (alive and slow, or dead and not yet taken over) stays
// with them, and by default a replica is forgotten only after a day.
func TestSIEMForgetsGoneReplicas(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	siemAppend(t, rdb, log, 3, "contoso")
	// The previous rollout's pod forwarded everything.
	old := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: &memSink{}, Consumer: "pod-old"})
	if n, err := old.Poll(ctx); err != nil || n != 3 {
		t.Fatalf("old pod's pass: %d, %v", n, err)
	}
	// A pod that reads two records and can't write them holds them.
	siemAppend(t, rdb, log, 2, "contoso")
	stuck := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: &memSink{failing: true}, Consumer: "pod-stuck"})
	if _, err := stuck.Poll(ctx); err == nil {
		t.Fatal("stuck pod's pass succeeded")
	}

	// The default keeps a replica's name for far longer than this test.
	siemAppend(t, rdb, log, 1, "contoso")
	sink := &memSink{}
	keep := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "pod-new"})
	if n, err := keep.Poll(ctx); err != nil || n != 1 {
		t.Fatalf("new pod's pass: %d, %v", n, err)
	}
	if got := siemConsumers(t, rdb, "contoso"); len(got) != 3 {
		t.Fatalf("consumers after a pass with the default ForgetAfter: %v, want pod-old, pod-stuck and pod-new", got)
	}
	stopForwarder(t, keep) // and starts again with ForgetAfter set

	// Wait for Redis to see the other pods idle past ForgetAfter (the
	// deadline only bounds a failure).
	const forgetAfter = 20 * time.Millisecond
	deadline := time.Now().Add(10 * time.Second)
	for c := siemConsumers(t, rdb, "contoso"); c["pod-old"] < forgetAfter || c["pod-stuck"] < forgetAfter; c = siemConsumers(t, rdb, "contoso") {
		if time.Now().After(deadline) {
			t.Fatalf("consumers not idle for %v in 10s: %v", forgetAfter, c)
		}
		time.Sleep(5 * time.Millisecond)
	}
	siemAppend(t, rdb, log, 1, "contoso")
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "pod-new", ForgetAfter: forgetAfter})
	if n, err := fw.Poll(ctx); err != nil || n != 1 {
		t.Fatalf("pass forgetting gone pods: %d, %v", n, err)
	}
	got := siemConsumers(t, rdb, "contoso")
	if _, ok := got["pod-old"]; ok {
		t.Errorf("a pod with nothing pending, idle past ForgetAfter, stayed: %v", got)
	}
	for _, c := range []string{"pod-stuck", "pod-new"} {
		if _, ok := got[c]; !ok {
			t.Errorf("%s was forgotten: %v", c, got)
		}
	}
	if p := pending(t, rdb, "contoso"); p != 2 {
		t.Errorf("%d records pending, want the stuck pod's 2", p)
	}
}
