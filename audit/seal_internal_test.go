package audit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/grantsig/grantsigtest"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

func sealerForTest(t *testing.T) (*Log, *Sealer, *grantsig.Signer) {
	t.Helper()
	rdb := redistest.Client(t)
	c := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	signer, ks := grantsigtest.NewKey(t)
	// The registry entry records need for their OrganizationId.
	if err := rdb.Set(context.Background(), keys.Tenant("contoso"), `{"id":"contoso","organization_id":"0195a000-0000-7000-8000-0000000000c0"}`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	l := NewLog(rdb, c.Now)
	l.SetSealKeys("lockbox", func() *grantsig.KeySet { return ks })
	s, err := NewSealer(SealerConfig{Redis: rdb, Issuer: "lockbox", Signer: func() *grantsig.Signer { return signer }, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return l, s, signer
}

func appendRecords(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := range n {
		if _, err := l.Append(context.Background(), record.Record{Operation: "Get-Mailbox", LockboxTenant: "contoso", Workload: "exchange",
			RecordType: record.RecordTypeDataCenterSecurityCmdlet, UserId: record.OperatorUserID, ObjectId: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSealsOnlyMoveForward: a seal read before a newer one was stored
// (another replica's, or this one's slow round) is refused, not stored
// over it.
func TestSealsOnlyMoveForward(t *testing.T) {
	ctx := context.Background()
	l, s, signer := sealerForTest(t)
	appendRecords(t, l, 2)
	msgs := l.rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()
	if ok, err := s.store(ctx, signer, "contoso", msgs[1], ""); !ok || err != nil {
		t.Fatalf("newest seal: %t, %v", ok, err)
	}
	stored := l.rdb.Get(ctx, keys.AuditSeal("contoso")).Val()
	for _, m := range msgs {
		if ok, err := s.store(ctx, signer, "contoso", m, ""); ok || err != nil {
			t.Fatalf("seal of %s over the seal of %s: stored %t, %v", m.ID, msgs[1].ID, ok, err)
		}
	}
	if got := l.rdb.Get(ctx, keys.AuditSeal("contoso")).Val(); got != stored {
		t.Fatalf("the seal changed to %q", got)
	}
}

// TestSealLandsWhileTheHeadMoves: records appended between the read of the
// newest entry and the store do not stop the seal; it covers the entry
// read, and the records after it are reported unsealed.
func TestSealLandsWhileTheHeadMoves(t *testing.T) {
	ctx := context.Background()
	l, s, signer := sealerForTest(t)
	appendRecords(t, l, 2)
	read := l.rdb.XRevRangeN(ctx, keys.Audit("contoso"), "+", "-", 1).Val()[0]
	appendRecords(t, l, 3)
	if ok, err := s.store(ctx, signer, "contoso", read, ""); !ok || err != nil {
		t.Fatalf("seal after the head moved: %t, %v", ok, err)
	}
	v, _, err := l.verifyOnce(ctx, "contoso")
	if err != nil || !v.OK || v.SealedThrough != read.ID || v.UnsealedRecords != 3 || v.Records != 5 {
		t.Fatalf("%+v, %v: want sealed through %s, 3 records after it", v, err, read.ID)
	}
}

// TestSealOfAnEntryChangedMeanwhile: an entry rewritten between the read
// and the store is not sealed.
func TestSealOfAnEntryChangedMeanwhile(t *testing.T) {
	ctx := context.Background()
	l, s, signer := sealerForTest(t)
	appendRecords(t, l, 1)
	read := l.rdb.XRevRangeN(ctx, keys.Audit("contoso"), "+", "-", 1).Val()[0]
	forged := read
	forged.Values = map[string]any{"h": strings.Repeat("0", 40)}
	if ok, err := s.store(ctx, signer, "contoso", forged, ""); ok || err == nil {
		t.Fatalf("sealed an entry with another hash: %t, %v", ok, err)
	}
	if n := l.rdb.Exists(ctx, keys.AuditSeal("contoso")).Val(); n != 0 {
		t.Fatal("a seal was stored")
	}
}
