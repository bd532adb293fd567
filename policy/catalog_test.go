package policy

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/lockbox-oss/lockbox/rego"
)

// svc wraps entries (JSON objects) into a one-service catalog document.
func svc(entries ...string) string {
	return `{"exchange": [` + strings.Join(entries, ",") + `]}`
}

func entry(activity, method, path, access string) string {
	return `{"activity": "` + activity + `", "method": "` + method + `", "path": "` + path + `", "access": "` + access + `"}`
}

var okEntry = entry("Get-Mailbox", "GET", "/tenants/{tenant}/mailboxes", "read")

func TestParseCatalogRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want string // substring of the error, which must name the place
	}{
		// The document.
		{"empty input", ``, "document: EOF"},
		{"syntax error", `{"exchange": [`, "exchange"},
		{"not an object", `[]`, "document: expected \"{\", found \"[\""},
		{"null document", `null`, "found null"},
		{"no services", `{}`, "document: no services"},
		{"trailing data", svc(okEntry) + `{}`, "data after the catalog object"},
		{"service listed twice", `{"exchange": [], "exchange": []}`, `service "exchange": listed twice`},
		{"service name upper case", `{"Exchange": []}`, `service "Exchange": name must match`},
		{"service name with colon", `{"ex:change": []}`, `service "ex:change"`},
		{"service not an array", `{"exchange": {}}`, "exchange: must be an array"},
		{"service null", `{"exchange": null}`, "exchange: must be an array of activities: expected \"[\", found null"},

		// The shape of an entry.
		{"entry not an object", svc(`"Get-Mailbox"`), "exchange[0]: must be an object"},
		{"unknown field", svc(`{"activity": "Get-Mailbox", "method": "GET", "path": "/tenants/{tenant}/x", "access": "read", "tenant": "t1"}`),
			`exchange[0]: unknown field "tenant"`},
		{"field name in wrong case", svc(`{"activity": "Get-Mailbox", "Method": "GET", "path": "/tenants/{tenant}/x", "access": "read"}`),
			`exchange[0]: unknown field "Method"`},
		{"duplicate field", svc(`{"activity": "Get-Mailbox", "method": "GET", "method": "DELETE", "path": "/tenants/{tenant}/x", "access": "read"}`),
			"exchange[0].method: given twice"},
		{"missing field", svc(`{"activity": "Get-Mailbox", "method": "GET", "path": "/tenants/{tenant}/x"}`),
			"exchange[0].access: missing"},
		{"field not a string", svc(`{"activity": "Get-Mailbox", "method": "GET", "path": "/tenants/{tenant}/x", "access": true}`),
			"exchange[0].access: must be a string, not bool"},
		{"index counts entries", svc(okEntry, entry("Get-Mailbox2", "GET", "/tenants/{tenant}/y", "read")),
			"exchange[1].activity"},

		// Field values.
		{"activity without verb", svc(entry("Mailbox", "GET", "/tenants/{tenant}/x", "read")), `exchange[0].activity: "Mailbox" must look like Verb-Noun`},
		{"activity lower case", svc(entry("get-Mailbox", "GET", "/tenants/{tenant}/x", "read")), "exchange[0].activity"},
		{"activity with space", svc(entry("Get-Mail box", "GET", "/tenants/{tenant}/x", "read")), "exchange[0].activity"},
		{"activity two dashes", svc(entry("Get-Mail-Box", "GET", "/tenants/{tenant}/x", "read")), "exchange[0].activity"},
		{"activity empty", svc(entry("", "GET", "/tenants/{tenant}/x", "read")), "exchange[0].activity"},
		{"method lower case", svc(entry("Get-Mailbox", "get", "/tenants/{tenant}/x", "read")), `exchange[0].method: "get" is not one of GET, HEAD, POST, PUT, PATCH, DELETE`},
		{"method CONNECT", svc(entry("Get-Mailbox", "CONNECT", "/tenants/{tenant}/x", "read")), "exchange[0].method"},
		{"method empty", svc(entry("Get-Mailbox", "", "/tenants/{tenant}/x", "read")), "exchange[0].method"},
		{"access unknown", svc(entry("Get-Mailbox", "GET", "/tenants/{tenant}/x", "admin")), `exchange[0].access: "admin" is neither`},
		{"access upper case", svc(entry("Get-Mailbox", "GET", "/tenants/{tenant}/x", "READ")), "exchange[0].access"},

		// Patterns.
		{"path relative", svc(entry("Get-Mailbox", "GET", "tenants/{tenant}", "read")), `exchange[0].path: "tenants/{tenant}": must start with "/"`},
		{"path empty", svc(entry("Get-Mailbox", "GET", "", "read")), "exchange[0].path"},
		{"path trailing slash", svc(entry("Get-Mailbox", "GET", "/tenants/{tenant}/", "read")), "exchange[0].path: \"/tenants/{tenant}/\": empty segment"},
		{"path double slash", svc(entry("Get-Mailbox", "GET", "/tenants//{tenant}", "read")), "empty segment"},
		{"path root", svc(entry("Get-Mailbox", "GET", "/", "read")), "empty segment"},
		{"path dot segment", svc(entry("Get-Mailbox", "GET", "/tenants/{tenant}/./x", "read")), "dot segment"},
		{"path dotdot segment", svc(entry("Get-Mailbox", "GET", "/tenants/{tenant}/../x", "read")), "dot segment"},
		{"path without tenant", svc(entry("Get-Mailbox", "GET", "/mailboxes/{mailbox}", "read")), "no {tenant} segment"},
		{"path tenant twice", svc(entry("Get-Mailbox", "GET", "/tenants/{tenant}/x/{tenant}", "read")), "wildcard {tenant} used twice"},
		{"path wildcard twice", svc(entry("Get-Mailbox", "GET", "/tenants/{tenant}/{m}/{m}", "read")), "wildcard {m} used twice"},
		{"path empty wildcard", svc(entry("Get-Mailbox", "GET", "/tenants/{tenant}/{}", "read")), "wildcard {}: name must match"},
		{"path partial wildcard", svc(entry("Get-Mailbox", "GET", "/tenants/{tenant}/x{id}", "read")), `segment "x{id}"`},
		{"path unclosed wildcard", svc(entry("Get-Mailbox", "GET", "/tenants/{tenant}/{id", "read")), `segment "{id"`},
		{"path percent", svc(entry("Get-Mailbox", "GET", "/tenants/{tenant}/a%2fb", "read")), `segment "a%2fb"`},
		{"path semicolon", svc(entry("Get-Mailbox", "GET", "/tenants/{tenant}/a;b", "read")), `segment "a;b"`},
		{"path query", svc(entry("Get-Mailbox", "GET", "/tenants/{tenant}/a?b", "read")), `segment "a?b"`},
		{"path too long", svc(entry("Get-Mailbox", "GET", "/tenants/{tenant}"+strings.Repeat("/x", 31), "read")), "more than 32 segments"},

		// Uniqueness within a service.
		{"activity name twice", svc(okEntry, entry("Get-Mailbox", "GET", "/tenants/{tenant}/other", "read")),
			`exchange[1].activity: "Get-Mailbox" already names exchange[0]`},
		{"same method and pattern", svc(okEntry, entry("Get-Mailboxes", "GET", "/tenants/{tenant}/mailboxes", "read")),
			"exchange[1].path: GET /tenants/{tenant}/mailboxes has the same shape as exchange[0]"},
		{"same shape, other wildcard names", svc(
			entry("Get-MailboxMessage", "GET", "/tenants/{tenant}/mailboxes/{mailbox}", "read"),
			entry("Get-MailboxItem", "GET", "/tenants/{tenant}/mailboxes/{box}", "read")),
			"exchange[1].path: GET /tenants/{tenant}/mailboxes/{box} has the same shape as exchange[0] (/tenants/{tenant}/mailboxes/{mailbox})"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseCatalog([]byte(tt.doc))
			if err == nil {
				t.Fatalf("ParseCatalog accepted %s: %v", tt.doc, c.Services())
			}
			if !errors.Is(err, ErrInvalidCatalog) {
				t.Errorf("error %q does not wrap ErrInvalidCatalog", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseCatalogAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
	}{
		{"one entry", svc(okEntry)},
		{"same pattern, other method", svc(okEntry, entry("New-Mailbox", "POST", "/tenants/{tenant}/mailboxes", "write"))},
		{"same name in two services", `{"exchange": [` + okEntry + `], "onedrive": [` + okEntry + `]}`},
		{"service with no activities", `{"exchange": []}`},
		{"tenant not first", svc(entry("Get-Mailbox", "GET", "/v1/{tenant}/mailboxes", "read"))},
		{"unreserved literals", svc(entry("Get-Mailbox", "GET", "/t.x/{tenant}/mail_box-2~", "read"))},
		{"whitespace around", "\n\t " + svc(okEntry) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ParseCatalog([]byte(tt.doc)); err != nil {
				t.Fatalf("ParseCatalog: %v", err)
			}
		})
	}
}

const matchDoc = `{
  "exchange": [
    {"activity": "Get-Mailbox",        "method": "GET",    "path": "/tenants/{tenant}/mailboxes",                         "access": "read"},
    {"activity": "Get-MailboxMessage", "method": "GET",    "path": "/tenants/{tenant}/mailboxes/{mailbox}/messages",      "access": "read"},
    {"activity": "Get-MailboxItem",    "method": "GET",    "path": "/tenants/{tenant}/mailboxes/{mailbox}/{kind}",        "access": "read"},
    {"activity": "Get-ArchiveAny",     "method": "GET",    "path": "/tenants/{tenant}/mailboxes/{mailbox}/{kind}/{id}",   "access": "read"},
    {"activity": "Get-ArchiveMessage", "method": "GET",    "path": "/tenants/{tenant}/mailboxes/archive/{kind}/{id}",     "access": "read"},
    {"activity": "Get-MailboxArchive", "method": "GET",    "path": "/tenants/{tenant}/mailboxes/{mailbox}/archive/{id}",  "access": "read"},
    {"activity": "Remove-MailboxMessage", "method": "DELETE", "path": "/tenants/{tenant}/mailboxes/{mailbox}/messages/{id}", "access": "write"}
  ],
  "onedrive": [
    {"activity": "Get-OneDriveSite",   "method": "GET",    "path": "/tenants/{tenant}/drives",                            "access": "read"}
  ]
}`

func TestMatch(t *testing.T) {
	t.Parallel()
	c, err := ParseCatalog([]byte(matchDoc))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name            string
		service, method string
		path            string
		want            string // activity name; empty for no match
		vars            map[string]string
	}{
		{"list", "exchange", "GET", "/tenants/t1/mailboxes", "Get-Mailbox", map[string]string{"tenant": "t1"}},
		{"tenant and mailbox extracted", "exchange", "GET", "/tenants/contoso/mailboxes/alice@contoso.com/messages",
			"Get-MailboxMessage", map[string]string{"tenant": "contoso", "mailbox": "alice@contoso.com"}},
		{"literal beats wildcard at same position", "exchange", "GET", "/tenants/t1/mailboxes/m1/messages",
			"Get-MailboxMessage", map[string]string{"tenant": "t1", "mailbox": "m1"}},
		{"wildcard when the literal differs", "exchange", "GET", "/tenants/t1/mailboxes/m1/calendar",
			"Get-MailboxItem", map[string]string{"tenant": "t1", "mailbox": "m1", "kind": "calendar"}},
		{"more literals win", "exchange", "GET", "/tenants/t1/mailboxes/archive/notes/7",
			"Get-ArchiveMessage", map[string]string{"tenant": "t1", "kind": "notes", "id": "7"}},
		{"equal literals: leftmost literal wins", "exchange", "GET", "/tenants/t1/mailboxes/archive/archive/7",
			"Get-ArchiveMessage", map[string]string{"tenant": "t1", "kind": "archive", "id": "7"}},
		{"falls back to fewer literals", "exchange", "GET", "/tenants/t1/mailboxes/m1/notes/7",
			"Get-ArchiveAny", map[string]string{"tenant": "t1", "mailbox": "m1", "kind": "notes", "id": "7"}},
		{"method selects the entry", "exchange", "DELETE", "/tenants/t1/mailboxes/m1/messages/42",
			"Remove-MailboxMessage", map[string]string{"tenant": "t1", "mailbox": "m1", "id": "42"}},

		{"wrong method", "exchange", "POST", "/tenants/t1/mailboxes", "", nil},
		{"HEAD is not GET", "exchange", "HEAD", "/tenants/t1/mailboxes", "", nil},
		{"method is case-sensitive", "exchange", "get", "/tenants/t1/mailboxes", "", nil},
		{"extra segment", "exchange", "GET", "/tenants/t1/mailboxes/m1/messages/42/x", "", nil},
		{"missing segment", "exchange", "GET", "/tenants/t1", "", nil},
		{"missing wildcard value", "exchange", "GET", "/tenants//mailboxes", "", nil},
		{"trailing slash", "exchange", "GET", "/tenants/t1/mailboxes/", "", nil},
		{"literal is case-sensitive", "exchange", "GET", "/tenants/t1/Mailboxes", "", nil},
		{"literal is not decoded", "exchange", "GET", "/tenants/t1/mailbo%78es", "", nil},
		{"dot-dot never binds a wildcard", "exchange", "GET", "/tenants/../mailboxes", "", nil},
		{"dot never binds a wildcard", "exchange", "GET", "/tenants/./mailboxes", "", nil},
		{"no leading slash", "exchange", "GET", "tenants/t1/mailboxes", "", nil},
		{"empty path", "exchange", "GET", "", "", nil},
		{"root", "exchange", "GET", "/", "", nil},
		{"other service's route", "onedrive", "GET", "/tenants/t1/mailboxes", "", nil},
		{"unknown service", "teams", "GET", "/tenants/t1/mailboxes", "", nil},
		{"very long path", "exchange", "GET", strings.Repeat("/x", 10000), "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, vars, ok := c.Match(tt.service, tt.method, tt.path)
			// Classify is the same match, for the tenant alone.
			ca, tenant, cok := c.Classify(tt.service, tt.method, tt.path)
			if cok != ok || ca != a || tenant != vars["tenant"] {
				t.Errorf("Classify = %+v %q %t; Match = %+v %v %t", ca, tenant, cok, a, vars, ok)
			}
			if tt.want == "" {
				if ok {
					t.Fatalf("Match(%q, %q, %q) = %s %v, want no match", tt.service, tt.method, tt.path, a.Name, vars)
				}
				return
			}
			if !ok {
				t.Fatalf("Match(%q, %q, %q): no match, want %s", tt.service, tt.method, tt.path, tt.want)
			}
			if a.Name != tt.want || a.Service != tt.service || a.Method != tt.method {
				t.Errorf("Match = %+v, want %s of %s", a, tt.want, tt.service)
			}
			if !maps.Equal(vars, tt.vars) {
				t.Errorf("vars = %v, want %v", vars, tt.vars)
			}
		})
	}
}

// Precedence must not depend on the order entries appear in the file.
func TestMatchIgnoresFileOrder(t *testing.T) {
	t.Parallel()
	wild := entry("Get-MailboxItem", "GET", "/tenants/{tenant}/mailboxes/{mailbox}/{kind}", "read")
	lit := entry("Get-MailboxMessage", "GET", "/tenants/{tenant}/mailboxes/{mailbox}/messages", "read")
	left := entry("Get-LeftLiteral", "GET", "/tenants/{tenant}/a/{x}", "read")
	right := entry("Get-RightLiteral", "GET", "/tenants/{tenant}/{y}/b", "read")
	for _, doc := range []string{svc(wild, lit, left, right), svc(lit, wild, right, left)} {
		c, err := ParseCatalog([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if a, _, _ := c.Match("exchange", "GET", "/tenants/t/mailboxes/m/messages"); a.Name != "Get-MailboxMessage" {
			t.Errorf("got %q, want Get-MailboxMessage for %s", a.Name, doc)
		}
		if a, _, _ := c.Match("exchange", "GET", "/tenants/t/a/b"); a.Name != "Get-LeftLiteral" {
			t.Errorf("got %q, want Get-LeftLiteral for %s", a.Name, doc)
		}
	}
}

func TestCatalogAccessors(t *testing.T) {
	t.Parallel()
	c, err := ParseCatalog([]byte(matchDoc))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Services(), []string{"exchange", "onedrive"}; !slices.Equal(got, want) {
		t.Errorf("Services() = %v, want %v", got, want)
	}
	c.Services()[0] = "mutated"
	if c.Services()[0] != "exchange" {
		t.Error("Services() exposes the catalog's own slice")
	}

	names, ok := c.Activities("exchange")
	want := []string{"Get-Mailbox", "Get-MailboxMessage", "Get-MailboxItem", "Get-ArchiveAny",
		"Get-ArchiveMessage", "Get-MailboxArchive", "Remove-MailboxMessage"}
	if !ok || !slices.Equal(names, want) {
		t.Errorf("Activities(exchange) = %v, %v; want %v (file order)", names, ok, want)
	}
	names[0] = "mutated"
	if again, _ := c.Activities("exchange"); again[0] != "Get-Mailbox" {
		t.Error("Activities() exposes the catalog's own slice")
	}
	if names, ok := c.Activities("teams"); ok || names != nil {
		t.Errorf("Activities(teams) = %v, %v; want nil, false", names, ok)
	}

	a, ok := c.Lookup("exchange", "Remove-MailboxMessage")
	wantA := Activity{Service: "exchange", Name: "Remove-MailboxMessage", Method: "DELETE",
		Pattern: "/tenants/{tenant}/mailboxes/{mailbox}/messages/{id}", Access: AccessWrite}
	if !ok || a != wantA {
		t.Errorf("Lookup = %+v, %v; want %+v", a, ok, wantA)
	}
	if _, ok := c.Lookup("onedrive", "Remove-MailboxMessage"); ok {
		t.Error("Lookup found an activity in the wrong service")
	}
	if _, ok := c.Lookup("teams", "Get-Mailbox"); ok {
		t.Error("Lookup found an activity of an unknown service")
	}
}

func TestLoadCatalog(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"good.json": {Data: []byte(svc(okEntry))},
		"bad.json":  {Data: []byte(svc(entry("Get-Mailbox", "GET", "/mailboxes", "read")))},
	}
	if _, err := LoadCatalog(fsys, "good.json"); err != nil {
		t.Errorf("good.json: %v", err)
	}
	_, err := LoadCatalog(fsys, "bad.json")
	if !errors.Is(err, ErrInvalidCatalog) || !strings.HasPrefix(err.Error(), "bad.json:1: ") {
		t.Errorf("bad.json: got %v, want an ErrInvalidCatalog naming the file and line", err)
	}
	if _, err := LoadCatalog(fsys, "missing.json"); err == nil || errors.Is(err, ErrInvalidCatalog) {
		t.Errorf("missing.json: got %v, want a read error", err)
	}
}

// The catalog shipped in the binary must parse and keep the activities the
// product promises (DESIGN.md, rego/README.md).
func TestDefaultCatalog(t *testing.T) {
	t.Parallel()
	c, err := LoadCatalog(rego.FS, "activities/data.json")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Services(), []string{"exchange", "onedrive", "sharepoint"}; !slices.Equal(got, want) {
		t.Errorf("Services() = %v, want %v", got, want)
	}
	required := []Activity{
		{"exchange", "Get-Mailbox", "GET", "/tenants/{tenant}/mailboxes", AccessRead},
		{"exchange", "Get-MailboxMessage", "GET", "/tenants/{tenant}/mailboxes/{mailbox}/messages", AccessRead},
		{"exchange", "Get-MailboxFolderStatistics", "GET", "/tenants/{tenant}/mailboxes/{mailbox}/statistics", AccessRead},
		{"exchange", "New-MailboxRepairRequest", "POST", "/tenants/{tenant}/mailboxes/{mailbox}/repair", AccessWrite},
		{"exchange", "Remove-MailboxMessage", "DELETE", "/tenants/{tenant}/mailboxes/{mailbox}/messages/{id}", AccessWrite},
	}
	for _, want := range required {
		got, ok := c.Lookup(want.Service, want.Name)
		if !ok || got != want {
			t.Errorf("Lookup(%s, %s) = %+v, %v; want %+v", want.Service, want.Name, got, ok, want)
		}
	}
	// Every service offers at least one read and one write, and every entry
	// is reachable through Match with its own pattern.
	for _, s := range c.Services() {
		names, _ := c.Activities(s)
		var reads, writes int
		for _, n := range names {
			a, _ := c.Lookup(s, n)
			switch a.Access {
			case AccessRead:
				reads++
			case AccessWrite:
				writes++
			}
			path := strings.NewReplacer("{", "v-", "}", "").Replace(a.Pattern)
			if m, vars, ok := c.Match(s, a.Method, path); !ok || m.Name != n || vars["tenant"] != "v-tenant" {
				t.Errorf("Match(%s, %s, %s) = %s %v %v; want %s", s, a.Method, path, m.Name, vars, ok, n)
			}
		}
		if reads == 0 || writes == 0 {
			t.Errorf("%s: %d read and %d write activities, want at least one of each", s, reads, writes)
		}
	}
}
