package policy

// Input is everything the policy sees about one proxied call. The proxy
// builds it; the policy reads it as `input`. Field names are the contract
// with the security team's Rego: change them only with the policies.
type Input struct {
	// Operator is the verified caller.
	Operator Operator `json:"operator"`
	// Call is the canonical call being judged.
	Call Call `json:"call"`
	// Grant is the grant for (tenant, operator, service), or nil when there
	// is none.
	Grant *Grant `json:"grant"`
	// Tenant holds the tenant's Customer Lockbox settings.
	Tenant Tenant `json:"tenant"`
	// Now is the decision time, RFC 3339 with nanoseconds in UTC. The same
	// time is passed to the evaluation, so time.now_ns() agrees with it.
	Now string `json:"now"`
}

// Operator is the support engineer making the call.
type Operator struct {
	ID    string   `json:"id"`
	Roles []string `json:"roles"`
}

// Call is the request as the proxy canonicalized and classified it.
type Call struct {
	Method   string `json:"method"`
	Path     string `json:"path"` // canonical path within the service, e.g. /tenants/contoso/mailboxes
	Service  string `json:"service"`
	Activity string `json:"activity"` // catalog name, e.g. Get-Mailbox
	Access   string `json:"access"`   // read or write
	Tenant   string `json:"tenant"`   // from the matched pattern
	ClientIP string `json:"client_ip"`
}

// Grant is the approved access, as stored.
type Grant struct {
	RequestID  string   `json:"request_id"`
	Tenant     string   `json:"tenant"`
	Operator   string   `json:"operator"`
	Service    string   `json:"service"`
	Activities []string `json:"activities"` // what the request named; empty means reads only
	Approver   string   `json:"approver"`
	// TenantApproved is true when an approver of the tenant gave the final
	// approval; false when the provider's manager did, while the tenant's
	// lockbox was off.
	TenantApproved bool   `json:"tenant_approved"`
	ApprovedAt     string `json:"approved_at"` // RFC 3339, UTC
	ExpiresAt      string `json:"expires_at"`  // RFC 3339, UTC
}

// Tenant is the tenant's settings.
type Tenant struct {
	ID             string `json:"id"`
	LockboxEnabled bool   `json:"lockbox_enabled"`
}

// Decision is the policy's answer. Only an explicit Allow == true permits
// a call.
type Decision struct {
	Allow   bool     `json:"allow"`
	Reasons []string `json:"reasons"`
}
