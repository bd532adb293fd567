package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/grantsig/grantsigtest"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// sealedEnv is an env whose audit log checks seals against key's public
// half, with the chains of contoso (a few operator actions in it) and
// fabrikam sealed by key.
func sealedEnv(t *testing.T) (*env, *grantsig.Signer) {
	t.Helper()
	signer, ks := grantsigtest.NewKey(t)
	var log *audit.Log
	e := newEnv(t, func(c *api.Config) {
		log = c.Audit.(*audit.Log)
		log.SetSealKeys("lockbox", func() *grantsig.KeySet { return ks })
	})
	e.operatorActions(e.file(alice, "contoso", "exchange"), 3, "Get-Mailbox")
	sealer, err := audit.NewSealer(audit.SealerConfig{Redis: e.rdb, Issuer: "lockbox", Signer: func() *grantsig.Signer { return signer }, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := sealer.SealAll(context.Background()); err != nil || n != 2 {
		t.Fatalf("sealed %d chains, %v; want contoso's and fabrikam's", n, err)
	}
	return e, signer
}

// TestAuditVerifyAgainstAKeptSeal: the answer carries the stored seal, for
// tenants too (it names no provider identity); sent back as since_seal,
// the chain is checked against it, and the answer says how that went.
func TestAuditVerifyAgainstAKeptSeal(t *testing.T) {
	e, _ := sealedEnv(t)
	ctx := context.Background()
	first := decode[wire.AuditVerification](t, e.do(contosoAdmin, "GET", "/v1/audit/verify?tenant=contoso", nil), 200)
	if !first.OK || first.Seal != "verified" || first.SealToken == "" || first.SinceSeal != "" {
		t.Fatalf("the first verification: %+v, want a seal token to keep", first)
	}
	kept := first.SealToken
	path := "/v1/audit/verify?tenant=contoso&since_seal=" + url.QueryEscape(kept)
	// The seal kept as the SIEM's json line holds it.
	line, err := json.Marshal(audit.SealLine{RecordType: audit.SealRecordType, LockboxTenant: "contoso", SealedThrough: first.SealedThrough,
		SealedAt: first.SealedAt, SealKeyId: first.SealKeyID, SealToken: kept})
	if err != nil {
		t.Fatal(err)
	}
	linePath := "/v1/audit/verify?tenant=contoso&since_seal=" + url.QueryEscape(string(line))
	for _, who := range []user{auditor, contosoAdmin} {
		for _, p := range []string{path, linePath} {
			v := decode[wire.AuditVerification](t, e.do(who, "GET", p, nil), 200)
			if !v.OK || v.SinceSeal != "verified" || v.SinceSealedThrough != first.SealedThrough || v.SinceSealedAt != first.SealedAt {
				t.Fatalf("%s: an intact chain against its kept seal (%s): %+v", who.sub, p, v)
			}
		}
	}

	// The newest records deleted, the head set back, the stored seal
	// deleted: the chain alone and the stored seal can't tell.
	msgs := e.rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()
	if len(msgs) < 2 {
		t.Fatalf("contoso's log has %d records", len(msgs))
	}
	e.rdb.XDel(ctx, keys.Audit("contoso"), msgs[len(msgs)-1].ID)
	e.rdb.Set(ctx, keys.AuditHead("contoso"), msgs[len(msgs)-2].Values["h"], 0)
	e.rdb.Del(ctx, keys.AuditSeal("contoso"))
	if v := decode[wire.AuditVerification](t, e.do(auditor, "GET", "/v1/audit/verify?tenant=contoso", nil), 200); !v.OK || v.Seal != "none" {
		t.Fatalf("without the kept seal: %+v", v)
	}
	for _, p := range []string{path, linePath} {
		v := decode[wire.AuditVerification](t, e.do(auditor, "GET", p, nil), 200)
		if v.OK || v.SinceSeal != "broken" || !strings.Contains(v.Problem, "the log no longer holds what Lockbox sealed at "+first.SealedAt+" in the seal you kept") {
			t.Fatalf("with the kept seal (%s): %+v", p, v)
		}
	}
}

// TestAuditVerifyRefusesABadKeptSeal: a since_seal that is not Lockbox's
// seal of the tenant's log by a published key is 400 invalid_since_seal,
// for GET and HEAD alike, before the log is read.
func TestAuditVerifyRefusesABadKeptSeal(t *testing.T) {
	e, _ := sealedEnv(t)
	ctx := context.Background()
	_, fabrikam, _ := strings.Cut(e.rdb.Get(ctx, keys.AuditSeal("fabrikam")).Val(), " ")
	_, contoso, _ := strings.Cut(e.rdb.Get(ctx, keys.AuditSeal("contoso")).Val(), " ")
	i := strings.LastIndexByte(contoso, '.') + 1
	retired, _ := grantsigtest.NewKey(t)
	last := e.rdb.XRevRangeN(ctx, keys.Audit("contoso"), "+", "-", 1).Val()[0]
	unpublished, err := retired.SignSeal(grantsig.SealClaims{Issuer: "lockbox", Tenant: "contoso", Through: last.ID, Hash: last.Values["h"].(string), IssuedAt: e.clk.Now().Unix()})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, seal, says string
	}{
		{"another tenant's seal", fabrikam, `sealed for tenant "fabrikam"`},
		{"a corrupted signature", contoso[:i] + string(contoso[i]^1) + contoso[i+1:], "bad signature"},
		{"a key not published", unpublished, "LOCKBOX_PROXY_PUBLISHED_KEY_FILES"},
		{"malformed", "x.y", "not a compact JWS"},
		{"empty", "", "empty"},
		{"a record's line", e.rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()[0].Values["r"].(string), "not a seal line"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := "/v1/audit/verify?tenant=contoso&since_seal=" + url.QueryEscape(c.seal)
			wantError(t, e.do(auditor, http.MethodGet, path, nil), 400, "invalid_since_seal", c.says)
			if head := e.do(auditor, http.MethodHead, path, nil); head.status != 400 {
				t.Fatalf("HEAD answered %d, GET 400", head.status)
			}
		})
	}
	// Who may not read the log learns nothing of the seal.
	path := "/v1/audit/verify?tenant=contoso&since_seal=x.y"
	wantError(t, e.do(fabrikamAdmin, http.MethodGet, path, nil), 403, "forbidden", "")
	if head := e.do(auditor, http.MethodHead, "/v1/audit/verify?tenant=contoso&since_seal="+url.QueryEscape(contoso), nil); head.status != 200 {
		t.Fatalf("HEAD with a good kept seal answered %d", head.status)
	}
}
