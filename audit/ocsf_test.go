package audit

import (
	"encoding/json"
	"testing"
)

func TestOCSFActivities(t *testing.T) {
	for method, want := range map[string]int{
		"GET": OCSFActivityRead, "HEAD": OCSFActivityRead, "POST": OCSFActivityCreate,
		"PUT": OCSFActivityUpdate, "PATCH": OCSFActivityUpdate, "DELETE": OCSFActivityDelete, "OPTIONS": OCSFActivityOther,
	} {
		e := OCSF(Record{RecordType: RecordTypeDataCenterSecurityCmdlet, UserType: UserTypeDcAdmin, LockboxMethod: method, Operation: "Op"})
		if e.ActivityID != want || e.TypeUID != 600300+want || e.ActivityName != ocsfActivityNames[want] {
			t.Errorf("%s: %d %d %q", method, e.ActivityID, e.TypeUID, e.ActivityName)
		}
	}
	// A control-plane record with a method is still "Other".
	if e := OCSF(Record{RecordType: RecordTypeExchangeAdmin, LockboxMethod: "DELETE", Operation: OpRevokeAccess}); e.ActivityID != OCSFActivityOther || e.API.Operation != OpRevokeAccess {
		t.Errorf("control plane: %+v", e)
	}
	if e := OCSF(Record{ResultStatus: "Failed"}); e.StatusID != 2 || e.Status != "Failure" {
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
