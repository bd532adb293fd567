package config

import (
	"strings"
	"testing"
	"time"
)

// TestAuditSealInterval: a negative interval, or one under a second (a
// typo such as "1ns" would sign every chain without pause), is refused
// by its name; 0 turns sealing off, and a minute is the default.
func TestAuditSealInterval(t *testing.T) {
	for v, want := range map[string]string{
		"-1s": "LOCKBOX_AUDIT_SEAL_INTERVAL: must not be negative",
		"1ns": "LOCKBOX_AUDIT_SEAL_INTERVAL: must be at least 1s (or 0, to turn sealing off)",
		"1ms": "LOCKBOX_AUDIT_SEAL_INTERVAL: must be at least 1s",
	} {
		if _, err := Load(map[string]string{"LOCKBOX_AUDIT_SEAL_INTERVAL": v}); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("LOCKBOX_AUDIT_SEAL_INTERVAL=%s: %v, want %q", v, err, want)
		}
	}
	for v, want := range map[string]time.Duration{"": time.Minute, "0": 0, "1s": time.Second, "5m": 5 * time.Minute} {
		env := map[string]string{}
		if v != "" {
			env["LOCKBOX_AUDIT_SEAL_INTERVAL"] = v
		}
		c, err := Load(env)
		if err != nil {
			t.Errorf("LOCKBOX_AUDIT_SEAL_INTERVAL=%q: %v", v, err)
		} else if c.AuditSealInterval != want {
			t.Errorf("LOCKBOX_AUDIT_SEAL_INTERVAL=%q: %v, want %v", v, c.AuditSealInterval, want)
		}
	}
}
