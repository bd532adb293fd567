package console_test

import "testing"

// TestRoleLabelsUseTheContractsNames: the header names an approver's role
// as the product contract (and Microsoft 365) does, "Customer Lockbox
// access approver", the name the API, lockboxctl and README use too.
func TestRoleLabelsUseTheContractsNames(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	b := e.signIn(contosoApprover)
	mustContain(t, "requests page", b.get("/console/requests"), "Customer Lockbox access approver · contoso")
}
