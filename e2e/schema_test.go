package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/notify"
)

// The Office 365 Management Activity API common schema, as a SIEM that
// parses the unified audit log reads it: each field's JSON type and, where
// the schema has one, its allowed values. A record must carry every field
// of the table (Workload, ResultStatus and ObjectId are optional in the
// schema; Lockbox always writes them, and a SIEM reads them when present).
var (
	guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	// Edm.Date as Microsoft emits it: UTC, no zone ("2015-06-29T20:03:19").
	dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$`)

	commonSchema = []struct {
		field string
		check func(any) error
	}{
		{"Id", guid},
		{"RecordType", integer(1, 10)}, // the AuditLogRecordType values Lockbox writes: ExchangeAdmin, DataCenterSecurityCmdlet
		{"CreationTime", date},
		{"Operation", nonEmpty},
		{"OrganizationId", guid},
		{"UserType", integer(0, 1, 2, 3, 4, 5, 6, 7, 8)},
		{"UserKey", nonEmpty},
		{"Version", integer(1)},
		{"Workload", nonEmpty},
		{"ResultStatus", oneOf("Succeeded", "PartiallySucceeded", "Failed")},
		{"ObjectId", nonEmpty},
		{"UserId", nonEmpty},
		{"ClientIP", str},
	}
)

func str(v any) error {
	if _, ok := v.(string); !ok {
		return fmt.Errorf("%v (%T) is not a string", v, v)
	}
	return nil
}

func nonEmpty(v any) error {
	if s, ok := v.(string); !ok || s == "" {
		return fmt.Errorf("%#v is not a non-empty string", v)
	}
	return nil
}

func guid(v any) error {
	if s, ok := v.(string); !ok || !guidRE.MatchString(s) {
		return fmt.Errorf("%#v is not a GUID", v)
	}
	return nil
}

func date(v any) error {
	s, ok := v.(string)
	if !ok || !dateRE.MatchString(s) {
		return fmt.Errorf("%#v is not an Edm.Date such as 2015-06-29T20:03:19", v)
	}
	if _, err := time.Parse("2006-01-02T15:04:05", s); err != nil {
		return err
	}
	return nil
}

func oneOf(allowed ...string) func(any) error {
	return func(v any) error {
		if s, ok := v.(string); !ok || !slices.Contains(allowed, s) {
			return fmt.Errorf("%#v is not one of %v", v, allowed)
		}
		return nil
	}
}

// integer checks a JSON number that is an Int32 among allowed.
func integer(allowed ...int) func(any) error {
	return func(v any) error {
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) || f < math.MinInt32 || f > math.MaxInt32 {
			return fmt.Errorf("%#v (%T) is not an integer", v, v)
		}
		if !slices.Contains(allowed, int(f)) {
			return fmt.Errorf("%v is not one of %v", f, allowed)
		}
		return nil
	}
}

// nameValues checks an array of objects whose fields are all strings.
func nameValues(v any, fields ...string) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("%#v is not an array", v)
	}
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return fmt.Errorf("item %d is not an object", i)
		}
		for _, f := range fields {
			if err := str(m[f]); err != nil {
				return fmt.Errorf("item %d: %s: %w", i, f, err)
			}
		}
	}
	return nil
}

// checkCommonSchema returns what is wrong with one record's JSON, parsed
// the way a SIEM does (no Lockbox types): the common schema's fields and
// types, the Exchange admin schema's Parameters and ModifiedProperties,
// and the values Lockbox promises for its users and record types.
func checkCommonSchema(rec map[string]any, orgID string, tenantUsers map[string]int) []string {
	var problems []string
	for _, f := range commonSchema {
		v, ok := rec[f.field]
		if !ok {
			problems = append(problems, f.field+" is missing")
			continue
		}
		if err := f.check(v); err != nil {
			problems = append(problems, f.field+": "+err.Error())
		}
	}
	if rec["OrganizationId"] != orgID {
		problems = append(problems, fmt.Sprintf("OrganizationId %v is not the tenant's GUID %s", rec["OrganizationId"], orgID))
	}
	if rec["UserKey"] != rec["UserId"] {
		problems = append(problems, fmt.Sprintf("UserKey %v is not UserId %v", rec["UserKey"], rec["UserId"]))
	}
	op, _ := rec["Operation"].(string)
	operator := !slices.Contains(record.Operations, op)
	wantType := 1.0
	if operator {
		wantType = 10
	}
	if rec["RecordType"] != wantType {
		problems = append(problems, fmt.Sprintf("RecordType %v, want %v", rec["RecordType"], wantType))
	}
	if operator {
		if rec["UserId"] != record.OperatorUserID || rec["ClientIP"] == "" || !strings.HasPrefix(fmt.Sprint(rec["ObjectId"]), "exchange/tenants/") {
			problems = append(problems, "an operator action must be Microsoft Operator's, with the call's address and resource")
		}
	} else if err := nameValues(rec["Parameters"], "Name", "Value"); err != nil {
		problems = append(problems, "Parameters of a cmdlet record: "+err.Error())
	}
	if mp, ok := rec["ModifiedProperties"]; ok {
		if err := nameValues(mp, "Name", "OldValue", "NewValue"); err != nil {
			problems = append(problems, "ModifiedProperties: "+err.Error())
		}
	}
	wantUser := map[string]int{record.OperatorUserID: 3, record.ProviderUserID: 3, record.SystemUserID: 4}
	for u, ut := range tenantUsers {
		wantUser[u] = ut
	}
	if ut, ok := wantUser[fmt.Sprint(rec["UserId"])]; !ok {
		problems = append(problems, fmt.Sprintf("UserId %v is no user of this test", rec["UserId"]))
	} else if rec["UserType"] != float64(ut) {
		problems = append(problems, fmt.Sprintf("UserType %v of %v, want %d", rec["UserType"], rec["UserId"], ut))
	}
	return problems
}

// TestAuditRecordsFollowTheCommonSchema produces one record of every
// operation, and an operator action, through the real code paths (the API,
// the proxy, the sweeper's clock, request retention) against a real Redis, and checks every
// record against the common schema as a SIEM reads it: as stored (what the
// SIEM stream forwards), in the provider's and the tenant's search, and in
// both exports.
func TestAuditRecordsFollowTheCommonSchema(t *testing.T) {
	w := start(t)
	ctx := context.Background()
	admin, approver := users["admin"].Subject, users["approver"].Subject
	mustOK := func(user, method, path string, body any) []byte {
		t.Helper()
		status, _, b := w.api(user, method, path, body)
		if status/100 != 2 {
			t.Fatalf("%s %s as %s: %d %s", method, path, user, status, b)
		}
		return b
	}

	// The registry and the tenant's configuration.
	mustOK("lockbox-admin", "PATCH", "/v1/tenants/contoso", map[string]any{"display_name": "Contoso Pharmaceuticals"})
	mustOK("admin", "PUT", "/v1/tenants/contoso/approvers/"+approver, nil)
	mustOK("admin", "PUT", "/v1/tenants/contoso/approvers/olga@contoso.example", nil)
	mustOK("admin", "DELETE", "/v1/tenants/contoso/approvers/olga@contoso.example", nil)
	mustOK("admin", "PUT", "/v1/tenants/contoso/settings", map[string]any{"lockbox_enabled": true, "notification_addresses": []string{"soc@contoso.example"}})

	// Filed, approved by both sides, used through the proxy, revoked.
	r := w.create("operator")
	w.ok("manager", nil, "request", "approve", r.ID, "--comment", "case checked")
	w.ok("approver", nil, "request", "approve", r.ID, "--comment", "go ahead")
	if status, code := w.get("operator", "/exchange/tenants/contoso/mailboxes"); status != 200 {
		t.Fatalf("operator call: %d %s", status, code)
	}
	w.ok("approver", nil, "request", "revoke", r.ID, "--comment", "done")
	// Canceled.
	r = w.create("operator")
	w.ok("operator", nil, "request", "cancel", r.ID)
	// Expired at the tenant.
	r = w.create("operator")
	w.ok("manager", nil, "request", "approve", r.ID)
	w.clock.Advance(grants.DecisionWindow)
	if s := w.state("admin", r.ID); s != grants.StateExpired {
		t.Fatalf("state %s, want expired", s)
	}
	// Approved by a global admin, then its window ends.
	r = w.create("operator")
	w.ok("manager", nil, "request", "approve", r.ID)
	w.ok("admin", nil, "request", "approve", r.ID)
	w.clock.Advance(2 * time.Hour)
	if s := w.state("admin", r.ID); s != grants.StateCompleted {
		t.Fatalf("state %s, want completed", s)
	}
	// Request retention deletes the revoked and the canceled requests,
	// which ended 14 hours ago, longer than its span here; the expired
	// one (2 hours ago) and the completed one stay.
	if n, _, err := w.srv.Requests.DeleteEnded(ctx, grants.DecisionWindow); err != nil || n != 2 {
		t.Fatalf("request retention deleted %d, %v; want the revoked and the canceled requests", n, err)
	}

	// A dead letter of the last request, re-driven by the provider's
	// operator (lockbox notify redrive).
	letter, err := w.srv.Redis.XAdd(ctx, &redis.XAddArgs{Stream: notify.DeadKey("contoso"), Values: []any{
		"event", `{"kind":"request.completed","request":{"id":"` + r.ID + `","tenant":"contoso"},"event":{}}`,
		"entry", "1764000000000-0", "attempts", 16, "error", "mailbox full", "recipients", "mail:admin@contoso.example",
	}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if res, err := notify.NewDeadLetters(w.srv.Redis, w.srv.Audit, w.clock.Now, nil).Redrive(ctx, "contoso", "ops@jobs-0", []string{letter}); err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("redrive: %+v, %v", res, err)
	}

	// Offboarded last, with lockboxctl: the tenant's log stays readable
	// and exportable.
	w.ok("lockbox-admin", nil, "tenant", "offboard", "contoso", "--reason", "contract ended")

	tn, err := w.srv.Tenants.Get(ctx, "contoso")
	if err != nil {
		t.Fatal(err)
	}
	tenantUsers := map[string]int{admin: 2, approver: 0}
	check := func(view string, raws [][]byte) {
		t.Helper()
		seen := map[string]bool{}
		for i, raw := range raws {
			var rec map[string]any
			if err := json.Unmarshal(raw, &rec); err != nil {
				t.Fatalf("%s: record %d is not JSON: %v\n%s", view, i, err, raw)
			}
			for _, p := range checkCommonSchema(rec, tn.OrganizationID, tenantUsers) {
				t.Errorf("%s: %v: %s\n%s", view, rec["Operation"], p, raw)
			}
			seen[fmt.Sprint(rec["Operation"])] = true
		}
		for _, op := range append(slices.Clone(record.Operations), "Get-Mailbox") {
			if !seen[op] {
				t.Errorf("%s: no %s record", view, op)
			}
		}
	}

	// As stored: what the SIEM stream forwards byte for byte.
	var stored [][]byte
	for _, m := range w.srv.Redis.XRange(ctx, keys.Audit("contoso"), "-", "+").Val() {
		stored = append(stored, []byte(m.Values["r"].(string)))
	}
	check("stored", stored)

	search := func(user string) [][]byte {
		var page struct{ Records []json.RawMessage }
		if err := json.Unmarshal(mustOK(user, "GET", "/v1/audit?tenant=contoso&limit=1000", nil), &page); err != nil {
			t.Fatal(err)
		}
		out := make([][]byte, len(page.Records))
		for i, r := range page.Records {
			out[i] = r
		}
		return out
	}
	check("provider search", search("auditor"))
	check("tenant search", search("admin"))
	check("tenant jsonl export", bytes.Split(bytes.TrimSpace(mustOK("admin", "GET", "/v1/audit/export?tenant=contoso&format=jsonl", nil)), []byte("\n")))
	rows, err := csv.NewReader(bytes.NewReader(mustOK("admin", "GET", "/v1/audit/export?tenant=contoso&format=csv", nil))).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("csv export: %d rows, %v", len(rows), err)
	}
	var auditData [][]byte
	for _, row := range rows[1:] {
		auditData = append(auditData, []byte(row[3]))
	}
	check("tenant csv export (AuditData)", auditData)
}
