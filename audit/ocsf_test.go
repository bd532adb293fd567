package audit

import (
	"encoding/json"
	"testing"

	"github.com/lockbox-oss/lockbox/audit/record"
)

func TestOCSFActivities(t *testing.T) {
	for method, want := range map[string]int{
		"GET": OCSFActivityRead, "HEAD": OCSFActivityRead, "POST": OCSFActivityCreate,
		"PUT": OCSFActivityUpdate, "PATCH": OCSFActivityUpdate, "DELETE": OCSFActivityDelete, "OPTIONS": OCSFActivityOther,
	} {
		e := OCSF(record.Record{RecordType: record.RecordTypeDataCenterSecurityCmdlet, UserType: record.UserTypeDcAdmin, LockboxMethod: method, Operation: "Op"})
		if e.ActivityID != want || e.TypeUID != 600300+want || e.ActivityName != ocsfActivityNames[want] {
			t.Errorf("%s: %d %d %q", method, e.ActivityID, e.TypeUID, e.ActivityName)
		}
	}
	// A control-plane record with a method is still "Other".
	if e := OCSF(record.Record{RecordType: record.RecordTypeExchangeAdmin, LockboxMethod: "DELETE", Operation: record.OpRevokeAccess}); e.ActivityID != OCSFActivityOther || e.API.Operation != record.OpRevokeAccess {
		t.Errorf("control plane: %+v", e)
	}
	if e := OCSF(record.Record{ResultStatus: "Failed"}); e.StatusID != 2 || e.Status != "Failure" {
		t.Errorf("failed: %+v", e)
	}
}

func TestOCSFUndecodableRecordIsKept(t *testing.T) {
	b, err := ocsfLine(`{"Id": 42`)
	if err != nil {
		t.Fatal(err)
	}
	var e OCSFEvent
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	if e.RawData != `{"Id": 42` || e.ClassUID != 6003 || e.StatusID != 0 {
		t.Fatalf("%s", b)
	}
}

// The policy revision of an operator action is no provider secret: the
// tenant's view and the SIEM's OCSF event keep it.
func TestPolicyRevisionIsShown(t *testing.T) {
	const rev = "3f2a9c0e5b7d41e6a8c9f0b1d2e3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1"
	r := record.Record{
		Operation: "Get-Mailbox", UserId: record.OperatorUserID, UserType: record.UserTypeDcAdmin, RecordType: record.RecordTypeDataCenterSecurityCmdlet,
		ClientIP: "192.0.2.10", ProviderUserId: "alice@provider.example", LockboxPolicyRevision: rev,
	}
	v := r.TenantView()
	if v.LockboxPolicyRevision != rev || v.ProviderUserId != "" {
		t.Errorf("TenantView = %+v: want the revision kept, the engineer removed", v)
	}
	if got := OCSF(r).Unmapped["LockboxPolicyRevision"]; got != rev {
		t.Errorf("OCSF unmapped LockboxPolicyRevision = %q", got)
	}
}
