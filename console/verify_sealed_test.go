package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/grantsig/grantsigtest"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestAuditPageSaysWhatTheSealCovers: after the verdict, one sentence
// says how far the proxy's seal covers the chain, as the API's seal
// fields and lockboxctl audit verify's sealed: line do; without a seal,
// that the chain alone covers the records.
func TestAuditPageSaysWhatTheSealCovers(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	ctx := context.Background()
	e.managerApproved("contoso")
	sealer := newSealer(t, e)
	admin := e.signIn(contosoAdmin)
	r := admin.get("/console/audit?tenant=contoso&verify=1")
	mustContain(t, "verification of a log never sealed", r, "Hash chain intact", `data-testid="sealed"`,
		"The chain has no seal: its records are covered by the hash chain alone.")

	if n, err := sealer.SealAll(ctx); err != nil || n == 0 {
		t.Fatalf("sealed %d, %v", n, err)
	}
	last, err := e.rdb.XRevRangeN(ctx, keys.Audit("contoso"), "+", "-", 1).Result()
	if err != nil || len(last) != 1 {
		t.Fatalf("newest record: %v, %v", last, err)
	}
	r = admin.get("/console/audit?tenant=contoso&verify=1")
	mustContain(t, "verification of a sealed log", r, "Hash chain intact",
		"Lockbox sealed the chain through entry "+last[0].ID+" at "+e.clk.Now().UTC().Format("2006-01-02 15:04 UTC")+": every record verified is sealed.")

	// A seal that is not Lockbox's breaks the chain.
	stored := e.rdb.Get(ctx, keys.AuditSeal("contoso")).Val()
	i := strings.LastIndexByte(stored, '.') + 1
	e.rdb.Set(ctx, keys.AuditSeal("contoso"), stored[:i]+string(stored[i]^1)+stored[i+1:], 0)
	r = admin.get("/console/audit?tenant=contoso&verify=1")
	mustContain(t, "verification of a forged seal", r, "Hash chain BROKEN", "The chain's seal is not Lockbox's.")
}

// newSealer returns a sealer of e's log signing with a key of its own,
// which e's log takes for the proxy's published key, as on a replica that
// runs the proxy with its signing key.
func newSealer(t *testing.T, e *env) *audit.Sealer {
	t.Helper()
	signer, ks := grantsigtest.NewKey(t)
	e.log.SetSealKeys("lockbox", func() *grantsig.KeySet { return ks })
	sealer, err := audit.NewSealer(audit.SealerConfig{Redis: e.rdb, Issuer: "lockbox", Signer: func() *grantsig.Signer { return signer }, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return sealer
}
