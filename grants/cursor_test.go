package grants

import (
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/identity"
)

// A listing without the admin center's bounds (CreatedBefore,
// ExcludePending), as the API and lockboxctl page, keeps the cursors it
// had: one handed out before those bounds existed still continues, and a
// replica of either version accepts the other's during a rolling upgrade.
func TestCursorUnchangedWithoutNewBounds(t *testing.T) {
	p := identity.Principal{Subject: "mary", Roles: []identity.Role{identity.RoleSupportManager}}
	f := Filter{Tenant: "contoso", State: StateDenied, CreatedAfter: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	pos := position{score: 1740819600123, member: "0195c5a4-7d2a-7cc1-9d1e-3c2b1a0f9e8d"}
	const before = "cjE6MTc0MDgxOTYwMDEyMzowMTk1YzVhNC03ZDJhLTdjYzEtOWQxZS0zYzJiMWEwZjllOGQ6YmY2NjkwMjRiMWY3ZTRhOA"
	if got := scopeOf(p, f).encode(pos); got != before {
		t.Fatalf("cursor %s, was %s", got, before)
	}
	if got, newer, err := scopeOf(p, f).decode(before); err != nil || got != pos || newer {
		t.Fatalf("decode: %+v, newer %v, %v", got, newer, err)
	}
}
