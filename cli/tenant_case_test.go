package cli

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestTenantUpdateGlobalAdminWhateverItsCase: against a real Lockbox,
// "tenant update --remove-global-admin" and "--add-global-admin" know a
// global administrator's address whatever its ASCII case, as the registry
// does: an entry that lists Gina@Contoso.example (typed so at onboarding)
// loses her to --remove-global-admin gina@contoso.example, instead of the
// command refusing her as no global administrator, and
// --add-global-admin IT@CONTOSO.EXAMPLE does not list it@contoso.example a
// second time.
func TestTenantUpdateGlobalAdminWhateverItsCase(t *testing.T) {
	addr, tokens := startLockbox(t, t.Cleanup)
	ctx := context.Background()
	c, err := client.New(addr, tokens["lockbox-admin"])
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{EnvAddr: addr, EnvToken: tokens["lockbox-admin"], EnvConfigDir: t.TempDir()}
	run := func(args ...string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := Run(ctx, append([]string{"tenant", "update", "contoso"}, args...), func(k string) string { return env[k] }, &stdout, &stderr); code != exitOK {
			t.Fatalf("%q: exit %d\nstdout: %s\nstderr: %s", args, code, stdout.String(), stderr.String())
		}
	}
	admins := func() []string {
		t.Helper()
		e, err := c.Tenant(ctx, "contoso")
		if err != nil {
			t.Fatal(err)
		}
		return e.GlobalAdmins
	}

	set := []string{"Gina@Contoso.example", "it@contoso.example"}
	if _, err := c.UpdateTenant(ctx, "contoso", wire.TenantUpdate{GlobalAdmins: &set}); err != nil {
		t.Fatal(err)
	}
	run("--remove-global-admin", "gina@contoso.example")
	if got := admins(); !slices.Equal(got, []string{"it@contoso.example"}) {
		t.Fatalf("global admins after removing gina@contoso.example = %q, want [it@contoso.example]", got)
	}
	run("--add-global-admin", "IT@CONTOSO.EXAMPLE")
	if got := admins(); !slices.Equal(got, []string{"it@contoso.example"}) {
		t.Fatalf("global admins after adding IT@CONTOSO.EXAMPLE = %q, want [it@contoso.example] alone", got)
	}
}
