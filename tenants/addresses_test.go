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

// TestAddressesNameAMailDomain: the provider's mail relay delivers to
// whatever domain an address names, from inside the provider's network. A
// domain that is an IP address ("soc@[10.0.0.5]", "soc@169.254.169.254")
// or a single label that the relay's resolver completes with its own search
// domains ("soc@localhost", "soc@redis") would have it connect to a host
// the tenant picks among the provider's own; so would a name under a
// special-use or never-delegated top-level domain, which names hosts of
// the network resolving it (relay.localhost is loopback, metadata.google.
// internal the cloud's metadata service, *.svc.cluster.local the
// provider's Kubernetes services): those were taken. Such an address is
// refused where it is given, in both lists, with the reason; a domain with
// a dot under a public top-level domain, an A-label one included, is taken.
func TestAddressesNameAMailDomain(t *testing.T) {
	s, _ := newStore(t)
	s.SetGuard(noGrants{})
	ctx := context.Background()

	for _, bad := range []string{"soc@[127.0.0.1]", "soc@[10.0.0.5]", "soc@169.254.169.254", "soc@10.0.0.5",
		"soc@127.1", "soc@0x7f.0x1", "soc@localhost", "soc@redis",
		"soc@relay.localhost", "soc@localhost.localdomain", "soc@metadata.google.internal", "soc@redis.lockbox.svc.cluster.local",
		"soc@printer.LOCAL", "soc@router.home.arpa", "soc@1.0.0.10.in-addr.arpa", "soc@nas.lan", "soc@dc.corp", "soc@x.onion"} {
		_, err := s.PutSettings(ctx, admin, "", "contoso", tenants.Settings{LockboxEnabled: true,
			NotificationAddresses: []string{"sec@contoso.example", bad}})
		if !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), "domain") {
			t.Errorf("notification address %q: %v, want it refused for its domain", bad, err)
		}
		admins := []string{"it@contoso.example", bad}
		_, err = s.UpdateTenant(ctx, lara, "", "contoso", tenants.TenantUpdate{GlobalAdmins: &admins})
		var fe *fault.Error
		if !errors.As(err, &fe) || !errors.Is(err, fault.ErrInvalid) || fe.Field != "global_admins" || !strings.Contains(err.Error(), "domain") {
			t.Errorf("global admin %q: %v, want it refused for its domain", bad, err)
		}
	}
	if st, err := s.Lookup(ctx, "contoso"); err != nil || len(st.NotificationAddresses) != 0 {
		t.Fatalf("settings after the refusals: %+v, %v", st, err)
	}
	good := []string{"sec@contoso.example", "soc@mail.contoso.example", "it@xn--bcher-kva.example", "ops@c-1.example",
		"soc@internal.contoso.com", "soc@local.example.org"}
	st, err := s.PutSettings(ctx, admin, "", "contoso", tenants.Settings{LockboxEnabled: true, NotificationAddresses: good})
	if err != nil || !slices.Equal(st.NotificationAddresses, good) {
		t.Fatalf("addresses with mail domains: %+v, %v", st, err)
	}
}
