package cli

import (
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/audit/siemcheck"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/grantsig/grantsigtest"
)

// siemFixture writes a SIEM file of contoso's four records, the third
// sealed, and the JWKS of the sealing key, as a SIEM and GET /v1/keys
// would hold them; it returns their paths and the entry ids.
func siemFixture(t *testing.T, edit func(i int, rec string) string) (file, keys string, ids []string) {
	t.Helper()
	signer, _ := grantsigtest.NewKey(t)
	var lines []string
	prev := ""
	for i := range 4 {
		id := fmt.Sprintf("1767225600000-%d", i)
		ids = append(ids, id)
		rec := fmt.Sprintf(`{"Id":"rec-%d","Operation":"Get-Mailbox","LockboxTenant":"contoso","ProviderUserId":"alice"}`, i)
		sum := sha1.Sum([]byte(prev + "\n" + rec))
		h := hex.EncodeToString(sum[:])
		if edit != nil {
			rec = edit(i, rec)
		}
		lines = append(lines, string(siemcheck.Place([]byte(rec), id, prev, h)))
		if i == 2 {
			tok, err := signer.SignSeal(grantsig.SealClaims{Issuer: "lockbox", Tenant: "contoso", Through: id, Hash: h, IssuedAt: 1767225700})
			if err != nil {
				t.Fatal(err)
			}
			seal, _ := json.Marshal(map[string]string{"RecordType": siemcheck.SealRecordType, "LockboxTenant": "contoso",
				"SealedThrough": id, "SealToken": tok})
			lines = append(lines, string(seal))
		}
		prev = h
	}
	// Another tenant's line, passed over.
	lines = append(lines, `{"Id":"f-1","LockboxTenant":"fabrikam"}`)
	dir := t.TempDir()
	file = filepath.Join(dir, "siem.jsonl")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	jwks, err := grantsig.NewJWKS(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(jwks)
	keys = filepath.Join(dir, "keys.json")
	if err := os.WriteFile(keys, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return file, keys, ids
}

// TestAuditCheckSIEM: the SIEM's copy is checked from files alone, no call
// to the API made; intact is exit 0, a record edited exit 4 with where,
// and what can't be checked exit 1.
func TestAuditCheckSIEM(t *testing.T) {
	file, keys, ids := siemFixture(t, nil)
	r := run(t, []string{"audit", "check-siem", "--tenant", "contoso", "--keys", keys, file}, nil, nil)
	want := "SIEM copy of contoso's audit log: intact, 4 records (entries " + ids[0] + " to " + ids[3] + ", from the tenant's first record)\n" +
		"  sealed:  through entry " + ids[2] + ", signed at 2026-01-01T00:01:40Z by key "
	if r.code != 0 || !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, "; 1 record after it covered by the hash chain alone\n") || len(r.calls) != 0 {
		t.Fatalf("intact: exit %d, %d calls, stdout:\n%s\nstderr: %s", r.code, len(r.calls), r.stdout, r.stderr)
	}

	// Rotated, the older half compressed: the same, in any order.
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	old, cur := filepath.Join(t.TempDir(), "siem.jsonl.1.gz"), filepath.Join(t.TempDir(), "siem.jsonl")
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(strings.Join(lines[:3], "")))
	zw.Close()
	if err := os.WriteFile(old, z.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cur, []byte(strings.Join(lines[3:], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, []string{"audit", "check-siem", "--tenant", "contoso", "--keys", keys, cur, old}, nil, nil)
	if r.code != 0 || !strings.HasPrefix(r.stdout, want) {
		t.Fatalf("rotated and compressed: exit %d, stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	r = run(t, []string{"audit", "check-siem", "--tenant", "contoso", "--keys", keys, "-o", "json", file}, nil, nil)
	var got siemcheck.Result
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 || !got.OK || got.Records != 4 || got.SealedThrough != ids[2] {
		t.Fatalf("-o json: exit %d, %+v (%v), stdout:\n%s", r.code, got, err, r.stdout)
	}

	edited, keys2, _ := siemFixture(t, func(i int, rec string) string {
		if i == 1 {
			return strings.Replace(rec, "alice", "mallory", 1)
		}
		return rec
	})
	r = run(t, []string{"audit", "check-siem", "--tenant", "contoso", "--keys", keys2, edited}, nil, nil)
	if r.code != exitChainBroken || !strings.Contains(r.stdout, "BROKEN after 1 good records") ||
		!strings.Contains(r.stdout, "  at:      "+ids[1]+" (record rec-1)\n") || !strings.Contains(r.stdout, "altered") {
		t.Fatalf("a record edited: exit %d, stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	// The key that sealed it missing from --keys: the chain still checks,
	// the seal can't.
	_, otherKeys, _ := siemFixture(t, nil)
	r = run(t, []string{"audit", "check-siem", "--tenant", "contoso", "--keys", otherKeys, file}, nil, nil)
	if r.code != 0 || !strings.Contains(r.stdout, "which --keys does not hold: the seal can't be checked, the 4 records covered by the hash chain alone") {
		t.Fatalf("an unknown key: exit %d, stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	// A seal line of another key beside the verified one: said.
	other, _, _ := siemFixture(t, nil)
	ob, err := os.ReadFile(other)
	if err != nil {
		t.Fatal(err)
	}
	mixed := filepath.Join(t.TempDir(), "mixed.jsonl")
	for _, l := range strings.SplitAfter(string(ob), "\n") {
		if strings.Contains(l, siemcheck.SealRecordType) {
			b = append(slices.Clone(b), l...)
		}
	}
	if err := os.WriteFile(mixed, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, []string{"audit", "check-siem", "--tenant", "contoso", "--keys", keys, mixed}, nil, nil)
	if r.code != 0 || !strings.Contains(r.stdout, "(1 seal line can't be checked: a key --keys does not hold, or another issuer)") {
		t.Fatalf("a seal of another key: exit %d, stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	b, _ = os.ReadFile(file)

	// A record line of the tenant with no place: no hash covers it, and
	// the report says so, at no entry.
	slipped := filepath.Join(t.TempDir(), "slipped.jsonl")
	if err := os.WriteFile(slipped, append(slices.Clone(b), `{"Id":"rec-x","LockboxTenant":"contoso"}`+"\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, []string{"audit", "check-siem", "--tenant", "contoso", "--keys", keys, slipped}, nil, nil)
	if r.code != exitChainBroken || !strings.HasPrefix(r.stdout, "SIEM copy of contoso's audit log: BROKEN (4 good records, entries ") ||
		!strings.Contains(r.stdout, "  problem: a record line of the tenant (record rec-x) carries no place") || strings.Contains(r.stdout, "  at:") {
		t.Fatalf("a line slipped in: exit %d, stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	gzLie := filepath.Join(t.TempDir(), "siem.jsonl.2.gz")
	if err := os.WriteFile(gzLie, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no files", []string{"--tenant", "contoso", "--keys", keys}, exitUsage, "name the SIEM's files to check"},
		{"no keys", []string{"--tenant", "contoso", file}, exitUsage, "--tenant and --keys are required"},
		{"keys not a JWKS", []string{"--tenant", "contoso", "--keys", file, file}, exitError, "not the JWKS GET /v1/keys serves"},
		{"a file missing", []string{"--tenant", "contoso", "--keys", keys, file + ".gone"}, exitError, "no such file"},
		{"a .gz file not compressed", []string{"--tenant", "contoso", "--keys", keys, gzLie}, exitError, "gzip: invalid header"},
		{"no record of the tenant", []string{"--tenant", "northwind", "--keys", keys, file}, exitError, `no line names tenant "northwind"`},
		{"no issuer", []string{"--tenant", "contoso", "--keys", keys, "--issuer", "", file}, exitUsage, "--issuer must name the seals' issuer"},
		{"another issuer", []string{"--tenant", "contoso", "--keys", keys, "--issuer", "lockbox-prod", file}, exitError, `issued by "lockbox", not "lockbox-prod"`},
	} {
		r := run(t, append([]string{"audit", "check-siem"}, c.args...), nil, nil)
		if r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("%s: exit %d, stderr %q; want %d, %q", c.name, r.code, r.stderr, c.code, c.msg)
		}
	}
}
