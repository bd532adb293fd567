package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
)

// setAnchor sets contoso's anchor after m, with its record, as retention
// would have after removing it.
func setAnchor(ctx context.Context, w *world, m redis.XMessage) {
	w.srv.Redis.Set(ctx, keys.AuditAnchor("contoso"), m.ID+" "+m.Values["h"].(string), 0)
	w.srv.Redis.Set(ctx, keys.AuditAnchorRecord("contoso"), m.Values["p"].(string)+"\n"+m.Values["r"].(string), 0)
}

// TestAuditAnchorJudgedByRetention: the server judges a chain's anchor by
// the LOCKBOX_AUDIT_RETENTION it runs with. The oldest records deleted in
// Redis and the anchor set after them, as retention would have, are
// reported broken when they were younger than the retention, dated by the
// CreationTime of the record the anchor keeps.
func TestAuditAnchorJudgedByRetention(t *testing.T) {
	w := start(t, "LOCKBOX_AUDIT_RETENTION", "28h")
	w.create("operator")
	ctx := context.Background()
	entries := w.srv.Redis.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()
	if len(entries) < 2 {
		t.Fatalf("contoso's log holds %d records, want its onboarding and the filing", len(entries))
	}
	first := entries[0]
	w.srv.Redis.XDel(ctx, keys.Audit("contoso"), first.ID)
	setAnchor(ctx, w, first)
	code, out, _ := w.ctl("admin", "audit", "verify", "--tenant", "contoso")
	if code != 4 || !strings.Contains(out, "BROKEN") || !strings.Contains(out, first.ID) || !strings.Contains(out, "(28h: LOCKBOX_AUDIT_RETENTION") {
		t.Fatalf("records of the last seconds deleted with the anchor set after them: exit %d\n%s", code, out)
	}
}

// TestAuditAnchorJudgedByShortestRetention: with retention turned off
// after it trimmed, LOCKBOX_AUDIT_RETENTION_SHORTEST is what anchors are
// judged by, not "off".
func TestAuditAnchorJudgedByShortestRetention(t *testing.T) {
	w := start(t, "LOCKBOX_AUDIT_RETENTION", "0", "LOCKBOX_AUDIT_RETENTION_SHORTEST", "28h")
	w.create("operator")
	ctx := context.Background()
	first := w.srv.Redis.XRange(ctx, keys.Audit("contoso"), "-", "+").Val()[0]
	w.srv.Redis.XDel(ctx, keys.Audit("contoso"), first.ID)
	setAnchor(ctx, w, first)
	code, out, _ := w.ctl("admin", "audit", "verify", "--tenant", "contoso")
	if code != 4 || !strings.Contains(out, "(28h: LOCKBOX_AUDIT_RETENTION") || strings.Contains(out, "retention is off") {
		t.Fatalf("an anchor of the last seconds, judged by the shortest retention: exit %d\n%s", code, out)
	}
}
