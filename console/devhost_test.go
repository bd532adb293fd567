package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/console"
)

// TestDevSigninAnswersOnlyAtLoopback: the dev sign-in needs no credential
// and rests on the listener being on loopback, which any web page the
// developer opens reaches by DNS rebinding: its own name resolved to
// 127.0.0.1, its requests name its own host, and the browser takes them
// for same-origin, so the cross-origin checks passed and the page signed
// in as the provider's administrator. With dev identities the console
// answers only at a loopback name or address or LOCKBOX_CONSOLE_URL's
// host; without them, at any host a proxy in front of it sends.
func TestDevSigninAnswersOnlyAtLoopback(t *testing.T) {
	parallel(t)
	post := func(e *env, host string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/console/signin/dev", strings.NewReader(url.Values{"subject": {mia.Subject}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "http://"+host)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	e := newEnv(t, func(c *console.Config) { c.PublicURL = "http://lockbox.test:8080" })
	for _, host := range []string{"rebind.attacker.example:8080", "rebind.attacker.example", "192.0.2.7:8080", "[2001:db8::1]:8080",
		"localhost.attacker.example:8080", "0.0.0.0:8080", "lockbox.test.attacker.example"} {
		if r := post(e, host); r.StatusCode != http.StatusMisdirectedRequest || len(r.Cookies()) > 0 {
			t.Errorf("dev sign-in at Host %s: %d, cookies %v; want 421 and none", host, r.StatusCode, r.Cookies())
		}
	}
	if !strings.Contains(e.logs.String(), "rebind.attacker.example") {
		t.Errorf("the refusal is not logged with its host:\n%s", e.logs.String())
	}
	for _, host := range []string{"127.0.0.1:8080", "127.0.0.1", "localhost:8080", "LOCALHOST.", "app.localhost:8080", "[::1]:8080", "lockbox.test:8080", "LOCKBOX.TEST"} {
		if r := post(e, host); r.StatusCode != http.StatusSeeOther || len(r.Cookies()) == 0 {
			t.Errorf("dev sign-in at Host %s: %d, cookies %v; want 303 and a session", host, r.StatusCode, r.Cookies())
		}
	}
	// Without dev identities nothing signs in for free: any host is served.
	prod := newStores(t, newClock())
	prod.serve(prod.consoleConfig(), false)
	if r := post(prod, "lockbox.example.com"); r.StatusCode != http.StatusForbidden {
		t.Errorf("without dev identities, a dev sign-in at another host: %d, want the sign-in's own 403", r.StatusCode)
	}
}
