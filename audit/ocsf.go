package audit

import (
	"encoding/json"
	"strconv"

	"github.com/lockbox-oss/lockbox/audit/record"
)

// OCSF (Open Cybersecurity Schema Framework) rendering of audit records for
// SIEMs that ingest OCSF. Every record becomes an API Activity event (class
// 6003, category 6 "Application Activity"):
//
//   - operator actions through the proxy (RecordType 10,
//     DataCenterSecurityCmdlet) map their HTTP method to the activity: GET/HEAD → Read, POST → Create, PUT/PATCH →
//     Update, DELETE → Delete; their method, path and query string are also
//     the event's http_request, where a SIEM looks for what was called;
//   - control-plane records map their operation to what it did to the
//     object it names (ocsfControlActivities): filing a request,
//     onboarding a tenant and assigning an approver Create; decisions, a
//     request's end, settings, registry changes and a re-driven
//     notification Update; removing an approver, offboarding a tenant and
//     request retention deleting a request Delete. The operation, in
//     api.operation, still says which.
//
// Each is an API Activity rather than, say, an IAM Entity Management or
// User Access Management event: every control-plane record is a call on
// Lockbox's API (or Lockbox's own sweep ending a request), the class's
// required api, actor and src_endpoint are what the record holds, and one
// class keeps a SIEM's queries on class_uid 6003 finding every record.
// A control-plane operation this version does not know (a newer
// Lockbox's, during a rolling upgrade), or a method an operator action
// was called with that none of those is, is activity 99 "Other", named
// (activity_name) by the operation or the method, as the schema asks of
// 99: "See the activity_name attribute, which contains a data source
// specific value". A record that names neither (one that can't be read)
// is 0 "Unknown"; type_name is always type_uid's caption, "API Activity:
// Other" or "API Activity: Unknown" for those.
//
// Fields without an OCSF home (tenant, workload, decision, comment, a
// cmdlet's Parameters, a change's ModifiedProperties, ...) go under
// "unmapped" with their audit log names; UserKey and Version only when
// they are not what Lockbox writes (UserId, 1).
const (
	OCSFVersion         = "1.1.0"
	ocsfProduct         = "Lockbox"
	ocsfClassAPI        = 6003
	ocsfCategoryApp     = 6
	OCSFActivityUnknown = 0
	OCSFActivityCreate  = 1
	OCSFActivityRead    = 2
	OCSFActivityUpdate  = 3
	OCSFActivityDelete  = 4
	OCSFActivityOther   = 99
)

// ocsfControlActivities is the activity of each control-plane operation
// (record.Operations). A request keeps its history when it is decided,
// canceled, revoked, expired or completed, so each of those Updates it.
// Request retention deleting an ended request, history and all, Deletes
// it: the request is gone from every view.
// Offboarding leaves the tenant's registry entry, marked offboarded, and
// its audit log readable, but ends the tenant's service (no request,
// decision or change is taken any more), as Remove- says: Delete.
var ocsfControlActivities = map[string]int{
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

// ocsfActivityNames are the API Activity class's captions of its
// activity_id values; type_name is "API Activity: " and one of them.
var ocsfActivityNames = map[int]string{
	OCSFActivityUnknown: "Unknown",
	OCSFActivityCreate:  "Create",
	OCSFActivityRead:    "Read",
	OCSFActivityUpdate:  "Update",
	OCSFActivityDelete:  "Delete",
	OCSFActivityOther:   "Other",
}

// OCSFBase is what every OCSF event Lockbox writes opens with: its
// class, activity and type, when it happened and how severe it is.
type OCSFBase struct {
	ActivityID   int    `json:"activity_id"`
	ActivityName string `json:"activity_name"`
	CategoryUID  int    `json:"category_uid"`
	CategoryName string `json:"category_name"`
	ClassUID     int    `json:"class_uid"`
	ClassName    string `json:"class_name"`
	TypeUID      int    `json:"type_uid"`
	TypeName     string `json:"type_name"`
	// Time is when it happened, in milliseconds since the epoch: a
	// record's CreationTime, when a seal was made.
	Time       int64  `json:"time"`
	SeverityID int    `json:"severity_id"`
	Severity   string `json:"severity"`
}

// OCSFEvent is the OCSF API Activity event of one record.
type OCSFEvent struct {
	OCSFBase
	StatusID     int    `json:"status_id"`
	Status       string `json:"status"`
	StatusDetail string `json:"status_detail,omitempty"`
	Message      string `json:"message,omitempty"`

	Metadata    OCSFMetadata `json:"metadata"`
	Actor       OCSFActor    `json:"actor"`
	SrcEndpoint OCSFEndpoint `json:"src_endpoint"`
	API         OCSFAPI      `json:"api"`
	// HTTPRequest is an operator action's call as the upstream received
	// it: method, path within the service and query string. Absent for
	// control-plane records, which are no proxied call.
	HTTPRequest *OCSFHTTPRequest `json:"http_request,omitempty"`
	// Unmapped holds strings, and the record's Parameters and
	// ModifiedProperties in their audit log shape.
	Unmapped map[string]any `json:"unmapped,omitempty"`
	// RawData carries the stored record when it could not be decoded, or
	// holds fields this version does not know (a newer Lockbox wrote it),
	// so nothing is dropped on the way to the SIEM.
	RawData string `json:"raw_data,omitempty"`
}

// OCSFMetadata is the event's metadata object.
type OCSFMetadata struct {
	Version string      `json:"version"`
	Product OCSFProduct `json:"product"`
	// UID is the audit record's Id.
	UID string `json:"uid,omitempty"`
}

// OCSFProduct names the product that logged the event.
type OCSFProduct struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
}

// OCSFActor is who acted.
type OCSFActor struct {
	User OCSFUser `json:"user"`
}

// OCSFUser is the acting user: Name is the record's UserId ("Microsoft
// Operator" for operator actions), UID the provider staff member behind it.
type OCSFUser struct {
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// OCSFEndpoint is a network endpoint. OCSF wants at least one of its
// identifying attributes: the client's IP, or, for what Lockbox did itself
// (an expiry, the end of a window), the service name "Lockbox".
type OCSFEndpoint struct {
	IP      string `json:"ip,omitempty"`
	SvcName string `json:"svc_name,omitempty"`
}

// OCSFAPI describes the API call.
type OCSFAPI struct {
	Operation string          `json:"operation"`
	Service   *OCSFAPIService `json:"service,omitempty"`
	Request   *OCSFAPIRequest `json:"request,omitempty"`
}

// OCSFAPIService is the service called (the record's Workload).
type OCSFAPIService struct {
	Name string `json:"name"`
}

// OCSFAPIRequest identifies the request: the lockbox request id.
type OCSFAPIRequest struct {
	UID string `json:"uid"`
}

// OCSFHTTPRequest is the event's http_request object.
type OCSFHTTPRequest struct {
	HTTPMethod string  `json:"http_method,omitempty"`
	URL        OCSFURL `json:"url"`
}

// OCSFURL is the http_request's url object: the canonical path within the
// service and the query string (LockboxQuery: at most its first 2048
// bytes, unmapped's LockboxQueryLength giving the whole length when it was
// cut).
type OCSFURL struct {
	Path        string `json:"path,omitempty"`
	QueryString string `json:"query_string,omitempty"`
}

// OCSF renders r as an OCSF API Activity event.
func OCSF(r record.Record) OCSFEvent {
	// What the record says it did: an operator action's method, a
	// control-plane record's operation.
	source := r.Operation
	activity, known := ocsfControlActivities[source]
	if r.Operator() {
		source = r.LockboxMethod
		activity, known = ocsfActivity(source)
	}
	name := ocsfActivityNames[activity]
	switch {
	case known:
	case source == "":
		activity, name = OCSFActivityUnknown, ocsfActivityNames[OCSFActivityUnknown]
	default:
		// OCSF's validator warns of a 99 named "Other": the name is
		// where a SIEM learns what the activity was.
		activity, name = OCSFActivityOther, source
	}
	e := OCSFEvent{
		OCSFBase: OCSFBase{
			ActivityID:   activity,
			ActivityName: name,
			CategoryUID:  ocsfCategoryApp,
			CategoryName: "Application Activity",
			ClassUID:     ocsfClassAPI,
			ClassName:    "API Activity",
			TypeUID:      ocsfClassAPI*100 + activity,
			TypeName:     "API Activity: " + ocsfActivityNames[activity],
			Time:         r.CreationTime.UnixMilli(),
			SeverityID:   1,
			Severity:     "Informational",
		},
		Metadata: OCSFMetadata{
			Version: OCSFVersion,
			Product: OCSFProduct{Name: ocsfProduct, VendorName: ocsfProduct},
			UID:     r.Id,
		},
		Actor:       OCSFActor{User: OCSFUser{Name: r.UserId, UID: r.ProviderUserId}},
		SrcEndpoint: OCSFEndpoint{IP: r.ClientIP},
		API:         OCSFAPI{Operation: r.Operation},
	}
	// Every record Lockbox writes names its time, operation and user;
	// one that does not (the stream takes any bytes) still gets what the
	// schema requires, as an undecodable record does, rather than a time
	// 2000 years before the epoch and empty names a validating SIEM
	// refuses.
	if r.CreationTime.IsZero() {
		e.Time = 0
	}
	if e.API.Operation == "" {
		e.API.Operation = "Unknown"
	}
	if e.Actor.User.Name == "" && e.Actor.User.UID == "" {
		e.Actor.User.Name = "Unknown"
	}
	if r.ClientIP == "" {
		// Lockbox's own actions come from no client; an empty
		// src_endpoint, which the schema requires to name something,
		// would make a validating SIEM refuse the event.
		e.SrcEndpoint.SvcName = ocsfProduct
	}
	// Lockbox writes Succeeded on every record (Log.Prepare); one without
	// a ResultStatus did not come from it and says nothing of the
	// outcome, which a Success would claim to the SIEM. The unified audit
	// log's common schema has Succeeded, PartiallySucceeded or Failed,
	// and True or False (whether the cmdlet succeeded) for Exchange admin
	// records. Another value is 99, which OCSF has status name by the
	// source's own word ("See the status attribute, which contains a data
	// source specific value"); status_detail keeps it as well, where
	// earlier versions put it.
	switch r.ResultStatus {
	case "":
		e.StatusID, e.Status = 0, "Unknown"
	case record.ResultSucceeded, "True":
		e.StatusID, e.Status = 1, "Success"
	case "Failed", "False":
		e.StatusID, e.Status = 2, "Failure"
	default:
		e.StatusID, e.Status, e.StatusDetail = 99, r.ResultStatus, r.ResultStatus
	}
	if r.Workload != "" {
		e.API.Service = &OCSFAPIService{Name: r.Workload}
	}
	if r.LockboxRequestId != "" {
		e.API.Request = &OCSFAPIRequest{UID: r.LockboxRequestId}
	}
	if r.Operator() && (r.LockboxMethod != "" || r.LockboxPath != "" || r.LockboxQuery != "") {
		e.HTTPRequest = &OCSFHTTPRequest{HTTPMethod: r.LockboxMethod, URL: OCSFURL{Path: r.LockboxPath, QueryString: r.LockboxQuery}}
	}
	u := map[string]any{}
	for k, v := range map[string]string{
		"OrganizationId":        r.OrganizationId,
		"LockboxTenant":         r.LockboxTenant,
		"Workload":              r.Workload,
		"ApprovalDecision":      r.ApprovalDecision,
		"Comment":               r.Comment,
		"ObjectId":              r.ObjectId,
		"LockboxApprover":       r.LockboxApprover,
		"ProviderApproverId":    r.ProviderApproverId,
		"LockboxMethod":         r.LockboxMethod,
		"LockboxPath":           r.LockboxPath,
		"LockboxQuery":          r.LockboxQuery,
		"LockboxPolicyRevision": r.LockboxPolicyRevision,
	} {
		if v != "" {
			u[k] = v
		}
	}
	// The schema's integers, as the record writes them.
	if r.RecordType != 0 {
		u["RecordType"] = strconv.Itoa(int(r.RecordType))
		u["UserType"] = strconv.Itoa(int(r.UserType))
	}
	// Lockbox writes UserKey = UserId and Version 1, which the actor and
	// the schema say already; other values (a newer Lockbox's) are kept.
	// No Version at all (a record that does not decode) says nothing.
	if r.UserKey != r.UserId {
		u["UserKey"] = r.UserKey
	}
	if r.Version != 0 && r.Version != record.SchemaVersion {
		u["Version"] = strconv.Itoa(r.Version)
	}
	if r.LockboxQueryLength != 0 {
		u["LockboxQueryLength"] = strconv.Itoa(r.LockboxQueryLength)
	}
	if r.LockboxApprovalTime != nil {
		u["LockboxApprovalTime"] = r.LockboxApprovalTime.UTC().Format(record.TimeLayout)
	}
	// What a cmdlet was asked (a request's reason and duration, the
	// deadline a late sweep's expiry was due at) and what a change changed
	// (Customer Lockbox turned off): a SIEM reading OCSF must learn them
	// as one reading the records does.
	if len(r.Parameters) > 0 {
		u["Parameters"] = r.Parameters
	}
	if len(r.ModifiedProperties) > 0 {
		u["ModifiedProperties"] = r.ModifiedProperties
	}
	if len(u) > 0 {
		e.Unmapped = u
	}
	return e
}

// ocsfActivity is the activity of an operator action called with method,
// and whether method is one of those mapped.
func ocsfActivity(method string) (int, bool) {
	switch method {
	case "GET", "HEAD":
		return OCSFActivityRead, true
	case "POST":
		return OCSFActivityCreate, true
	case "PUT", "PATCH":
		return OCSFActivityUpdate, true
	case "DELETE":
		return OCSFActivityDelete, true
	}
	return OCSFActivityOther, false
}

// ocsfLine renders a stored record's JSON as one OCSF JSON line. A record
// that does not decode is still forwarded, as an "Other" event carrying
// the stored bytes in raw_data. So is a record that holds fields this
// version does not know (a newer Lockbox wrote it, during a rolling
// upgrade): its event maps what this version knows and carries the stored
// bytes in raw_data, where the SIEM finds the rest.
//
// Only those carry raw_data: for a record this version knows, the event
// holds every field already, and the copy would double each line.
//
// complete, when not nil, completes the decoded record as a search reads
// it (a legacy record's tenant GUID: Log.completeLegacy); its error is
// returned, and no line: an event written without what it could not read
// would miss it for ever, while the record, left pending, is retried.
func ocsfLine(raw string, complete func(*record.Record) error) ([]byte, error) {
	r, newer, err := record.UnmarshalStored(raw)
	if err != nil {
		e := OCSF(record.Record{})
		e.Time = 0
		e.StatusID, e.Status, e.StatusDetail = 0, "Unknown", "undecodable audit record"
		// Who and what are in raw_data, unread; the schema still wants a
		// user and an operation named.
		e.Actor.User.Name, e.API.Operation = "Unknown", "Unknown"
		e.RawData = raw
		return json.Marshal(e)
	}
	if complete != nil {
		if err := complete(&r); err != nil {
			return nil, err
		}
	}
	e := OCSF(r)
	if newer {
		e.RawData = raw
	}
	return json.Marshal(e)
}
