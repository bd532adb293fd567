package api_test

import (
	"net/http"
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
)

// TestRequestDurationBounds: a request's duration is at least a minute
// and at most 4 hours. "1ns" and "1µs" were filed, and approved gave a
// grant that ended before the engineer's first call could use it. A
// refusal names the bounds and the duration read, in the short form
// responses write, spelt in ASCII ("1us", as time.ParseDuration reads it,
// not "1µs"); a duration that does not parse is quoted as it was sent,
// once (it was also repeated with its non-ASCII bytes as \x escapes).
func TestRequestDurationBounds(t *testing.T) {
	body := func(d string) string {
		return `{"tenant":"contoso","service":"exchange","service_request":"SR-1","reason":"r","duration":"` + d + `"}`
	}
	const bounds = "duration must be at least 1m and at most 4h, got "
	for _, c := range []struct {
		sent   string // as written in the JSON body
		status int
		code   string
		msg    string // the whole message
	}{
		{sent: "1ns", status: 400, code: "invalid_duration", msg: bounds + "1ns"},
		{sent: "1µs", status: 400, code: "invalid_duration", msg: bounds + "1us"},
		{sent: `1\u00b5s`, status: 400, code: "invalid_duration", msg: bounds + "1us"},
		{sent: "1us", status: 400, code: "invalid_duration", msg: bounds + "1us"},
		{sent: "1.5us", status: 400, code: "invalid_duration", msg: bounds + "1.5us"},
		{sent: "999ms", status: 400, code: "invalid_duration", msg: bounds + "999ms"},
		{sent: "59.999s", status: 400, code: "invalid_duration", msg: bounds + "59.999s"},
		{sent: "0s", status: 400, code: "invalid_duration", msg: bounds + "0s"},
		{sent: "-1h", status: 400, code: "invalid_duration", msg: bounds + "-1h"},
		{sent: "4h0m1s", status: 400, code: "invalid_duration", msg: bounds + "4h0m1s"},
		{sent: "1m", status: 201},
		{sent: "60s", status: 201},
		{sent: "4h", status: 201},
		{sent: "1µ", status: 400, code: "invalid_json",
			msg: `invalid JSON body: duration "1µ" must be a number with a unit, such as "2h", "90m" or "1h30m"`},
		{sent: "90", status: 400, code: "invalid_json",
			msg: `invalid JSON body: duration "90" must be a number with a unit, such as "2h", "90m" or "1h30m"`},
		// A bidirectional override is quoted as an escape, never sent on
		// to a terminal or a page as itself.
		{sent: `5\u202eh`, status: 400, code: "invalid_json",
			msg: `invalid JSON body: duration "5\u202eh" must be a number with a unit, such as "2h", "90m" or "1h30m"`},
	} {
		t.Run(c.sent, func(t *testing.T) {
			e := newEnv(t)
			r := e.do(alice, "POST", "/v1/requests", body(c.sent))
			if c.status == http.StatusCreated {
				decode[grants.Request](t, r, http.StatusCreated)
				return
			}
			wantError(t, r, c.status, c.code, "")
			if got := errorOf(t, r).Message; got != c.msg {
				t.Errorf("message %q, want %q", got, c.msg)
			}
		})
	}
}
