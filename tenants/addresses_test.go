package tenants_test

import (
	"context"
	"slices"
	"testing"

	"github.com/lockbox-oss/lockbox/tenants"
)

// TestAddressesOnceWhateverTheCase: a global administrator's address, or a
// notification address, listed twice in spellings that differ only in
// ASCII case is one person (as an approver's id is, and as notifications
// address them): the registry entry and the settings keep it once, in the
// first spelling given, so "add gina@contoso.example" to an entry that
// lists Gina@Contoso.example does not list her twice. Other bytes are not
// folded: a Kelvin sign is not a k.
func TestAddressesOnceWhateverTheCase(t *testing.T) {
	s, _ := newStore(t)
	s.SetGuard(noGrants{})
	ctx := context.Background()

	admins := []string{"Gina@Contoso.example", "it@contoso.example", "gina@contoso.example", "IT@CONTOSO.EXAMPLE", "\u212Aim@contoso.example", "kim@contoso.example"}
	got, err := s.UpdateTenant(ctx, lara, "", "contoso", tenants.TenantUpdate{GlobalAdmins: &admins})
	want := []string{"Gina@Contoso.example", "it@contoso.example", "\u212Aim@contoso.example", "kim@contoso.example"}
	if err != nil || !slices.Equal(got.GlobalAdmins, want) {
		t.Fatalf("global admins = %q, %v; want %q", got.GlobalAdmins, err, want)
	}
	if e, err := s.Get(ctx, "contoso"); err != nil || !slices.Equal(e.GlobalAdmins, want) {
		t.Fatalf("stored global admins = %q, %v; want %q", e.GlobalAdmins, err, want)
	}
	// Sending the list as it is stored, with one in another case added,
	// changes nothing.
	again := append(slices.Clone(want), "GINA@contoso.example")
	if got, err := s.UpdateTenantIf(ctx, lara, "", "contoso", tenants.TenantUpdate{GlobalAdmins: &again}, got.Revision); err != nil ||
		!slices.Equal(got.GlobalAdmins, want) {
		t.Fatalf("global admins after adding one in another case = %q, %v; want %q", got.GlobalAdmins, err, want)
	}

	st, err := s.PutSettings(ctx, admin, "", "contoso", tenants.Settings{LockboxEnabled: true,
		NotificationAddresses: []string{"SOC@contoso.example", "soc@Contoso.Example", "sec@contoso.example"}})
	if wantAddrs := []string{"SOC@contoso.example", "sec@contoso.example"}; err != nil || !slices.Equal(st.NotificationAddresses, wantAddrs) {
		t.Fatalf("notification addresses = %q, %v; want %q", st.NotificationAddresses, err, wantAddrs)
	}
}
