package notify_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/devstore"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/notify"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestDevModeWritesMail runs the outbox on the embedded store of
// "lockbox dev" and checks the e-mails land as files.
func TestDevModeWritesMail(t *testing.T) {
	ctx := context.Background()
	ds, err := devstore.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	opts, err := redis.ParseURL(ds.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	ts := tenants.NewStore(rdb, log, c.Now)
	tenanttest.Onboard(t, ts, "contoso")
	if err := ts.AddApprover(ctx, globalAdmin.Principal, "203.0.113.1", "contoso", "adam@contoso.example"); err != nil {
		t.Fatal(err)
	}
	s, err := grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: ts, Catalog: cat, Now: c.Now, Outbox: notify.NewOutbox()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Create(ctx, operator(0), grants.CreateInput{Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "repair", Duration: grants.Duration(3600e9)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Act(ctx, r.ID, grants.ActionApprove, manager, ""); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "mail")
	w := newWorker(t, notify.Config{Redis: rdb, Now: c.Now, Consumer: "dev", DevDir: dir})
	drain(t, w)
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 3 { // the global admin, adam, and the requester
		t.Fatalf("files = %v", files)
	}
	var all string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all += string(b)
	}
	if !strings.Contains(all, "To: adam@contoso.example") || !strings.Contains(all, r.ID) || urlRE.MatchString(all) {
		t.Errorf("dev mail:\n%s", all)
	}
}
