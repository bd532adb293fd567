package api_test

import (
	"strings"
	"testing"
)

// TestAuditRequestIDFilterRefusesWhatIsNoRequestID: a request id is a
// lower-case UUID, and the audit log's request_id filter matches it
// exactly. One in capitals (as a GUID is often written), cut short or
// mistyped matched no record and answered an empty page or export, 200:
// "nothing was done under this request", when the id was only written
// otherwise. It is 400 invalid_request_id, as everywhere else a request
// id is taken, and the search, export and HEAD answer alike.
func TestAuditRequestIDFilterRefusesWhatIsNoRequestID(t *testing.T) {
	e := newEnv(t)
	req := e.file(alice, "contoso", "exchange")
	e.operatorActions(req, 3, "Get-Mailbox")
	for _, path := range []string{"/v1/audit", "/v1/audit/export"} {
		// The id itself finds the request's records.
		if r := e.do(contosoAdmin, "GET", path+"?tenant=contoso&request_id="+req.ID, nil); r.status != 200 || !strings.Contains(string(r.body), req.ID) {
			t.Fatalf("GET %s with the request's id: %d %s", path, r.status, r.body)
		}
		for _, id := range []string{strings.ToUpper(req.ID), req.ID[:8], "not-a-request"} {
			for _, method := range []string{"GET", "HEAD"} {
				r := e.do(contosoAdmin, method, path+"?tenant=contoso&request_id="+id, nil)
				if method == "HEAD" {
					if r.status != 400 {
						t.Errorf("HEAD %s request_id=%s: %d, want 400", path, id, r.status)
					}
					continue
				}
				if r.status != 400 || !strings.Contains(string(r.body), `"invalid_request_id"`) {
					t.Errorf("GET %s request_id=%s: %d %s; want 400 invalid_request_id", path, id, r.status, r.body)
				}
			}
		}
	}
}
