package record

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"strings"
	"testing"
	"time"
)

// TestTenantViewOfProviderRecords: the tenant sees the address an operator
// action came from (Microsoft shows the engineer's machine) but never a
// provider identity, nor the address of other provider staff.
func TestTenantViewOfProviderRecords(t *testing.T) {
	tests := []struct {
		name         string
		rec          Record
		wantIP       string
		wantApprover string
	}{
		{"operator action under a tenant approval", Record{
			RecordType: RecordTypeDataCenterSecurityCmdlet, UserType: UserTypeDcAdmin, UserId: OperatorUserID,
			ClientIP: "192.0.2.10", ProviderUserId: "alice@provider.example", LockboxApprover: "adam@contoso.example",
		}, "192.0.2.10", "adam@contoso.example"},
		{"operator action under a manager's approval", Record{
			RecordType: RecordTypeDataCenterSecurityCmdlet, UserType: UserTypeDcAdmin, UserId: OperatorUserID,
			ClientIP: "192.0.2.10", ProviderUserId: "alice@provider.example",
			LockboxApprover: ProviderUserID, ProviderApproverId: "mary@provider.example",
		}, "192.0.2.10", ProviderUserID},
		{"manager's decision", Record{
			RecordType: RecordTypeExchangeAdmin, UserType: UserTypeDcAdmin, UserId: ProviderUserID,
			ClientIP: "198.51.100.7", ProviderUserId: "mary@provider.example",
		}, "", ""},
		{"tenant's decision", Record{
			RecordType: RecordTypeExchangeAdmin, UserType: UserTypeAdmin, UserId: "gina@contoso.example", ClientIP: "203.0.113.5",
		}, "203.0.113.5", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.rec.TenantView()
			if v.ClientIP != tc.wantIP || v.LockboxApprover != tc.wantApprover || v.ProviderUserId != "" || v.ProviderApproverId != "" {
				t.Errorf("TenantView = %+v; want ClientIP %q, LockboxApprover %q, no provider fields", v, tc.wantIP, tc.wantApprover)
			}
			b, _ := json.Marshal(v)
			if strings.Contains(string(b), "provider.example") {
				t.Errorf("tenant view names the provider's staff: %s", b)
			}
		})
	}
}

func TestTimeFormat(t *testing.T) {
	r := Record{CreationTime: TimeOf(time.Date(2026, 3, 4, 10, 5, 6, 789e6, time.FixedZone("CET", 3600)))}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"CreationTime":"2026-03-04T09:05:06"`) {
		t.Fatalf("CreationTime not in the unified audit log's form: %s", b)
	}
	for in, want := range map[string]time.Time{
		`"2026-03-04T09:05:06"`:         time.Date(2026, 3, 4, 9, 5, 6, 0, time.UTC),
		`"2026-03-04T09:05:06.25"`:      time.Date(2026, 3, 4, 9, 5, 6, 25e7, time.UTC),
		`"2026-03-04T09:05:06.123Z"`:    time.Date(2026, 3, 4, 9, 5, 6, 123e6, time.UTC), // records before the common schema
		`"2026-03-04T10:05:06+01:00"`:   time.Date(2026, 3, 4, 9, 5, 6, 0, time.UTC),
		`"2026-03-04T09:05:06.000000Z"`: time.Date(2026, 3, 4, 9, 5, 6, 0, time.UTC),
	} {
		var got Time
		if err := json.Unmarshal([]byte(in), &got); err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{`"yesterday"`, `42`, `"2026-03-04"`} {
		var got Time
		if err := json.Unmarshal([]byte(bad), &got); err == nil {
			t.Errorf("%s: accepted as %v", bad, got)
		}
	}
}

func TestUserTypeReadsNamesAndIntegers(t *testing.T) {
	for in, want := range map[string]UserType{`3`: UserTypeDcAdmin, `"DcAdmin"`: UserTypeDcAdmin, `0`: UserTypeRegular, `"Admin"`: UserTypeAdmin} {
		var got UserType
		if err := json.Unmarshal([]byte(in), &got); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	var got UserType
	if err := json.Unmarshal([]byte(`"Operator"`), &got); err == nil {
		t.Error("an unknown name was accepted")
	}
	if b, _ := json.Marshal(Record{UserType: UserTypeDcAdmin}); !strings.Contains(string(b), `"UserType":3`) {
		t.Errorf("UserType not written as an integer: %s", b)
	}
}

// TestLegacyRecordsRead: records written before Lockbox followed the common
// schema (RFC 3339 times, UserType "DcAdmin", Method and Path, the tenant's
// short name as OrganizationId) stay in the hash chain as they are, and
// read back in the current shape.
func TestLegacyRecordsRead(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want Record
		// tenant view's LockboxApprover and ClientIP
		tenantApprover, tenantIP string
	}{
		{
			name: "operator action",
			raw: `{"Id":"0190a4b4-1c2d-7e3f-8a9b-0c1d2e3f4a5b","CreationTime":"2026-03-04T09:05:06.123Z","Operation":"Get-Mailbox",` +
				`"OrganizationId":"contoso","Workload":"exchange","UserId":"Microsoft Operator","UserType":"DcAdmin","ClientIP":"192.0.2.10",` +
				`"ResultStatus":"Succeeded","LockboxRequestId":"r1","LockboxApprover":"mary@provider.example",` +
				`"LockboxApprovalTime":"2026-03-04T09:00:00Z","Method":"GET","Path":"/tenants/contoso/mailboxes","ProviderUserId":"alice@provider.example"}`,
			want: Record{
				Id: "0190a4b4-1c2d-7e3f-8a9b-0c1d2e3f4a5b", CreationTime: Time{time.Date(2026, 3, 4, 9, 5, 6, 123e6, time.UTC)},
				Operation: "Get-Mailbox", OrganizationId: "contoso", RecordType: RecordTypeDataCenterSecurityCmdlet,
				ResultStatus: ResultSucceeded, UserKey: OperatorUserID, UserType: UserTypeDcAdmin, Version: 1, Workload: "exchange",
				ClientIP: "192.0.2.10", ObjectId: "exchange/tenants/contoso/mailboxes", UserId: OperatorUserID,
				LockboxTenant: "contoso", LockboxRequestId: "r1", LockboxApprover: "mary@provider.example",
				LockboxApprovalTime: &Time{time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)},
				LockboxMethod:       "GET", LockboxPath: "/tenants/contoso/mailboxes", ProviderUserId: "alice@provider.example",
			},
			// Nothing in the record tells whether mary approved for the
			// tenant or the provider: hidden.
			tenantApprover: "", tenantIP: "192.0.2.10",
		},
		{
			name: "manager's decision",
			raw: `{"Id":"a","CreationTime":"2026-03-04T09:00:00Z","Operation":"Set-ManagerApprovalForCustomerDataRequest","OrganizationId":"contoso",` +
				`"Workload":"exchange","UserId":"Microsoft Operator","ClientIP":"198.51.100.7","ObjectId":"r1","ResultStatus":"Succeeded",` +
				`"LockboxRequestId":"r1","ApprovalDecision":"Approve","ProviderUserId":"mary@provider.example"}`,
			want: Record{
				Id: "a", CreationTime: Time{time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)}, Operation: OpManagerDecision,
				OrganizationId: "contoso", RecordType: RecordTypeExchangeAdmin, ResultStatus: ResultSucceeded,
				UserKey: OperatorUserID, UserType: UserTypeDcAdmin, Version: 1, Workload: "exchange", ClientIP: "198.51.100.7",
				ObjectId: "r1", UserId: OperatorUserID, ApprovalDecision: ApprovalApprove, LockboxTenant: "contoso",
				LockboxRequestId: "r1", ProviderUserId: "mary@provider.example",
			},
		},
		{
			name: "expiry",
			raw: `{"Id":"b","CreationTime":"2026-03-04T21:00:00Z","Operation":"Expire-AccessToCustomerDataRequest","OrganizationId":"contoso",` +
				`"Workload":"exchange","UserId":"Customer Lockbox","ObjectId":"r1","ResultStatus":"Succeeded","LockboxRequestId":"r1"}`,
			want: Record{
				Id: "b", CreationTime: Time{time.Date(2026, 3, 4, 21, 0, 0, 0, time.UTC)}, Operation: OpExpireRequest,
				OrganizationId: "contoso", RecordType: RecordTypeExchangeAdmin, ResultStatus: ResultSucceeded,
				UserKey: SystemUserID, UserType: UserTypeSystem, Version: 1, Workload: "exchange",
				ObjectId: "r1", UserId: SystemUserID, LockboxTenant: "contoso", LockboxRequestId: "r1",
			},
		},
		{
			name: "tenant's decision",
			raw: `{"Id":"c","CreationTime":"2026-03-04T09:30:00Z","Operation":"Set-AccessToCustomerDataRequest","OrganizationId":"contoso",` +
				`"Workload":"exchange","UserId":"adam@contoso.example","ClientIP":"203.0.113.5","ObjectId":"r1","ResultStatus":"Succeeded",` +
				`"LockboxRequestId":"r1","ApprovalDecision":"Deny","Comment":"not now"}`,
			want: Record{
				Id: "c", CreationTime: Time{time.Date(2026, 3, 4, 9, 30, 0, 0, time.UTC)}, Operation: OpTenantDecision,
				OrganizationId: "contoso", RecordType: RecordTypeExchangeAdmin, ResultStatus: ResultSucceeded,
				UserKey: "adam@contoso.example", UserType: UserTypeRegular, Version: 1, Workload: "exchange", ClientIP: "203.0.113.5",
				ObjectId: "r1", UserId: "adam@contoso.example", ApprovalDecision: ApprovalDeny, Comment: "not now",
				LockboxTenant: "contoso", LockboxRequestId: "r1",
			},
			tenantIP: "203.0.113.5",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got Record
			if err := json.Unmarshal([]byte(tc.raw), &got); err != nil {
				t.Fatal(err)
			}
			tc.want.legacy = true
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(tc.want)
			if string(gb) != string(wb) || !got.legacy {
				t.Fatalf("read\n%s\nwant\n%s", gb, wb)
			}
			v := got.TenantView()
			if v.LockboxApprover != tc.tenantApprover || v.ClientIP != tc.tenantIP || v.ProviderUserId != "" {
				t.Errorf("tenant view: approver %q, IP %q, provider user %q", v.LockboxApprover, v.ClientIP, v.ProviderUserId)
			}
		})
	}
	// A record in the current shape is not upgraded.
	var cur Record
	if err := json.Unmarshal([]byte(`{"RecordType":1,"UserType":0,"UserId":"x","OrganizationId":"0190a4b4-1c2d-7e3f-8a9b-0c1d2e3f4a5b"}`), &cur); err != nil || cur.legacy || cur.UserKey != "" || cur.LockboxTenant != "" {
		t.Errorf("current record upgraded: %+v %v", cur, err)
	}
}

// TestOperationsListsEveryOp: Operations, which the schema conformance
// test walks, names every Op constant of this package.
func TestOperationsListsEveryOp(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, f := range pkgs["record"].Files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					// An operation is an Op constant whose value is a
					// cmdlet name, Verb-Noun (not OperatorUserID).
					if i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && strings.HasPrefix(n.Name, "Op") && strings.Contains(lit.Value, "-") {
						ops = append(ops, n.Name)
					}
				}
			}
		}
	}
	if len(ops) != len(Operations) {
		t.Errorf("%d Op constants (%v), %d in Operations", len(ops), ops, len(Operations))
	}
}

// TestQueryOf: a query up to MaxQueryBytes is kept whole with no length;
// a longer one keeps its first MaxQueryBytes bytes and says how long it
// was, so the cut is in a field of its own, not in the query's text.
func TestQueryOf(t *testing.T) {
	for _, n := range []int{0, 1, MaxQueryBytes - 1, MaxQueryBytes, MaxQueryBytes + 1, 1 << 20} {
		q := strings.Repeat("x", n)
		kept, length := QueryOf(q)
		switch {
		case n <= MaxQueryBytes && (kept != q || length != 0):
			t.Errorf("%d bytes: kept %d bytes, length %d; want the whole query and 0", n, len(kept), length)
		case n > MaxQueryBytes && (kept != q[:MaxQueryBytes] || length != n):
			t.Errorf("%d bytes: kept %d bytes, length %d; want %d bytes and %d", n, len(kept), length, MaxQueryBytes, n)
		}
	}
}
