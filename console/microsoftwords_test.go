package console_test

import "testing"

// TestPagesUseMicrosoftsWords: a tenant's admin who knows Microsoft 365
// follows its instructions here: "Support > Customer Lockbox Requests"
// lists the requests, and Customer Lockbox is turned on by ticking
// "Require approval for all data access requests".
func TestPagesUseMicrosoftsWords(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(contosoAdmin)
	mustContain(t, "requests page", b.get("/console/requests"),
		"<title>&#x2068;Customer Lockbox requests&#x2069; · Lockbox admin center</title>", "<h1>Customer Lockbox requests</h1>")
	mustContain(t, "settings page", b.get("/console/settings"),
		`<label for="lockbox_enabled">Require approval for all data access requests</label>`)
	// The provider's onboarding form sets the same switch: the same words.
	mustContain(t, "onboarding form", e.signIn(lara).get("/console/tenants"),
		`<label for="lockbox_enabled">Require approval for all data access requests</label>`)
}
