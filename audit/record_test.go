package audit

import "testing"

// The policy revision of an operator action is no provider secret: the
// tenant's view and the SIEM's OCSF event keep it.
func TestPolicyRevisionIsShown(t *testing.T) {
	const rev = "3f2a9c0e5b7d41e6a8c9f0b1d2e3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1"
	r := Record{
		Operation: "Get-Mailbox", UserId: OperatorUserID, UserType: UserTypeDcAdmin,
		ClientIP: "192.0.2.10", ProviderUserId: "alice@provider.example", LockboxPolicyRevision: rev,
	}
	v := r.TenantView()
	if v.LockboxPolicyRevision != rev || v.ProviderUserId != "" || v.ClientIP != "" {
		t.Errorf("TenantView = %+v: want the revision kept, the engineer and their IP removed", v)
	}
	if got := OCSF(r).Unmapped["LockboxPolicyRevision"]; got != rev {
		t.Errorf("OCSF unmapped LockboxPolicyRevision = %q", got)
	}
}
