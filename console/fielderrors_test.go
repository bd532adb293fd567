package console_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/lockbox-oss/lockbox/identity"
)

// control is one form control of a page, with its attributes and what it
// holds.
type control struct {
	attrs map[string]string
	text  string // a textarea's content
}

// controls returns the page's inputs, selects and textareas by id, and
// the id of the page's error (empty when it has none or the error has no
// id).
func controls(t *testing.T, r resp) (map[string]control, string, bool) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]control{}
	problemID, hasProblem := "", false
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attrs := map[string]string{}
			for _, a := range n.Attr {
				attrs[a.Key] = a.Val
			}
			switch n.Data {
			case "input", "select", "textarea":
				c := control{attrs: attrs}
				if n.Data == "textarea" && n.FirstChild != nil {
					c.text = n.FirstChild.Data
				}
				if n.Data == "select" {
					// A select holds its selected option's value.
					for o := n.FirstChild; o != nil; o = o.NextSibling {
						sel, val := false, ""
						for _, a := range o.Attr {
							sel = sel || a.Key == "selected"
							if a.Key == "value" {
								val = a.Val
							}
						}
						if sel {
							c.text = val
						}
					}
				}
				if id := attrs["id"]; id != "" {
					out[id] = c
				}
			}
			if slices.Contains(strings.Fields(attrs["class"]), "problem") {
				problemID, hasProblem = attrs["id"], true
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out, problemID, hasProblem
}

// TestFormErrorsTiedToField posts each form with one field wrong and
// wants the page it answers to mark that field, and only that one, as
// invalid, tie it to the error, put the focus on it, and keep what was
// typed in the other fields. Single-field forms (an approver's assignment,
// a confirmation's comment) are held to the same rule as the others.
func TestFormErrorsTiedToField(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	pending := e.managerApproved("contoso")
	request := url.Values{
		"tenant": {"contoso"}, "service": {"exchange"}, "service_request": {"SR-7117"},
		"reason": {"Mailbox will not sync"}, "duration": {"2h"},
	}
	onboarding := url.Values{
		"id": {"northwind"}, "display_name": {"Northwind Traders"}, "domains": {"northwind.example"},
		"global_admins": {"ceo@northwind.example"}, "organization_id": {""}, "lockbox_enabled": {"on"},
	}
	entry := url.Values{"display_name": {"Contoso Ltd"}, "domains": {"contoso.example"}, "global_admins": {"it@contoso.example"}}
	cases := []struct {
		name   string
		who    identity.Principal
		path   string
		form   url.Values
		change url.Values
		field  string
		// kept are other fields' ids and the value they must still hold.
		kept map[string]string
	}{
		{"request without reason", alice, "/console/requests", request, url.Values{"reason": {"  "}}, "reason",
			map[string]string{"tenant": "contoso", "service_request": "SR-7117", "service": "exchange", "duration": "2h"}},
		{"request for a tenant id that is none", alice, "/console/requests", request, url.Values{"tenant": {"Contoso Ltd"}}, "tenant",
			map[string]string{"service_request": "SR-7117", "reason": "Mailbox will not sync"}},
		{"request for a tenant not onboarded", alice, "/console/requests", request, url.Values{"tenant": {"tailspin"}}, "tenant",
			map[string]string{"service_request": "SR-7117", "reason": "Mailbox will not sync"}},
		{"request with a service request number too long", alice, "/console/requests", request, url.Values{"service_request": {strings.Repeat("9", 65)}}, "service_request",
			map[string]string{"tenant": "contoso", "reason": "Mailbox will not sync"}},
		{"request of a duration not offered", alice, "/console/requests", request, url.Values{"duration": {"5h"}}, "duration",
			map[string]string{"tenant": "contoso", "service_request": "SR-7117", "reason": "Mailbox will not sync"}},
		{"onboarding a bad tenant id", lara, "/console/tenants", onboarding, url.Values{"id": {"North Wind"}}, "id",
			map[string]string{"display_name": "Northwind Traders", "domains": "northwind.example", "global_admins": "ceo@northwind.example"}},
		{"onboarding a tenant onboarded", lara, "/console/tenants", onboarding, url.Values{"id": {"contoso"}}, "id",
			map[string]string{"display_name": "Northwind Traders", "domains": "northwind.example"}},
		{"onboarding without a name", lara, "/console/tenants", onboarding, url.Values{"display_name": {" "}}, "display_name",
			map[string]string{"id": "northwind", "domains": "northwind.example"}},
		{"onboarding a bad domain", lara, "/console/tenants", onboarding, url.Values{"domains": {"northwind"}}, "domains",
			map[string]string{"id": "northwind", "display_name": "Northwind Traders", "global_admins": "ceo@northwind.example"}},
		{"onboarding a bad admin address", lara, "/console/tenants", onboarding, url.Values{"global_admins": {"the ceo"}}, "global_admins",
			map[string]string{"id": "northwind", "display_name": "Northwind Traders", "domains": "northwind.example"}},
		{"onboarding a bad organization id", lara, "/console/tenants", onboarding, url.Values{"organization_id": {"not-a-guid"}}, "organization_id",
			map[string]string{"id": "northwind", "display_name": "Northwind Traders", "domains": "northwind.example"}},
		{"registry entry with a bad domain", lara, "/console/tenants/contoso", entry, url.Values{"domains": {"contoso"}}, "domains",
			map[string]string{"display_name": "Contoso Ltd", "global_admins": "it@contoso.example"}},
		{"registry entry without a name", lara, "/console/tenants/contoso", entry, url.Values{"display_name": {""}}, "display_name",
			map[string]string{"domains": "contoso.example", "global_admins": "it@contoso.example"}},
		{"settings with a bad address", contosoAdmin, "/console/settings", url.Values{"lockbox_enabled": {"on"}}, url.Values{"notification_addresses": {"sec@contoso.example\nnot an address"}}, "notification_addresses",
			nil},
		{"approver that is no user id", contosoAdmin, "/console/approvers", url.Values{"user": {"eve contoso"}}, nil, "user", nil},
		{"confirmation with a comment too long", contosoApprover, "/console/requests/" + pending.ID + "/approve",
			url.Values{"comment": {strings.Repeat("x", 1001)}}, nil, "comment", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := e.signIn(tc.who)
			r := b.post(tc.path, b.form(mergeForm(tc.form, tc.change)))
			if r.status < 400 || r.status >= 500 {
				t.Fatalf("refused form: %s", r)
			}
			fields, problemID, hasProblem := controls(t, r)
			if !hasProblem {
				t.Fatalf("no error on the page: %s", r)
			}
			if problemID == "" {
				t.Errorf("the error has no id a field could name")
			}
			f, ok := fields[tc.field]
			if !ok {
				t.Fatalf("no #%s on the page", tc.field)
			}
			if f.attrs["aria-invalid"] != "true" {
				t.Errorf("#%s is not aria-invalid: %v", tc.field, f.attrs)
			}
			if problemID != "" && !slices.Contains(strings.Fields(f.attrs["aria-describedby"]), problemID) {
				t.Errorf("#%s is not described by the error #%s: %v", tc.field, problemID, f.attrs)
			}
			if _, ok := f.attrs["autofocus"]; !ok {
				t.Errorf("#%s does not take the focus: %v", tc.field, f.attrs)
			}
			for id, c := range fields {
				if id == tc.field {
					continue
				}
				if c.attrs["aria-invalid"] == "true" {
					t.Errorf("#%s is marked invalid too", id)
				}
				if _, ok := c.attrs["autofocus"]; ok {
					t.Errorf("#%s takes the focus too", id)
				}
			}
			for id, want := range tc.kept {
				c := fields[id]
				got := c.attrs["value"]
				if _, isText := c.attrs["value"]; !isText {
					got = strings.TrimSpace(c.text)
				}
				if got != want {
					t.Errorf("#%s holds %q after the refusal, not the %q typed", id, got, want)
				}
			}
		})
	}
}
