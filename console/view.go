package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/httperr"
)

// layout is the frame every page is drawn in; each other file under
// templates/ is one page, defining "content".
const layout = "layout.html"

// parsePages parses each page together with the layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := make(map[string]*template.Template, len(names))
	for _, n := range names {
		base := path.Base(n)
		if base == layout {
			continue
		}
		t, err := template.New(layout).Funcs(funcs).ParseFS(templateFS, "templates/"+layout, n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", base, err)
		}
		pages[strings.TrimSuffix(base, ".html")] = t
	}
	return pages, nil
}

// frame is what the layout draws around a page.
type frame struct {
	Title   string
	Session *Session
	Nav     []navItem
	Active  string
	CSRF    string
	Flash   string
	// FlashCode is the code of the notice shown, "" with none. An
	// action's confirmation (FlashDone) tells the page's script that the
	// form just posted was performed, so its draft goes.
	FlashCode string
	FlashDone bool
	// DraftOwner names the signed-in user to the page's script, which
	// keeps what is typed in forms for them only (see console.js).
	DraftOwner string
	Refresh    int // milliseconds between live-list polls
	Page       any
}

type navItem struct {
	Name, Label, Href string
}

// nav is the menu p sees; decides says whether p decides for its tenant
// (decidesForTenant). It only hides what p could not use: every page and
// action is still checked by the domain.
func nav(p identity.Principal, decides bool) []navItem {
	items := []navItem{{"requests", "Requests", "/console/requests"}}
	if canFile(p) {
		items = append(items, navItem{"new", "New request", "/console/requests/new"})
	}
	if !p.IsProvider() {
		// The approvers and settings pages are for those who decide (a
		// tenant's audit reader is refused both).
		if decides {
			items = append(items, navItem{"approvers", "Approvers", "/console/approvers"}, navItem{"settings", "Settings", "/console/settings"})
		}
	} else {
		items = append(items, navItem{"tenants", "Tenants", "/console/tenants"})
	}
	if canSearchAudit(p) {
		items = append(items, navItem{"audit", "Audit log", "/console/audit"})
	}
	return items
}

// canFile mirrors who the lifecycle lets file requests: the provider's
// operators.
func canFile(p identity.Principal) bool {
	return p.IsProvider() && p.Has(identity.RoleOperator)
}

// decidesForTenant reports whether p decides its tenant's requests and
// reads and changes its Customer Lockbox settings: one of its global
// administrators or of the approvers they assigned, each a user of the
// tenant (a tenant's audit reader is neither). Only the registry knows who
// its users and assigned approvers are; its rule on who reads the settings
// is, for a tenant's users, the lifecycle's on who decides. The provider's
// staff never decide for a tenant.
func (c *Console) decidesForTenant(ctx context.Context, p identity.Principal) (bool, error) {
	if p.IsProvider() {
		return false, nil
	}
	return c.readsSettings(ctx, p, p.TenantID)
}

// assignedApprover reports whether p, a user of a tenant, is an approver
// the tenant assigned. It asks the tenant's rule on who reads its settings
// (CanRead), which is who decides its requests, for p with the approver
// role alone: that rule holds for such a principal only by the
// assignment, not by any other role p has.
func (c *Console) assignedApprover(ctx context.Context, p identity.Principal) (bool, error) {
	if p.IsProvider() {
		return false, nil
	}
	q := identity.Principal{Subject: p.Subject, TenantID: p.TenantID, Roles: []identity.Role{identity.RoleApprover}}
	return c.readsSettings(ctx, q, p.TenantID)
}

// heldRoles returns sess with the roles its user holds now. The approver
// role is the tenant's assignment, which its global administrators remove
// at any moment, and neither a token's claim nor the session's sign-in
// keeps it: every page asks again (one registry read, as the menu does),
// so a removed approver is not shown as one, nor offered an approver's
// pages, until the session's next verification or, for a dev session or
// a token that claims the role, for the rest of its life. A session left
// with no role ends, as its sign-in would now be refused. The domain
// checks the assignment on every action anyway; this is what the pages
// show.
func (c *Console) heldRoles(ctx context.Context, sess Session) (Session, error) {
	p := sess.Principal
	if p.IsProvider() || !p.Has(identity.RoleApprover) {
		return sess, nil
	}
	ok, err := c.assignedApprover(ctx, p)
	if err != nil || ok {
		return sess, err
	}
	sess.Principal.Roles = slices.DeleteFunc(slices.Clone(p.Roles), func(r identity.Role) bool { return r == identity.RoleApprover })
	if len(sess.Principal.Roles) > 0 {
		return sess, nil
	}
	c.log.InfoContext(ctx, "console: session ended, its user is no longer an approver of the tenant", "user", p.Subject, "tenant", p.TenantID)
	if err := c.sessions.deleteID(ctx, sess.id); err != nil {
		return Session{}, err
	}
	return Session{}, errNoSession
}

// readsSettings reports whether p may read tenant's settings and
// approvers, so that a page links to them only for those it opens for.
func (c *Console) readsSettings(ctx context.Context, p identity.Principal, tenant string) (bool, error) {
	err := c.cfg.Tenants.CanRead(ctx, p, tenant)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fault.ErrForbidden), errors.Is(err, fault.ErrNotFound), errors.Is(err, fault.ErrInvalid):
		return false, nil
	}
	return false, err
}

// canSearchAudit mirrors who the audit log lets search, to decide whether
// to show the menu entry. Whether a tenant user's subject is a user of the
// tenant (one of its domains) only the registry knows: the log checks it.
func canSearchAudit(p identity.Principal) bool {
	if p.IsProvider() {
		return p.Has(identity.RoleAuditReader)
	}
	return !p.HasProviderOnlyRole() && (p.Has(identity.RoleGlobalAdmin) || p.Has(identity.RoleAuditReader))
}

// render draws page name with data in the layout. It renders into a buffer
// first, so a template error becomes a clean 500 instead of half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, sess *Session, data any) {
	c.renderTemplate(w, r, status, name, layout, sess, data)
}

func (c *Console) renderTemplate(w http.ResponseWriter, r *http.Request, status int, name, tmpl string, sess *Session, data any) {
	t, ok := c.pages[name]
	if !ok {
		c.log.ErrorContext(r.Context(), "console: no such page", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	f := frame{Title: titles[name], Session: sess, Active: name, Refresh: int(c.cfg.RefreshInterval.Milliseconds()), Page: data}
	if code := r.URL.Query().Get("done"); flash(code, name) != "" {
		f.Flash, f.FlashCode = flash(code, name), code
		_, f.FlashDone = flashPages[code]
	}
	if sess != nil {
		f.CSRF = sess.CSRF
		f.DraftOwner = draftOwner(sess.Principal, sess.Issuer)
		if tmpl == layout {
			// The menu is a convenience: when the registry can't say
			// whether the user decides, it shows what it showed before,
			// and the pages refuse as ever.
			decides, err := c.decidesForTenant(r.Context(), sess.Principal)
			f.Nav = nav(sess.Principal, decides || err != nil)
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmpl, f); err != nil {
		c.log.ErrorContext(r.Context(), "console: render failed", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if sess != nil {
		// The page's sign-out form posts to the console, which answers
		// with a redirect to the identity provider's end-session
		// endpoint; and a form of a session without a refresh token,
		// posted once the session is due to be verified again, is
		// answered with a redirect to its authorization endpoint (see
		// silent.go). Browsers hold the whole redirect chain of a form's
		// submission to the form's page's form-action, so the page names
		// those origins besides its own.
		var srcs []string
		if sess.Logout != nil {
			if src, ok := formActionSource(sess.Logout.Endpoint); ok {
				srcs = append(srcs, src)
			}
		}
		if sess.Via == "oidc" && sess.RefreshToken == "" {
			if oc := c.issuerOf(*sess); oc != nil {
				if src, ok := formActionSource(oc.authorizationEndpoint()); ok && !slices.Contains(srcs, src) {
					srcs = append(srcs, src)
				}
			}
		}
		if len(srcs) > 0 {
			w.Header().Set("Content-Security-Policy", contentSecurityPolicy(srcs...))
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// titles are the pages' titles, for <title> and the heading.
var titles = map[string]string{
	"signin":      "Sign in",
	"continue":    "Signed in",
	"reverifying": "Confirming your sign-in",
	"error":       "Something went wrong",
	"requests":    "Customer Lockbox requests",
	"request":     "Lockbox request",
	"confirm":     "Confirm",
	"new":         "New lockbox request",
	"settings":    "Customer Lockbox settings",
	"approvers":   "Customer Lockbox access approvers",
	"audit":       "Audit log",
	"tenants":     "Tenants",
	"tenant":      "Tenant",
	"offboard":    "Offboard a tenant",
}

// flashes are the confirmations shown after an action, by a fixed code in
// the redirect's query: the page never echoes text from the URL.
var flashes = map[string]string{
	"approve":           "The request was approved.",
	"approve_forwarded": "You approved the request for the provider. It now awaits the approvers of the tenant: access starts only with their approval.",
	"deny":              "The request was denied.",
	"revoke":            "Access was revoked.",
	"cancel":            "The request was canceled.",
	"created":           "The request was filed. A support manager reviews it next.",
	"settings":          "Settings saved.",
	"approver_added":    "Approver added.",
	"approver_removed":  "Approver removed.",
	"tenant_onboarded":  "The tenant was onboarded.",
	"tenant_updated":    "The tenant's entry was saved.",
	"tenant_offboarded": "The tenant was offboarded: its access was revoked and its pending requests canceled.",
	"signed_in_again": "You are signed in again. What you submitted before your session ended was not sent: " +
		"check the page and submit it again.",
	"resubmit": "Your sign-in was confirmed with your identity provider. What you submitted before was not sent: " +
		"check the page and submit it again.",
}

// flashPages are the pages the notices of actions are shown on: the page
// the action's redirect goes to. The code rides in the URL, where anyone
// may put it: on another page ("Approver removed." above a list that still
// names the approver, "The request was approved." on an error) it would
// tell the user of something nobody did. A notice not named here (a
// sign-in confirmed or renewed) goes with whatever page the user was on.
var flashPages = map[string]string{
	"approve":           "request",
	"approve_forwarded": "request",
	"deny":              "request",
	"revoke":            "request",
	"cancel":            "request",
	"created":           "request",
	"settings":          "settings",
	"approver_added":    "approvers",
	"approver_removed":  "approvers",
	"tenant_onboarded":  "tenant",
	"tenant_updated":    "tenant",
	"tenant_offboarded": "tenant",
}

// draftOwner is an opaque name of the user p signed in by issuer, the same
// on each of their pages and another for anyone else: the page's script
// keeps drafts of forms under it, so that one user's draft is never shown
// to the next who signs in in the same tab. A digest, so the tab's
// storage does not hold the user's identifiers besides.
func draftOwner(p identity.Principal, issuer string) string {
	h := sha256.New()
	for _, s := range []string{issuer, p.TenantID, p.Subject} {
		// Each part's length first: ("ab", "c") and ("a", "bc") differ.
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// flash is the notice code names for page, "" when there is none for it.
func flash(code, page string) string {
	if p, ok := flashPages[code]; ok && p != page {
		return ""
	}
	return flashes[code]
}

// fail renders a domain error with the status and message the API would
// give. Server-side failures are logged; the user gets a generic message.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, sess *Session, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		// The browser went away (a tab closed mid-poll): nobody to answer,
		// and nothing wrong with the server.
		c.log.DebugContext(r.Context(), "console request abandoned", "method", echo(r.Method), "path", echo(r.URL.Path))
		return
	}
	status, code, msg := httperr.FromError(err)
	if status >= http.StatusInternalServerError {
		c.log.ErrorContext(r.Context(), "console request failed", "method", echo(r.Method), "path", echo(r.URL.Path), "code", code, "error", err)
	}
	c.renderError(w, r, sess, status, msg)
}

type errorView struct {
	Status  int
	Message string
}

func (c *Console) renderError(w http.ResponseWriter, r *http.Request, sess *Session, status int, msg string) {
	c.render(w, r, status, "error", sess, errorView{Status: status, Message: msg})
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		case *time.Time:
			if v == nil {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		}
		return ""
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"stateLabel": func(s grants.State) string {
		return stateLabels[s]
	},
	"duration": func(d grants.Duration) string { return humanDuration(d.Std()) },
	"has":      func(p identity.Principal, role string) bool { return p.Has(identity.Role(role)) },
	"roles": func(p identity.Principal) string {
		names := make([]string, len(p.Roles))
		for i, r := range p.Roles {
			names[i] = roleLabels[r]
		}
		return strings.Join(names, ", ")
	},
	"join":         strings.Join,
	"has_activity": func(list []string, a string) bool { return slices.Contains(list, a) },
}

var stateLabels = map[grants.State]string{
	grants.StatePendingManager:  "Awaiting manager",
	grants.StatePendingCustomer: "Awaiting customer",
	grants.StateApproved:        "Approved",
	grants.StateCompleted:       "Completed",
	grants.StateRevoked:         "Revoked",
	grants.StateDenied:          "Denied",
	grants.StateExpired:         "Expired",
	grants.StateCanceled:        "Canceled",
}

var roleLabels = map[identity.Role]string{
	identity.RoleOperator:       "Support engineer",
	identity.RoleSupportManager: "Support manager",
	identity.RoleGlobalAdmin:    "Global administrator",
	// The contract's and Microsoft 365's name of the role, as the API,
	// lockboxctl and README write it.
	identity.RoleApprover:     "Customer Lockbox access approver",
	identity.RoleAuditReader:  "Audit reader",
	identity.RoleLockboxAdmin: "Lockbox administrator",
}

// humanDuration writes d as "3h 05m", "12m" or "45s".
func humanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0m"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	h := int(d.Hours())
	m := int(d.Minutes()) - 60*h
	if m == 0 {
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh %02dm", h, m)
}
