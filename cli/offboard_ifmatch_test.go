package cli

import (
	"slices"
	"strings"
	"testing"
)

// TestOffboardIfMatch: "tenant offboard" sent no If-Match, and nothing
// showed an ETag to send, so an administrator who decided to offboard a
// tenant on its entry as "tenant show" printed it offboarded whatever the
// entry had become since (domains or global administrators changed by
// another administrator). "tenant show" now prints the entry's ETag, and
// --if-match sends it, quoted or not, so that a change saved since refuses
// the offboarding (exit 3, one line saying what to run); without the flag
// nothing changes, and a blank one is refused before anything is sent.
func TestOffboardIfMatch(t *testing.T) {
	offboarded := reply{200, `{"id":"contoso","organization_id":"0f6c2c4e-7a8b-4c3d-9e1f-2a3b4c5d6e7f",` +
		`"display_name":"Contoso","domains":["contoso.example"],"global_admins":[],"onboarded_at":"2026-03-01T09:00:00Z","state":"offboarded",` +
		`"offboarded":{"at":"2026-03-04T10:00:00Z","by":"lara@provider.example","reason":"contract ended"}}`}
	changed := reply{412, `{"error":{"code":"tenant_changed","message":"the registry entry of tenant contoso changed since it was read; nothing was saved: read it again and reapply the change"}}`}
	const path = "/v1/tenants/contoso/offboard"
	for _, c := range []struct {
		name     string
		args     []string
		reply    reply
		code     int
		ifMatch  []string // the If-Match of each call; nil: no call
		stdout   []string
		stderr   string
		noStdout bool
	}{
		{name: "the ETag as printed", args: []string{"--if-match", tenantETag}, reply: offboarded,
			ifMatch: []string{tenantETag}, stdout: []string{"State:", "offboarded", "Offboard reason:", "contract ended"}},
		{name: "the ETag as a shell leaves it", args: []string{"--if-match", "5"}, reply: offboarded,
			ifMatch: []string{`"5"`}, stdout: []string{"offboarded"}},
		{name: "no flag: unconditional, as before", reply: offboarded,
			ifMatch: []string{""}, stdout: []string{"offboarded"}},
		{name: "the entry changed since", args: []string{"--if-match", tenantETag}, reply: changed, code: 3,
			ifMatch: []string{tenantETag}, noStdout: true,
			stderr: "lockboxctl: the registry entry of tenant contoso changed since the ETag \"5\" was read; nothing was done: run 'lockboxctl tenant show contoso' and offboard it with its new ETag if you still mean to (tenant_changed, HTTP 412)\n"},
		{name: "a blank ETag", args: []string{"--if-match", " "}, code: 2, noStdout: true,
			stderr: "--if-match needs the ETag 'lockboxctl tenant show contoso' prints"},
		{name: "a weak ETag is the server's to refuse", args: []string{"--if-match", `W/"5"`}, code: 1, noStdout: true,
			reply:   reply{400, `{"error":{"code":"invalid_if_match","message":"If-Match must be \"*\" or the one ETag a GET of the tenant answered"}}`},
			ifMatch: []string{`W/"5"`}, stderr: "(invalid_if_match, HTTP 400)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"tenant", "offboard", "contoso", "--reason", "contract ended"}, c.args...)
			res := run(t, args, nil, map[string]reply{"POST " + path: c.reply})
			if res.code != c.code {
				t.Fatalf("exit %d, want %d; stderr: %s", res.code, c.code, res.stderr)
			}
			var sent []string
			for _, k := range res.calls {
				if k.Method == "GET" && k.Path == "/v1/tenants/contoso" && len(c.args) > 0 {
					continue // --if-match reads the entry first
				}
				if k.Method != "POST" || k.Path != path || k.Body != `{"reason":"contract ended"}` {
					t.Errorf("call %+v, want only POST %s", k, path)
				}
				sent = append(sent, k.IfMatch)
			}
			if !slices.Equal(sent, c.ifMatch) {
				t.Errorf("If-Match sent %q, want %q", sent, c.ifMatch)
			}
			for _, s := range c.stdout {
				if !strings.Contains(res.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, res.stdout)
				}
			}
			if c.noStdout && res.stdout != "" {
				t.Errorf("stdout = %q, want nothing: nothing was offboarded", res.stdout)
			}
			if !strings.Contains(res.stderr, c.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", res.stderr, c.stderr)
			}
		})
	}
}

// TestTenantShowPrintsItsETag: "tenant show" prints the ETag the API
// answered, which "tenant offboard --if-match" takes; a server from
// before registry entries had revisions sends none, and none is printed.
func TestTenantShowPrintsItsETag(t *testing.T) {
	res := run(t, []string{"tenant", "show", "contoso"}, nil, nil)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var line string
	for l := range strings.Lines(res.stdout) {
		if strings.HasPrefix(l, "ETag:") {
			line = l
		}
	}
	if got := strings.Fields(line); len(got) != 2 || got[1] != tenantETag {
		t.Errorf("ETag line %q, want ETag: %s; stdout:\n%s", line, tenantETag, res.stdout)
	}
	old := run(t, []string{"tenant", "show", "contoso"}, nil, map[string]reply{"GET /v1/tenants/contoso": {200, mustJSON(sampleTenant())}})
	if old.code != 0 || strings.Contains(old.stdout, "ETag") {
		t.Errorf("without an ETag from the server: exit %d, stdout:\n%s", old.code, old.stdout)
	}
}
