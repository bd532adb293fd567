package api_test

import (
	"net/http"
	"net/url"
	"testing"
)

// TestLimitIsCanonical: openapi.yaml documents limit as an integer, and
// every paged endpoint takes only its one decimal spelling. strconv.Atoi
// also read "+5" and "05" as 5, so a limit a script built wrongly was
// obeyed as another one than it wrote.
func TestLimitIsCanonical(t *testing.T) {
	e := newEnv(t)
	paged := []struct {
		who  user
		path string
	}{
		{mia, "/v1/requests?"},
		{mia, "/v1/requests?tenant=contoso&"},
		{auditor, "/v1/audit?"},
		{contosoAdmin, "/v1/audit?tenant=contoso&"},
	}
	for _, p := range paged {
		for _, v := range []string{"+5", "05", "0005", "+0", "-0", "00", " 5", "5 ", "5.0", "5e0", "0x5", "٥", "+1000", "01000"} {
			wantError(t, e.do(p.who, "GET", p.path+"limit="+url.QueryEscape(v), nil), http.StatusBadRequest, "invalid_limit", "1000")
		}
		for _, v := range []string{"5", "1000", "1"} {
			if r := e.do(p.who, "GET", p.path+"limit="+v, nil); r.status != http.StatusOK {
				t.Errorf("GET %slimit=%s: %d %s", p.path, v, r.status, r.body)
			}
		}
	}
}
