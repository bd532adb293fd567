package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/internal/chaintest"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// storedSeal is tenant's stored seal ("<stream id> <seal>").
func (e *sealEnv) storedSeal(t *testing.T, tenant string) string {
	t.Helper()
	return e.rdb.Get(context.Background(), keys.AuditSeal(tenant)).Val()
}

// TestSealerRefusesARewrittenChain: the sealer signs no chain that
// contradicts its stored seal, so the key never vouches for a rewrite the
// stored seal would show.
func TestSealerRefusesARewrittenChain(t *testing.T) {
	e := newSealEnv(t, newKey(t))
	e.write(t, "contoso", 5)
	e.sealAll(t)
	before := e.storedSeal(t, "contoso")

	chaintest.Rewrite(t, e.rdb, "contoso", 1, func(r string) string {
		return strings.Replace(r, `"ProviderUserId":"alice"`, `"ProviderUserId":"mallory"`, 1)
	})
	e.write(t, "contoso", 1)
	n, err := e.sealer.SealAll(context.Background())
	if !errors.Is(err, audit.ErrSealRefused) || n != 0 {
		t.Fatalf("SealAll over a rewritten chain = %d, %v; want ErrSealRefused", n, err)
	}
	if got := e.storedSeal(t, "contoso"); got != before {
		t.Fatalf("the seal moved over a rewritten chain:\n%s\nwas\n%s", got, before)
	}
	// Refused each round, not sealed once the mark is spent.
	if _, err := e.sealer.SealAll(context.Background()); !errors.Is(err, audit.ErrSealRefused) {
		t.Fatalf("second round: %v, want ErrSealRefused again", err)
	}
	if v := e.verify(t); v.OK {
		t.Fatalf("verify of the rewritten chain: %+v", v)
	}
}

// TestSealerRefusesAForgedSeal: a stored seal no published key made is
// not one a new seal may extend.
func TestSealerRefusesAForgedSeal(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	e := newSealEnv(t, key)
	e.write(t, "contoso", 3)
	e.sealAll(t)
	id, tok, _ := strings.Cut(e.storedSeal(t, "contoso"), " ")
	// The last signature byte changed: still the published key's kid.
	forged := tok[:len(tok)-2] + map[bool]string{true: "AA", false: "BA"}[!strings.HasSuffix(tok, "AA")]
	e.rdb.Set(ctx, keys.AuditSeal("contoso"), id+" "+forged, 0)
	e.write(t, "contoso", 1)
	if _, err := e.sealer.SealAll(ctx); !errors.Is(err, audit.ErrSealRefused) || !strings.Contains(err.Error(), "not Lockbox's") {
		t.Fatalf("SealAll over a forged seal: %v, want ErrSealRefused", err)
	}
}

// TestSealerExtendsARetiredKeysSeal: after a rotation whose old key is no
// longer published, the stored seal's claims still bind what the chain
// must extend: an intact chain is sealed with the new key, a rewritten
// one refused.
func TestSealerExtendsARetiredKeysSeal(t *testing.T) {
	old, next := newKey(t), newKey(t)
	e := newSealEnv(t, old, next.Public())
	e.write(t, "contoso", 3)
	e.sealAll(t)
	e.setKey(t, next)
	e.write(t, "contoso", 2)
	if n := e.sealAll(t); n != 1 {
		t.Fatalf("sealed %d, want the intact chain sealed with the new key", n)
	}
	kid, _ := grantsig.KeyID(next.Public())
	if v := e.verify(t); !v.OK || v.Seal != audit.SealVerified || v.SealKeyID != kid || v.UnsealedRecords != 0 {
		t.Fatalf("%+v", v)
	}

	// Once more from a seal by the retired key, over a rewritten chain.
	f := newSealEnv(t, old, next.Public())
	f.write(t, "contoso", 3)
	f.sealAll(t)
	f.setKey(t, next)
	chaintest.Rewrite(t, f.rdb, "contoso", 0, func(r string) string { return strings.Replace(r, "alice", "mallory", 1) })
	f.write(t, "contoso", 1)
	if _, err := f.sealer.SealAll(context.Background()); !errors.Is(err, audit.ErrSealRefused) {
		t.Fatalf("rewritten under a retired key's seal: %v, want ErrSealRefused", err)
	}
}

// TestSealerFollowsRetention: retention trimmed through the sealed entry;
// the anchor carries its hash and the chain goes on from it. An anchor
// whose hash is not the sealed one is refused.
func TestSealerFollowsRetention(t *testing.T) {
	ctx := context.Background()
	e := newSealEnv(t, newKey(t))
	e.write(t, "contoso", 5)
	e.sealAll(t)
	e.write(t, "contoso", 2)
	ids := e.ids(t, "contoso")
	if n, err := e.log.Trim(ctx, "contoso", sealT0.Add(5*time.Second)); err != nil || n != 5 {
		t.Fatalf("trimmed %d, %v", n, err)
	}
	anchor := e.rdb.Get(ctx, keys.AuditAnchor("contoso")).Val()
	e.rdb.Set(ctx, keys.AuditAnchor("contoso"), ids[4]+" "+strings.Repeat("0", 40), 0)
	if _, err := e.sealer.SealAll(ctx); !errors.Is(err, audit.ErrSealRefused) || !strings.Contains(err.Error(), "anchor") {
		t.Fatalf("tampered anchor: %v, want ErrSealRefused", err)
	}
	e.rdb.Set(ctx, keys.AuditAnchor("contoso"), anchor, 0)
	if n := e.sealAll(t); n != 1 {
		t.Fatalf("sealed %d from the anchor, want 1", n)
	}
	if id, _, _ := strings.Cut(e.storedSeal(t, "contoso"), " "); id != ids[6] {
		t.Fatalf("sealed through %s, want %s", id, ids[6])
	}

	// An anchor set since that seal without the record retention keeps
	// with every anchor: refused, as verification refuses it.
	e.write(t, "contoso", 1)
	e.rdb.Del(ctx, keys.AuditAnchorRecord("contoso"))
	e.rdb.Set(ctx, keys.AuditAnchor("contoso"), ids[5]+" "+strings.Repeat("0", 40), 0)
	if _, err := e.sealer.SealAll(ctx); !errors.Is(err, audit.ErrSealRefused) || !strings.Contains(err.Error(), "without the record retention keeps") {
		t.Fatalf("an anchor set since the seal without its record: %v, want ErrSealRefused", err)
	}
	// The anchor the seal saw, without its record (set by a Lockbox from
	// before anchors kept it), is extended.
	e.rdb.Set(ctx, keys.AuditAnchor("contoso"), anchor, 0)
	if n := e.sealAll(t); n != 1 {
		t.Fatalf("sealed %d over the anchor the seal saw, want 1", n)
	}
}
