package tenants_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestAddressesOnceWhateverTheCase: a global administrator's address, or a
// notification address, listed twice in spellings that differ only in
// ASCII case is one person (as an approver's id is, and as notifications
// address them): the registry entry and the settings keep it once, in the
// first spelling given, so "add gina@contoso.example" to an entry that
// lists Gina@Contoso.example does not list her twice. (An address outside
// ASCII, a Kelvin sign for a k say, is refused: TestAddressesInASCII.)
func TestAddressesOnceWhateverTheCase(t *testing.T) {
	s, _ := newStore(t)
	s.SetGuard(noGrants{})
	ctx := context.Background()

	admins := []string{"Gina@Contoso.example", "it@contoso.example", "gina@contoso.example", "IT@CONTOSO.EXAMPLE", "kim@contoso.example"}
	got, err := s.UpdateTenant(ctx, lara, "", "contoso", tenants.TenantUpdate{GlobalAdmins: &admins})
	want := []string{"Gina@Contoso.example", "it@contoso.example", "kim@contoso.example"}
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

// TestAddressesInASCII: Lockbox mails a tenant's notification addresses
// and global administrators without SMTPUTF8, so an address with a
// character outside ASCII (jörg@contoso.example) could be refused for good
// by a real mail server, its mail ending in the dead-letter stream. Such an
// address is refused where it is given, with the reason, in both lists; an
// internationalized domain in its xn-- form is taken.
func TestAddressesInASCII(t *testing.T) {
	s, _ := newStore(t)
	s.SetGuard(noGrants{})
	ctx := context.Background()

	for _, bad := range []string{"jörg@contoso.example", "sec@bücher.example", "\u212Aim@contoso.example"} {
		_, err := s.PutSettings(ctx, admin, "", "contoso", tenants.Settings{LockboxEnabled: true,
			NotificationAddresses: []string{"sec@contoso.example", bad}})
		if !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), "ASCII") {
			t.Errorf("notification address %q: %v, want it refused as not ASCII", bad, err)
		}
		admins := []string{"it@contoso.example", bad}
		_, err = s.UpdateTenant(ctx, lara, "", "contoso", tenants.TenantUpdate{GlobalAdmins: &admins})
		var fe *fault.Error
		if !errors.As(err, &fe) || !errors.Is(err, fault.ErrInvalid) || fe.Field != "global_admins" || !strings.Contains(err.Error(), "ASCII") {
			t.Errorf("global admin %q: %v, want it refused as not ASCII", bad, err)
		}
	}
	if st, err := s.Lookup(ctx, "contoso"); err != nil || slices.ContainsFunc(st.NotificationAddresses, func(a string) bool { return strings.ContainsFunc(a, func(r rune) bool { return r > 0x7f }) }) {
		t.Fatalf("settings after the refusals: %+v, %v", st, err)
	}
	st, err := s.PutSettings(ctx, admin, "", "contoso", tenants.Settings{LockboxEnabled: true,
		NotificationAddresses: []string{"sec@xn--bcher-kva.example"}})
	if err != nil || !slices.Equal(st.NotificationAddresses, []string{"sec@xn--bcher-kva.example"}) {
		t.Fatalf("an A-label domain: %+v, %v", st, err)
	}
}
