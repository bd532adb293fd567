package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/text"
)

// misleading are characters that make text read otherwise than it is
// (a terminal escape, a carriage return that rewrites the line, a
// bidirectional override, NEL) or cut it (NUL). A comment or a reason is
// shown to tenant approvers in mail and the admin center and kept in
// audit records, so none of them may be stored.
var misleading = map[string]string{
	"NUL":                    "ok\x00",
	"ESC":                    "ok \x1b[31mred",
	"lone CR":                "approved\rdenied",
	"DEL":                    "ok\x7f",
	"C1 CSI":                 "ok \u009b31m",
	"NEL":                    "ok\u0085next",
	"right-to-left override": "invoice\u202egnp.exe",
	"left-to-right isolate":  "a\u2066b\u2069",
	"arabic letter mark":     "a\u061cb",
	"line separator":         "a\u2028b",
}

// TestCommentsRefuseControls: a decision's comment may run over several
// lines, as the admin center's comment box lets it, but has no other
// control character; it was stored whatever it held.
func TestCommentsRefuseControls(t *testing.T) {
	const fine = "fine: SR-1001, «ok» 日本\r\nsecond line\n\tindented"
	for name, comment := range misleading {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.assignApprover()
			req := e.file(alice, "contoso", "exchange")
			base := "/v1/requests/" + req.ID
			refused := func(who user, action string) {
				t.Helper()
				wantError(t, e.do(who, "POST", base+action, map[string]string{"comment": comment}), http.StatusBadRequest, "invalid_comment", "control")
			}
			refused(mia, "/approve")
			refused(mia, "/deny")
			refused(alice, "/cancel")
			decode[grants.Request](t, e.do(mia, "POST", base+"/approve", map[string]string{"comment": fine}), http.StatusOK)
			refused(contosoApprover, "/approve")
			refused(contosoApprover, "/deny")
			got := decode[grants.Request](t, e.do(contosoApprover, "POST", base+"/approve", map[string]string{"comment": fine}), http.StatusOK)
			if got.State != grants.StateApproved {
				t.Fatalf("state %s after both approvals", got.State)
			}
			refused(mia, "/revoke")
			refused(contosoAdmin, "/revoke")
			got = decode[grants.Request](t, e.do(alice, "GET", base, nil), http.StatusOK)
			for _, ev := range got.History {
				if ev.Comment != "" && ev.Comment != fine {
					t.Errorf("history keeps comment %q", ev.Comment)
				}
			}
		})
	}
}

// TestFilingRefusesControls: the filing reason may run over several lines
// (the admin center shows it as written), but no other control character
// reaches it; the service request number is one line with none.
func TestFilingRefusesControls(t *testing.T) {
	create := func(e *env, field, value string) result {
		in := map[string]any{"tenant": "contoso", "service": "exchange", "service_request": "SR-1", "reason": "repair", "duration": "1h"}
		in[field] = value
		return e.do(bob, "POST", "/v1/requests", in)
	}
	for name, s := range misleading {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			wantError(t, create(e, "reason", s), http.StatusBadRequest, "invalid_reason", "control")
			// The support case number is one line: page titles, mail
			// subjects and the engineer's list show it.
			wantError(t, create(e, "service_request", "SR-"+s), http.StatusBadRequest, "invalid_service_request", "control")
		})
	}
	t.Run("line breaks", func(t *testing.T) {
		e := newEnv(t)
		const reason = "Mailbox repair:\r\n\t1. export\n\t2. repair"
		for _, sr := range []string{"SR-1\nSR-2", "SR-1\r\nSR-2", "SR-1\tSR-2"} {
			wantError(t, create(e, "service_request", sr), http.StatusBadRequest, "invalid_service_request", "printable")
		}
		got := decode[grants.Request](t, create(e, "reason", reason), http.StatusCreated)
		if got.Reason != reason {
			t.Errorf("reason stored as %q, want %q", got.Reason, reason)
		}
	})
	t.Run("plain service request", func(t *testing.T) {
		e := newEnv(t)
		const sr = "SR-1 «日本»"
		if got := decode[grants.Request](t, create(e, "service_request", sr), http.StatusCreated); got.ServiceRequest != sr {
			t.Errorf("service_request stored as %q, want %q", got.ServiceRequest, sr)
		}
	})
}

// TestTenantTextRefusesControls: a tenant's display name and the reason it
// was offboarded are shown on one line in the admin center, mail and audit
// records, and refuse what a comment refuses, line breaks and tabs too;
// a C1 control or a bidirectional override was stored.
func TestTenantTextRefusesControls(t *testing.T) {
	lara := user{sub: "lara@provider.example", roles: []identity.Role{identity.RoleLockboxAdmin}}
	bad := map[string]string{"LF": "a\nb", "CRLF": "a\r\nb", "tab": "a\tb"}
	for name, s := range misleading {
		bad[name] = s
	}
	for name, s := range bad {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			onboard := map[string]any{"id": "northwind", "display_name": "North" + s, "domains": []string{"northwind.example"}}
			wantError(t, e.do(lara, "POST", "/v1/tenants", onboard), http.StatusBadRequest, "invalid_tenant", "control")
			wantError(t, e.do(lara, "PATCH", "/v1/tenants/contoso", map[string]any{"display_name": "Contoso" + s}), http.StatusBadRequest, "invalid_tenant", "control")
			wantError(t, e.do(lara, "POST", "/v1/tenants/contoso/offboard", map[string]any{"reason": "ended" + s}), http.StatusBadRequest, "invalid_reason", "control")
			got := decode[wire.Tenant](t, e.do(lara, "GET", "/v1/tenants/contoso", nil), http.StatusOK)
			if got.State != wire.TenantActive || strings.ContainsFunc(got.DisplayName, text.Misleading) {
				t.Errorf("contoso is now %+v", got)
			}
		})
	}
	t.Run("plain", func(t *testing.T) {
		e := newEnv(t)
		const name, reason = "Nörthwind «Traders» 日本 (EU)", "contract ended: «SR-1», 日本"
		onboard := map[string]any{"id": "northwind", "display_name": name, "domains": []string{"northwind.example"}}
		if got := decode[wire.Tenant](t, e.do(lara, "POST", "/v1/tenants", onboard), http.StatusCreated); got.DisplayName != name {
			t.Errorf("display_name stored as %q", got.DisplayName)
		}
		off := decode[wire.Tenant](t, e.do(lara, "POST", "/v1/tenants/northwind/offboard", map[string]any{"reason": reason}), http.StatusOK)
		if off.Offboarded == nil || off.Offboarded.Reason != reason {
			t.Errorf("offboarded %+v", off.Offboarded)
		}
	})
}
