package cli

import (
	"strings"
	"testing"
)

// TestAuditVerifySaysWhatTheSealCovers: after the verdict, one line says
// how far the proxy's seal covers the chain and how many records the
// chain alone covers; a forged seal keeps the exit status of a broken
// chain, and a server that sends no seal state gets no line.
func TestAuditVerifySaysWhatTheSealCovers(t *testing.T) {
	for _, c := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"verified", `{"tenant":"contoso","records":9,"ok":true,"seal":"verified","sealed_through":"1767225600000-4","sealed_at":"2026-01-01T00:01:00Z","seal_key_id":"k1","unsealed_records":2}`, 0,
			"audit chain of contoso: intact, 9 records\n  sealed:  through entry 1767225600000-4, signed at 2026-01-01T00:01:00Z by key k1; 2 records after it covered by the hash chain alone\n"},
		{"none", `{"tenant":"contoso","records":1,"ok":true,"seal":"none","unsealed_records":1}`, 0,
			"  sealed:  none: the 1 record covered by the hash chain alone\n"},
		{"unverifiable", `{"tenant":"contoso","records":3,"ok":true,"seal":"unverifiable","seal_key_id":"old","unsealed_records":3}`, 0,
			"  sealed:  by key old, which the server no longer publishes: the seal can't be checked, the 3 records covered by the hash chain alone (keep retired public keys in LOCKBOX_PROXY_PUBLISHED_KEY_FILES)\n"},
		{"trimmed", `{"tenant":"contoso","records":3,"ok":true,"trimmed_through":"1767225600000-4","seal":"trimmed","unsealed_records":3}`, 0,
			"the chain is verified from the one after it\n  sealed:  retention removed the sealed record: the 3 records covered by the hash chain alone\n"},
		{"trimmed by an anchor without its record", `{"tenant":"contoso","records":3,"ok":true,"trimmed_through":"1767225600000-4","trimmed_unbound":true,"seal":"verified","sealed_through":"1767225600000-9","sealed_at":"2026-01-01T00:01:00Z","seal_key_id":"k1"}`, 0,
			"the chain is verified from the one after it\n  anchor:  without the record retention removed last (set before Lockbox kept it, or deleted): dated by its stream id alone, which whoever can write to Redis chooses; retention's next trim sets one with its record\n  sealed:  through entry 1767225600000-9"},
		{"forged", `{"tenant":"contoso","records":3,"ok":false,"problem":"the chain's seal is not Lockbox's (bad signature)","seal":"forged","seal_key_id":"k1","unsealed_records":3}`, 4,
			"  problem: the chain's seal is not Lockbox's (bad signature)\n  sealed:  FORGED: the seal is not Lockbox's\n"},
		{"rewritten", `{"tenant":"contoso","records":4,"ok":false,"broken_at":"1767225600000-4","problem":"the records up to this one are not those Lockbox sealed at 2026-01-01T00:01:00Z: they were changed and their hashes recomputed","seal":"verified","sealed_through":"1767225600000-4","sealed_at":"2026-01-01T00:01:00Z","seal_key_id":"k1","unsealed_records":0}`, 4,
			"BROKEN after 4 good records\n  at:      1767225600000-4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, []string{"audit", "verify", "--tenant", "contoso"}, nil, map[string]reply{"GET /v1/audit/verify": {200, c.body}})
			if r.code != c.code || !strings.Contains(r.stdout, c.want) {
				t.Fatalf("exit %d, stdout:\n%s\nwant exit %d and %q", r.code, r.stdout, c.code, c.want)
			}
		})
	}
	r := run(t, []string{"audit", "verify", "--tenant", "contoso"}, nil, map[string]reply{"GET /v1/audit/verify": {200, `{"tenant":"contoso","records":3,"ok":true}`}})
	if r.code != 0 || strings.Contains(r.stdout, "sealed:") {
		t.Fatalf("a server without seals: exit %d, stdout:\n%s", r.code, r.stdout)
	}
}
