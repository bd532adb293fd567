package audit

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit/record"
)

func TestOCSFActivities(t *testing.T) {
	for method, want := range map[string]int{
		"GET": OCSFActivityRead, "HEAD": OCSFActivityRead, "POST": OCSFActivityCreate,
		"PUT": OCSFActivityUpdate, "PATCH": OCSFActivityUpdate, "DELETE": OCSFActivityDelete, "OPTIONS": OCSFActivityOther,
	} {
		e := OCSF(record.Record{RecordType: record.RecordTypeDataCenterSecurityCmdlet, UserType: record.UserTypeDcAdmin, LockboxMethod: method, Operation: "Op"})
		name := ocsfActivityNames[want]
		if want == OCSFActivityOther {
			name = method
		}
		if e.ActivityID != want || e.TypeUID != 600300+want || e.ActivityName != name {
			t.Errorf("%s: %d %d %q", method, e.ActivityID, e.TypeUID, e.ActivityName)
		}
	}
	// A control-plane record's activity comes from its operation, never
	// from a method it holds; one whose operation this version does not
	// know (a newer Lockbox's) is "Other".
	if e := OCSF(record.Record{RecordType: record.RecordTypeExchangeAdmin, LockboxMethod: "DELETE", Operation: record.OpNewRequest}); e.ActivityID != OCSFActivityCreate || e.API.Operation != record.OpNewRequest {
		t.Errorf("control plane: %+v", e)
	}
	if e := OCSF(record.Record{RecordType: record.RecordTypeExchangeAdmin, LockboxMethod: "DELETE", Operation: "Set-SomethingNewer"}); e.ActivityID != OCSFActivityOther || e.TypeUID != 600399 {
		t.Errorf("unknown control-plane operation: %+v", e)
	}
	if e := OCSF(record.Record{ResultStatus: "Failed"}); e.StatusID != 2 || e.Status != "Failure" {
		t.Errorf("failed: %+v", e)
	}
}

func TestOCSFUndecodableRecordIsKept(t *testing.T) {
	b, err := ocsfLine(`{"Id": 42`, nil)
	if err != nil {
		t.Fatal(err)
	}
	var e OCSFEvent
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	if e.RawData != `{"Id": 42` || e.ClassUID != 6003 || e.StatusID != 0 || e.Unmapped != nil {
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

// TestOCSFRequiredAttributes: every event has what OCSF requires of an API
// Activity event, so a SIEM that validates events (a data lake checking
// them against the schema) takes each one: the base attributes, actor with
// a user that has a name or uid (the user object's "at least one of
// account, name, uid"), api.operation, and src_endpoint with one of its
// identifying attributes (the network endpoint's "at least one of ip,
// uid, name, hostname, svc_name, ..."). Lockbox's own actions (an expiry,
// the end of a window) have no client IP, and a record that does not
// decode has neither a user nor an operation, nor has one that decodes
// but names neither (no Lockbox writes one, but the stream takes any
// bytes). Its time is milliseconds since the epoch, never before it.
func TestOCSFRequiredAttributes(t *testing.T) {
	now := record.Time{Time: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	cases := map[string]string{}
	for name, r := range map[string]record.Record{
		"operator action": {Id: "1", CreationTime: now, Operation: "Get-Mailbox", UserId: record.OperatorUserID, UserType: record.UserTypeDcAdmin,
			RecordType: record.RecordTypeDataCenterSecurityCmdlet, ClientIP: "192.0.2.10", LockboxMethod: "GET", ProviderUserId: "alice@provider.example"},
		"tenant decision": {Id: "2", CreationTime: now, Operation: record.OpTenantDecision, UserId: "carol@contoso.example",
			RecordType: record.RecordTypeExchangeAdmin, ClientIP: "198.51.100.7", ApprovalDecision: "Approve"},
		"expiry by Lockbox": {Id: "3", CreationTime: now, Operation: record.OpExpireRequest, UserId: record.SystemUserID,
			UserType: record.UserTypeSystem, RecordType: record.RecordTypeExchangeAdmin},
	} {
		cases[name] = string(r.AppendJSON(nil))
	}
	cases["undecodable"] = `{"Id": 42`
	cases["names nothing"] = `{"Id":"4","RecordType":1}`
	cases["legacy, names nothing"] = `{"Id":"5"}`
	for name, raw := range cases {
		b, err := ocsfLine(raw, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, problem := range ocsfMissing(b) {
			t.Errorf("%s: %s: %s", name, problem, b)
		}
	}
}

// ocsfMissing lists what b, one OCSF line, lacks of what the schema (1.1)
// requires of an API Activity event: the base event's activity_id,
// category_uid, class_uid, type_uid, time (not before the epoch),
// severity_id and metadata (version, product.vendor_name), and the class's
// actor (a user with a name or uid: the user object's "at least one of
// account, name, uid"), api (its operation) and src_endpoint (one of its
// identifying attributes: the network endpoint's "at least one of ip,
// uid, name, hostname, svc_name, ..."). It also checks that the numbers
// and names agree: type_uid is class_uid*100 + activity_id, and the names
// are the class's and activity's.
func ocsfMissing(b []byte) []string {
	var e map[string]any
	if err := json.Unmarshal(b, &e); err != nil {
		return []string{err.Error()}
	}
	get := func(path ...string) any {
		var v any = e
		for _, k := range path {
			m, _ := v.(map[string]any)
			v = m[k]
		}
		return v
	}
	var missing []string
	for _, k := range []string{"activity_id", "category_uid", "class_uid", "type_uid", "time", "severity_id"} {
		if _, ok := get(k).(float64); !ok {
			missing = append(missing, fmt.Sprintf("%s = %v, want a number", k, get(k)))
		}
	}
	if ms, _ := get("time").(float64); ms < 0 {
		missing = append(missing, fmt.Sprintf("time %v is before the epoch", ms))
	}
	for _, path := range [][]string{{"metadata", "version"}, {"metadata", "product", "vendor_name"}, {"api", "operation"}} {
		if s, _ := get(path...).(string); s == "" {
			missing = append(missing, fmt.Sprintf("%v is empty", path))
		}
	}
	if get("actor", "user", "name") == nil && get("actor", "user", "uid") == nil {
		missing = append(missing, "actor.user has neither name nor uid")
	}
	src, _ := get("src_endpoint").(map[string]any)
	if !slices.ContainsFunc([]string{"ip", "uid", "name", "hostname", "svc_name", "instance_uid", "interface_uid", "interface_name"},
		func(k string) bool { s, _ := src[k].(string); return s != "" }) {
		missing = append(missing, "src_endpoint identifies nothing")
	}
	class, _ := get("class_uid").(float64)
	activity, _ := get("activity_id").(float64)
	if typ, _ := get("type_uid").(float64); typ != class*100+activity {
		missing = append(missing, fmt.Sprintf("type_uid %v is not class_uid %v * 100 + activity_id %v", typ, class, activity))
	}
	if class != 6003 || get("class_name") != "API Activity" || get("category_uid") != float64(6) || get("category_name") != "Application Activity" {
		missing = append(missing, fmt.Sprintf("class %v %v, category %v %v: want API Activity (6003) in Application Activity (6)",
			class, get("class_name"), get("category_uid"), get("category_name")))
	}
	// 99's activity_name is the source's own word for the activity, not
	// the caption (OCSF's validator warns of "Other"); type_name is
	// type_uid's caption whatever the activity.
	name := apiActivityNames[int(activity)]
	if activity == 99 {
		if n, _ := get("activity_name").(string); n == "" || n == name {
			missing = append(missing, fmt.Sprintf("activity 99 named %q: want what the record says it did", n))
		}
	} else if get("activity_name") != name {
		missing = append(missing, fmt.Sprintf("activity %v named %v: want %q", activity, get("activity_name"), name))
	}
	if get("type_name") != "API Activity: "+name {
		missing = append(missing, fmt.Sprintf("type %v named %v: want %q", get("type_uid"), get("type_name"), "API Activity: "+name))
	}
	return missing
}

// apiActivityNames are OCSF 1.1's captions of the API Activity class's
// activity_id values.
var apiActivityNames = map[int]string{0: "Unknown", 1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}

// TestOCSFControlPlaneActivities: every operation the control plane
// records maps to the API Activity that says what it did to its object, so
// a SIEM can tell a request filed from one decided, and an approver
// assigned from one removed, by activity_id as by the operation: filing a
// request, onboarding a tenant and assigning an approver create what they
// name; decisions, the ends of requests, settings, registry changes and a
// re-driven notification update theirs (a request stays, in its final
// state, in the tenant's history); removing an approver and offboarding a
// tenant delete the assignment and end the tenant's service, and request
// retention deletes the request. None is
// "Other", and each event is one a validating SIEM takes. The records are
// as the control plane writes them: a tenant's user, a provider label, or
// Lockbox itself with no client address.
func TestOCSFControlPlaneActivities(t *testing.T) {
	want := map[string]int{
		record.OpNewRequest:          OCSFActivityCreate,
		record.OpManagerDecision:     OCSFActivityUpdate,
		record.OpTenantDecision:      OCSFActivityUpdate,
		record.OpCancelRequest:       OCSFActivityUpdate,
		record.OpRevokeAccess:        OCSFActivityUpdate,
		record.OpExpireRequest:       OCSFActivityUpdate,
		record.OpCompleteAccess:      OCSFActivityUpdate,
		record.OpRemoveRequest:       OCSFActivityDelete,
		record.OpSetSettings:         OCSFActivityUpdate,
		record.OpAddApprover:         OCSFActivityCreate,
		record.OpRemoveApprover:      OCSFActivityDelete,
		record.OpOnboardTenant:       OCSFActivityCreate,
		record.OpUpdateTenant:        OCSFActivityUpdate,
		record.OpOffboardTenant:      OCSFActivityDelete,
		record.OpRedriveNotification: OCSFActivityUpdate,
	}
	now := record.Time{Time: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	for _, op := range record.Operations {
		t.Run(op, func(t *testing.T) {
			w, ok := want[op]
			if !ok {
				t.Fatalf("%s has no expected activity: say what it does to its object", op)
			}
			r := record.Record{Id: "1", CreationTime: now, Operation: op, RecordType: record.RecordTypeExchangeAdmin,
				ResultStatus: record.ResultSucceeded, LockboxTenant: "contoso", Workload: record.WorkloadLockbox, ObjectId: "contoso"}
			switch op {
			case record.OpExpireRequest, record.OpCompleteAccess, record.OpRemoveRequest:
				r.UserId, r.UserType = record.SystemUserID, record.UserTypeSystem
			case record.OpNewRequest, record.OpCancelRequest:
				r.UserId, r.UserType, r.ClientIP, r.ProviderUserId = record.OperatorUserID, record.UserTypeDcAdmin, "192.0.2.10", "alice@provider.example"
			case record.OpManagerDecision, record.OpOnboardTenant, record.OpUpdateTenant, record.OpOffboardTenant, record.OpRedriveNotification:
				r.UserId, r.UserType, r.ClientIP, r.ProviderUserId = record.ProviderUserID, record.UserTypeDcAdmin, "192.0.2.11", "mary@provider.example"
			default:
				r.UserId, r.UserType, r.ClientIP = "carol@contoso.example", record.UserTypeAdmin, "198.51.100.7"
			}
			r.UserKey, r.Version = r.UserId, record.SchemaVersion
			b, err := ocsfLine(string(r.AppendJSON(nil)), nil)
			if err != nil {
				t.Fatal(err)
			}
			var e OCSFEvent
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			if e.ActivityID != w || e.TypeUID != e.ClassUID*100+w {
				t.Errorf("activity %d (%s), type %d; want %d (%s), %d: %s", e.ActivityID, e.ActivityName, e.TypeUID, w, apiActivityNames[w], e.ClassUID*100+w, b)
			}
			if e.StatusID != 1 || e.Status != "Success" || e.API.Operation != op {
				t.Errorf("status %d %q, operation %q: %s", e.StatusID, e.Status, e.API.Operation, b)
			}
			for _, problem := range ocsfMissing(b) {
				t.Error(problem)
			}
		})
	}
	for op := range want {
		if !slices.Contains(record.Operations, op) {
			t.Errorf("%s is expected but not in record.Operations", op)
		}
	}
}

// TestOCSFStatusFollowsResultStatus: the event's status is what the
// record's ResultStatus says, and no more. Lockbox writes Succeeded on
// every record; a record that names no result (the stream takes any
// bytes) says nothing of how the action went, so its event is Unknown
// rather than a Success the SIEM would count as one. True and False,
// which Microsoft's Exchange admin records write for Succeeded and
// Failed, are Success and Failure; any other value is 99, named by
// itself as OCSF asks of a 99 (its validator warns of one named Other).
func TestOCSFStatusFollowsResultStatus(t *testing.T) {
	for _, tc := range []struct {
		result string
		id     int
		status string
		detail string
	}{
		{record.ResultSucceeded, 1, "Success", ""},
		{"Failed", 2, "Failure", ""},
		// Exchange admin records say whether the cmdlet succeeded as
		// True or False (the unified audit log's common schema).
		{"True", 1, "Success", ""},
		{"False", 2, "Failure", ""},
		// 99 "Other": "See the status attribute, which contains a data
		// source specific value"; status_detail keeps it too, where
		// earlier versions put it.
		{"PartiallySucceeded", 99, "PartiallySucceeded", "PartiallySucceeded"},
		{"", 0, "Unknown", ""},
	} {
		r := record.Record{Id: "1", Operation: record.OpNewRequest, RecordType: record.RecordTypeExchangeAdmin, UserId: record.OperatorUserID, ResultStatus: tc.result}
		b, err := ocsfLine(string(r.AppendJSON(nil)), nil)
		if err != nil {
			t.Fatal(err)
		}
		var e OCSFEvent
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		if e.StatusID != tc.id || e.Status != tc.status || e.StatusDetail != tc.detail {
			t.Errorf("ResultStatus %q: status %d %q %q; want %d %q %q", tc.result, e.StatusID, e.Status, e.StatusDetail, tc.id, tc.status, tc.detail)
		}
	}
}

// TestOCSFKeepsParametersAndChanges: a cmdlet record's Parameters and a
// change's ModifiedProperties have no OCSF home either, so they go under
// unmapped with their audit log names and shape: a SIEM reading OCSF
// learns that Customer Lockbox was turned off, and when a late sweep's
// expiry was due, as one reading the records does.
func TestOCSFKeepsParametersAndChanges(t *testing.T) {
	now := record.Time{Time: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	for name, r := range map[string]record.Record{
		"settings change": {Id: "1", CreationTime: now, Operation: record.OpSetSettings, UserId: "gina@contoso.example", UserType: record.UserTypeAdmin,
			RecordType: record.RecordTypeExchangeAdmin, ClientIP: "198.51.100.7", Workload: record.WorkloadLockbox, ObjectId: "contoso",
			Parameters:         []record.Parameter{{Name: "Identity", Value: "contoso"}, {Name: "LockboxEnabled", Value: "false"}},
			ModifiedProperties: []record.ModifiedProperty{{Name: "LockboxEnabled", OldValue: "true", NewValue: "false"}}},
		"late expiry": {Id: "2", CreationTime: now, Operation: record.OpExpireRequest, UserId: record.SystemUserID, UserType: record.UserTypeSystem,
			RecordType: record.RecordTypeExchangeAdmin, Workload: "exchange", ObjectId: "req", LockboxRequestId: "req",
			Parameters: []record.Parameter{{Name: "Identity", Value: "req"}, {Name: "ExpiredAt", Value: "2026-03-01T06:00:00"}}},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := ocsfLine(string(r.AppendJSON(nil)), nil)
			if err != nil {
				t.Fatal(err)
			}
			var e struct {
				Unmapped struct {
					Parameters         []record.Parameter        `json:"Parameters"`
					ModifiedProperties []record.ModifiedProperty `json:"ModifiedProperties"`
				} `json:"unmapped"`
			}
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("%v: %s", err, b)
			}
			if !slices.Equal(e.Unmapped.Parameters, r.Parameters) || !slices.Equal(e.Unmapped.ModifiedProperties, r.ModifiedProperties) {
				t.Errorf("unmapped parameters %+v, changes %+v; want %+v, %+v: %s",
					e.Unmapped.Parameters, e.Unmapped.ModifiedProperties, r.Parameters, r.ModifiedProperties, b)
			}
		})
	}
}

// TestOCSFKeepsUserKeyAndVersion: UserKey and Version have no OCSF home.
// Lockbox writes UserKey = UserId and Version 1, which the event's actor
// and metadata already say; a record that holds other values (a newer
// Lockbox's, during a rolling upgrade, with no field this version does
// not know, so no raw_data either) keeps them under unmapped.
func TestOCSFKeepsUserKeyAndVersion(t *testing.T) {
	r := record.Record{Id: "1", Operation: record.OpNewRequest, UserId: record.OperatorUserID, UserKey: "10037ffe8d1a2b3c",
		UserType: record.UserTypeDcAdmin, RecordType: record.RecordTypeExchangeAdmin, Version: 2}
	e := OCSF(r)
	if e.Unmapped["UserKey"] != "10037ffe8d1a2b3c" || e.Unmapped["Version"] != "2" {
		t.Errorf("unmapped %v: want UserKey and Version kept", e.Unmapped)
	}
	r.UserKey, r.Version = r.UserId, record.SchemaVersion
	e = OCSF(r)
	if _, ok := e.Unmapped["UserKey"]; ok {
		t.Errorf("unmapped %v: UserKey = UserId is the actor's name already", e.Unmapped)
	}
	if _, ok := e.Unmapped["Version"]; ok {
		t.Errorf("unmapped %v: Version 1 is every record's", e.Unmapped)
	}
}

// TestOCSFActivityNamesFollowTheSchema checks every activity an event can
// carry, and its type, against OCSF 1.x's API Activity (6003): activity_id
// 1-4 are named by their captions (Create, Read, Update, Delete) and
// type_name by type_uid's caption, "API Activity: " and the activity's.
// 99 is "Other": "The event activity is not mapped. See the activity_name
// attribute, which contains a data source specific value", so its
// activity_name is what the record says it did (the method an operator
// action was called with, the operation of a control-plane record this
// version does not know), and a name of "Other" is what OCSF's validator
// warns of (attribute_enum_sibling_suspicious_other); its type_name is
// still type_uid 600399's caption, "API Activity: Other". A record that
// says nothing of what it did (it can't be read, or names no method or
// operation) is 0, "Unknown": "The event activity is unknown".
func TestOCSFActivityNamesFollowTheSchema(t *testing.T) {
	operator := func(method string) string {
		r := record.Record{Id: "1", Operation: "Get-Mailbox", UserId: record.OperatorUserID, UserType: record.UserTypeDcAdmin,
			RecordType: record.RecordTypeDataCenterSecurityCmdlet, ClientIP: "192.0.2.10", LockboxMethod: method}
		return string(r.AppendJSON(nil))
	}
	control := func(op string) string {
		r := record.Record{Id: "2", Operation: op, UserId: "carol@contoso.example", UserType: record.UserTypeAdmin,
			RecordType: record.RecordTypeExchangeAdmin, ClientIP: "198.51.100.7"}
		return string(r.AppendJSON(nil))
	}
	for _, tc := range []struct {
		name     string
		raw      string
		id       int
		activity string
		typeUID  int
		typeName string
	}{
		{"operator GET", operator("GET"), 2, "Read", 600302, "API Activity: Read"},
		{"operator HEAD", operator("HEAD"), 2, "Read", 600302, "API Activity: Read"},
		{"operator POST", operator("POST"), 1, "Create", 600301, "API Activity: Create"},
		{"operator PUT", operator("PUT"), 3, "Update", 600303, "API Activity: Update"},
		{"operator PATCH", operator("PATCH"), 3, "Update", 600303, "API Activity: Update"},
		{"operator DELETE", operator("DELETE"), 4, "Delete", 600304, "API Activity: Delete"},
		{"operator OPTIONS", operator("OPTIONS"), 99, "OPTIONS", 600399, "API Activity: Other"},
		{"operator without a method", operator(""), 0, "Unknown", 600300, "API Activity: Unknown"},
		{"request filed", control(record.OpNewRequest), 1, "Create", 600301, "API Activity: Create"},
		{"tenant decision", control(record.OpTenantDecision), 3, "Update", 600303, "API Activity: Update"},
		{"approver removed", control(record.OpRemoveApprover), 4, "Delete", 600304, "API Activity: Delete"},
		{"a newer replica's operation", control("Set-SomethingNewer"), 99, "Set-SomethingNewer", 600399, "API Activity: Other"},
		{"no operation", `{"Id":"4","RecordType":1}`, 0, "Unknown", 600300, "API Activity: Unknown"},
		{"undecodable", `{"Id": 42`, 0, "Unknown", 600300, "API Activity: Unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ocsfLine(tc.raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			var e OCSFEvent
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			if e.ActivityID != tc.id || e.ActivityName != tc.activity || e.TypeUID != tc.typeUID || e.TypeName != tc.typeName {
				t.Errorf("activity %d %q, type %d %q; want %d %q, %d %q",
					e.ActivityID, e.ActivityName, e.TypeUID, e.TypeName, tc.id, tc.activity, tc.typeUID, tc.typeName)
			}
			for _, problem := range ocsfMissing(b) {
				t.Error(problem)
			}
		})
	}
}
