package cli

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestRequestListTellsUnreadable: a page naming a request that can't be
// read lists the others on stdout, as ever, and says on stderr which one
// can't be read, once however many listings met it; lockboxctl dropped it
// without a word.
func TestRequestListTellsUnreadable(t *testing.T) {
	page := mustJSON(wire.RequestList{Requests: []wire.Request{sampleRequest()},
		Unreadable: []wire.UnreadableRequest{{ID: "0190a1b2-0000-7000-8000-000000000001", Tenant: "contoso", Error: "cannot be read"}}})
	for _, args := range [][]string{
		{"get", "requests"},
		{"get", "requests", "-o", "json"},
		{"get", "requests", "--all"},
		{"get", "requests", "--state", "pending"},
		{"get", "requests", "--state", "pending", "--all"},
	} {
		res := run(t, args, nil, map[string]reply{"GET /v1/requests": {200, page}})
		if res.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.code, res.stderr)
		}
		const want = "Request 0190a1b2-0000-7000-8000-000000000001 of tenant contoso cannot be read"
		if strings.Count(res.stderr, want) != 1 {
			t.Errorf("%v: stderr does not say once that the request cannot be read: %q", args, res.stderr)
		}
		if !strings.Contains(res.stdout, sampleRequest().ID) {
			t.Errorf("%v: the readable request is not listed: %q", args, res.stdout)
		}
	}
}

// TestAuditSearchTellsUnreadable: a search page naming an audit record
// that can't be read shows the others on stdout and says on stderr which
// one can't be read.
func TestAuditSearchTellsUnreadable(t *testing.T) {
	page := mustJSON(wire.RecordPage{Records: sampleRecords(),
		Unreadable: []wire.UnreadableRecord{{StreamID: "1764000000000-0", Tenant: "contoso", Error: "cannot be read"}}})
	for _, args := range [][]string{
		{"audit", "search", "--tenant", "contoso"},
		{"audit", "search", "--tenant", "contoso", "-o", "json"},
		{"audit", "search", "--tenant", "contoso", "--all"},
	} {
		res := run(t, args, nil, map[string]reply{"GET /v1/audit": {200, page}})
		if res.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.code, res.stderr)
		}
		const want = "Audit record 1764000000000-0 of tenant contoso cannot be read"
		if strings.Count(res.stderr, want) != 1 {
			t.Errorf("%v: stderr does not say once that the record cannot be read: %q", args, res.stderr)
		}
		if !strings.Contains(res.stdout, sampleRecords()[0].Operation) {
			t.Errorf("%v: the readable records are not shown: %q", args, res.stdout)
		}
	}
}

// TestStructuredListingCarriesUnreadable: with -o json or -o yaml a
// request or audit record that can't be read was told only on stderr, so
// a script reading stdout took an incomplete listing for a whole one. Now
// the document carries it in the API page's own "unreadable" list, the
// same shape (id or stream_id, tenant, error), once however many pages
// and states named it; stderr still says so.
func TestStructuredListingCarriesUnreadable(t *testing.T) {
	badReq := wire.UnreadableRequest{ID: "0190a1b2-0000-7000-8000-0000000000ff", Tenant: "contoso", Error: "cannot be read"}
	reqPage := mustJSON(wire.RequestList{Requests: []wire.Request{sampleRequest()}, Unreadable: []wire.UnreadableRequest{badReq}})
	emptyPage := mustJSON(wire.RequestList{Requests: []wire.Request{}, Unreadable: []wire.UnreadableRequest{badReq}})
	for _, c := range []struct {
		args []string
		page string
		want []wire.Request
	}{
		{[]string{"get", "requests", "-o", "json"}, reqPage, []wire.Request{sampleRequest()}},
		{[]string{"get", "requests", "-o", "json", "--all"}, reqPage, []wire.Request{sampleRequest()}},
		{[]string{"get", "requests", "-o", "json", "--state", "pending"}, reqPage, []wire.Request{sampleRequest()}},
		{[]string{"get", "requests", "-o", "json", "--state", "pending", "--all"}, reqPage, []wire.Request{sampleRequest()}},
		{[]string{"get", "requests", "-o", "json"}, emptyPage, []wire.Request{}},
		{[]string{"get", "requests", "-o", "yaml"}, reqPage, []wire.Request{sampleRequest()}},
	} {
		res := run(t, c.args, nil, map[string]reply{"GET /v1/requests": {200, c.page}})
		if res.code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, res.code, res.stderr)
		}
		var got wire.RequestList
		if err := decodeDoc(res.stdout, c.args, &got); err != nil {
			t.Fatalf("%v: stdout is not the API's page: %v\n%s", c.args, err, res.stdout)
		}
		if !slices.Equal(got.Unreadable, []wire.UnreadableRequest{badReq}) || len(got.Requests) != len(c.want) ||
			(len(c.want) > 0 && got.Requests[0].ID != c.want[0].ID) {
			t.Errorf("%v: listing = %d requests, unreadable %+v; want %d and [%+v]\n%s", c.args, len(got.Requests), got.Unreadable, len(c.want), badReq, res.stdout)
		}
		if !strings.Contains(res.stderr, "Request "+badReq.ID+" of tenant contoso cannot be read") {
			t.Errorf("%v: stderr no longer says so: %q", c.args, res.stderr)
		}
	}
	// A page naming none keeps the document as it was: no "unreadable".
	res := run(t, []string{"get", "requests", "-o", "json"}, nil, map[string]reply{"GET /v1/requests": {200, mustJSON(wire.RequestList{Requests: []wire.Request{sampleRequest()}})}})
	if res.code != 0 || strings.Contains(res.stdout, "unreadable") {
		t.Errorf("a whole listing: exit %d, %s", res.code, res.stdout)
	}

	badRec := wire.UnreadableRecord{StreamID: "1764000000000-0", Tenant: "contoso", Error: "cannot be read"}
	recPage := mustJSON(wire.RecordPage{Records: sampleRecords(), Unreadable: []wire.UnreadableRecord{badRec}})
	for _, args := range [][]string{
		{"audit", "search", "--tenant", "contoso", "-o", "json"},
		{"audit", "search", "--tenant", "contoso", "-o", "json", "--all"},
		{"audit", "search", "--tenant", "contoso", "-o", "yaml"},
	} {
		res := run(t, args, nil, map[string]reply{"GET /v1/audit": {200, recPage}})
		if res.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.code, res.stderr)
		}
		var got wire.RecordPage
		if err := decodeDoc(res.stdout, args, &got); err != nil {
			t.Fatalf("%v: stdout is not the API's page: %v\n%s", args, err, res.stdout)
		}
		if !slices.Equal(got.Unreadable, []wire.UnreadableRecord{badRec}) || len(got.Records) != len(sampleRecords()) {
			t.Errorf("%v: page = %d records, unreadable %+v; want %d and [%+v]\n%s", args, len(got.Records), got.Unreadable, len(sampleRecords()), badRec, res.stdout)
		}
		if !strings.Contains(res.stderr, "Audit record "+badRec.StreamID+" of tenant contoso cannot be read") {
			t.Errorf("%v: stderr no longer says so: %q", args, res.stderr)
		}
	}
}

// TestActivityCarriesUnreadable: a request's activity naming an audit
// record that can't be read (one of the tenant's log within the request's
// span, which may be the request's) shows the readable records, says so
// on stderr once, and with -o json or -o yaml carries it in the API's own
// "unreadable" list; lockboxctl dropped it without a word. An activity
// naming none keeps its document as it was.
func TestActivityCarriesUnreadable(t *testing.T) {
	badRec := wire.UnreadableRecord{StreamID: "1764000000000-0", Tenant: "contoso", Error: "cannot be read"}
	path := "GET /v1/requests/" + reqID + "/activity"
	page := mustJSON(wire.RecordList{Records: sampleRecords(), Unreadable: []wire.UnreadableRecord{badRec}})
	const told = "Audit record 1764000000000-0 of tenant contoso cannot be read"
	for _, args := range [][]string{
		{"get", "activity", reqID},
		{"get", "activity", reqID, "-o", "csv"},
		{"get", "activity", reqID, "-o", "json"},
		{"request", "activity", reqID, "-o", "yaml"},
	} {
		res := run(t, args, nil, map[string]reply{path: {200, page}})
		if res.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.code, res.stderr)
		}
		if strings.Count(res.stderr, told) != 1 {
			t.Errorf("%v: stderr does not say once that the record cannot be read: %q", args, res.stderr)
		}
		if !strings.Contains(res.stdout, sampleRecords()[0].Operation) {
			t.Errorf("%v: the readable records are not shown: %q", args, res.stdout)
		}
		if !slices.Contains(args, "json") && !slices.Contains(args, "yaml") {
			continue
		}
		var got wire.RecordList
		if err := decodeDoc(res.stdout, args, &got); err != nil {
			t.Fatalf("%v: stdout is not the API's list: %v\n%s", args, err, res.stdout)
		}
		if !slices.Equal(got.Unreadable, []wire.UnreadableRecord{badRec}) || len(got.Records) != len(sampleRecords()) {
			t.Errorf("%v: list = %d records, unreadable %+v; want %d and [%+v]\n%s", args, len(got.Records), got.Unreadable, len(sampleRecords()), badRec, res.stdout)
		}
	}
	res := run(t, []string{"get", "activity", reqID, "-o", "json"}, nil, map[string]reply{path: {200, mustJSON(wire.RecordList{Records: sampleRecords()})}})
	if res.code != 0 || strings.Contains(res.stdout, "unreadable") || res.stderr != "" {
		t.Errorf("a whole activity: exit %d, stdout %s, stderr %q", res.code, res.stdout, res.stderr)
	}
}

// TestListingHelpNamesUnreadable: the help of the listings says where a
// record that can't be read is named.
func TestListingHelpNamesUnreadable(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "requests", "--help"}, `"unreadable": [{"id": "...", "tenant": "...", "error": "cannot be read"}]`},
		{[]string{"request", "list", "--help"}, `"unreadable": [{"id": "...", "tenant": "...", "error": "cannot be read"}]`},
		{[]string{"audit", "search", "--help"}, `"unreadable": [{"stream_id": "...", "tenant": "...", "error": "cannot be read"}]`},
		{[]string{"get", "activity", "--help"}, `"unreadable": [{"stream_id": "...", "tenant": "...", "error": "cannot be read"}]`},
		{[]string{"request", "activity", "--help"}, `"unreadable": [{"stream_id": "...", "tenant": "...", "error": "cannot be read"}]`},
	} {
		res := run(t, c.args, nil, nil)
		if res.code != 0 || !strings.Contains(res.stdout, c.want) {
			t.Errorf("%v: exit %d, help does not show %s:\n%s%s", c.args, res.code, c.want, res.stdout, res.stderr)
		}
	}
}

// decodeDoc reads stdout, JSON or (when args ask for it) YAML, into v by
// the API's JSON field names.
func decodeDoc(stdout string, args []string, v any) error {
	if slices.Contains(args, "yaml") {
		var doc any
		if err := yaml.Unmarshal([]byte(stdout), &doc); err != nil {
			return err
		}
		b, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		stdout = string(b)
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// TestTenantListTellsUnreadable: a tenant list naming a tenant whose
// registry entry can't be read lists the others, as ever, says on stderr
// which one can't be read, and with -o json or -o yaml carries the API's
// "unreadable" list, so a script can tell the list is incomplete;
// lockboxctl dropped it without a word. A list naming none keeps its
// document as it was.
func TestTenantListTellsUnreadable(t *testing.T) {
	bad := wire.UnreadableTenant{ID: "fabrikam", Tenant: "fabrikam", Error: "cannot be read"}
	list := mustJSON(wire.TenantList{Tenants: []wire.Tenant{sampleTenant()}, Unreadable: []wire.UnreadableTenant{bad}})
	const told = "Tenant fabrikam cannot be read: its stored registry entry is damaged"
	for _, args := range [][]string{
		{"get", "tenants"},
		{"tenant", "list"},
		{"get", "tenants", "-o", "json"},
		{"tenant", "list", "-o", "yaml"},
	} {
		res := run(t, args, nil, map[string]reply{"GET /v1/tenants": {200, list}})
		if res.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.code, res.stderr)
		}
		if strings.Count(res.stderr, told) != 1 {
			t.Errorf("%v: stderr does not say once that fabrikam cannot be read: %q", args, res.stderr)
		}
		if !slices.ContainsFunc(args, func(a string) bool { return a == "json" || a == "yaml" }) {
			if !strings.Contains(res.stdout, sampleTenant().ID) || strings.Contains(res.stdout, "fabrikam") {
				t.Errorf("%v: rows %q, want contoso's alone", args, res.stdout)
			}
			continue
		}
		var got wire.TenantList
		if err := decodeDoc(res.stdout, args, &got); err != nil {
			t.Fatalf("%v: stdout is not the API's list: %v\n%s", args, err, res.stdout)
		}
		if !slices.Equal(got.Unreadable, []wire.UnreadableTenant{bad}) || len(got.Tenants) != 1 || got.Tenants[0].ID != sampleTenant().ID {
			t.Errorf("%v: list = %+v, want contoso and unreadable [%+v]", args, got, bad)
		}
	}
	res := run(t, []string{"get", "tenants", "-o", "json"}, nil, map[string]reply{"GET /v1/tenants": {200, mustJSON(wire.TenantList{Tenants: []wire.Tenant{sampleTenant()}})}})
	if res.code != 0 || strings.Contains(res.stdout, "unreadable") || res.stderr != "" {
		t.Errorf("a whole list: exit %d, stdout %s, stderr %q", res.code, res.stdout, res.stderr)
	}
}
