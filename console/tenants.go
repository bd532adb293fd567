package console

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/httperr"
	"github.com/lockbox-oss/lockbox/internal/peer"
	"github.com/lockbox-oss/lockbox/tenants"
)

// The tenant registry's pages: the provider's staff list the onboarded
// tenants; its Lockbox administrators onboard tenants and edit their
// entries.

// tenantForm is what the onboarding and edit forms hold, as typed.
type tenantForm struct {
	ID, Name, OrganizationID, Domains, GlobalAdmins string
	LockboxOff                                      bool
	// Revision is the edit form's revision field: the revision of the
	// entry it was opened on, or empty for none (saving then checks none).
	Revision string
}

type tenantsView struct {
	Tenants []tenants.Tenant
	// Unreadable are the tenants whose registry entry can't be read: a
	// row each, after the others, says so.
	Unreadable []tenants.Unreadable
	// More links to the next page of tenants; empty on the last.
	More     template.URL
	CanAdmin bool
	Form     tenantForm
	Problem  string
	Invalid  string // the id of the field Problem is about
}

type tenantView struct {
	Tenant   tenants.Tenant
	CanAdmin bool
	// ReadsSettings says whether the viewer may open the tenant's
	// settings and approvers pages, which the page links to only then.
	ReadsSettings bool
	Form          tenantForm
	Problem       string
	Invalid       string // the id of the field Problem is about
	// Unsaved is the change a form opened before someone else's did not
	// save, as typed, shown beside the form that now holds the entry as
	// stored: to copy from, not to send again unseen.
	Unsaved *tenantForm
}

func canAdminTenants(p identity.Principal) bool {
	return p.IsProvider() && p.Has(identity.RoleLockboxAdmin)
}

// lines splits a textarea's addresses or domains: one a line, or
// separated by commas.
func lines(s string) []string {
	out := []string{}
	for _, v := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' }) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (c *Console) tenantsPage(w http.ResponseWriter, r *http.Request, sess Session) error {
	return c.showTenants(w, r, sess, http.StatusOK, tenantForm{}, "", "")
}

func (c *Console) showTenants(w http.ResponseWriter, r *http.Request, sess Session, status int, f tenantForm, problem, invalid string) error {
	list, err := c.cfg.Tenants.ListPage(r.Context(), sess.Principal, tenants.ListQuery{Cursor: r.URL.Query().Get("after"), Limit: tenantsPageSize})
	if err != nil {
		return err
	}
	v := tenantsView{Tenants: list.Tenants, Unreadable: list.Unreadable, CanAdmin: canAdminTenants(sess.Principal), Form: f, Problem: problem, Invalid: invalid}
	if list.Next != "" {
		v.More = template.URL("/console/tenants?" + url.Values{"after": {list.Next}}.Encode())
	}
	c.render(w, r, status, "tenants", &sess, v)
	return nil
}

// tenantsPageSize is how many tenants the tenants page lists at once.
const tenantsPageSize = 200

// onboardingFields are the onboarding form's fields the registry's error
// codes are about; its invalid_tenant errors name their field.
var onboardingFields = map[string]string{"tenant_exists": "id", "tenant_offboarded": "id"}

// onboardTenant onboards the form's tenant. A refusal comes back on the
// form with everything typed; the form sent twice leads to the tenant its
// first sending onboarded, as the first answer does.
func (c *Console) onboardTenant(w http.ResponseWriter, r *http.Request, sess Session) error {
	f := tenantForm{
		ID: strings.TrimSpace(r.PostFormValue("id")), Name: r.PostFormValue("display_name"),
		OrganizationID: strings.TrimSpace(r.PostFormValue("organization_id")),
		Domains:        r.PostFormValue("domains"), GlobalAdmins: r.PostFormValue("global_admins"),
		LockboxOff: r.PostFormValue("lockbox_enabled") != "on",
	}
	on := !f.LockboxOff
	in := tenants.Onboarding{
		ID: f.ID, OrganizationID: f.OrganizationID, DisplayName: f.Name,
		Domains: lines(f.Domains), GlobalAdmins: lines(f.GlobalAdmins), LockboxEnabled: &on,
	}
	_, _, err := c.cfg.Tenants.Onboard(r.Context(), sess.Principal, peer.IP(r), in)
	if err != nil {
		status, _, msg := httperr.FromError(err)
		if status != http.StatusBadRequest && status != http.StatusConflict {
			return err
		}
		if errors.Is(err, fault.ErrConflict) {
			// The form sent again (a double click on Onboard): its
			// first sending onboarded the tenant as it asks, and "already
			// onboarded" would tell the administrator it had not.
			same, serr := c.cfg.Tenants.OnboardedAs(r.Context(), sess.Principal, in)
			if serr != nil {
				return serr
			}
			if same {
				seeOther(w, r, "/console/tenants/"+url.PathEscape(f.ID)+"?done=tenant_onboarded")
				return nil
			}
		}
		return c.showTenants(w, r, sess, status, f, msg, invalidField(err, onboardingFields))
	}
	seeOther(w, r, "/console/tenants/"+url.PathEscape(f.ID)+"?done=tenant_onboarded")
	return nil
}

func (c *Console) tenantPage(w http.ResponseWriter, r *http.Request, sess Session) error {
	t, err := c.cfg.Tenants.Tenant(r.Context(), sess.Principal, r.PathValue("tenant"))
	if err != nil {
		return err
	}
	reads, err := c.readsSettings(r.Context(), sess.Principal, t.ID)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "tenant", &sess, tenantView{Tenant: t, CanAdmin: canAdminTenants(sess.Principal), ReadsSettings: reads, Form: formOf(t)})
	return nil
}

func formOf(t tenants.Tenant) tenantForm {
	return tenantForm{ID: t.ID, Name: t.DisplayName, OrganizationID: t.OrganizationID,
		Domains: strings.Join(t.Domains, "\n"), GlobalAdmins: strings.Join(t.GlobalAdmins, "\n"),
		Revision: strconv.FormatInt(t.Revision, 10)}
}

// tenantChangedProblem is what the tenant page says when its form was
// opened on a registry entry that someone has changed since.
const tenantChangedProblem = "The registry entry changed since you opened this page, and your change was not saved. Review it below and save again."

// updateTenant saves the registry entry's form. The form sends every
// field, the domain and global-admin lists whole, so saving a page opened
// before another administrator's change (a domain added) would undo it
// (the domain dropped while this page adds a global administrator). The
// form carries the revision of the entry it was rendered with (field
// revision), and the change is saved only over that revision: a stale
// form shows the entry as it is now, with the new revision, and saves
// nothing, unless the entry already is what the form asks (the form sent
// twice), which is answered as saved. A form without the field (a page
// from before revisions) saves whatever the revision, as it always did.
func (c *Console) updateTenant(w http.ResponseWriter, r *http.Request, sess Session) error {
	id := r.PathValue("tenant")
	// As for the settings: the right first, then the form.
	if err := c.cfg.Tenants.CanAdminister(sess.Principal); err != nil {
		return err
	}
	ifRevision, err := formRevision(r)
	if err != nil {
		return err
	}
	name, domains, admins := r.PostFormValue("display_name"), lines(r.PostFormValue("domains")), lines(r.PostFormValue("global_admins"))
	update := tenants.TenantUpdate{DisplayName: &name, Domains: &domains, GlobalAdmins: &admins}
	_, err = c.cfg.Tenants.UpdateTenantIf(r.Context(), sess.Principal, peer.IP(r), id, update, ifRevision)
	if err != nil {
		status, _, msg := httperr.FromError(err)
		if !errors.Is(err, fault.ErrPrecondition) && status != http.StatusBadRequest {
			return err
		}
		t, terr := c.cfg.Tenants.Tenant(r.Context(), sess.Principal, id)
		if terr != nil {
			return terr
		}
		if errors.Is(err, fault.ErrPrecondition) && t.Applied(update) {
			// The form sent again (a double click on Save): its first
			// sending saved what it asks, and "your change was not
			// saved" would say otherwise.
			seeOther(w, r, "/console/tenants/"+url.PathEscape(id)+"?done=tenant_updated")
			return nil
		}
		reads, terr := c.readsSettings(r.Context(), sess.Principal, t.ID)
		if terr != nil {
			return terr
		}
		if errors.Is(err, fault.ErrPrecondition) {
			typed := &tenantForm{Name: name, Domains: formText(r, "domains"), GlobalAdmins: formText(r, "global_admins")}
			c.render(w, r, status, "tenant", &sess, tenantView{Tenant: t, CanAdmin: true, ReadsSettings: reads, Form: formOf(t), Problem: tenantChangedProblem,
				Unsaved: typed})
			return nil
		}
		// What was typed comes back, under the revision it was based on,
		// so fixing it and saving still checks that one.
		f := tenantForm{ID: id, Name: name, OrganizationID: t.OrganizationID,
			Domains: r.PostFormValue("domains"), GlobalAdmins: r.PostFormValue("global_admins"), Revision: r.PostFormValue("revision")}
		c.render(w, r, status, "tenant", &sess, tenantView{Tenant: t, CanAdmin: true, ReadsSettings: reads, Form: f, Problem: msg, Invalid: invalidField(err, nil)})
		return nil
	}
	seeOther(w, r, "/console/tenants/"+url.PathEscape(id)+"?done=tenant_updated")
	return nil
}

// formRevision is the revision a settings or registry form was rendered
// with (field revision), which its save must match; tenants.AnyRevision
// when the form has none (a page from before revisions), which saves as
// it always did.
func formRevision(r *http.Request) (int64, error) {
	revision := r.PostFormValue("revision")
	if revision == "" {
		return tenants.AnyRevision, nil
	}
	n, err := strconv.ParseInt(revision, 10, 64)
	if err != nil || n < 0 {
		return 0, httperr.New(http.StatusBadRequest, "invalid_revision", "The form's revision is not one this page writes: reload the page and save again.")
	}
	return n, nil
}

// invalidField is the id of the form field err is about, "" for none: the
// field the domain's error names, or else the one its code is about in
// byCode. A form marks that field (aria-invalid, described by the error,
// focused), so the error is read with the field and the user lands where
// the fix goes.
func invalidField(err error, byCode map[string]string) string {
	fe, ok := errors.AsType[*fault.Error](err)
	if !ok {
		return ""
	}
	if fe.Field != "" {
		return fe.Field
	}
	return byCode[fe.Code]
}

type offboardView struct {
	Tenant  tenants.Tenant
	Reason  string
	Problem string
	// Max is the longest reason the registry keeps, for the form.
	Max int
}

// offboardPage is the confirmation step of offboarding: what it does and
// does not do, and the reason to give. Only the provider's Lockbox
// administrators reach it, as only they may offboard.
func (c *Console) offboardPage(w http.ResponseWriter, r *http.Request, sess Session) error {
	if err := c.cfg.Tenants.CanOffboard(sess.Principal); err != nil {
		return err
	}
	t, err := c.cfg.Tenants.Tenant(r.Context(), sess.Principal, r.PathValue("tenant"))
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "offboard", &sess, offboardView{Tenant: t, Max: tenants.MaxOffboardReason})
	return nil
}

// offboardTenant offboards the tenant the confirmation form names. A
// reason the registry refuses comes back on the form, as typed; the form
// sent twice (a double click on Confirm) finds the tenant offboarded, which
// the registry answers as done.
func (c *Console) offboardTenant(w http.ResponseWriter, r *http.Request, sess Session) error {
	id := r.PathValue("tenant")
	// The right first, then the form.
	if err := c.cfg.Tenants.CanOffboard(sess.Principal); err != nil {
		return err
	}
	reason := r.PostFormValue("reason")
	if _, err := c.cfg.Tenants.Offboard(r.Context(), sess.Principal, peer.IP(r), id, reason); err != nil {
		status, _, msg := httperr.FromError(err)
		if status != http.StatusBadRequest {
			return err
		}
		t, terr := c.cfg.Tenants.Tenant(r.Context(), sess.Principal, id)
		if terr != nil {
			return terr
		}
		c.render(w, r, status, "offboard", &sess, offboardView{Tenant: t, Reason: reason, Problem: msg, Max: tenants.MaxOffboardReason})
		return nil
	}
	seeOther(w, r, "/console/tenants/"+url.PathEscape(id)+"?done=tenant_offboarded")
	return nil
}
