package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestOffboardIfMatchNeverOffboardsUnconditionally: "tenant offboard
// --if-match" sent the ETag on the offboarding and nothing else, so a
// server that does not check it (one whose registry entries have no ETag,
// or one from before offboarding honoured If-Match, which ignored it)
// offboarded the tenant whatever its entry had become, exit 0: the
// condition the administrator asked for was dropped without a word. The
// command now reads the entry first: with no ETag it offboards nothing,
// in one line, exit 1, as "tenant settings set --if-match" does; with an
// ETag other than the one given it offboards nothing, exit 3, as for the
// server's 412. A tenant already offboarded is still sent, so a retry
// finds its offboarding done.
func TestOffboardIfMatchNeverOffboardsUnconditionally(t *testing.T) {
	const offboardPath = "/v1/tenants/contoso/offboard"
	offboarded := sampleTenant()
	offboarded.State = "offboarded"
	for _, c := range []struct {
		name    string
		entry   reply
		code    int
		posted  bool
		stderr  string
		etagArg string
	}{
		{name: "no ETag from the server", entry: reply{200, mustJSON(sampleTenant())}, code: exitError,
			stderr: "lockboxctl: the server sent no ETag for the registry entry of tenant contoso, so --if-match can't be checked; nothing was done\n"},
		{name: "an entry changed since", etagArg: "4", code: exitRefused,
			stderr: "lockboxctl: the registry entry of tenant contoso changed since the ETag \"4\" was read; nothing was done: run 'lockboxctl tenant show contoso' and offboard it with its new ETag if you still mean to\n"},
		{name: "the entry as shown", etagArg: "5", posted: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			replies := map[string]reply{"POST " + offboardPath: {200, mustJSON(offboarded)}}
			if c.entry.status != 0 {
				replies["GET /v1/tenants/contoso"] = c.entry
			}
			arg := c.etagArg
			if arg == "" {
				arg = "5"
			}
			res := run(t, []string{"tenant", "offboard", "contoso", "--reason", "contract ended", "--if-match", arg}, nil, replies)
			posted := false
			for _, k := range res.calls {
				if k.Method == "POST" {
					posted = true
					if k.IfMatch != `"`+arg+`"` {
						t.Errorf("POST sent If-Match %q, want %q", k.IfMatch, `"`+arg+`"`)
					}
				}
			}
			if res.code != c.code || posted != c.posted {
				t.Fatalf("exit %d, offboarding sent: %v; want exit %d, sent: %v\ncalls %+v\nstderr: %s", res.code, posted, c.code, c.posted, res.calls, res.stderr)
			}
			if c.stderr != "" && res.stderr != c.stderr {
				t.Errorf("stderr = %q\nwant     %q", res.stderr, c.stderr)
			}
			if !c.posted && res.stdout != "" {
				t.Errorf("stdout = %q, want nothing: nothing was offboarded", res.stdout)
			}
		})
	}
}

// TestOffboardIfMatchRetriesAnOffboardedTenant: a tenant already offboarded
// (its ETag moved on with the offboarding) is sent whatever --if-match
// says, so a retry whose answer was lost finds its offboarding done, as
// the server answers it.
func TestOffboardIfMatchRetriesAnOffboardedTenant(t *testing.T) {
	offboarded := sampleTenant()
	offboarded.State = "offboarded"
	var posted []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"6"`)
		if r.Method == http.MethodPost {
			posted = append(posted, r.Header.Get("If-Match"))
		}
		_, _ = w.Write([]byte(mustJSON(offboarded)))
	}))
	defer srv.Close()
	env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"tenant", "offboard", "contoso", "--reason", "contract ended", "--if-match", "5"},
		func(k string) string { return env[k] }, &stdout, &stderr)
	if code != 0 || len(posted) != 1 || posted[0] != `"5"` {
		t.Errorf("exit %d, offboardings sent with If-Match %q; want exit 0 and one with \"5\"\n%s", code, posted, stderr.String())
	}
}
