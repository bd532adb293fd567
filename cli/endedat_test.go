package cli

import (
	"strings"
	"testing"
)

// TestEndedRequestShowsWhenItEnded: a revoked request keeps the end of
// the window it was approved for, and lockboxctl showed that under
// EXPIRES/DECIDE BY: a tenant administrator who had just revoked access
// read it as lasting two hours more. A denied request showed "-". A
// request that ended now shows when it ended, in the table and as its own
// line, "Ended:", beside the window's end. The answers here lack ended_at,
// as a server older than it answers: lockboxctl reads the time from the
// history (TestEndedAtFromTheAPI has the server send it).
func TestEndedRequestShowsWhenItEnded(t *testing.T) {
	revoked := `{"id":"` + reqID + `","tenant":"contoso","service":"exchange","service_request":"SR-1","reason":"r","duration":"2h","activities":[],
		"requester":"Microsoft Operator","state":"revoked","created_at":"2026-03-04T08:00:00Z",
		"approved_at":"2026-03-04T08:10:00Z","expires_at":"2026-03-04T10:10:00Z","history":[
		{"action":"create","actor":"Microsoft Operator","actor_kind":"provider","to":"pending_manager","at":"2026-03-04T08:00:00Z"},
		{"action":"approve","actor":"Microsoft Support","actor_kind":"provider","from":"pending_manager","to":"approved","at":"2026-03-04T08:10:00Z"},
		{"action":"revoke","actor":"gina@contoso.example","actor_kind":"tenant","from":"approved","to":"revoked","at":"2026-03-04T08:25:00Z"}]}`
	denied := `{"id":"` + reqID + `","tenant":"contoso","service":"exchange","service_request":"SR-1","reason":"r","duration":"2h","activities":[],
		"requester":"Microsoft Operator","state":"denied","created_at":"2026-03-04T08:00:00Z","history":[
		{"action":"create","actor":"Microsoft Operator","actor_kind":"provider","to":"pending_manager","at":"2026-03-04T08:00:00Z"},
		{"action":"deny","actor":"Microsoft Support","actor_kind":"provider","from":"pending_manager","to":"denied","at":"2026-03-04T09:30:00Z"}]}`
	for _, tc := range []struct {
		name, body, ended string
	}{
		{"revoked", revoked, "2026-03-04 08:25:00Z"},
		{"denied", denied, "2026-03-04 09:30:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, []string{"describe", "request", reqID}, nil, map[string]reply{"GET /v1/requests/" + reqID: {200, tc.body}})
			if r.code != exitOK {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			lines := strings.Split(r.stdout, "\n")
			if len(lines) < 2 || !strings.HasSuffix(strings.TrimSpace(lines[1]), tc.ended) {
				t.Errorf("table row %q: want it to end with %s, when the request ended", lines[1], tc.ended)
			}
			if !strings.Contains(r.stdout, "Ended:") || !strings.Contains(r.stdout[strings.Index(r.stdout, "Ended:"):], tc.ended) {
				t.Errorf("no \"Ended:  %s\" line:\n%s", tc.ended, r.stdout)
			}
		})
	}
	// Still approved: the window's end, and no end yet.
	approved := strings.Replace(strings.Replace(revoked, `"state":"revoked"`, `"state":"approved"`, 1), `,
		{"action":"revoke","actor":"gina@contoso.example","actor_kind":"tenant","from":"approved","to":"revoked","at":"2026-03-04T08:25:00Z"}`, "", 1)
	r := run(t, []string{"describe", "request", reqID}, nil, map[string]reply{"GET /v1/requests/" + reqID: {200, approved}})
	lines := strings.Split(r.stdout, "\n")
	if r.code != exitOK || len(lines) < 2 || !strings.HasSuffix(strings.TrimSpace(lines[1]), "2026-03-04 10:10:00Z") {
		t.Errorf("approved: exit %d, stdout %q: want the row to end with the window's end", r.code, r.stdout)
	}
}

// TestEndedAtFromTheAPI: lockboxctl shows the API's ended_at when the
// server sends it, and prints then exactly what it printed from the
// history before the server sent it.
func TestEndedAtFromTheAPI(t *testing.T) {
	revoked := `{"id":"` + reqID + `","tenant":"contoso","service":"exchange","service_request":"SR-1","reason":"r","duration":"2h","activities":[],
		"requester":"Microsoft Operator","state":"revoked","created_at":"2026-03-04T08:00:00Z",
		"approved_at":"2026-03-04T08:10:00Z","expires_at":"2026-03-04T10:10:00Z",ENDED"history":[
		{"action":"create","actor":"Microsoft Operator","actor_kind":"provider","to":"pending_manager","at":"2026-03-04T08:00:00Z"},
		{"action":"approve","actor":"Microsoft Support","actor_kind":"provider","from":"pending_manager","to":"approved","at":"2026-03-04T08:10:00Z"},
		{"action":"revoke","actor":"gina@contoso.example","actor_kind":"tenant","from":"approved","to":"revoked","at":"2026-03-04T08:25:00Z"}]}`
	describe := func(ended string) string {
		t.Helper()
		r := run(t, []string{"describe", "request", reqID}, nil, map[string]reply{"GET /v1/requests/" + reqID: {200, strings.Replace(revoked, "ENDED", ended, 1)}})
		if r.code != exitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		return r.stdout
	}
	fromHistory := describe("")
	if got := describe(`"ended_at":"2026-03-04T08:25:00Z",`); got != fromHistory {
		t.Errorf("with ended_at the output changed:\n%s\nwithout it:\n%s", got, fromHistory)
	}
	// The server's word, not the history's: a minute and a second apart.
	got := describe(`"ended_at":"2026-03-04T08:26:01Z",`)
	lines := strings.Split(got, "\n")
	if len(lines) < 2 || !strings.HasSuffix(strings.TrimSpace(lines[1]), "2026-03-04 08:26:01Z") {
		t.Errorf("table row %q: want it to end with ended_at, 2026-03-04 08:26:01Z", lines[1])
	}
	if i := strings.Index(got, "Ended:"); i < 0 || !strings.HasPrefix(strings.TrimSpace(got[i+len("Ended:"):]), "2026-03-04 08:26:01Z") {
		t.Errorf("no \"Ended:  2026-03-04 08:26:01Z\" line:\n%s", got)
	}
}
