package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/chaintest"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// retentionEnv is a sealEnv whose clock starts at Redis's: an anchor is
// dated by its entry's stream id, which Redis's clock stamps, and judged
// by the Log's clock, so the two must agree as a deployment's do. (The
// other tests' clocks start at a fixed date, whatever Redis's says.)
func retentionEnv(t *testing.T) *sealEnv {
	t.Helper()
	e := newSealEnv(t, newKey(t))
	now, err := e.rdb.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Set(now.UTC().Truncate(time.Second))
	return e
}

// setAnchor sets tenant contoso's anchor at entry id, with m's record, as
// retention would set it after removing m: what whoever can write to Redis
// can do, having read m before deleting it.
func setAnchor(t *testing.T, e *sealEnv, id string, m redis.XMessage) {
	t.Helper()
	ctx := context.Background()
	if err := e.rdb.Set(ctx, keys.AuditAnchor("contoso"), id+" "+m.Values["h"].(string), 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Set(ctx, keys.AuditAnchorRecord("contoso"), m.Values["p"].(string)+"\n"+m.Values["r"].(string), 0).Err(); err != nil {
		t.Fatal(err)
	}
}

// createdAt is the CreationTime of m's record, as verification words it.
func createdAt(t *testing.T, m redis.XMessage) string {
	t.Helper()
	var rec struct{ CreationTime record.Time }
	if err := json.Unmarshal([]byte(m.Values["r"].(string)), &rec); err != nil || rec.CreationTime.IsZero() {
		t.Fatalf("record %s: no CreationTime (%v)", m.ID, err)
	}
	return rec.CreationTime.UTC().Format(time.RFC3339)
}

// streamTime is when the entry id was added, by Redis's clock.
func streamTime(t *testing.T, id string) time.Time {
	t.Helper()
	at := audit.Verification{TrimmedThrough: id}.TrimmedAt()
	if at.IsZero() {
		t.Fatalf("stream id %q holds no time", id)
	}
	return at
}

// TestAnchorFakedPastAKeptSeal is the retention whoever can write to Redis
// fakes to get past the seal an auditor kept: every record through one
// just past the kept seal's entry deleted, the anchor set to that entry
// and its hash, a later record rewritten, the chain's hashes recomputed
// and resealed. The kept seal then read "trimmed" and the chain OK. The
// records "trimmed" are seconds old, under a retention of a year: broken,
// and the kept seal with it.
func TestAnchorFakedPastAKeptSeal(t *testing.T) {
	ctx := context.Background()
	e := retentionEnv(t)
	e.log.SetRetention(8760 * time.Hour)
	e.write(t, "contoso", 5)
	e.sealAll(t)
	kept := e.keep(t)
	e.write(t, "contoso", 3)
	ids := e.ids(t, "contoso")
	chaintest.Rewrite(t, e.rdb, "contoso", 6, func(r string) string {
		return strings.Replace(r, `"ProviderUserId":"alice"`, `"ProviderUserId":"mallory"`, 1)
	})
	msgs := e.rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()
	if err := e.rdb.XDel(ctx, keys.Audit("contoso"), ids[:6]...).Err(); err != nil {
		t.Fatal(err)
	}
	// The anchor and its record as retention would have set them.
	setAnchor(t, e, ids[5], msgs[5])
	e.rdb.Del(ctx, keys.AuditSeal("contoso"))
	e.resealDirectly(t)

	created := createdAt(t, msgs[5])
	for name, v := range map[string]audit.Verification{"without the kept seal": e.verify(t), "with the kept seal": e.verifySince(t, kept)} {
		if v.OK || v.TrimmedThrough != ids[5] ||
			!strings.Contains(v.Problem, "through entry "+ids[5]+", created "+created) ||
			!strings.Contains(v.Problem, "(8760h: LOCKBOX_AUDIT_RETENTION") ||
			!strings.Contains(v.Problem, "records were deleted by other means than retention and the anchor set") {
			t.Errorf("%s: %+v, want broken by an anchor a year too young", name, v)
		}
	}
	if v := e.verifySince(t, kept); v.SinceSeal != audit.SinceSealBroken || v.SinceSealedThrough != ids[4] {
		t.Fatalf("the kept seal: %q through %s, want broken through %s", v.SinceSeal, v.SinceSealedThrough, ids[4])
	}
}

// TestAnchorJudgedByRetention: a real trim, by Log.Trim, through the
// record after the kept seal's, judged by the retention in force at
// verification: OK, the kept seal trimmed, when the anchor's entry is as
// old as the retention, give or take the clock skew allowed; broken, the
// kept seal with it, when it is younger, or retention is off. Retention
// raised after the trim makes its anchor too young: that is the check's
// limit, reported as broken until the anchor's entry is old enough.
func TestAnchorJudgedByRetention(t *testing.T) {
	const retention = 48 * time.Hour
	// The anchor's entry may be this much younger than the retention: the
	// clock that stamped its record may be ClockSkew behind Redis's, and
	// the trimming replica's ClockSkew ahead of the verifying one's.
	const allowance = 2 * audit.ClockSkew
	for _, tc := range []struct {
		name string
		// keep is the retention verification is told; at when it
		// verifies, from the anchor entry's stream time (Redis's clock).
		keep time.Duration
		at   func(anchor time.Time) time.Time
		ok   bool
		why  string
	}{
		{name: "past retention", keep: retention, ok: true,
			at: func(a time.Time) time.Time { return a.Add(retention + time.Minute) }},
		{name: "a month past retention", keep: retention, ok: true,
			at: func(a time.Time) time.Time { return a.Add(retention + 30*24*time.Hour) }},
		// The trimming replica's clock ran ahead of the verifying one's,
		// or the writer's behind Redis's, by less than allowed.
		{name: "just inside the allowance", keep: retention, ok: true,
			at: func(a time.Time) time.Time { return a.Add(retention - allowance + time.Minute) }},
		{name: "just outside the allowance", keep: retention, why: "(48h: LOCKBOX_AUDIT_RETENTION",
			at: func(a time.Time) time.Time { return a.Add(retention - allowance - time.Minute) }},
		{name: "retention off", keep: 0, why: "retention is off (LOCKBOX_AUDIT_RETENTION is 0",
			at: func(a time.Time) time.Time { return a.Add(retention + time.Minute) }},
		{name: "retention raised after the trim", keep: 8760 * time.Hour, why: "(8760h: LOCKBOX_AUDIT_RETENTION",
			at: func(a time.Time) time.Time { return a.Add(retention + time.Minute) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := retentionEnv(t)
			base := e.clock.Now()
			e.write(t, "contoso", 5)
			e.sealAll(t)
			kept := e.keep(t)
			e.write(t, "contoso", 3)
			ids := e.ids(t, "contoso")
			msgs := e.rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()
			// The records are created a second apart from base: the
			// retention cut after the sixth, at the clock it takes.
			e.clock.Set(base.Add(retention + 5*time.Second + time.Second/2))
			if n, err := e.log.Trim(ctx, "contoso", e.clock.Now().Add(-retention)); err != nil || n != 6 {
				t.Fatalf("trimmed %d, %v; want the 6 records through the one after the kept seal's", n, err)
			}
			e.log.SetRetention(tc.keep)
			e.clock.Set(tc.at(streamTime(t, ids[5])))
			v := e.verifySince(t, kept)
			if tc.ok {
				if !v.OK || v.Records != 2 || v.TrimmedThrough != ids[5] || v.SinceSeal != audit.SinceSealTrimmed || v.Problem != "" {
					t.Fatalf("%+v, want an intact chain trimmed through %s, the kept seal trimmed", v, ids[5])
				}
				return
			}
			if v.OK || v.TrimmedThrough != ids[5] || v.SinceSeal != audit.SinceSealBroken ||
				!strings.Contains(v.Problem, "through entry "+ids[5]+", created "+createdAt(t, msgs[5])) ||
				!strings.Contains(v.Problem, tc.why) || !strings.Contains(v.Problem, "or retention was shorter, or on, when it removed them") {
				t.Fatalf("%+v, want broken, the kept seal too, naming entry %s and %q", v, ids[5], tc.why)
			}
		})
	}
}

// TestAnchorIDChosen: whoever can write to Redis deletes a chain's oldest
// records, seconds old under a retention of a year, and sets the anchor
// himself. The stream id an anchor names is only a string: dated by it,
// an id chosen a day before the retention passed the records left as
// trimmed. The anchor is dated by the CreationTime of the record it says
// was removed last, which its hash binds; an anchor that comes without that
// record, names no stream id, or names one the log still holds entries at
// or before, is not retention's. (One without its record is dated by its
// id, and says so: TestAnchorWithoutItsRecord.) The seals, which cover
// the deleted records, are broken with the chain, the kept one too.
func TestAnchorIDChosen(t *testing.T) {
	const retention = 8760 * time.Hour
	old := func(now time.Time) string { return fmt.Sprintf("%d-0", now.Add(-retention-24*time.Hour).UnixMilli()) }
	for _, tc := range []struct {
		name string
		// set sets the anchor, with now the verifying clock, ids the
		// entries and msgs the records before the deletion of the first
		// three.
		set func(t *testing.T, e *sealEnv, now time.Time, ids []string, msgs []redis.XMessage)
		why string
	}{
		{name: "an old id, with the record removed last", why: "removes only records created before",
			set: func(t *testing.T, e *sealEnv, now time.Time, _ []string, msgs []redis.XMessage) {
				setAnchor(t, e, old(now), msgs[2])
			}},
		{name: "an old id, with an older record", why: "comes with a record its hash does not match",
			set: func(t *testing.T, e *sealEnv, now time.Time, _ []string, msgs []redis.XMessage) {
				setAnchor(t, e, old(now), msgs[0])
				e.rdb.Set(context.Background(), keys.AuditAnchor("contoso"), old(now)+" "+msgs[2].Values["h"].(string), 0)
			}},
		{name: "no id at all", why: "is not the stream id and hash retention sets it to",
			set: func(t *testing.T, e *sealEnv, _ time.Time, _ []string, msgs []redis.XMessage) {
				setAnchor(t, e, "", msgs[2])
			}},
		{name: "an id past the first record left", why: "is still in the log",
			set: func(t *testing.T, e *sealEnv, _ time.Time, ids []string, msgs []redis.XMessage) {
				setAnchor(t, e, ids[4], msgs[2])
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := retentionEnv(t)
			e.log.SetRetention(retention)
			e.write(t, "contoso", 6)
			e.sealAll(t)
			kept := e.keep(t) // sealed through the sixth record, left alone
			e.write(t, "contoso", 2)
			e.sealAll(t)
			ids := e.ids(t, "contoso")
			msgs := e.rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()
			if err := e.rdb.XDel(ctx, keys.Audit("contoso"), ids[:3]...).Err(); err != nil {
				t.Fatal(err)
			}
			tc.set(t, e, e.clock.Now(), ids, msgs)
			for name, v := range map[string]audit.Verification{"without the kept seal": e.verify(t), "with the kept seal": e.verifySince(t, kept)} {
				if v.OK || !strings.Contains(v.Problem, tc.why) {
					t.Errorf("%s: records %v, seconds old, deleted and the anchor set: %+v; want broken, %q", name, ids[:3], v, tc.why)
				}
			}
			if v := e.verifySince(t, kept); v.SinceSeal != audit.SinceSealBroken {
				t.Errorf("the kept seal, which covered the records deleted: %q, want broken", v.SinceSeal)
			}
		})
	}
}

// TestAnchorWithoutItsRecord: an anchor set by a Lockbox from before
// anchors kept their record has none. In a log retention emptied, or a
// tenant no longer written to, no trim comes to replace it: judged broken,
// it would read tampered with for good. It is dated by the stream id it
// names, as anchors were, and the verification says so (TrimmedUnbound),
// since that id is whoever sets the anchor's to choose; the next trim sets
// an anchor with its record.
func TestAnchorWithoutItsRecord(t *testing.T) {
	const retention = 48 * time.Hour
	ctx := context.Background()
	e := retentionEnv(t)
	e.write(t, "contoso", 3)
	e.clock.Advance(retention + time.Hour)
	if n, err := e.log.Trim(ctx, "contoso", e.clock.Now().Add(-retention)); err != nil || n != 3 {
		t.Fatalf("trimmed %d, %v; want all 3", n, err)
	}
	ids := e.rdb.Get(ctx, keys.AuditAnchor("contoso")).Val()
	// What a Lockbox from before anchors kept their record left.
	if err := e.rdb.Del(ctx, keys.AuditAnchorRecord("contoso")).Err(); err != nil {
		t.Fatal(err)
	}
	e.log.SetRetention(retention)
	for range 2 {
		if v := e.verify(t); !v.OK || !v.TrimmedUnbound || v.TrimmedThrough == "" {
			t.Fatalf("a log retention emptied, its anchor without its record: %+v; want intact, the anchor said to be unbound", v)
		}
		// Months of retention change nothing: no record is left to trim.
		e.clock.Advance(180 * 24 * time.Hour)
		if _, err := e.log.TrimAll(ctx, retention); err != nil {
			t.Fatal(err)
		}
	}

	// Dated by its id, a young one is still not retention's.
	young := fmt.Sprintf("%d-0 %s", e.clock.Now().Add(-time.Hour).UnixMilli(), strings.SplitN(ids, " ", 2)[1])
	e.rdb.Set(ctx, keys.AuditAnchor("contoso"), young, 0)
	if v := e.verify(t); v.OK || !v.TrimmedUnbound || !strings.Contains(v.Problem, ", written ") {
		t.Fatalf("an anchor without its record, its id an hour old: %+v; want broken, dated by its id", v)
	}
	e.rdb.Set(ctx, keys.AuditAnchor("contoso"), ids, 0)

	// The next trim sets an anchor with its record.
	e.write(t, "contoso", 2)
	e.clock.Advance(retention + time.Hour)
	if n, err := e.log.Trim(ctx, "contoso", e.clock.Now().Add(-retention)); err != nil || n != 2 {
		t.Fatalf("trimmed %d, %v; want both new records", n, err)
	}
	if v := e.verify(t); !v.OK || v.TrimmedUnbound {
		t.Fatalf("after the next trim: %+v; want intact, the anchor with its record", v)
	}
}

// TestAnchorWithoutItsRecordSetAfterASeal: dated by its id, an anchor
// without its record would let whoever can write to Redis delete the
// record beside an anchor he set and pass recent records off as trimmed.
// A seal names the anchor it was made with, and says its sealer's
// retention keeps the record with every anchor: an anchor without one,
// other than the one a seal saw, was set since, not by retention. The
// auditor's kept seal shows it whatever Redis holds; a seal from before
// seals said so (no AnchorsBound), and the anchor a seal saw, still pass.
func TestAnchorWithoutItsRecordSetAfterASeal(t *testing.T) {
	const retention = 8760 * time.Hour
	ctx := context.Background()
	oldID := func(e *sealEnv) string {
		return fmt.Sprintf("%d-0", e.clock.Now().Add(-retention-24*time.Hour).UnixMilli())
	}

	t.Run("set after the kept seal", func(t *testing.T) {
		e := retentionEnv(t)
		e.log.SetRetention(retention)
		e.write(t, "contoso", 6)
		e.sealAll(t)
		kept := e.keep(t)
		e.write(t, "contoso", 2)
		ids := e.ids(t, "contoso")
		msgs := e.rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()
		e.rdb.XDel(ctx, keys.Audit("contoso"), ids[:3]...)
		e.rdb.Set(ctx, keys.AuditAnchor("contoso"), oldID(e)+" "+msgs[2].Values["h"].(string), 0)
		// The stored seal made again over what Redis now holds, with the
		// anchor set: only the kept one saw the chain before.
		e.rdb.Del(ctx, keys.AuditSeal("contoso"))
		e.sealAll(t)
		if v := e.verify(t); !v.OK || !v.TrimmedUnbound {
			t.Fatalf("without the kept seal: %+v; want intact, the anchor said to be unbound", v)
		}
		v := e.verifySince(t, kept)
		if v.OK || v.SinceSeal != audit.SinceSealBroken || !strings.Contains(v.Problem, "was set after this seal") {
			t.Fatalf("with the kept seal: %+v; want broken, the anchor set after it", v)
		}
	})

	t.Run("the anchor the kept seal saw", func(t *testing.T) {
		e := retentionEnv(t)
		e.log.SetRetention(retention)
		e.write(t, "contoso", 3)
		e.clock.Advance(retention + time.Hour)
		if _, err := e.log.Trim(ctx, "contoso", e.clock.Now().Add(-retention)); err != nil {
			t.Fatal(err)
		}
		// Set by a Lockbox from before anchors kept their record.
		e.rdb.Del(ctx, keys.AuditAnchorRecord("contoso"))
		e.write(t, "contoso", 2)
		e.sealAll(t)
		kept := e.keep(t)
		e.write(t, "contoso", 1)
		if v := e.verifySince(t, kept); !v.OK || !v.TrimmedUnbound || v.SinceSeal != audit.SinceSealVerified {
			t.Fatalf("%+v; want intact, the kept seal verified, the anchor it saw unbound", v)
		}
	})

	t.Run("a kept seal from before seals named their anchor", func(t *testing.T) {
		e := retentionEnv(t)
		e.log.SetRetention(retention)
		e.write(t, "contoso", 6)
		e.resealDirectly(t) // no AnchorsBound
		kept := e.keep(t)
		ids := e.ids(t, "contoso")
		msgs := e.rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()
		e.rdb.XDel(ctx, keys.Audit("contoso"), ids[:3]...)
		e.rdb.Set(ctx, keys.AuditAnchor("contoso"), oldID(e)+" "+msgs[2].Values["h"].(string), 0)
		if v := e.verifySince(t, kept); !v.OK || !v.TrimmedUnbound {
			t.Fatalf("%+v; want the limit of such a seal: intact, the anchor said to be unbound", v)
		}
	})
}
