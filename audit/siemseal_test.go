package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/internal/chaintest"
	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// sealForwarder is a forwarder of e's tenants' records and seals to sink,
// on e's clock, its metrics in reg.
func (e *sealEnv) sealForwarder(t *testing.T, consumer string, sink audit.Sink, reg prometheus.Registerer, format audit.Format) *audit.Forwarder {
	t.Helper()
	return newForwarder(t, audit.ForwarderConfig{Redis: e.rdb, Sink: sink, Consumer: consumer, Now: e.clock.Now,
		Registerer: reg, Format: format, ClaimAfter: time.Minute})
}

// poll runs one pass of fw and returns how many lines it wrote.
func poll(t *testing.T, fw *audit.Forwarder) int {
	t.Helper()
	n, err := fw.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// sealLinesOf returns the json lines among lines that are seals, and
// fails t on a line that is neither a seal nor a record.
func sealLinesOf(t *testing.T, lines []string) []audit.SealLine {
	t.Helper()
	var out []audit.SealLine
	for _, l := range lines {
		var probe struct{ RecordType json.RawMessage }
		if err := json.Unmarshal([]byte(l), &probe); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if string(probe.RecordType) != `"`+audit.SealRecordType+`"` {
			continue // a record's RecordType is a number
		}
		var s audit.SealLine
		dec := json.NewDecoder(strings.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("seal line %q: %v", l, err)
		}
		out = append(out, s)
	}
	return out
}

// storedSeal is the seal tenant's chain has in Redis, as verification
// reads it.
func storedSeal(t *testing.T, rdb redis.UniversalClient, tenant string) string {
	t.Helper()
	v, err := rdb.Get(context.Background(), keys.AuditSeal(tenant)).Result()
	if err != nil {
		t.Fatal(err)
	}
	_, tok, _ := strings.Cut(v, " ")
	return tok
}

func sealsPending(t *testing.T, rdb redis.UniversalClient, tenant string) int64 {
	t.Helper()
	p, err := rdb.XPending(context.Background(), keys.AuditSeals(tenant), audit.SIEMGroup).Result()
	if err != nil {
		t.Fatal(err)
	}
	return p.Count
}

func sealsWaiting(t *testing.T, rdb redis.UniversalClient, tenant string) int64 {
	t.Helper()
	n, err := rdb.XLen(context.Background(), keys.AuditSeals(tenant)).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// counter is the value of counter name{result} in reg.
func counter(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if result == "" || (len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == result) {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s{result=%q}", name, result)
	return 0
}

// TestSIEMForwardsEverySeal: each seal stored reaches the sink once, as a
// line a SIEM tells from a record, carrying the seal as stored; a round
// that stores none (nothing written since, or a seal refused) writes
// none. The forwarder visits the tenant for the seal alone, its records
// forwarded already.
func TestSIEMForwardsEverySeal(t *testing.T) {
	key := newKey(t)
	e := newSealEnv(t, key)
	sink := &memSink{}
	reg := prometheus.NewRegistry()
	fw := e.sealForwarder(t, "r1", sink, reg, "")
	e.write(t, "contoso", 3)
	if n := poll(t, fw); n != 3 {
		t.Fatalf("the records' pass wrote %d lines", n)
	}
	if s := sealLinesOf(t, sink.got()); len(s) != 0 {
		t.Fatalf("seal lines before any seal: %+v", s)
	}

	sealedAt := e.clock.Now()
	if n := e.sealAll(t); n != 1 {
		t.Fatalf("sealed %d chains", n)
	}
	if n := poll(t, fw); n != 1 {
		t.Fatalf("the seal's pass wrote %d lines, want the seal's", n)
	}
	lines := sink.got()
	seals := sealLinesOf(t, lines)
	ids := e.ids(t, "contoso")
	kid, _ := grantsig.KeyID(key.Public())
	want := audit.SealLine{RecordType: "LockboxAuditSeal", CreationTime: sealedAt.Format("2006-01-02T15:04:05"), LockboxTenant: "contoso",
		SealedThrough: ids[2], SealedAt: sealedAt.Format(time.RFC3339), SealKeyId: kid, SealToken: storedSeal(t, e.rdb, "contoso")}
	if len(lines) != 4 || len(seals) != 1 || seals[0] != want || lines[3] != mustJSON(t, want) {
		t.Fatalf("lines %q\nwant the 3 records and then the seal %+v", lines, want)
	}
	if p, w := sealsPending(t, e.rdb, "contoso"), sealsWaiting(t, e.rdb, "contoso"); p != 0 || w != 0 {
		t.Fatalf("after forwarding: %d seals pending, %d in the stream; want none", p, w)
	}

	// Nothing written since: no seal, no line.
	if n := e.sealAll(t); n != 0 {
		t.Fatalf("sealed %d chains with nothing written", n)
	}
	if n := poll(t, fw); n != 0 {
		t.Fatalf("a pass after a round that sealed nothing wrote %d lines", n)
	}

	// A seal refused (the sealed records rewritten): the record written
	// after the rewrite is forwarded, and no seal.
	chaintest.Rewrite(t, e.rdb, "contoso", 1, func(r string) string {
		return strings.Replace(r, `"ProviderUserId":"alice"`, `"ProviderUserId":"mallory"`, 1)
	})
	e.write(t, "contoso", 1)
	if _, err := e.sealer.SealAll(context.Background()); !errors.Is(err, audit.ErrSealRefused) {
		t.Fatalf("sealing the rewritten chain: %v", err)
	}
	before := len(sink.got())
	poll(t, fw)
	if s := sealLinesOf(t, sink.got()[before:]); len(s) != 0 {
		t.Fatalf("a refused seal reached the SIEM: %+v", s)
	}
	if w := counter(t, reg, "lockbox_siem_seals_total", "written"); w != 1 {
		t.Fatalf("lockbox_siem_seals_total{written} = %v, want 1", w)
	}
	if w := counter(t, reg, "lockbox_siem_records_total", "written"); w < 4 {
		t.Fatalf("lockbox_siem_records_total{written} = %v: seals counted apart, records still counted", w)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSIEMSealFailingSinkLosesNothing: a seal the sink refuses stays
// pending, in the stream, and is written once by the next pass that
// works.
func TestSIEMSealFailingSinkLosesNothing(t *testing.T) {
	e := newSealEnv(t, newKey(t))
	sink := &memSink{}
	reg := prometheus.NewRegistry()
	fw := e.sealForwarder(t, "r1", sink, reg, "")
	e.write(t, "contoso", 2)
	poll(t, fw)
	e.sealAll(t)
	sink.set(true, 0)
	if _, err := fw.Poll(context.Background()); err == nil {
		t.Fatal("a pass with a failing sink reported no failure")
	}
	if p, w := sealsPending(t, e.rdb, "contoso"), sealsWaiting(t, e.rdb, "contoso"); p != 1 || w != 1 {
		t.Fatalf("after the failed write: %d seals pending, %d in the stream; want the seal, pending", p, w)
	}
	if f := counter(t, reg, "lockbox_siem_seals_total", "failed"); f != 1 {
		t.Fatalf("lockbox_siem_seals_total{failed} = %v", f)
	}
	sink.set(false, 0)
	if n := poll(t, fw); n != 1 {
		t.Fatalf("the pass after the sink recovered wrote %d lines", n)
	}
	seals := sealLinesOf(t, sink.got())
	if len(seals) != 1 || seals[0].SealToken != storedSeal(t, e.rdb, "contoso") {
		t.Fatalf("seal lines %+v, want the stored seal once", seals)
	}
	if p, w := sealsPending(t, e.rdb, "contoso"), sealsWaiting(t, e.rdb, "contoso"); p != 0 || w != 0 {
		t.Fatalf("after the retry: %d pending, %d in the stream", p, w)
	}
}

// TestSIEMSealTakenOverFromAFailingReplica: a seal read by a replica
// whose sink keeps failing is taken over by a healthy one once it has
// waited ClaimAfter, not before, and written once.
func TestSIEMSealTakenOverFromAFailingReplica(t *testing.T) {
	e := newSealEnv(t, newKey(t))
	healthy, broken := &memSink{}, &memSink{failing: true}
	live := e.sealForwarder(t, "r2", healthy, nil, "")
	failing := e.sealForwarder(t, "r1", broken, nil, "")
	e.write(t, "contoso", 2)
	poll(t, live)
	e.sealAll(t)
	if _, err := failing.Poll(context.Background()); err == nil {
		t.Fatal("the failing replica's pass reported no failure")
	}
	if p := sealsPending(t, e.rdb, "contoso"); p != 1 {
		t.Fatalf("%d seals pending at the failing replica, want 1", p)
	}
	const step = 10 * time.Second
	var elapsed time.Duration
	for elapsed < 3*time.Minute && len(sealLinesOf(t, healthy.got())) == 0 {
		elapsed += step
		ageEntries(t, e.rdb, keys.AuditSeals("contoso"), step)
		e.clock.Advance(step)
		_, _ = failing.Poll(context.Background())
		poll(t, live)
		if s := sealLinesOf(t, healthy.got()); elapsed < time.Minute && len(s) != 0 {
			t.Fatalf("the seal was taken over after %v, before ClaimAfter", elapsed)
		}
	}
	seals := sealLinesOf(t, healthy.got())
	if len(seals) != 1 || seals[0].SealToken != storedSeal(t, e.rdb, "contoso") {
		t.Fatalf("after %v the healthy replica wrote seals %+v, want the stored one once", elapsed, seals)
	}
	if p, w := sealsPending(t, e.rdb, "contoso"), sealsWaiting(t, e.rdb, "contoso"); p != 0 || w != 0 {
		t.Fatalf("after the take-over: %d pending, %d in the stream", p, w)
	}
	if got := broken.got(); len(got) != 0 {
		t.Fatalf("the broken sink took %q", got)
	}
}

// TestSIEMSealCatchesARewriteResealed is what forwarding seals is for:
// whoever can write to Redis rewrites a sealed record, recomputes every
// later hash and the head, deletes the stored seal, and the sealer seals
// the rewritten chain. The stored seal then vouches for the rewrite; the
// seal the SIEM received before it does not.
func TestSIEMSealCatchesARewriteResealed(t *testing.T) {
	e := newSealEnv(t, newKey(t))
	sink := &memSink{}
	fw := e.sealForwarder(t, "r1", sink, nil, "")
	e.write(t, "contoso", 5)
	e.sealAll(t)
	poll(t, fw)
	seals := sealLinesOf(t, sink.got())
	if len(seals) != 1 {
		t.Fatalf("the SIEM got %d seals, want 1", len(seals))
	}
	fromSIEM := seals[0]
	e.write(t, "contoso", 2)
	poll(t, fw)
	ids := e.ids(t, "contoso")

	chaintest.Rewrite(t, e.rdb, "contoso", 1, func(r string) string {
		return strings.Replace(r, `"ProviderUserId":"alice"`, `"ProviderUserId":"mallory"`, 1)
	})
	if err := e.rdb.Del(context.Background(), keys.AuditSeal("contoso")).Err(); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	e.write(t, "contoso", 1)
	if n := e.sealAll(t); n != 1 {
		t.Fatalf("resealed %d chains, want the rewritten one", n)
	}
	poll(t, fw)
	if s := sealLinesOf(t, sink.got()); len(s) != 2 || s[1].SealToken != storedSeal(t, e.rdb, "contoso") {
		t.Fatalf("the SIEM's seals: %+v, want the first and the new one", s)
	}

	if v := e.verify(t); !v.OK || v.Seal != audit.SealVerified {
		t.Fatalf("with the stored seal alone: %+v, want the rewrite vouched for", v)
	}
	// The seal's token, or its whole line as the SIEM holds it.
	for _, kept := range []string{fromSIEM.SealToken, lineOf(t, sink.got(), fromSIEM.SealToken)} {
		v := e.verifySince(t, kept)
		if v.OK || v.SinceSeal != audit.SinceSealBroken || v.BrokenAt != ids[4] || v.SinceSealedThrough != fromSIEM.SealedThrough ||
			v.SinceSealedAt != fromSIEM.SealedAt {
			t.Fatalf("with the SIEM's seal %.40s...: %+v, want broken at its record %s", kept, v, ids[4])
		}
	}
}

// lineOf is the line of lines that holds the seal token tok.
func lineOf(t *testing.T, lines []string, tok string) string {
	t.Helper()
	for _, l := range lines {
		if strings.Contains(l, tok) {
			return l
		}
	}
	t.Fatalf("no line holds the seal %s", tok)
	return ""
}

// TestSIEMSealOCSF: with the ocsf format, a seal is an OCSF Base Event
// (class 0) of activity "Seal", never an API Activity event, carrying the
// seal's line under unmapped; records stay API Activity events.
func TestSIEMSealOCSF(t *testing.T) {
	e := newSealEnv(t, newKey(t))
	sink := &memSink{}
	fw := e.sealForwarder(t, "r1", sink, nil, audit.FormatOCSF)
	e.write(t, "contoso", 2)
	sealedAt := e.clock.Now()
	e.sealAll(t)
	poll(t, fw)
	lines := sink.got()
	if len(lines) != 3 {
		t.Fatalf("lines %q, want 2 records and a seal", lines)
	}
	for _, l := range lines[:2] {
		var r struct {
			ClassUID int `json:"class_uid"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.ClassUID != 6003 {
			t.Fatalf("record line %s: %v", l, err)
		}
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &ev); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"class_uid": 0.0, "class_name": "Base Event", "category_uid": 0.0, "category_name": "Uncategorized",
		"activity_id": 99.0, "activity_name": "Seal", "type_uid": 99.0, "type_name": "Base Event: Other", "severity_id": 1.0,
		"time": float64(sealedAt.UnixMilli())} {
		if ev[k] != want {
			t.Errorf("%s = %v, want %v", k, ev[k], want)
		}
	}
	for _, k := range []string{"api", "actor", "src_endpoint", "http_request"} {
		if _, ok := ev[k]; ok {
			t.Errorf("the seal's event has %s, an API Activity's attribute", k)
		}
	}
	md, _ := ev["metadata"].(map[string]any)
	if md["version"] != audit.OCSFVersion || md["product"].(map[string]any)["name"] != "Lockbox" {
		t.Errorf("metadata %v", md)
	}
	u, _ := ev["unmapped"].(map[string]any)
	if u["RecordType"] != "LockboxAuditSeal" || u["LockboxTenant"] != "contoso" || u["SealToken"] != storedSeal(t, e.rdb, "contoso") ||
		u["SealedThrough"] != e.ids(t, "contoso")[1] {
		t.Fatalf("unmapped %v", u)
	}
	// The event as the SIEM holds it is a seal to check the chain against.
	if v := e.verifySince(t, lines[2]); !v.OK || v.SinceSeal != audit.SinceSealVerified || v.SinceSealedThrough != e.ids(t, "contoso")[1] {
		t.Fatalf("the chain against the OCSF seal event: %+v", v)
	}
}

// TestSIEMSealsBeforeAnyForwarder: until a forwarder has reached a tenant,
// its seal stream keeps the newest seal alone (a deployment that forwards
// nothing holds one per tenant), which the first forwarder writes; a tenant sealed by an earlier version has no seal stream, and
// forwarding it, or the rescan probing it, fails nothing.
func TestSIEMSealsBeforeAnyForwarder(t *testing.T) {
	ctx := context.Background()
	e := newSealEnv(t, newKey(t))
	for range 3 {
		e.write(t, "contoso", 1)
		e.sealAll(t)
	}
	if w := sealsWaiting(t, e.rdb, "contoso"); w != 1 {
		t.Fatalf("%d seals in the stream no forwarder visited, want the newest alone", w)
	}
	// fabrikam was sealed by a version without seal streams.
	e.write(t, "fabrikam", 2)
	e.sealAll(t)
	if err := e.rdb.Del(ctx, keys.AuditSeals("fabrikam")).Err(); err != nil {
		t.Fatal(err)
	}

	sink := &memSink{}
	fw := e.sealForwarder(t, "r1", sink, nil, "")
	if n := poll(t, fw); n != 6 {
		t.Fatalf("the first pass wrote %d lines, want 5 records and contoso's newest seal", n)
	}
	seals := sealLinesOf(t, sink.got())
	if len(seals) != 1 || seals[0].LockboxTenant != "contoso" || seals[0].SealToken != storedSeal(t, e.rdb, "contoso") {
		t.Fatalf("seal lines %+v, want contoso's stored seal", seals)
	}
	rescan := &due.Rescan{Redis: e.rdb, Now: e.clock.Now, Probes: map[due.Job]due.Probe{due.SIEM: fw.Probe}}
	if _, marked, err := rescan.Once(ctx); err != nil || marked != 0 {
		t.Fatalf("rescan: %d marked, %v; want nothing left to forward", marked, err)
	}
	// fabrikam's next seal is forwarded.
	e.write(t, "fabrikam", 1)
	e.sealAll(t)
	poll(t, fw)
	seals = sealLinesOf(t, sink.got())
	if len(seals) != 2 || seals[1].LockboxTenant != "fabrikam" || seals[1].SealToken != storedSeal(t, e.rdb, "fabrikam") {
		t.Fatalf("seal lines %+v, want fabrikam's new seal last", seals)
	}
}

// TestSIEMSealRescanRestoresALostMark: a seal whose tenant's mark on the
// SIEM schedule was lost waits in the stream until the rescan marks the
// tenant again.
func TestSIEMSealRescanRestoresALostMark(t *testing.T) {
	ctx := context.Background()
	e := newSealEnv(t, newKey(t))
	sink := &memSink{}
	fw := e.sealForwarder(t, "r1", sink, nil, "")
	e.write(t, "contoso", 2)
	poll(t, fw)
	e.sealAll(t)
	if err := e.rdb.ZRem(ctx, keys.Due(string(due.SIEM)), "contoso").Err(); err != nil {
		t.Fatal(err)
	}
	if n := poll(t, fw); n != 0 {
		t.Fatalf("a pass with the mark lost wrote %d lines", n)
	}
	rescan := &due.Rescan{Redis: e.rdb, Now: e.clock.Now, Probes: map[due.Job]due.Probe{due.SIEM: fw.Probe}}
	if _, marked, err := rescan.Once(ctx); err != nil || marked != 1 {
		t.Fatalf("rescan: %d marked, %v; want contoso", marked, err)
	}
	if n := poll(t, fw); n != 1 {
		t.Fatalf("the pass after the rescan wrote %d lines, want the seal", n)
	}
	if s := sealLinesOf(t, sink.got()); len(s) != 1 || s[0].SealToken != storedSeal(t, e.rdb, "contoso") {
		t.Fatalf("seal lines %+v", s)
	}
}

// TestSIEMSealsTrimmedFromAFullStream: while no forwarder takes a tenant's
// seals, its stream keeps the newest ones alone; the seals removed before
// any forwarder read them are counted by the sealer, and one removed
// while a replica held it pending is skipped, as trimmed records are.
func TestSIEMSealsTrimmedFromAFullStream(t *testing.T) {
	e := newSealEnv(t, newKey(t))
	reg := prometheus.NewRegistry()
	sealer := e.newSealer(t, reg, nil)
	audit.SetSealsKept(sealer, 3)
	seal := func() {
		t.Helper()
		e.write(t, "contoso", 1)
		if n, err := sealer.SealAll(context.Background()); n != 1 || err != nil {
			t.Fatalf("sealed %d, %v", n, err)
		}
	}
	sink := &memSink{}
	fw := e.sealForwarder(t, "r1", sink, reg, "")
	e.write(t, "contoso", 1)
	poll(t, fw)
	seal()
	// The record goes through, the seal does not.
	sink.set(false, len(sink.got())+1)
	_, _ = fw.Poll(context.Background()) // holds seal 1 pending
	if p := sealsPending(t, e.rdb, "contoso"); p != 1 {
		t.Fatalf("%d seals pending, want 1", p)
	}
	var tokens []string
	for range 4 {
		seal()
		tokens = append(tokens, storedSeal(t, e.rdb, "contoso"))
	}
	// Seal 1 (read, pending) and seal 2 (unread) made room for 4 and 5.
	if w := sealsWaiting(t, e.rdb, "contoso"); w != 3 {
		t.Fatalf("%d seals in the stream, want 3", w)
	}
	if u := counter(t, reg, "lockbox_siem_seals_trimmed_unread_total", ""); u != 1 {
		t.Fatalf("lockbox_siem_seals_trimmed_unread_total = %v, want seal 2", u)
	}
	sink.set(false, 0)
	for poll(t, fw) > 0 {
	}
	var got []string
	for _, s := range sealLinesOf(t, sink.got()) {
		got = append(got, s.SealToken)
	}
	if strings.Join(got, "\n") != strings.Join(tokens[1:], "\n") {
		t.Fatalf("the SIEM got %d seals, want seals 3 to 5 in order", len(got))
	}
	if s := counter(t, reg, "lockbox_siem_seals_total", "skipped"); s != 1 {
		t.Fatalf("lockbox_siem_seals_total{skipped} = %v, want seal 1", s)
	}
	if p, w := sealsPending(t, e.rdb, "contoso"), sealsWaiting(t, e.rdb, "contoso"); p != 0 || w != 0 {
		t.Fatalf("afterwards: %d pending, %d in the stream", p, w)
	}
}

// TestSIEMVisitsSealsOnlyWhenSomeWait: a tenant never sealed (sealing off)
// gets no seal stream from the forwarder's passes, and a pass with no seal
// waiting reads no seal stream (one XINFO GROUPS, no XREADGROUP; and the
// script that puts the group back on the tenant's streams if it vanished,
// see Forwarder.reach); the tenant's first seal is still forwarded.
func TestSIEMVisitsSealsOnlyWhenSomeWait(t *testing.T) {
	ctx := context.Background()
	e := newSealEnv(t, newKey(t))
	sink := &memSink{}
	fw := e.sealForwarder(t, "r1", sink, nil, "")
	e.write(t, "contoso", 3)
	if n := poll(t, fw); n != 3 {
		t.Fatalf("the pass wrote %d lines, want the 3 records", n)
	}
	if n, err := e.rdb.Exists(ctx, keys.AuditSeals("contoso")).Result(); err != nil || n != 0 {
		t.Fatalf("a tenant never sealed has a seal stream after a pass (%d, %v)", n, err)
	}

	e.sealAll(t)
	if n := poll(t, fw); n != 1 {
		t.Fatalf("the pass after the first seal wrote %d lines, want the seal", n)
	}
	if s := sealLinesOf(t, sink.got()); len(s) != 1 || s[0].SealToken != storedSeal(t, e.rdb, "contoso") {
		t.Fatalf("seal lines %+v, want the stored seal", s)
	}

	// A record and no new seal: the pass reads the seal stream's groups
	// and nothing of the stream itself.
	e.write(t, "contoso", 1)
	sent := &redistest.Commands{}
	e.rdb.AddHook(sent)
	if n := poll(t, fw); n != 1 {
		t.Fatalf("the pass wrote %d lines, want the new record", n)
	}
	if got := sent.On(keys.AuditSeals("contoso")); !slices.Equal(got, []string{"evalsha", "xinfo"}) {
		t.Fatalf("commands on the seal stream during a pass with no seal waiting: %v, want the reach script and one xinfo", got)
	}
}
