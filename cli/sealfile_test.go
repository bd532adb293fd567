package cli

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// verifyReply is the API's answer to a verification: intact or not, the
// seal it carries (through the entry sealedThrough), and how the chain
// compared with the seal sent (since, of the entry sinceThrough).
func verifyReply(ok bool, token, sealedThrough, since, sinceThrough string) map[string]reply {
	v := map[string]any{"tenant": "contoso", "records": 7, "ok": ok, "seal": "verified", "seal_token": token,
		"sealed_through": sealedThrough, "sealed_at": "2026-01-01T00:05:00Z", "seal_key_id": "k1"}
	if !ok {
		v["broken_at"], v["problem"] = "1767225600000-4", "the log no longer holds what Lockbox sealed at 2026-01-01T00:01:00Z in the seal you kept (since_seal): the records up to this one were changed and their hashes recomputed"
	}
	if since != "" {
		v["since_seal"], v["since_sealed_through"], v["since_sealed_at"] = since, sinceThrough, "2026-01-01T00:01:00Z"
	}
	return map[string]reply{"GET /v1/audit/verify": {200, mustJSON(v)}}
}

// sentSeal is the since_seal the verification r ran sent; "" for none.
func sentSeal(t *testing.T, r result) string {
	t.Helper()
	for _, c := range r.calls {
		if c.Path == "/v1/audit/verify" {
			q, err := url.ParseQuery(c.Query)
			if err != nil {
				t.Fatal(err)
			}
			return q.Get("since_seal")
		}
	}
	t.Fatalf("no verification was sent: %+v", r.calls)
	return ""
}

func fileHolds(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != want {
		t.Fatalf("%s holds %q (%v), want %q", path, b, err, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, %v; want mode 0600", path, fi.Mode(), err)
	}
}

// TestAuditVerifyKeepsTheSealInAFile is a scheduled job keeping the seal
// outside Redis: created after the first intact answer, sent as
// since_seal on the next run, replaced by the newer seal, and left as it
// was by a broken chain, by an older seal, and by a server that did not
// check it.
func TestAuditVerifyKeepsTheSealInAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "contoso.seal")
	args := []string{"audit", "verify", "--tenant", "contoso", "--seal-file", f}

	r := run(t, args, nil, verifyReply(true, "seal.one.sig", "1767225600000-4", "", ""))
	if r.code != 0 || sentSeal(t, r) != "" || !strings.Contains(r.stdout, "  saved:   the chain's seal through entry 1767225600000-4 in "+f) ||
		strings.Contains(r.stdout, "kept:") {
		t.Fatalf("the first run: exit %d, stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	fileHolds(t, f, "seal.one.sig\n")

	r = run(t, args, nil, verifyReply(true, "seal.two.sig", "1767225600000-9", "verified", "1767225600000-4"))
	if r.code != 0 || sentSeal(t, r) != "seal.one.sig" ||
		!strings.Contains(r.stdout, "  kept:    verified: the chain still holds what Lockbox sealed in the seal kept in "+f+" (made at 2026-01-01T00:01:00Z, through entry 1767225600000-4)\n") {
		t.Fatalf("the second run: exit %d, stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	fileHolds(t, f, "seal.two.sig\n")

	r = run(t, args, nil, verifyReply(false, "seal.forged.sig", "1767225600000-12", "broken", "1767225600000-9"))
	if r.code != exitChainBroken || sentSeal(t, r) != "seal.two.sig" || !strings.Contains(r.stdout, "  kept:    BROKEN: the log no longer holds") ||
		strings.Contains(r.stdout, "saved:") {
		t.Fatalf("a broken chain: exit %d, stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	fileHolds(t, f, "seal.two.sig\n")

	// The stored seal set back to an older one: the kept one stays.
	r = run(t, args, nil, verifyReply(true, "seal.one.sig", "1767225600000-4", "verified", "1767225600000-9"))
	if r.code != 0 || strings.Contains(r.stdout, "saved:") {
		t.Fatalf("an older stored seal: exit %d, stdout:\n%s", r.code, r.stdout)
	}
	fileHolds(t, f, "seal.two.sig\n")

	// A server that answers without having checked the kept seal.
	r = run(t, args, nil, verifyReply(true, "seal.three.sig", "1767225600000-12", "", ""))
	if r.code != exitError || !strings.Contains(r.stderr, "did not check the seal kept in "+f) {
		t.Fatalf("the kept seal not checked: exit %d, stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	fileHolds(t, f, "seal.two.sig\n")
}

// TestAuditVerifySealFileEmpty: an empty file is a job's first run, as a
// missing one is: nothing is sent, and the seal is kept.
func TestAuditVerifySealFileEmpty(t *testing.T) {
	f := filepath.Join(t.TempDir(), "contoso.seal")
	if err := os.WriteFile(f, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, []string{"audit", "verify", "--tenant", "contoso", "--seal-file", f}, nil, verifyReply(true, "seal.one.sig", "1767225600000-4", "", ""))
	if r.code != 0 || sentSeal(t, r) != "" {
		t.Fatalf("exit %d, stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	fileHolds(t, f, "seal.one.sig\n")
}

// TestAuditVerifySealFileErrors: a seal file that can't be read stops
// the command before anything is sent, one that can't be written fails
// it after the report; both exit 1 naming the file, which is left as it
// was.
func TestAuditVerifySealFileErrors(t *testing.T) {
	dir := t.TempDir()
	r := run(t, []string{"audit", "verify", "--tenant", "contoso", "--seal-file", dir}, nil, verifyReply(true, "seal.one.sig", "1767225600000-4", "", ""))
	if r.code != exitError || len(r.calls) != 0 || r.stderr != "lockboxctl: --seal-file "+dir+": is a directory\n" {
		t.Fatalf("an unreadable seal file: exit %d, %d calls, stderr %q", r.code, len(r.calls), r.stderr)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("the directory given changed: %v, %v", fi, err)
	}

	// A first run into a directory that does not exist: said before
	// anything is sent, not after a check that passed.
	missing := filepath.Join(dir, "no-such-dir", "contoso.seal")
	r = run(t, []string{"audit", "verify", "--tenant", "contoso", "--seal-file", missing}, nil, verifyReply(true, "seal.one.sig", "1767225600000-4", "", ""))
	if r.code != exitError || len(r.calls) != 0 || r.stderr != "lockboxctl: --seal-file "+missing+": its directory "+filepath.Dir(missing)+" does not exist: create it, so that the seal can be kept there\n" {
		t.Fatalf("a seal file in no directory: exit %d, %d calls, stderr %q", r.code, len(r.calls), r.stderr)
	}

	// A directory no file can be made in, not even by root (/proc): the
	// report, then that only keeping the seal failed.
	unwritable := "/proc/lockbox-test-contoso.seal"
	r = run(t, []string{"audit", "verify", "--tenant", "contoso", "--seal-file", unwritable}, nil, verifyReply(true, "seal.one.sig", "1767225600000-4", "", ""))
	if r.code != exitError || !strings.Contains(r.stdout, "intact") ||
		!strings.HasPrefix(r.stderr, "lockboxctl: the chain is intact, but its seal could not be kept: --seal-file "+unwritable+": ") {
		t.Fatalf("an unwritable seal file: exit %d, stdout:\n%s\nstderr: %q", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(unwritable); !os.IsNotExist(err) {
		t.Fatalf("the seal file was written: %v", err)
	}
}
