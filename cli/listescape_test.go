package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestRequestListJSONEscapesControls: a list of requests in -o json shows
// another party's text as one request does (writeJSON): a C1 control or a
// bidirectional override in a reason is written as an escape, not as
// itself, and the document still reads back as the server's requests.
// The list is encoded a request at a time (jsonRequests), and that path
// wrote them raw.
func TestRequestListJSONEscapesControls(t *testing.T) {
	r := sampleRequest()
	r.Reason = "fine\u009b31m\u202eevil\u0085next"
	page := mustJSON(wire.RequestList{Requests: []wire.Request{r}})
	for _, args := range [][]string{
		{"get", "requests", "-o", "json"},
		{"get", "requests", "--all", "-o", "json"},
		{"request", "list", "-o", "json"},
		{"Get-AccessToCustomerDataRequest", "-o", "json"},
		{"get", "requests", "--state", "pending", "--all", "-o", "json"},
	} {
		res := run(t, args, nil, map[string]reply{"GET /v1/requests": {200, page}})
		if res.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.code, res.stderr)
		}
		for _, c := range res.stdout {
			if c != '\n' && unsafeRune(c) {
				t.Errorf("%v: -o json writes %U as is:\n%s", args, c, res.stdout)
				break
			}
		}
		var back wire.RequestList
		// The pending listing is two, each answering the same request.
		err := json.Unmarshal([]byte(res.stdout), &back)
		if err != nil || len(back.Requests) == 0 {
			t.Errorf("%v: output does not read back as the server's requests (%v):\n%s", args, err, res.stdout)
		}
		for _, got := range back.Requests {
			if got.Reason != r.Reason {
				t.Errorf("%v: reason reads back as %q, want %q", args, got.Reason, r.Reason)
			}
		}
		if !strings.Contains(res.stdout, `\u202e`) {
			t.Errorf("%v: the override is not shown escaped:\n%s", args, res.stdout)
		}
	}
}
