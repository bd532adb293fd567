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
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// verifySince verifies contoso's chain against the kept seal since.
func (e *sealEnv) verifySince(t *testing.T, since string) audit.Verification {
	t.Helper()
	v, err := e.log.VerifySince(context.Background(), auditor, "contoso", since)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// keep verifies contoso's chain and returns the seal its answer carries,
// as an auditor keeping it outside Redis would.
func (e *sealEnv) keep(t *testing.T) string {
	t.Helper()
	v := e.verify(t)
	if !v.OK || v.Seal != audit.SealVerified || v.SealToken == "" || v.SinceSeal != "" {
		t.Fatalf("the verification to keep a seal from: %+v", v)
	}
	return v.SealToken
}

// resealDirectly stores a seal of contoso's newest entry signed with the
// proxy's key over whatever the chain now holds, as the sealer does once
// the stored seal is gone.
func (e *sealEnv) resealDirectly(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	last := e.rdb.XRevRangeN(ctx, keys.Audit("contoso"), "+", "-", 1).Val()[0]
	tok, err := e.signer.Load().SignSeal(grantsig.SealClaims{Issuer: "lockbox", Tenant: "contoso", Through: last.ID,
		Hash: last.Values["h"].(string), IssuedAt: e.clock.Now().Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Set(ctx, keys.AuditSeal("contoso"), last.ID+" "+tok, 0).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestKeptSealCatchesARewriteResealed is the gap the stored seal leaves:
// whoever can write to Redis rewrites a sealed record, recomputes every
// later hash and the head, deletes the stored seal, and the next seal is
// made over the rewritten chain. The stored seal then vouches for the
// rewrite; the seal the auditor kept from an earlier answer does not.
func TestKeptSealCatchesARewriteResealed(t *testing.T) {
	ctx := context.Background()
	e := newSealEnv(t, newKey(t))
	e.write(t, "contoso", 5)
	e.sealAll(t)
	kept := e.keep(t)
	sealedAt := e.clock.Now().Format(time.RFC3339)
	e.write(t, "contoso", 2)
	ids := e.ids(t, "contoso")

	chaintest.Rewrite(t, e.rdb, "contoso", 1, func(r string) string {
		return strings.Replace(r, `"ProviderUserId":"alice"`, `"ProviderUserId":"mallory"`, 1)
	})
	if err := e.rdb.Del(ctx, keys.AuditSeal("contoso")).Err(); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	e.resealDirectly(t)

	if v := e.verify(t); !v.OK || v.Seal != audit.SealVerified || v.SealedThrough != ids[6] {
		t.Fatalf("without the kept seal: %+v, want the rewritten chain vouched for by its new seal", v)
	}
	v := e.verifySince(t, kept)
	if v.OK || v.BrokenAt != ids[4] || v.SinceSeal != audit.SinceSealBroken || v.SinceSealedThrough != ids[4] || v.SinceSealedAt != sealedAt ||
		!strings.Contains(v.Problem, "the log no longer holds what Lockbox sealed at "+sealedAt+" in the seal you kept") ||
		!strings.Contains(v.Problem, "changed and their hashes recomputed") {
		t.Fatalf("with the kept seal: %+v, want broken at its entry %s", v, ids[4])
	}
	if v.Seal != audit.SealVerified {
		t.Fatalf("the stored seal's state: %q", v.Seal)
	}
}

// TestKeptSealCatchesNewestDeletedResealed: the newest records deleted,
// the head set back, the stored seal deleted and the chain sealed again.
func TestKeptSealCatchesNewestDeletedResealed(t *testing.T) {
	ctx := context.Background()
	e := newSealEnv(t, newKey(t))
	e.write(t, "contoso", 5)
	e.sealAll(t)
	kept := e.keep(t)
	msgs := e.rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()
	e.rdb.XDel(ctx, keys.Audit("contoso"), msgs[3].ID, msgs[4].ID)
	e.rdb.Set(ctx, keys.AuditHead("contoso"), msgs[2].Values["h"], 0)
	e.rdb.Del(ctx, keys.AuditSeal("contoso"))
	e.resealDirectly(t)
	if v := e.verify(t); !v.OK || v.Records != 3 {
		t.Fatalf("without the kept seal: %+v", v)
	}
	if v := e.verifySince(t, kept); v.OK || v.SinceSeal != audit.SinceSealBroken ||
		!strings.Contains(v.Problem, "in the seal you kept") || !strings.Contains(v.Problem, "after the last record there is now") {
		t.Fatalf("with the kept seal: %+v", v)
	}
}

// TestKeptSealOfAnIntactChain: a kept seal the chain still holds is
// verified, older or newer than the stored one (which may lag behind a
// seal kept from another replica's answer).
func TestKeptSealOfAnIntactChain(t *testing.T) {
	ctx := context.Background()
	e := newSealEnv(t, newKey(t))
	e.write(t, "contoso", 3)
	e.sealAll(t)
	older := e.keep(t)
	olderStored := e.rdb.Get(ctx, keys.AuditSeal("contoso")).Val()
	olderAt := e.clock.Now().Format(time.RFC3339)
	e.write(t, "contoso", 3)
	e.sealAll(t)
	newer := e.keep(t)
	ids := e.ids(t, "contoso")

	v := e.verifySince(t, older)
	if !v.OK || v.SinceSeal != audit.SinceSealVerified || v.SinceSealedThrough != ids[2] || v.SinceSealedAt != olderAt ||
		v.SealedThrough != ids[5] || v.SealToken != newer {
		t.Fatalf("a kept seal older than the stored one: %+v", v)
	}
	// The stored seal set back to the older one: the kept seal is newer.
	e.rdb.Set(ctx, keys.AuditSeal("contoso"), olderStored, 0)
	if v := e.verifySince(t, newer); !v.OK || v.SinceSeal != audit.SinceSealVerified || v.SinceSealedThrough != ids[5] || v.SealedThrough != ids[2] {
		t.Fatalf("a kept seal newer than the stored one: %+v", v)
	}
	// Without a stored seal at all, the kept one still covers the chain.
	e.rdb.Del(ctx, keys.AuditSeal("contoso"))
	if v := e.verifySince(t, newer); !v.OK || v.SinceSeal != audit.SinceSealVerified || v.Seal != audit.SealNone || v.SealToken != "" {
		t.Fatalf("a kept seal, none stored: %+v", v)
	}
}

// TestKeptSealUncheckedPastAnEarlierBreak: a chain broken before the kept
// seal's entry says the kept seal was not reached, not that it passed.
func TestKeptSealUncheckedPastAnEarlierBreak(t *testing.T) {
	e := newSealEnv(t, newKey(t))
	e.write(t, "contoso", 4)
	e.sealAll(t)
	kept := e.keep(t)
	ids := e.ids(t, "contoso")
	e.rdb.XDel(context.Background(), keys.Audit("contoso"), ids[1])
	if v := e.verifySince(t, kept); v.OK || v.BrokenAt != ids[2] || v.SinceSeal != audit.SinceSealUnchecked {
		t.Fatalf("%+v, want broken at %s, the kept seal unchecked", v, ids[2])
	}
}

// TestKeptSealThroughRetention: a kept seal of the record retention
// removed last is checked against the anchor; one of an older record
// can't be checked, and the answer says so rather than passing it.
func TestKeptSealThroughRetention(t *testing.T) {
	ctx := context.Background()
	e := newSealEnv(t, newKey(t))
	e.write(t, "contoso", 3)
	e.sealAll(t)
	kept := e.keep(t)
	e.write(t, "contoso", 3)
	e.sealAll(t) // the stored seal moves on: only the kept one names the anchor's entry
	ids := e.ids(t, "contoso")
	if n, err := e.log.Trim(ctx, "contoso", sealT0.Add(3*time.Second)); err != nil || n != 3 {
		t.Fatalf("trimmed %d, %v; want the 3 records the kept seal covers", n, err)
	}
	if v := e.verifySince(t, kept); !v.OK || v.SinceSeal != audit.SinceSealVerified || v.TrimmedThrough != ids[2] || v.SinceSealedThrough != ids[2] {
		t.Fatalf("trimmed through the kept seal's entry: %+v, want it checked against the anchor", v)
	}
	anchor := e.rdb.Get(ctx, keys.AuditAnchor("contoso")).Val()
	e.rdb.Set(ctx, keys.AuditAnchor("contoso"), ids[2]+" "+strings.Repeat("0", 40), 0)
	if v := e.verifySince(t, kept); v.OK || v.SinceSeal != audit.SinceSealBroken ||
		!strings.Contains(v.Problem, "in the seal you kept") || !strings.Contains(v.Problem, "anchor") {
		t.Fatalf("a tampered anchor: %+v", v)
	}
	e.rdb.Set(ctx, keys.AuditAnchor("contoso"), anchor, 0)
	if n, err := e.log.Trim(ctx, "contoso", sealT0.Add(4*time.Second)); err != nil || n != 1 {
		t.Fatalf("trimmed %d, %v", n, err)
	}
	if v := e.verifySince(t, kept); !v.OK || v.SinceSeal != audit.SinceSealTrimmed || v.Seal != audit.SealVerified {
		t.Fatalf("trimmed past the kept seal's entry: %+v, want an intact chain whose kept seal can't be checked", v)
	}
}

// TestKeptSealRefused: a kept seal that is not Lockbox's seal of this
// tenant's chain by a published key is refused before the chain is read,
// by VerifySince and CheckVerifySince alike; a key not published is
// refused too, naming what to publish: a check that can't be made does
// not read as passed.
func TestKeptSealRefused(t *testing.T) {
	ctx := context.Background()
	key, unpublished := newKey(t), newKey(t)
	e := newSealEnv(t, key)
	e.write(t, "contoso", 2)
	e.write(t, "fabrikam", 1)
	e.sealAll(t)
	good := e.keep(t)
	_, fabrikam, _ := strings.Cut(e.rdb.Get(ctx, keys.AuditSeal("fabrikam")).Val(), " ")
	sign := func(k *grantsig.Signer, c grantsig.SealClaims) string {
		tok, err := k.SignSeal(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	other, err := grantsig.NewSigner(unpublished)
	if err != nil {
		t.Fatal(err)
	}
	claims := grantsig.SealClaims{Issuer: "lockbox", Tenant: "contoso", Through: e.ids(t, "contoso")[1], Hash: strings.Repeat("a", 40), IssuedAt: sealT0.Unix()}
	wrongIssuer := claims
	wrongIssuer.Issuer = "elsewhere"
	noEntry := claims
	noEntry.Through = "latest"
	assertion, err := e.signer.Load().Sign(grantsig.Claims{Issuer: "lockbox", Subject: "s", Audience: "exchange", Tenant: "contoso",
		Service: "exchange", RequestID: "r", AuditID: "a", Activity: "x", Method: "GET", Path: "/", IssuedAt: 1, ExpiresAt: 2})
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndexByte(good, '.') + 1
	for _, c := range []struct {
		name, seal, says string
	}{
		{"not a JWS", "not-a-seal", "not a compact JWS"},
		{"another tenant's seal", fabrikam, `sealed for tenant "fabrikam"`},
		{"a corrupted signature", good[:i] + string(good[i]^1) + good[i+1:], "bad signature"},
		{"an assertion", assertion, "type"},
		{"another issuer's", sign(e.signer.Load(), wrongIssuer), "issued by"},
		{"naming no entry", sign(e.signer.Load(), noEntry), "names no stream entry"},
		{"a key not published", sign(other, claims), "LOCKBOX_PROXY_PUBLISHED_KEY_FILES"},
		// Seal lines as a SIEM holds them, but not contoso's seal.
		{"a record's line", e.rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()[0].Values["r"].(string), "not a seal line"},
		{"another tenant's seal line", mustJSON(t, audit.SealLine{RecordType: audit.SealRecordType, LockboxTenant: "fabrikam", SealToken: fabrikam}),
			`seal line of tenant "fabrikam"`},
		{"a seal line without its token", mustJSON(t, audit.SealLine{RecordType: audit.SealRecordType, LockboxTenant: "contoso"}), "without a SealToken"},
		{"a seal line naming no tenant", mustJSON(t, audit.SealLine{RecordType: audit.SealRecordType, SealToken: good}), `tenant ""`},
		{"a seal line cut short", `{"RecordType":"LockboxAuditSeal","LockboxTenant":"contoso","SealToken":"` + good, "not one"},
		{"a line whose seal is not a JWS", mustJSON(t, audit.SealLine{RecordType: audit.SealRecordType, LockboxTenant: "contoso", SealToken: "x"}),
			"not a compact JWS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.log.VerifySince(ctx, auditor, "contoso", c.seal)
			checkErr := e.log.CheckVerifySince(ctx, auditor, "contoso", c.seal)
			for _, err := range []error{err, checkErr} {
				fe, ok := errors.AsType[*fault.Error](err)
				if !ok || !errors.Is(err, fault.ErrInvalid) || fe.Code != "invalid_since_seal" || !strings.Contains(fe.Message, c.says) {
					t.Fatalf("%v, want invalid_since_seal saying %q", err, c.says)
				}
			}
		})
	}

	// A server that publishes no keys can check no kept seal.
	e.published.Store(nil)
	if err := e.log.CheckVerifySince(ctx, auditor, "contoso", good); !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), "publishes no keys") {
		t.Fatalf("no keys published: %v", err)
	}
	if v := e.verify(t); !v.OK || v.Seal != audit.SealUnverifiable || v.SealToken == "" {
		t.Fatalf("without keys, the stored seal is unverifiable and still handed out: %+v", v)
	}
}

// TestSealTokenOfAForgedSealIsNotHandedOut: the answer's seal_token is a
// seal to keep; one that is not Lockbox's is not one.
func TestSealTokenOfAForgedSealIsNotHandedOut(t *testing.T) {
	ctx := context.Background()
	e := newSealEnv(t, newKey(t))
	e.write(t, "contoso", 2)
	e.write(t, "fabrikam", 1)
	e.sealAll(t)
	e.rdb.Set(ctx, keys.AuditSeal("contoso"), e.rdb.Get(ctx, keys.AuditSeal("fabrikam")).Val(), 0)
	if v := e.verify(t); v.OK || v.Seal != audit.SealForged || v.SealToken != "" {
		t.Fatalf("%+v, want a forged seal and no token", v)
	}
}
