package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
)

// mailTo waits for an .eml file in dir addressed to `to` that contains
// every one of want, and returns it. The notification worker runs on its
// own poll interval in real time, so this polls with a deadline.
func mailTo(t *testing.T, dir, to string, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil || !strings.Contains(string(b), "\r\nTo: "+to+"\r\n") {
				continue
			}
			ok := true
			for _, s := range want {
				ok = ok && strings.Contains(string(b), s)
			}
			if ok {
				return string(b)
			}
		}
		if time.Now().After(deadline) {
			var all []string
			for _, f := range files {
				b, _ := os.ReadFile(f)
				all = append(all, string(b))
			}
			t.Fatalf("no e-mail to %s with %q in %s:\n%s", to, want, dir, strings.Join(all, "\n----\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var linkRE = regexp.MustCompile(`(?i)https?|://|www\.`)

// TestNotificationsReachEveryone runs the wiring of "lockbox serve" with
// the notification settings: managers hear of the new request, the
// tenant's global administrator (admin@contoso.example, its registry
// contact) and approver of the request awaiting them, the engineer of the
// decisions and, LOCKBOX_NOTIFY_EXPIRY_WARNING before the end, of the
// window closing. Tenant e-mails name no provider staff.
func TestNotificationsReachEveryone(t *testing.T) {
	w := start(t, "LOCKBOX_NOTIFY_MANAGER_ADDRESSES", "mary@provider.example,leads@provider.example",
		"LOCKBOX_NOTIFY_EXPIRY_WARNING", "20m")
	w.assignApprover()
	r := w.create("operator")
	for _, m := range []string{"mary@provider.example", "leads@provider.example"} {
		mail := mailTo(t, w.mail, m, r.ID, "awaits a support manager", "alice@provider.example filed",
			"Requested activities:    Get-Mailbox", "Requested duration:      2h\r\n")
		if linkRE.MatchString(mail) {
			t.Errorf("manager e-mail has a link:\n%s", mail)
		}
	}
	w.ok("manager", nil, "request", "approve", r.ID, "--comment", "case checked")
	for _, a := range []string{"admin@contoso.example", users["approver"].Subject} {
		mail := mailTo(t, w.mail, a, r.ID, "awaits your decision", "Requested activities:    Get-Mailbox")
		if strings.Contains(mail, "provider.example") || strings.Contains(mail, "alice") {
			t.Errorf("tenant e-mail names provider staff:\n%s", mail)
		}
	}
	mailTo(t, w.mail, "alice@provider.example", r.ID, "awaits the tenant's approvers", "mary@provider.example")
	w.ok("approver", nil, "request", "approve", r.ID)
	mailTo(t, w.mail, "alice@provider.example", r.ID, "was approved (", "Access ends:")

	// The worker looks for due warnings with the server's (fake) clock;
	// with the default of 15m it would not warn 20m before the end.
	w.clock.Advance(2*time.Hour - 20*time.Minute)
	mailTo(t, w.mail, "alice@provider.example", r.ID, "your access ends in 20m")
	if s := w.state("operator", r.ID); s != grants.StateApproved {
		t.Fatalf("state %s", s)
	}
}
