package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/server"
)

// TestAuditAOFNeedsARedisThatConfirmsFsyncs: asking for fsynced audit
// records from a Redis that can't confirm them (WAITAOF needs Redis 7.2 with
// appendonly yes; the test's Redis runs without an append-only file) stops
// start-up with a message naming the setting, rather than refusing every
// call later.
func TestAuditAOFNeedsARedisThatConfirmsFsyncs(t *testing.T) {
	w := start(t)
	cfg, err := config.Load(map[string]string{
		"LOCKBOX_REDIS_URL": redistest.URL(t), "LOCKBOX_AUDIT_AOF": "true", "LOCKBOX_SERVE": "proxy",
		"LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:1", "LOCKBOX_PROXY_SIGNING_KEY_FILE": w.dir + "/grant.pem",
		"LOCKBOX_JWT_JWKS_FILE": w.dir + "/jwks.json",
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = server.New(context.Background(), cfg, server.Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "LOCKBOX_AUDIT_AOF: ") {
		t.Fatalf("err = %v, want a refusal naming LOCKBOX_AUDIT_AOF", err)
	}
}
