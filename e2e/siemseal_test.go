package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/chaintest"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestSealLinesInTheSIEMCatchARewrite: with the replica's own sealer and
// SIEM forwarder, every seal of contoso's chain reaches the SIEM file, and
// a seal line taken from it shows a rewrite of Redis that the stored seal
// vouches for once deleted and made again. Sealing runs on its real
// interval (1 s, the shortest), so the test waits for it.
func TestSealLinesInTheSIEMCatchARewrite(t *testing.T) {
	w := start(t, "LOCKBOX_AUDIT_SEAL_INTERVAL", "1s")
	w.create("operator")
	// The first seal that covers the filing: one may come before it.
	entries, err := w.srv.Redis.XRange(context.Background(), keys.Audit("contoso"), "-", "+").Result()
	if err != nil || len(entries) < 2 {
		t.Fatalf("contoso's log: %d entries, %v; want the onboarding and the filing", len(entries), err)
	}
	first := w.sealLine(t, entries[1].ID, "")
	// The SIEM's copy checks offline, with the keys GET /v1/keys serves.
	jwks := w.sealKeys(t)
	if code, out, errs := w.ctl("admin", "audit", "check-siem", "--tenant", "contoso", "--keys", jwks, w.siem); code != 0 ||
		!strings.Contains(out, "intact") || !strings.Contains(out, "from the tenant's first record") || !strings.Contains(out, "sealed:  through entry") {
		t.Fatalf("the SIEM's copy before the rewrite: exit %d, want intact and sealed\n%s%s", code, out, errs)
	}

	// Whoever can write to Redis edits the filing (the record after the
	// onboarding), recomputes the chain and deletes the stored seal; the
	// next record has the chain sealed again.
	chaintest.Rewrite(t, w.srv.Redis, "contoso", 1, func(r string) string {
		return strings.Replace(r, "mailbox will not open", "routine check", 1)
	})
	if err = w.srv.Redis.Del(context.Background(), keys.AuditSeal("contoso")).Err(); err != nil {
		t.Fatal(err)
	}
	w.create("operator2")
	w.sealLine(t, first.SealedThrough, first.SealToken)

	if code, out, errs := w.ctl("admin", "audit", "verify", "--tenant", "contoso"); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("with the stored seal alone: exit %d, want the rewrite vouched for\n%s%s", code, out, errs)
	}
	// The seal kept as its token, or as the whole line the SIEM holds.
	for name, seal := range map[string]string{"kept.seal": first.SealToken, "kept-line.seal": first.Line} {
		kept := filepath.Join(w.dir, name)
		if err := os.WriteFile(kept, []byte(seal+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errs := w.ctl("admin", "audit", "verify", "--tenant", "contoso", "--seal-file", kept)
		if code != 4 || !strings.Contains(out, "BROKEN") || !strings.Contains(out, first.SealedThrough) {
			t.Fatalf("with the SIEM's first seal in %s: exit %d, want 4, the chain broken at or before %s\n%s%s", name, code, first.SealedThrough, out, errs)
		}
	}
	// The SIEM holds the filing as it was. Rewritten by deleting and
	// filling the stream again, the log went to the SIEM again too, the
	// filing as rewritten beside the one the SIEM had.
	if code, out, errs := w.ctl("admin", "audit", "check-siem", "--tenant", "contoso", "--keys", jwks, w.siem); code != 4 ||
		!strings.Contains(out, "BROKEN after 1 good records") || !strings.Contains(out, "two different lines for entry "+entries[1].ID) {
		t.Fatalf("the SIEM's copy after the rewrite: exit %d, want 4, two versions of the filing\n%s%s", code, out, errs)
	}
}

// sealKeys writes the JWKS w's API serves at GET /v1/keys to a file, and
// returns its path.
func (w *world) sealKeys(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(w.addr + "/v1/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/keys: %d, %v", resp.StatusCode, err)
	}
	path := filepath.Join(w.dir, "keys.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sealLine waits for a seal line of contoso in w's SIEM file that seals
// entry through or a later one, other than the one carrying token not, and
// returns the first, with the line itself.
func (w *world) sealLine(t *testing.T, through, not string) (seal struct{ SealedThrough, SealToken, Line string }) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(w.siem)
		for _, l := range strings.Split(string(b), "\n") {
			var s struct{ RecordType, LockboxTenant, SealedThrough, SealToken string }
			if json.Unmarshal([]byte(l), &s) != nil || s.RecordType != "LockboxAuditSeal" || s.LockboxTenant != "contoso" ||
				s.SealToken == not || streamIDBefore(s.SealedThrough, through) {
				continue // a record (its RecordType a number), or another seal
			}
			seal.SealedThrough, seal.SealToken, seal.Line = s.SealedThrough, s.SealToken, l
			return seal
		}
		if time.Now().After(deadline) {
			t.Fatalf("no seal of contoso in the SIEM file after 20 s:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// streamIDBefore reports whether stream id a comes before b.
func streamIDBefore(a, b string) bool {
	num := func(id string) (ms, seq uint64) {
		m, q, _ := strings.Cut(id, "-")
		ms, _ = strconv.ParseUint(m, 10, 64)
		seq, _ = strconv.ParseUint(q, 10, 64)
		return ms, seq
	}
	ams, aseq := num(a)
	bms, bseq := num(b)
	return ams < bms || (ams == bms && aseq < bseq)
}
