package console_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/chaintest"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// sealTokenRE finds the seal the audit page offers to keep.
var sealTokenRE = regexp.MustCompile(`(?s)<textarea [^>]*data-testid="seal-token"[^>]*>([^<]*)</textarea>`)

// keptSealEnv is a console whose log is sealed by the proxy's key, as the
// sealer does on a replica with it.
type keptSealEnv struct {
	*env
	sealer *audit.Sealer
}

func newKeptSealEnv(t *testing.T) keptSealEnv {
	t.Helper()
	e := newEnv(t)
	e.managerApproved("contoso")
	k := keptSealEnv{env: e, sealer: newSealer(t, e)}
	k.sealAll()
	return k
}

func (e keptSealEnv) sealAll() {
	e.t.Helper()
	if n, err := e.sealer.SealAll(context.Background()); err != nil || n == 0 {
		e.t.Fatalf("sealed %d, %v", n, err)
	}
}

// addRecord writes a record to contoso's log: an approver assigned.
func (e keptSealEnv) addRecord(user string) {
	e.t.Helper()
	if err := e.ten.AddApprover(context.Background(), contosoAdmin, "192.0.2.1", "contoso", user); err != nil {
		e.t.Fatal(err)
	}
}

// storedSeal is tenant's stored seal token.
func (e keptSealEnv) storedSeal(tenant string) string {
	e.t.Helper()
	stored, err := e.rdb.Get(context.Background(), keys.AuditSeal(tenant)).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	_, tok, _ := strings.Cut(stored, " ")
	return tok
}

// keptSealPath is the audit page checking contoso's chain against since.
func keptSealPath(since string) string {
	return "/console/audit?" + url.Values{"tenant": {"contoso"}, "verify": {"1"}, "since_seal": {since}}.Encode()
}

// sealLine is the SIEM's json line of tenant's seal tok.
func sealLine(tenant, tok string) string {
	b, err := json.Marshal(audit.SealLine{RecordType: audit.SealRecordType, LockboxTenant: tenant, SealToken: tok})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// offeredSeal is the seal r offers to keep, or "".
func offeredSeal(r resp) string {
	m := sealTokenRE.FindStringSubmatch(r.body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// TestAuditPageOffersTheSealToKeep: a verification of a sealed chain
// shows the stored seal for the auditor to keep, and a form to check the
// chain against one kept; checked against it, an intact chain says so.
func TestAuditPageOffersTheSealToKeep(t *testing.T) {
	parallel(t)
	e := newKeptSealEnv(t)
	admin := e.signIn(contosoAdmin)
	r := admin.get("/console/audit?tenant=contoso&verify=1")
	mustContain(t, "verification of a sealed log", r, "Hash chain intact", `<label for="seal-token">Seal to keep</label>`,
		"Keep this seal outside Lockbox", "lockboxctl audit verify --seal-file",
		`<form method="get" action="/console/audit" class="kept-seal"`, `<input type="hidden" name="tenant" value="contoso">`,
		`<input type="hidden" name="verify" value="1">`, `name="since_seal"`, "Check against a kept seal")
	kept := offeredSeal(r)
	if want := e.storedSeal("contoso"); kept == "" || kept != want {
		t.Fatalf("the seal offered to keep is %q, want the stored seal %q", kept, want)
	}
	through := strings.Fields(e.rdb.Get(context.Background(), keys.AuditSeal("contoso")).Val())[0]
	sealedAt := e.clk.Now().UTC().Format("2006-01-02 15:04 UTC")

	// Newer records and a newer seal: the kept one still holds.
	e.clk.Advance(time.Minute)
	e.addRecord("kept1@contoso.example")
	e.sealAll()
	r = admin.get(keptSealPath("\n " + kept + "\n"))
	if r.status != http.StatusOK {
		t.Fatalf("check against the kept seal: %s", r)
	}
	mustContain(t, "check against the kept seal", r, `class="verify ok"`, "Hash chain intact", `data-testid="kept"`,
		"The chain still holds what Lockbox sealed in the seal you kept (entry "+through+", sealed at "+sealedAt+"): the records up to it are the ones sealed.")
	if got := offeredSeal(r); got != e.storedSeal("contoso") || got == kept {
		t.Errorf("after the check, the seal offered is %q, want the newer stored one", got)
	}
	// The seal's line as the SIEM holds it is pasted as well.
	r = admin.get(keptSealPath(sealLine("contoso", kept)))
	mustContain(t, "check against the kept seal's SIEM line", r, `class="verify ok"`, `data-testid="kept"`,
		"The chain still holds what Lockbox sealed in the seal you kept (entry "+through+", sealed at "+sealedAt+")")

	// Without a kept seal, none is checked nor claimed.
	r = admin.get(keptSealPath(""))
	mustContain(t, "empty kept seal", r, "Hash chain intact")
	mustNotContain(t, "empty kept seal", r, `data-testid="kept"`, "the seal you kept")
}

// TestAuditPageKeptSealCatchesARewriteResealed is the rewrite the stored
// seal misses: a sealed record edited, every later hash and the head
// recomputed, the stored seal deleted and the chain sealed again. The
// plain verification vouches for it; the seal the auditor kept does not.
func TestAuditPageKeptSealCatchesARewriteResealed(t *testing.T) {
	parallel(t)
	e := newKeptSealEnv(t)
	ctx := context.Background()
	admin := e.signIn(contosoAdmin)
	kept := offeredSeal(admin.get("/console/audit?tenant=contoso&verify=1"))
	if kept == "" {
		t.Fatal("no seal offered to keep")
	}
	through := strings.Fields(e.rdb.Get(ctx, keys.AuditSeal("contoso")).Val())[0]
	sealedAt := e.clk.Now().UTC().Format("2006-01-02 15:04 UTC")

	chaintest.Rewrite(t, e.rdb, "contoso", 0, func(r string) string {
		return strings.Replace(r, `"ClientIP":"`, `"ClientIP":"203.0.113.66, `, 1)
	})
	e.rdb.Del(ctx, keys.AuditSeal("contoso"))
	e.clk.Advance(time.Minute)
	e.addRecord("kept2@contoso.example")
	e.sealAll()

	r := admin.get("/console/audit?tenant=contoso&verify=1")
	mustContain(t, "plain verification of the rewritten chain", r, "Hash chain intact", "Lockbox sealed the chain through entry")
	r = admin.get(keptSealPath(kept))
	if r.status != http.StatusOK {
		t.Fatalf("check against the kept seal: %s", r)
	}
	mustContain(t, "check of the rewritten chain against the kept seal", r, `class="verify broken"`, "Hash chain BROKEN",
		"The chain no longer holds what Lockbox sealed in the seal you kept (entry "+through+", sealed at "+sealedAt+"): records were rewritten or removed.")
	mustNotContain(t, "check of the rewritten chain against the kept seal", r, "Hash chain intact", `data-testid="seal-token"`)
}

// TestAuditPageRefusesABadKeptSeal: a kept seal that is not Lockbox's
// seal of this tenant's chain is said beside the form, which keeps it,
// with no verdict; a user who may not verify the chain is refused as
// without one.
func TestAuditPageRefusesABadKeptSeal(t *testing.T) {
	parallel(t)
	e := newKeptSealEnv(t)
	admin := e.signIn(contosoAdmin)
	for _, c := range []struct{ name, seal, why string }{
		{"garbage", "not-a-seal<>", "The seal you kept is not a seal Lockbox made of tenant contoso&#39;s audit log"},
		{"another tenant's seal", e.storedSeal("fabrikam"), "The seal you kept is not a seal Lockbox made of tenant contoso&#39;s audit log"},
		{"another tenant's seal line", sealLine("fabrikam", e.storedSeal("fabrikam")),
			"The seal you kept is a seal line of tenant &#34;fabrikam&#34;&#39;s audit log, not of tenant contoso&#39;s"},
	} {
		r := admin.get(keptSealPath(c.seal))
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: %s", c.name, r)
		}
		mustContain(t, c.name, r, `id="since-seal-problem"`, c.why, `aria-describedby="since-seal-problem"`,
			">"+html.EscapeString(c.seal)+"</textarea>", "Check against a kept seal")
		mustNotContain(t, c.name, r, `data-testid="verification"`, "Hash chain intact", `data-testid="seal-token"`)
		if r := admin.do(http.MethodHead, keptSealPath(c.seal), nil); r.status != http.StatusBadRequest {
			t.Errorf("HEAD, %s: %d", c.name, r.status)
		}
	}

	for _, who := range []identity.Principal{contosoApprover, alice} {
		b := e.signIn(who)
		plain := b.get("/console/audit?tenant=contoso&verify=1")
		r := b.get(keptSealPath("not-a-seal"))
		if r.status != http.StatusForbidden || r.status != plain.status {
			t.Errorf("%s: with a kept seal %d, without %d; want 403 both", who.Subject, r.status, plain.status)
		}
		mustNotContain(t, who.Subject, r, "seal you kept", "since_seal")
	}
}

// TestAuditPageKeptSealUnchecked: a chain broken before the kept seal's
// record says the kept seal was not reached, never that it held.
func TestAuditPageKeptSealUnchecked(t *testing.T) {
	parallel(t)
	e := newKeptSealEnv(t)
	ctx := context.Background()
	admin := e.signIn(contosoAdmin)
	kept := offeredSeal(admin.get("/console/audit?tenant=contoso&verify=1"))
	ids := e.rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()
	if kept == "" || len(ids) < 3 {
		t.Fatalf("seal %q, %d records", kept, len(ids))
	}
	e.rdb.XDel(ctx, keys.Audit("contoso"), ids[1].ID)
	r := admin.get(keptSealPath(kept))
	mustContain(t, "a chain broken before the kept seal's record", r, `class="verify broken"`, "Hash chain BROKEN",
		"The chain was not checked against the seal you kept (entry "+ids[len(ids)-1].ID)
	mustNotContain(t, "a chain broken before the kept seal's record", r, "still holds", `data-testid="seal-token"`)
}
