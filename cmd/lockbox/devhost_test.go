package main

import (
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDevSigninRefusesForeignHost: "lockbox dev" offers sign-in as any dev
// identity with no credential, on a loopback listener, which a web page
// the developer opens reaches by DNS rebinding (console's
// TestDevSigninAnswersOnlyAtLoopback). Through the real dev server: a
// page naming its own host gets no session.
func TestDevSigninRefusesForeignHost(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	stdout, _ := runDev(t, devEnv(dir))
	m := regexp.MustCompile(`console  (http://127\.0\.0\.1:(\d+))/console/`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no console URL in the banner:\n%s", stdout.String())
	}
	base, port := m[1], m[2]
	attacker := "rebind.attacker.example:" + port
	form := url.Values{"subject": {"lara@provider.example"}}
	req, err := http.NewRequest(http.MethodPost, base+"/console/signin/dev", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = attacker
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://"+attacker)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode < 400 && len(cookies) > 0 {
		// Show the session works for the rebinding page.
		get, _ := http.NewRequest(http.MethodGet, base+"/console/tenants", nil)
		get.Host = attacker
		for _, c := range cookies {
			get.AddCookie(c)
		}
		page, err := noRedirect.Do(get)
		status, where := 0, ""
		if err == nil {
			status, where = page.StatusCode, page.Header.Get("Location")
			page.Body.Close()
		}
		var names []string
		for _, c := range cookies {
			names = append(names, c.Name)
		}
		t.Errorf("POST /console/signin/dev with Host %s (a DNS-rebinding page) signed in as the provider's Lockbox administrator: %d, cookies %v; GET /console/tenants with them: %d %s",
			attacker, resp.StatusCode, names, status, where)
	}
}
