package grants_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
)

// TestLifecycleRecords pins the audit record each lifecycle event writes,
// as the provider's auditors read it and as the tenant's admin does: the
// Operation, who (UserId, UserType, the provider-only ProviderUserId),
// from where (ClientIP), the request (ObjectId, LockboxRequestId), the
// ApprovalDecision and the Comment. The product contract names these
// fields and values (Set-AccessToCustomerDataRequest with Approve or Deny,
// the approver, the approver's IP, the request id, a comment; "Microsoft
// Operator" for the engineer), and the tenant's view must never show a
// provider identity or where the provider's staff work from.
func TestLifecycleRecords(t *testing.T) {
	// Every actor acts from an address of its own, so a record naming the
	// wrong one is seen.
	at := func(a grants.Actor, ip string) grants.Actor { a.ClientIP = ip; return a }
	var (
		eng   = at(operator, "192.0.2.10")
		mgr   = at(manager, "192.0.2.20")
		admin = at(globalAdmin, "203.0.113.30")
		adam  = at(approver, "203.0.113.40")
	)
	// want is a record's fields; tenant* are what the tenant's admin reads
	// where they differ from the provider's view.
	type want struct {
		op, user           string
		userType           record.UserType
		providerUser       string
		ip, tenantIP       string
		decision, comment  string
		lockboxOff         bool // the tenant's switch is off before filing
		timeDriven         bool // the event is Lockbox's own
		decisionParameters bool
	}
	tests := []struct {
		name string
		// steps take the request filed by eng to the event under test,
		// which writes the newest record of the request.
		steps func(e *env, t *testing.T, id string)
		want  want
	}{
		{"filed", func(*env, *testing.T, string) {},
			want{op: record.OpNewRequest, user: record.OperatorUserID, userType: record.UserTypeDcAdmin, providerUser: "alice",
				ip: "192.0.2.10", comment: "repair"}},
		{"manager approves", func(e *env, t *testing.T, id string) { e.act(t, id, grants.ActionApprove, mgr) },
			want{op: record.OpManagerDecision, user: record.ProviderUserID, userType: record.UserTypeDcAdmin, providerUser: "mary",
				ip: "192.0.2.20", decision: "Approve", comment: "comment approve", decisionParameters: true}},
		{"manager denies", func(e *env, t *testing.T, id string) { e.act(t, id, grants.ActionDeny, mgr) },
			want{op: record.OpManagerDecision, user: record.ProviderUserID, userType: record.UserTypeDcAdmin, providerUser: "mary",
				ip: "192.0.2.20", decision: "Deny", comment: "comment deny", decisionParameters: true}},
		{"manager's approval is final with the switch off", func(e *env, t *testing.T, id string) { e.act(t, id, grants.ActionApprove, mgr) },
			want{op: record.OpManagerDecision, user: record.ProviderUserID, userType: record.UserTypeDcAdmin, providerUser: "mary",
				ip: "192.0.2.20", decision: "Approve", comment: "comment approve", decisionParameters: true, lockboxOff: true}},
		{"global admin approves", func(e *env, t *testing.T, id string) {
			e.act(t, id, grants.ActionApprove, mgr)
			e.act(t, id, grants.ActionApprove, admin)
		}, want{op: record.OpTenantDecision, user: "gina@contoso.example", userType: record.UserTypeAdmin,
			ip: "203.0.113.30", tenantIP: "203.0.113.30", decision: "Approve", comment: "comment approve", decisionParameters: true}},
		{"assigned approver denies", func(e *env, t *testing.T, id string) {
			e.act(t, id, grants.ActionApprove, mgr)
			e.act(t, id, grants.ActionDeny, adam)
		}, want{op: record.OpTenantDecision, user: "adam@contoso.example", userType: record.UserTypeRegular,
			ip: "203.0.113.40", tenantIP: "203.0.113.40", decision: "Deny", comment: "comment deny", decisionParameters: true}},
		{"engineer cancels", func(e *env, t *testing.T, id string) { e.act(t, id, grants.ActionCancel, eng) },
			want{op: record.OpCancelRequest, user: record.OperatorUserID, userType: record.UserTypeDcAdmin, providerUser: "alice",
				ip: "192.0.2.10", comment: "comment cancel"}},
		{"approver revokes", func(e *env, t *testing.T, id string) {
			e.act(t, id, grants.ActionApprove, mgr)
			e.act(t, id, grants.ActionApprove, admin)
			e.act(t, id, grants.ActionRevoke, adam)
		}, want{op: record.OpRevokeAccess, user: "adam@contoso.example", userType: record.UserTypeRegular,
			ip: "203.0.113.40", tenantIP: "203.0.113.40", comment: "comment revoke"}},
		{"manager revokes", func(e *env, t *testing.T, id string) {
			e.act(t, id, grants.ActionApprove, mgr)
			e.act(t, id, grants.ActionApprove, admin)
			e.act(t, id, grants.ActionRevoke, mgr)
		}, want{op: record.OpRevokeAccess, user: record.ProviderUserID, userType: record.UserTypeDcAdmin, providerUser: "mary",
			ip: "192.0.2.20", comment: "comment revoke"}},
		{"turning the switch on revokes the manager-only grant", func(e *env, t *testing.T, id string) {
			e.act(t, id, grants.ActionApprove, mgr)
			e.setLockbox(t, admin, true)
		}, want{op: record.OpRevokeAccess, user: "gina@contoso.example", userType: record.UserTypeAdmin,
			ip: "203.0.113.30", tenantIP: "203.0.113.30", comment: grants.LockboxOnComment, lockboxOff: true}},
		// Offboarding ends the tenant's requests as the provider: no
		// engineer withdrew the pending one, so it is not theirs to the
		// tenant ("Microsoft Operator") but the provider's.
		{"offboarding cancels the pending request", func(e *env, t *testing.T, id string) {
			if _, err := e.tenants.Offboard(context.Background(), tenanttest.Admin, "192.0.2.50", "contoso", "contract ended"); err != nil {
				t.Fatal(err)
			}
		}, want{op: record.OpCancelRequest, user: record.ProviderUserID, userType: record.UserTypeDcAdmin, providerUser: tenanttest.Admin.Subject,
			ip: "192.0.2.50", comment: grants.OffboardComment}},
		{"offboarding revokes the grant", func(e *env, t *testing.T, id string) {
			e.act(t, id, grants.ActionApprove, mgr)
			e.act(t, id, grants.ActionApprove, admin)
			if _, err := e.tenants.Offboard(context.Background(), tenanttest.Admin, "192.0.2.50", "contoso", "contract ended"); err != nil {
				t.Fatal(err)
			}
		}, want{op: record.OpRevokeAccess, user: record.ProviderUserID, userType: record.UserTypeDcAdmin, providerUser: tenanttest.Admin.Subject,
			ip: "192.0.2.50", comment: grants.OffboardComment}},
		{"undecided for 12 hours", func(e *env, t *testing.T, id string) {
			e.clock.Advance(grants.DecisionWindow)
			if _, err := e.store.Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, want{op: record.OpExpireRequest, user: record.SystemUserID, userType: record.UserTypeSystem, comment: "decision window of 12h elapsed", timeDriven: true}},
		{"window ends", func(e *env, t *testing.T, id string) {
			e.act(t, id, grants.ActionApprove, mgr)
			e.act(t, id, grants.ActionApprove, admin)
			e.clock.Advance(2 * time.Hour)
			if _, err := e.store.Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, want{op: record.OpCompleteAccess, user: record.SystemUserID, userType: record.UserTypeSystem, comment: "access window ended", timeDriven: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			e.log.SetTenantDirectory(e.tenants)
			if err := e.tenants.AddApprover(ctx, admin.Principal, admin.ClientIP, "contoso", adam.Principal.Subject); err != nil {
				t.Fatal(err)
			}
			if tc.want.lockboxOff {
				e.setLockbox(t, admin, false)
			}
			r, err := e.store.Create(ctx, eng, grants.CreateInput{
				Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-7", Reason: "repair", Duration: grants.Duration(2 * time.Hour),
			})
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(time.Minute)
			tc.steps(e, t, r.ID)

			read := func(p identity.Principal) record.Record {
				t.Helper()
				page, err := e.log.Search(ctx, p, audit.Query{Tenant: "contoso", RequestID: r.ID, Operation: tc.want.op, Limit: 1})
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Records) != 1 {
					t.Fatalf("%d %s records of request %s", len(page.Records), tc.want.op, r.ID)
				}
				return page.Records[0]
			}
			w := tc.want
			for _, v := range []struct {
				who                    string
				p                      identity.Principal
				ip, providerUser, user string
			}{
				{"provider's auditor", provAuditor.Principal, w.ip, w.providerUser, w.user},
				{"tenant's admin", admin.Principal, w.tenantIP, "", w.user},
			} {
				rec := read(v.p)
				got := fmt.Sprintf("UserId=%q UserType=%s ProviderUserId=%q ClientIP=%q ApprovalDecision=%q Comment=%q",
					rec.UserId, rec.UserType, rec.ProviderUserId, rec.ClientIP, rec.ApprovalDecision, rec.Comment)
				wantS := fmt.Sprintf("UserId=%q UserType=%s ProviderUserId=%q ClientIP=%q ApprovalDecision=%q Comment=%q",
					v.user, w.userType, v.providerUser, v.ip, w.decision, w.comment)
				if got != wantS {
					t.Errorf("%s reads\n %s\nwant\n %s", v.who, got, wantS)
				}
				if rec.ObjectId != r.ID || rec.LockboxRequestId != r.ID || rec.Workload != "exchange" || rec.LockboxTenant != "contoso" ||
					rec.OrganizationId != e.orgID(t, "contoso") || rec.ResultStatus != record.ResultSucceeded ||
					rec.RecordType != record.RecordTypeExchangeAdmin || rec.UserKey != v.user {
					t.Errorf("%s reads the request's fields wrong: %+v", v.who, rec)
				}
				if len(rec.Parameters) == 0 || rec.Parameters[0] != (record.Parameter{Name: "Identity", Value: r.ID}) {
					t.Errorf("%s reads parameters %v, want Identity %s first", v.who, rec.Parameters, r.ID)
				}
				if w.decisionParameters && (len(rec.Parameters) < 2 || rec.Parameters[1] != (record.Parameter{Name: "ApprovalDecision", Value: w.decision})) {
					t.Errorf("%s reads parameters %v, want ApprovalDecision %s", v.who, rec.Parameters, w.decision)
				}
				// A decision carries Set-AccessToCustomerDataRequest's
				// own parameters: -RequestId names the request there.
				if w.decisionParameters && (len(rec.Parameters) < 3 || rec.Parameters[2] != (record.Parameter{Name: "RequestId", Value: r.ID})) {
					t.Errorf("%s reads parameters %v, want RequestId %s after ApprovalDecision", v.who, rec.Parameters, r.ID)
				}
				if !w.timeDriven && rec.CreationTime.After(e.clock.Now()) {
					t.Errorf("%s reads CreationTime %v after now %v", v.who, rec.CreationTime, e.clock.Now())
				}
			}
		})
	}
}
