package audit_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/internal/chaintest"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

var sealT0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// sealEnv is a tenant's log with a sealer signing with key and
// verification trusting the keys published.
type sealEnv struct {
	rdb       redis.UniversalClient
	clock     *clock.Fake
	log       *audit.Log
	sealer    *audit.Sealer
	signer    atomic.Pointer[grantsig.Signer]
	published atomic.Pointer[grantsig.KeySet]
}

func newKey(t *testing.T) crypto.Signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newSealEnv(t *testing.T, key crypto.Signer, published ...crypto.PublicKey) *sealEnv {
	t.Helper()
	e := &sealEnv{rdb: testRedis(t), clock: clock.NewFake(sealT0)}
	onboard(t, e.rdb, "contoso", "fabrikam")
	e.log = newLog(e.rdb, e.clock.Now)
	e.setKey(t, key)
	if len(published) == 0 {
		published = []crypto.PublicKey{key.Public()}
	}
	ks, err := grantsig.NewKeySet(published...)
	if err != nil {
		t.Fatal(err)
	}
	e.published.Store(ks)
	e.log.SetSealKeys("lockbox", e.published.Load)
	e.sealer = e.newSealer(t, nil, nil)
	return e
}

// newSealer is a sealer of e's chains with e's keys and clock, counting in
// reg and logging to log when not nil.
func (e *sealEnv) newSealer(t *testing.T, reg prometheus.Registerer, log *slog.Logger) *audit.Sealer {
	t.Helper()
	s, err := audit.NewSealer(audit.SealerConfig{Redis: e.rdb, Issuer: "lockbox", Signer: e.signer.Load, Keys: e.published.Load,
		Now: e.clock.Now, Registerer: reg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *sealEnv) setKey(t *testing.T, key crypto.Signer) {
	t.Helper()
	s, err := grantsig.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	e.signer.Store(s)
}

// write appends n records to tenant's log, a second apart.
func (e *sealEnv) write(t *testing.T, tenant string, n int) {
	t.Helper()
	for i := range n {
		if _, err := e.log.Append(context.Background(), operatorRecord(tenant, i)); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
	}
}

func (e *sealEnv) sealAll(t *testing.T) int {
	t.Helper()
	n, err := e.sealer.SealAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *sealEnv) ids(t *testing.T, tenant string) []string {
	t.Helper()
	var ids []string
	for _, m := range e.rdb.XRange(context.Background(), keys.Audit(tenant), "-", "+").Val() {
		ids = append(ids, m.ID)
	}
	return ids
}

func (e *sealEnv) verify(t *testing.T) audit.Verification {
	t.Helper()
	v, err := e.log.Verify(context.Background(), auditor, "contoso")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSealCatchesRecomputedChain is the rewrite the chain alone misses: a
// sealed record edited and every later hash and the head recomputed.
func TestSealCatchesRecomputedChain(t *testing.T) {
	key := newKey(t)
	e := newSealEnv(t, key)
	e.write(t, "contoso", 5)
	if n := e.sealAll(t); n != 1 {
		t.Fatalf("sealed %d chains, want contoso's", n)
	}
	if n := e.sealAll(t); n != 0 {
		t.Fatalf("sealed %d chains again, with nothing written since", n)
	}
	e.write(t, "contoso", 2)
	ids := e.ids(t, "contoso")
	v := e.verify(t)
	kid, _ := grantsig.KeyID(key.Public())
	if !v.OK || v.Seal != audit.SealVerified || v.SealedThrough != ids[4] || v.UnsealedRecords != 2 ||
		v.SealKeyID != kid || v.SealedAt != sealT0.Add(5*time.Second).Format(time.RFC3339) {
		t.Fatalf("before the rewrite: %+v", v)
	}

	chaintest.Rewrite(t, e.rdb, "contoso", 1, func(r string) string {
		return strings.Replace(r, `"ProviderUserId":"alice"`, `"ProviderUserId":"mallory"`, 1)
	})
	v = e.verify(t)
	if v.OK || v.BrokenAt != ids[4] || !strings.Contains(v.Problem, "not those Lockbox sealed at") {
		t.Fatalf("rewritten chain: %+v, want broken at the sealed entry %s", v, ids[4])
	}

	// Without the seal, the chain alone vouches for the rewrite.
	e.rdb.Del(context.Background(), keys.AuditSeal("contoso"))
	if v = e.verify(t); !v.OK || v.Seal != audit.SealNone || v.UnsealedRecords != 7 || v.SealedThrough != "" {
		t.Fatalf("without the seal: %+v, want an intact chain, none of it sealed", v)
	}
}

// TestSealCatchesNewestDeleted: the newest records deleted and the head
// set back to an earlier entry's hash.
func TestSealCatchesNewestDeleted(t *testing.T) {
	ctx := context.Background()
	e := newSealEnv(t, newKey(t))
	e.write(t, "contoso", 5)
	e.sealAll(t)
	msgs := e.rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()
	e.rdb.XDel(ctx, keys.Audit("contoso"), msgs[3].ID, msgs[4].ID)
	e.rdb.Set(ctx, keys.AuditHead("contoso"), msgs[2].Values["h"], 0)
	if v := e.verify(t); v.OK || !strings.Contains(v.Problem, "newest records are missing") || !strings.Contains(v.Problem, msgs[4].ID) {
		t.Fatalf("newest records deleted: %+v", v)
	}
	e.rdb.Del(ctx, keys.AuditSeal("contoso"))
	if v := e.verify(t); !v.OK || v.Records != 3 {
		t.Fatalf("without the seal: %+v, want an intact chain of 3", v)
	}
}

// TestSealKeysAndForgeries: a seal is the proxy's when a published key
// signed it as a seal for this tenant.
func TestSealKeysAndForgeries(t *testing.T) {
	ctx := context.Background()
	old, cur, unpublished := newKey(t), newKey(t), newKey(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		key     crypto.Signer
		tamper  func(t *testing.T, e *sealEnv)
		state   string
		ok      bool
		problem string
	}{
		{"a published key", old, nil, audit.SealVerified, true, ""},
		{"a published P-256 key", ec, nil, audit.SealVerified, true, ""},
		{"a key not published", unpublished, nil, audit.SealUnverifiable, true, ""},
		{"an assertion in the seal's place", cur, func(t *testing.T, e *sealEnv) {
			id, _, _ := strings.Cut(e.rdb.Get(ctx, keys.AuditSeal("contoso")).Val(), " ")
			tok, err := e.signer.Load().Sign(grantsig.Claims{Issuer: "lockbox", Subject: "s", Audience: "exchange", Tenant: "contoso",
				Service: "exchange", RequestID: "r", AuditID: "a", Activity: "x", Method: "GET", Path: "/", IssuedAt: 1, ExpiresAt: 2})
			if err != nil {
				t.Fatal(err)
			}
			e.rdb.Set(ctx, keys.AuditSeal("contoso"), id+" "+tok, 0)
		}, audit.SealForged, false, "type"},
		{"another tenant's seal copied over", cur, func(t *testing.T, e *sealEnv) {
			e.rdb.Set(ctx, keys.AuditSeal("contoso"), e.rdb.Get(ctx, keys.AuditSeal("fabrikam")).Val(), 0)
		}, audit.SealForged, false, "tenant"},
		{"a corrupted signature", cur, func(t *testing.T, e *sealEnv) {
			s := e.rdb.Get(ctx, keys.AuditSeal("contoso")).Val()
			i := strings.LastIndexByte(s, '.') + 1
			e.rdb.Set(ctx, keys.AuditSeal("contoso"), s[:i]+string(s[i]^1)+s[i+1:], 0)
		}, audit.SealForged, false, "signature"},
		{"a seal moved to another entry", cur, func(t *testing.T, e *sealEnv) {
			_, tok, _ := strings.Cut(e.rdb.Get(ctx, keys.AuditSeal("contoso")).Val(), " ")
			e.rdb.Set(ctx, keys.AuditSeal("contoso"), e.ids(t, "contoso")[1]+" "+tok, 0)
		}, audit.SealForged, false, "moved"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newSealEnv(t, c.key, old.Public(), cur.Public(), ec.Public())
			e.write(t, "contoso", 3)
			e.write(t, "fabrikam", 1)
			e.sealAll(t)
			if c.tamper != nil {
				c.tamper(t, e)
			}
			v := e.verify(t)
			if v.Seal != c.state || v.OK != c.ok || !strings.Contains(v.Problem, c.problem) {
				t.Fatalf("%+v, want seal %s, ok %t, problem about %q", v, c.state, c.ok, c.problem)
			}
			if !c.ok && !strings.Contains(v.Problem, "not Lockbox's") && c.problem != "moved" {
				t.Fatalf("problem %q does not say the seal is not Lockbox's", v.Problem)
			}
			if c.state == audit.SealUnverifiable {
				if kid, _ := grantsig.KeyID(c.key.Public()); v.SealKeyID != kid || v.UnsealedRecords != 3 {
					t.Fatalf("%+v: want the unpublished key named, every record unsealed", v)
				}
			}
		})
	}
}

// TestSealsFromRacingSealers: replicas sealing at once leave the newest
// seal, however their rounds interleave with appends.
func TestSealsFromRacingSealers(t *testing.T) {
	key := newKey(t)
	e := newSealEnv(t, key)
	other, err := audit.NewSealer(audit.SealerConfig{Redis: e.rdb, Issuer: "lockbox", Signer: e.signer.Load, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.write(t, "contoso", 1)
	var wg sync.WaitGroup
	for _, s := range []*audit.Sealer{e.sealer, other} {
		wg.Go(func() {
			for range 20 {
				if _, err := s.SealAll(context.Background()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range 20 {
		if _, err := e.log.Append(context.Background(), operatorRecord("contoso", i)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	e.sealAll(t)
	ids := e.ids(t, "contoso")
	if v := e.verify(t); !v.OK || v.Seal != audit.SealVerified || v.SealedThrough != ids[len(ids)-1] || v.UnsealedRecords != 0 {
		t.Fatalf("%+v, want sealed through the newest entry %s", v, ids[len(ids)-1])
	}
}

// TestSealThroughRetention: retention trimmed through the sealed entry;
// the anchor, the sealed entry's hash, is checked against the seal.
func TestSealThroughRetention(t *testing.T) {
	ctx := context.Background()
	e := newSealEnv(t, newKey(t))
	e.write(t, "contoso", 5)
	e.sealAll(t)
	e.write(t, "contoso", 3)
	ids := e.ids(t, "contoso")
	if n, err := e.log.Trim(ctx, "contoso", sealT0.Add(5*time.Second)); err != nil || n != 5 {
		t.Fatalf("trimmed %d, %v; want the 5 sealed records", n, err)
	}
	v := e.verify(t)
	if !v.OK || v.Seal != audit.SealVerified || v.SealedThrough != ids[4] || v.TrimmedThrough != ids[4] || v.UnsealedRecords != 3 {
		t.Fatalf("trimmed through the sealed entry: %+v", v)
	}
	anchor := e.rdb.Get(ctx, keys.AuditAnchor("contoso")).Val()
	e.rdb.Set(ctx, keys.AuditAnchor("contoso"), ids[4]+" "+strings.Repeat("0", 40), 0)
	if v := e.verify(t); v.OK || !strings.Contains(v.Problem, "anchor") {
		t.Fatalf("tampered anchor: %+v", v)
	}
	e.rdb.Set(ctx, keys.AuditAnchor("contoso"), anchor, 0)
	if n, err := e.log.Trim(ctx, "contoso", sealT0.Add(6*time.Second)); err != nil || n != 1 {
		t.Fatalf("trimmed %d, %v", n, err)
	}
	if v := e.verify(t); !v.OK || v.Seal != audit.SealTrimmed || v.UnsealedRecords != 2 {
		t.Fatalf("trimmed past the sealed entry: %+v, want an intact chain whose seal can't be checked", v)
	}
}

// TestSealFollowsTheKey: the sealer signs with the key its getter returns
// at each round, as a reload replaces it; with none, it seals nothing.
func TestSealFollowsTheKey(t *testing.T) {
	first, second := newKey(t), newKey(t)
	e := newSealEnv(t, first, first.Public(), second.Public())
	e.write(t, "contoso", 1)
	e.sealAll(t)
	e.setKey(t, second)
	e.write(t, "contoso", 1)
	e.sealAll(t)
	kid, _ := grantsig.KeyID(second.Public())
	if v := e.verify(t); !v.OK || v.SealKeyID != kid {
		t.Fatalf("%+v, want sealed by the reloaded key %s", v, kid)
	}
	e.signer.Store(nil)
	e.write(t, "contoso", 1)
	if n := e.sealAll(t); n != 0 {
		t.Fatalf("sealed %d without a key", n)
	}
}

// TestUnsealedLog: a log no sealer visited verifies as before, with every
// record unsealed.
func TestUnsealedLog(t *testing.T) {
	e := newSealEnv(t, newKey(t))
	e.write(t, "contoso", 4)
	if v := e.verify(t); !v.OK || v.Seal != audit.SealNone || v.UnsealedRecords != 4 || e.rdb.Exists(context.Background(), keys.AuditSeal("contoso")).Val() != 0 {
		t.Fatalf("%+v, want an intact chain, none of it sealed", v)
	}
}

// TestSealAfterALostMark: a tenant whose schedule mark was lost is sealed
// once the schedules' rescan finds its chain sealed short of its newest
// entry; a sealed one is left alone.
func TestSealAfterALostMark(t *testing.T) {
	ctx := context.Background()
	e := newSealEnv(t, newKey(t))
	e.write(t, "contoso", 2)
	e.write(t, "fabrikam", 1)
	e.sealAll(t)
	e.write(t, "contoso", 1)
	e.rdb.Del(ctx, keys.Due(string(due.Seal)))
	if n := e.sealAll(t); n != 0 {
		t.Fatalf("sealed %d without a mark", n)
	}
	r := &due.Rescan{Redis: e.rdb, Now: e.clock.Now, Probes: map[due.Job]due.Probe{due.Seal: audit.SealProbe}, Owner: "test"}
	if _, marked, ran, err := r.TryOnce(ctx); err != nil || !ran || marked != 1 {
		t.Fatalf("rescan marked %d (ran %t), %v; want contoso alone", marked, ran, err)
	}
	if n := e.sealAll(t); n != 1 {
		t.Fatalf("sealed %d after the rescan, want contoso's chain", n)
	}
	if v := e.verify(t); !v.OK || v.UnsealedRecords != 0 {
		t.Fatalf("%+v", v)
	}
}
