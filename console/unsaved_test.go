package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/tenants"
)

// unsavedRE finds the part of a page that shows a change the page did not
// save.
var unsavedRE = regexp.MustCompile(`(?s)<div class="unsaved" data-testid="unsaved">(.*?)</div>`)

// TestStaleFormKeepsTheChangeTyped: a settings or registry form saved
// after someone else changed what it shows saves nothing and shows what
// is stored now in the form, for its user to review and save again. What
// the user had typed is shown beside it, not saved and in no form control,
// to copy from. Before, it was gone: a list of notification addresses or
// domains typed into the form had to be typed again from memory.
func TestStaleFormKeepsTheChangeTyped(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	ctx := context.Background()

	t.Run("settings", func(t *testing.T) {
		b := e.signIn(contosoAdmin)
		opened := formRevision(t, b.get("/console/settings"))
		if _, err := e.ten.PutSettings(ctx, contosoApprover, "", "contoso", tenants.Settings{LockboxEnabled: true,
			NotificationAddresses: []string{"soc@contoso.example"}}); err != nil {
			t.Fatal(err)
		}
		typed := "secops@contoso.example\r\nnoc@contoso.example"
		r := b.post("/console/settings", b.form(url.Values{"revision": {opened}, "notification_addresses": {typed}}))
		if r.status != http.StatusPreconditionFailed {
			t.Fatalf("stale save: %s", r)
		}
		fields, _, _ := controls(t, r)
		if got := strings.TrimSpace(fields["notification_addresses"].text); got != "soc@contoso.example" {
			t.Errorf("the form holds %q, not the addresses stored now", got)
		}
		if _, on := fields["lockbox_enabled"].attrs["checked"]; !on {
			t.Errorf("the form's switch is not the one stored now: %v", fields["lockbox_enabled"].attrs)
		}
		m := unsavedRE.FindStringSubmatch(r.body)
		if m == nil {
			t.Fatalf("the page does not show the change typed:\n%s", r)
		}
		for _, want := range []string{"secops@contoso.example", "noc@contoso.example", "not ticked"} {
			if !strings.Contains(m[1], want) {
				t.Errorf("the change shown as not saved lacks %q: %s", want, m[1])
			}
		}
		if st, _ := e.ten.Lookup(ctx, "contoso"); !slices.Equal(st.NotificationAddresses, []string{"soc@contoso.example"}) {
			t.Errorf("the stale form saved: %+v", st)
		}
	})

	t.Run("registry entry", func(t *testing.T) {
		b := e.signIn(lara)
		opened := tenantFormRevision(t, b.get("/console/tenants/contoso"))
		before, err := e.ten.Get(ctx, "contoso")
		if err != nil {
			t.Fatal(err)
		}
		domains := append(slices.Clone(before.Domains), "contoso.com")
		if _, err := e.ten.UpdateTenant(ctx, lara, "", "contoso", tenants.TenantUpdate{Domains: &domains}); err != nil {
			t.Fatal(err)
		}
		r := b.post("/console/tenants/contoso", b.form(url.Values{"revision": {opened}, "display_name": {"Contoso Pharma"},
			"domains": {"contoso.example\r\ncontoso-pharma.example"}, "global_admins": {"gina@contoso.example"}}))
		if r.status != http.StatusPreconditionFailed {
			t.Fatalf("stale save: %s", r)
		}
		fields, _, _ := controls(t, r)
		if got := fields["display_name"].attrs["value"]; got != before.DisplayName {
			t.Errorf("the form's name is %q, not the one stored now", got)
		}
		if got := fields["domains"].text; strings.Contains(got, "pharma") || !strings.Contains(got, "contoso.com") {
			t.Errorf("the form's domains are %q, not the ones stored now", got)
		}
		m := unsavedRE.FindStringSubmatch(r.body)
		if m == nil {
			t.Fatalf("the page does not show the change typed:\n%s", r)
		}
		for _, want := range []string{"Contoso Pharma", "contoso-pharma.example", "gina@contoso.example"} {
			if !strings.Contains(m[1], want) {
				t.Errorf("the change shown as not saved lacks %q: %s", want, m[1])
			}
		}
		if got, _ := e.ten.Get(ctx, "contoso"); got.DisplayName != before.DisplayName {
			t.Errorf("the stale form saved: %+v", got)
		}
	})
}
