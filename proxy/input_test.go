package proxy

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/policy"
	"github.com/lockbox-oss/lockbox/tenants"
)

func TestBuildInput(t *testing.T) {
	approved := time.Date(2025, 3, 1, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	g := &grants.Grant{
		RequestID: "0195a000-0000-7000-8000-000000000001", Tenant: "contoso", Operator: alice.Subject, Service: "exchange",
		Approver: "admin@contoso.example", ApprovedBy: grants.KindTenant, ApprovedAt: approved, ExpiresAt: approved.Add(2 * time.Hour),
	}
	c := Call{
		Method: "GET", Service: "exchange", Path: "/tenants/contoso/mailboxes", Tenant: "contoso", ClientIP: "192.0.2.1",
		Activity: policy.Activity{Service: "exchange", Name: "Get-Mailbox", Method: "GET", Pattern: "/tenants/{tenant}/mailboxes", Access: policy.AccessRead},
	}
	now := approved.Add(time.Minute + 123*time.Nanosecond)
	got := BuildInput(alice, c, g, tenants.Settings{LockboxEnabled: true}, now)
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	// The document the security team's Rego reads: every name and shape.
	want := `{"operator":{"id":"alice@provider.example","roles":["operator"]},` +
		`"call":{"method":"GET","path":"/tenants/contoso/mailboxes","service":"exchange","activity":"Get-Mailbox","access":"read","tenant":"contoso","client_ip":"192.0.2.1"},` +
		`"grant":{"request_id":"0195a000-0000-7000-8000-000000000001","tenant":"contoso","operator":"alice@provider.example","service":"exchange","activities":[],` +
		`"approver":"admin@contoso.example","tenant_approved":true,"approved_at":"2025-03-01T08:00:00Z","expires_at":"2025-03-01T10:00:00Z"},` +
		`"tenant":{"id":"contoso","lockbox_enabled":true},"now":"2025-03-01T08:01:00Z"}`
	if string(b) != want {
		t.Errorf("input\n got %s\nwant %s", b, want)
	}
	if in := BuildInput(identity.Principal{Subject: "x"}, c, nil, tenants.Settings{}, now); in.Grant != nil || in.Operator.Roles == nil {
		t.Errorf("without a grant: %+v", in)
	}
}

// FuzzInputBuilder checks BuildInput for any call, grant and time the
// proxy could hand it: the input survives a JSON round trip (what the
// engine does with it), names the call's tenant and service, and has a
// grant exactly when one was given.
func FuzzInputBuilder(f *testing.F) {
	f.Add("alice@provider.example", "GET", "exchange", "/tenants/contoso/mailboxes", "Get-Mailbox", "read", "contoso", "127.0.0.1",
		true, "contoso", "Get-Mailbox,Get-MailboxMessage", int64(1740819600), int64(7200), int64(60), true)
	f.Add("bob", "DELETE", "sharepoint", "/tenants/t/sites/s/files/f", "Remove-SPOFile", "write", "t", "::1",
		false, "other", "", int64(0), int64(0), int64(-1), false)
	f.Fuzz(func(t *testing.T, operator, method, service, path, activity, access, tenant, clientIP string,
		hasGrant bool, grantTenant, activities string, approvedUnix, grantSecs, nowOffset int64, lockbox bool) {
		for _, s := range []string{operator, method, service, path, activity, access, tenant, clientIP, grantTenant, activities} {
			// The proxy only ever passes ASCII from canonical targets and
			// verified tokens; JSON would replace invalid UTF-8.
			if !utf8.ValidString(s) {
				t.Skip()
			}
		}
		// Keep times within the years JSON and RFC 3339 can carry.
		approved := time.Unix(approvedUnix%(1<<34), 0)
		now := approved.Add(time.Duration(nowOffset%(1<<40)) * time.Microsecond)
		c := Call{
			Method: method, Service: service, Path: path, Tenant: tenant, ClientIP: clientIP,
			Activity: policy.Activity{Service: service, Name: activity, Method: method, Access: policy.Access(access)},
		}
		var g *grants.Grant
		if hasGrant {
			var acts []string
			if activities != "" {
				acts = strings.Split(activities, ",")
			}
			g = &grants.Grant{
				RequestID: "r", Tenant: grantTenant, Operator: operator, Service: service, Activities: acts,
				ApprovedAt: approved, ExpiresAt: approved.Add(time.Duration(grantSecs%(1<<20)) * time.Second),
			}
		}
		p := identity.Principal{Subject: operator, Roles: []identity.Role{identity.RoleOperator}}
		in := BuildInput(p, c, g, tenants.Settings{LockboxEnabled: lockbox}, now)

		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var back policy.Input
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, in) {
			t.Fatalf("round trip changed the input\n got %+v\nwant %+v", back, in)
		}
		if in.Call.Tenant != tenant || in.Tenant.ID != tenant || in.Call.Service != service || in.Call.Path != path || in.Call.Method != method {
			t.Fatalf("input names another call: %+v", in.Call)
		}
		if (in.Grant == nil) != (g == nil) {
			t.Fatalf("grant %v for %v", in.Grant, g)
		}
		if g != nil && (in.Grant.Tenant != grantTenant || in.Grant.Activities == nil || len(in.Grant.Activities) != len(g.Activities)) {
			t.Fatalf("grant view %+v of %+v", in.Grant, g)
		}
		if parsed, err := time.Parse(time.RFC3339Nano, in.Now); err != nil || !parsed.Equal(now.Truncate(time.Second)) {
			t.Fatalf("now %q (%v), want %s truncated to the second", in.Now, err, now)
		}
		if in.Tenant.LockboxEnabled != lockbox || in.Operator.ID != operator {
			t.Fatalf("input %+v", in)
		}
	})
}

// TestRegoREADMEInput holds the input example of rego/README.md, which
// security teams write their Rego from, to what BuildInput hands the
// policy: the same fields at every level (the README promises every field
// is always present), and input.now in the form the proxy writes it, the
// call's time truncated to the second.
func TestRegoREADMEInput(t *testing.T) {
	b, err := os.ReadFile("../rego/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## The input\n")
	if !ok {
		t.Fatal(`rego/README.md has no section "## The input"`)
	}
	_, example, ok := strings.Cut(section, "\n```json\n")
	if !ok {
		t.Fatal("rego/README.md's section on the input has no JSON example")
	}
	example, _, _ = strings.Cut(example, "\n```")
	var documented map[string]any
	if err := json.Unmarshal([]byte(example), &documented); err != nil {
		t.Fatalf("rego/README.md's input example is no JSON object: %v", err)
	}

	approved := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	g := &grants.Grant{
		RequestID: "r", Tenant: "contoso", Operator: alice.Subject, Service: "exchange",
		Approver: "admin@contoso.example", ApprovedBy: grants.KindTenant, ApprovedAt: approved, ExpiresAt: approved.Add(4 * time.Hour),
	}
	c := Call{
		Method: "GET", Service: "exchange", Path: "/tenants/contoso/mailboxes", Tenant: "contoso", ClientIP: "192.0.2.10",
		Activity: policy.Activity{Service: "exchange", Name: "Get-Mailbox", Method: "GET", Pattern: "/tenants/{tenant}/mailboxes", Access: policy.AccessRead},
	}
	in, err := json.Marshal(BuildInput(alice, c, g, tenants.Settings{LockboxEnabled: true}, approved.Add(time.Hour+123456789)))
	if err != nil {
		t.Fatal(err)
	}
	var built map[string]any
	if err := json.Unmarshal(in, &built); err != nil {
		t.Fatal(err)
	}
	for _, d := range sameFields("input", built, documented) {
		t.Errorf("rego/README.md's input example: %s", d)
	}

	now, _ := documented["now"].(string)
	parsed, err := time.Parse(time.RFC3339Nano, now)
	if err != nil {
		t.Fatalf("rego/README.md's input example: now %q is not RFC 3339: %v", now, err)
	}
	if want := formatTime(parsed.Truncate(time.Second)); now != want {
		t.Errorf("rego/README.md's input example: now is %q; the proxy writes the call's time truncated to the second, %q", now, want)
	}
}

// sameFields lists the fields one of two JSON objects has and the other
// lacks, at every level of nesting, each named by its path from at.
func sameFields(at string, built, documented map[string]any) []string {
	var out []string
	for k, v := range built {
		d, ok := documented[k]
		if !ok {
			out = append(out, fmt.Sprintf("%s.%s is missing", at, k))
			continue
		}
		if bo, ok := v.(map[string]any); ok {
			if do, ok := d.(map[string]any); ok {
				out = append(out, sameFields(at+"."+k, bo, do)...)
			} else {
				out = append(out, fmt.Sprintf("%s.%s is %v, not an object", at, k, d))
			}
		}
	}
	for k := range documented {
		if _, ok := built[k]; !ok {
			out = append(out, fmt.Sprintf("%s.%s is no field of the input", at, k))
		}
	}
	slices.Sort(out)
	return out
}
