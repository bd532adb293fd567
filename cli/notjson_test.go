package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAnswerThatIsNotJSONNamesTheAddress: a 200 whose body is not the
// API's JSON (empty, a gateway's plain text, a document cut short, JSON
// of another shape) came from something in front of the API's address,
// or lost its end on the way. lockboxctl printed the Go error chain
// ("client: GET /v1/requests: decoding response: invalid character 'u'
// looking for beginning of value"), naming neither the answer nor what to
// check. It now says, on one line, what the answer was and asks after the
// address, as it does for an HTML page.
func TestAnswerThatIsNotJSONNamesTheAddress(t *testing.T) {
	for _, c := range []struct {
		name, body, want string
	}{
		{"empty", "", "is empty, not the API's JSON"},
		{"plain text", "upstream ok\n", "is not the API's JSON (invalid character 'u' looking for beginning of value)"},
		{"cut short", `{"requests": [`, "ends midway through its JSON: cut off on the way, or not the API's answer"},
		{"another shape", `"ok"`, "is not the JSON lockboxctl expects (a string)"},
		{"an array", `[]`, "is not the JSON lockboxctl expects (an array)"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, c.body)
		}))
		for _, args := range [][]string{{"get", "requests"}, {"approve", reqID}} {
			t.Run(c.name+"/"+strings.Join(args, " "), func(t *testing.T) {
				env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
				var stdout, stderr bytes.Buffer
				code := Run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
				msg := stderr.String()
				call := "GET /v1/requests"
				if args[0] == "approve" {
					call = "POST /v1/requests/" + reqID + "/approve"
				}
				if code != exitError || !strings.HasPrefix(msg, "lockboxctl: the answer to "+call+" ") || !strings.Contains(msg, c.want) ||
					!strings.HasSuffix(msg, "is "+srv.URL+" the API's address (--addr, $LOCKBOX_ADDR)?\n") {
					t.Errorf("exit %d, stderr %q: want exit 1, the answer to %s %s, asking after the address", code, msg, call, c.want)
				}
				if strings.Count(msg, "\n") != 1 || strings.Contains(msg, "client:") || strings.Contains(msg, "decoding response") {
					t.Errorf("stderr %q: want one line without Go's error chain", msg)
				}
				if stdout.Len() != 0 {
					t.Errorf("stdout: %q", stdout.String())
				}
			})
		}
		srv.Close()
	}
}
