package e2e

import (
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
)

// TestServeComponents: LOCKBOX_SERVE splits one binary into the sidecar
// (the proxy alone: no API, no notification delivery, which belongs to the
// control plane with its SMTP settings) and the control plane (API and
// jobs, no proxy and so no upstream or grant signing key).
func TestServeComponents(t *testing.T) {
	t.Run("sidecar", func(t *testing.T) {
		w := start(t, "LOCKBOX_SERVE", "proxy")
		if w.srv.APIAddr() != "" {
			t.Errorf("the API listens at %s in a proxy-only process", w.srv.APIAddr())
		}
		if w.srv.Notifier != nil {
			t.Error("a proxy-only process delivers notifications")
		}
		if code, reason := w.get("operator", "/exchange/tenants/contoso/mailboxes"); code != 403 || reason != "no_grant" {
			t.Errorf("proxy without a grant: %d %s", code, reason)
		}
	})
	t.Run("control plane", func(t *testing.T) {
		w := start(t, "LOCKBOX_SERVE", "api,jobs", "LOCKBOX_UPSTREAMS", "", "LOCKBOX_PROXY_SIGNING_KEY_FILE", "")
		if w.srv.ProxyAddr() != "" || w.srv.Proxy != nil {
			t.Errorf("the proxy runs at %q in an api,jobs process", w.srv.ProxyAddr())
		}
		if w.srv.Notifier == nil {
			t.Error("the control plane does not deliver notifications")
		}
		r := w.create("operator")
		if got := w.state("manager", r.ID); got != grants.StatePendingManager {
			t.Errorf("state through the control plane's API: %s", got)
		}
	})
}
