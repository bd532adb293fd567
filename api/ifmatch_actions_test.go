package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
)

// TestRequestRoutesRefuseAnIfMatchTheyCantEvaluate: filing a request and
// acting on one ignored If-Match. A lockbox request has no ETag, so no tag
// matches it (RFC 9110 13.1.1), yet an approval sent on condition that the
// request was still as its sender read it was made unconditionally. Such
// a condition is refused (400 invalid_if_match) and nothing changes; "*"
// holds, and the right and the request still come first.
func TestRequestRoutesRefuseAnIfMatchTheyCantEvaluate(t *testing.T) {
	e := newEnv(t)
	req := e.file(alice, "contoso", "exchange")
	approve := "/v1/requests/" + req.ID + "/approve"
	for _, v := range []string{`"1"`, `W/"1"`, `"1", "2"`, `""`} {
		wantError(t, e.do(mia, "POST", approve, map[string]string{"comment": "ok"}, withHeader("If-Match", v)),
			http.StatusBadRequest, "invalid_if_match", "lockbox requests have no ETag")
		wantError(t, e.do(alice, "POST", "/v1/requests/"+req.ID+"/cancel", nil, withHeader("If-Match", v)),
			http.StatusBadRequest, "invalid_if_match", "")
	}
	// Two headers are one list.
	wantError(t, e.do(mia, "POST", approve, nil, withHeader("If-Match", "*"), withHeader("If-Match", `"1"`)),
		http.StatusBadRequest, "invalid_if_match", "")
	got := decode[grants.Request](t, e.do(mia, "GET", "/v1/requests/"+req.ID, nil), http.StatusOK)
	if got.State != grants.StatePendingManager {
		t.Fatalf("state %s after refused conditions, want %s", got.State, grants.StatePendingManager)
	}
	// Who may not act, or can't see the request, is told that first.
	wantError(t, e.do(auditor, "POST", approve, nil, withHeader("If-Match", `"1"`)), http.StatusForbidden, "forbidden", "")
	wantError(t, e.do(fabrikamAdmin, "POST", approve, nil, withHeader("If-Match", `"1"`)), http.StatusNotFound, "not_found", "")

	filing := map[string]any{"tenant": "fabrikam", "service": "exchange", "service_request": "SR-2", "reason": "repair", "duration": (time.Hour).String()}
	wantError(t, e.do(alice, "POST", "/v1/requests", filing, withHeader("If-Match", `"0"`)), http.StatusBadRequest, "invalid_if_match", "")
	wantError(t, e.do(contosoAdmin, "POST", "/v1/requests", filing, withHeader("If-Match", `"0"`)), http.StatusForbidden, "forbidden", "")
	list := decode[struct{ Requests []grants.Request }](t, e.do(mia, "GET", "/v1/requests?tenant=fabrikam", nil), http.StatusOK)
	if len(list.Requests) != 0 {
		t.Fatalf("a request was filed under a refused condition: %+v", list.Requests)
	}

	// "*" holds: the request exists.
	got = decode[grants.Request](t, e.do(mia, "POST", approve, nil, withHeader("If-Match", "*")), http.StatusOK)
	if got.State != grants.StatePendingCustomer {
		t.Errorf("state %s after approving with If-Match: *, want %s", got.State, grants.StatePendingCustomer)
	}
	decode[grants.Request](t, e.do(alice, "POST", "/v1/requests", filing, withHeader("If-Match", "*")), http.StatusCreated)
}
