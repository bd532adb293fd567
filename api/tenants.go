package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/httperr"
	"github.com/lockbox-oss/lockbox/internal/peer"
	"github.com/lockbox-oss/lockbox/internal/unreadable"
	"github.com/lockbox-oss/lockbox/tenants"
)

func (s *server) onboardTenant(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	// The right comes before the body: a caller who may not onboard
	// learns nothing of what a valid onboarding looks like.
	if err := s.cfg.Tenants.CanAdminister(p); err != nil {
		return err
	}
	if err := noIfMatch(r.Header, noTenantETag); err != nil {
		return err
	}
	ifAbsent, err := ifNoneMatchAny(r.Header)
	if err != nil {
		return err
	}
	var in wire.Onboarding
	if err := s.decode(w, r, &in, false); err != nil {
		return err
	}
	onboard := s.cfg.Tenants.Onboard
	if ifAbsent {
		onboard = s.cfg.Tenants.OnboardIfAbsent
	}
	t, st, err := onboard(r.Context(), p, peer.IP(r), onboarding(in))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/tenants/"+t.ID)
	return writeJSON(w, http.StatusCreated, wire.OnboardedTenant{Tenant: wireTenant(t), Settings: wireSettings(st)})
}

// listTenants answers one page of the tenants p may see, sorted by id.
func (s *server) listTenants(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	q := r.URL.Query() // checked by the adapter against the route's params
	lq := tenants.ListQuery{Cursor: q.Get("cursor")}
	var err error
	if lq.Limit, err = limit(q, tenants.MaxListLimit); err != nil {
		return err
	}
	list, err := s.cfg.Tenants.ListPage(r.Context(), p, lq)
	if err != nil {
		return err
	}
	out := wire.TenantList{Tenants: make([]wire.Tenant, len(list.Tenants)), NextCursor: list.Next}
	for i, t := range list.Tenants {
		out.Tenants[i] = wireTenant(t)
	}
	for _, u := range list.Unreadable {
		out.Unreadable = append(out.Unreadable, wire.UnreadableTenant{ID: u.ID, Tenant: u.ID, Error: unreadable.Message})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *server) getTenant(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	t, err := s.cfg.Tenants.Tenant(r.Context(), p, r.PathValue("tenant"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", revisionETag(t.Revision))
	if done, err := notModified(w, r.Header, t.Revision, "the tenant"); done || err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wireTenant(t))
}

// updateTenant changes a registry entry. The fields it names replace the
// entry's (the domain and global-admin lists whole), so If-Match, when
// sent, makes the change apply only over the revision the caller read.
func (s *server) updateTenant(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	// The right comes before If-Match and the body: a caller who may not
	// change the entry learns neither what a valid change looks like nor
	// anything of its revision.
	if err := s.cfg.Tenants.CanAdminister(p); err != nil {
		return err
	}
	if err := s.mustExist(r, p); err != nil {
		return err
	}
	cond, err := condition(r.Header, "the tenant")
	if err != nil {
		return err
	}
	var u wire.TenantUpdate
	if err := s.decode(w, r, &u, false); err != nil {
		return err
	}
	t, err := s.cfg.Tenants.UpdateTenantWhen(r.Context(), p, peer.IP(r), r.PathValue("tenant"), tenantUpdate(u), cond)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", revisionETag(t.Revision))
	return writeJSON(w, http.StatusOK, wireTenant(t))
}

// offboardTenant ends the provider's relationship with a tenant, as a
// request's action is taken: POST to the tenant's offboard, with why. It
// changes the registry entry, so If-Match, when sent, is the entry's ETag
// as for a PATCH: an administrator who decided on the entry as they read
// it does not offboard one that changed since.
func (s *server) offboardTenant(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	// The right before If-Match and the body, as for a PATCH.
	if err := s.cfg.Tenants.CanOffboard(p); err != nil {
		return err
	}
	if err := s.mustExist(r, p); err != nil {
		return err
	}
	cond, err := condition(r.Header, "the tenant")
	if err != nil {
		return err
	}
	var in wire.Offboarding
	if err := s.decode(w, r, &in, false); err != nil {
		return err
	}
	t, err := s.cfg.Tenants.OffboardWhen(r.Context(), p, peer.IP(r), r.PathValue("tenant"), in.Reason, cond)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", revisionETag(t.Revision))
	return writeJSON(w, http.StatusOK, wireTenant(t))
}

func (s *server) getSettings(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	st, err := s.cfg.Tenants.Settings(r.Context(), p, r.PathValue("tenant"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", revisionETag(st.Revision))
	if done, err := notModified(w, r.Header, st.Revision, "the settings"); done || err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wireSettings(st))
}

// notModified answers a GET of the settings or a registry entry, read at
// revision, 304 Not Modified when its If-None-Match names that revision
// (or is "*": what was read exists), and reports whether it did (RFC 9110
// 13.1.2, 15.4.5). The ETag is already set, and so is the Cache-Control
// every answer carries; a 304 has no body. It runs after the read, so
// whoever may not read them is refused as before, and learns nothing of
// their revision from the header.
func notModified(w http.ResponseWriter, h http.Header, revision int64, of string) (bool, error) {
	none, err := ifNoneMatch(h, of)
	if err != nil || !none.matches(revision) {
		return false, err
	}
	w.WriteHeader(http.StatusNotModified)
	return true, nil
}

func (s *server) putSettings(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	// As for a registry entry: the right first, then If-Match and the
	// body. PutSettingsWhen judges it again, with the change.
	if err := s.cfg.Tenants.CanConfigure(r.Context(), p, r.PathValue("tenant")); err != nil {
		return err
	}
	cond, err := condition(r.Header, "the settings")
	if err != nil {
		return err
	}
	var in wire.SettingsInput
	if err := s.decode(w, r, &in, false); err != nil {
		return err
	}
	if in.LockboxEnabled == nil {
		return httperr.New(http.StatusBadRequest, "invalid_settings", "lockbox_enabled is required")
	}
	st := tenants.Settings{LockboxEnabled: *in.LockboxEnabled, NotificationAddresses: in.NotificationAddresses}
	if st.NotificationAddresses == nil {
		st.NotificationAddresses = []string{}
	}
	st, err = s.cfg.Tenants.PutSettingsWhen(r.Context(), p, peer.IP(r), r.PathValue("tenant"), st, cond)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", revisionETag(st.Revision))
	return writeJSON(w, http.StatusOK, wireSettings(st))
}

// mustExist returns the refusal of a change to a registry entry that does
// not exist (404 tenant_not_found, or 400 for a malformed id), before the
// change is read, as a request's action looks the request up first: read
// after If-Match and the body, a change to a tenant never onboarded got
// 400 for a flawed body and 404 only once the body was right, so a script
// that onboards what answers 404 took a missing tenant for its own
// mistake. The change itself judges it again.
func (s *server) mustExist(r *http.Request, p identity.Principal) error {
	_, err := s.cfg.Tenants.Tenant(r.Context(), p, r.PathValue("tenant"))
	return err
}

// revisionETag is the entity tag of settings or a registry entry at
// revision: strong, as the revision names one exact version of them.
func revisionETag(revision int64) string {
	return `"` + strconv.FormatInt(revision, 10) + `"`
}

// ifMatch reads the If-Match header of a change to the settings or a
// registry entry (what names it, for the message): the revision of the
// ETag it names, or tenants.AnyRevision for none or "*", which change
// them whatever they are, as before ETags existed. ("*" needs no check of
// its own: the settings always exist, a tenant nobody configured has
// defaults, and a change to an entry that does not exist is 404.)
//
// Anything else is refused with 400 rather than compared: our ETags are
// only ever one strong tag, so a list, a weak tag (W/"7", as a compressing
// proxy may rewrite them) or another value is a client's mistake that no
// re-read would correct, where a 412 would send it round in circles. An
// empty header too: it is "-H If-Match:$ETAG" with ETAG unset, which must
// not become a write without a check.
func ifMatch(h http.Header, of string) (int64, error) {
	vals := h.Values("If-Match")
	if len(vals) == 0 {
		return tenants.AnyRevision, nil
	}
	v := strings.TrimSpace(strings.Join(vals, ","))
	if v == "*" {
		return tenants.AnyRevision, nil
	}
	// Strong comparison is byte for byte: "07" is not "7".
	if n, ok := revisionOf(v); ok {
		return n, nil
	}
	return 0, httperr.New(http.StatusBadRequest, "invalid_if_match",
		`If-Match must be "*" or the one ETag a GET of %s answered, quotes included, such as "7"`, of)
}

// condition reads the If-Match and If-None-Match of a change to the
// settings or a registry entry (of names it, for the messages), for the
// store to judge in the change's transaction: judged here, against a
// revision read before it, a change saved in between would slip past.
func condition(h http.Header, of string) (tenants.Condition, error) {
	ifRevision, err := ifMatch(h, of)
	if err != nil {
		return tenants.Condition{}, err
	}
	none, err := ifNoneMatch(h, of)
	if err != nil {
		return tenants.Condition{}, err
	}
	return tenants.Condition{IfRevision: ifRevision, NotAny: none.any, NotRevisions: none.revisions}, nil
}

// noneMatch is a request's If-None-Match, read by ifNoneMatch: none sent,
// "*", or the revisions its tags name.
type noneMatch struct {
	any       bool
	revisions []int64
}

// matches reports whether the settings or entry at revision meet the
// header, which makes its condition false (RFC 9110 13.1.2): a change is
// then refused, and a GET answered 304. "*" matches whatever exists, and
// what a GET or change reaches always does.
func (n noneMatch) matches(revision int64) bool {
	return n.any || slices.Contains(n.revisions, revision)
}

// ifNoneMatch reads the If-None-Match of a GET of, or a change to, the
// settings or a registry entry (what names it, for the message): "*", or
// a list of their ETags, over as many headers as sent. The comparison is
// weak, as RFC 9110 13.1.2 asks (a proxy that compresses may have
// weakened the tag to W/"7"), so W/ is dropped; empty list elements are
// skipped, as 5.6.1 asks.
//
// Any other value is refused with 400, not compared: a tag that is not
// one of ours can never match, so the condition would always hold and the
// change be made whatever the client meant it to depend on, as if the
// header were ignored. An empty header too, "-H If-None-Match:$ETAG"
// with ETAG unset, and "*" inside a list.
func ifNoneMatch(h http.Header, of string) (noneMatch, error) {
	vals := h.Values("If-None-Match")
	if len(vals) == 0 {
		return noneMatch{}, nil
	}
	all := strings.Join(vals, ",")
	if strings.TrimSpace(all) == "*" {
		return noneMatch{any: true}, nil
	}
	var out noneMatch
	for tag := range strings.SplitSeq(all, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "" {
			continue
		}
		n, ok := revisionOf(strings.TrimPrefix(tag, "W/"))
		if !ok {
			return noneMatch{}, invalidIfNoneMatch(of)
		}
		out.revisions = append(out.revisions, n)
	}
	if len(out.revisions) == 0 {
		return noneMatch{}, invalidIfNoneMatch(of)
	}
	return out, nil
}

func invalidIfNoneMatch(of string) error {
	return httperr.New(http.StatusBadRequest, "invalid_if_none_match",
		`If-None-Match must be "*" or ETags a GET of %s answered, quotes included, such as "7" or "6", "7"`, of)
}

// revisionOf returns the revision a strong ETag of ours names: decimal
// digits in quotes, with no sign or leading zero ("07" is not "7").
func revisionOf(tag string) (int64, bool) {
	if len(tag) <= 2 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return 0, false
	}
	digits := tag[1 : len(tag)-1]
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != digits {
		return 0, false
	}
	return n, true
}

// noIfNoneMatch refuses any If-None-Match on a route whose resource has
// no ETag (a lockbox request, an approver assignment), why saying so for
// the message. Ignored, the header made a change its sender meant to be
// conditional an unconditional one; no tag can name anything there, and
// "*" would only ever fail, so it is refused as noIfMatch refuses a tag.
func noIfNoneMatch(h http.Header, why string) error {
	if len(h.Values("If-None-Match")) == 0 {
		return nil
	}
	return httperr.New(http.StatusBadRequest, "invalid_if_none_match", "If-None-Match is not taken here: %s", why)
}

func (s *server) listApprovers(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	list, err := s.cfg.Tenants.Approvers(r.Context(), p, r.PathValue("tenant"))
	if err != nil {
		return err
	}
	out := wire.ApproverList{Approvers: list.Approvers}
	if out.Approvers == nil {
		out.Approvers = []string{}
	}
	for _, n := range list.NotCounting {
		out.NotCounting = append(out.NotCounting, wire.NotCountingApprover{User: n.User, Reason: n.Reason})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *server) addApprover(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	if err := s.approverCall(w, r, p); err != nil {
		return err
	}
	if err := s.cfg.Tenants.AddApprover(r.Context(), p, peer.IP(r), r.PathValue("tenant"), r.PathValue("user")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) removeApprover(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	if err := s.approverCall(w, r, p); err != nil {
		return err
	}
	if err := s.cfg.Tenants.RemoveApprover(r.Context(), p, peer.IP(r), r.PathValue("tenant"), r.PathValue("user")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// approverCall checks what assigning or removing an approver is sent with:
// the right first, so that a caller without it learns nothing from how
// the call is formed, then If-Match and the body. The path names the
// change whole; a body would be a client that means something the call
// does not do (a list of users, a role), so it is refused rather than
// ignored, and so is a condition no ETag can meet.
func (s *server) approverCall(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	if err := s.cfg.Tenants.CanAssign(r.Context(), p, r.PathValue("tenant")); err != nil {
		return err
	}
	if err := noIfMatch(r.Header, noApproverETag); err != nil {
		return err
	}
	if err := noIfNoneMatch(r.Header, noApproverETag); err != nil {
		return err
	}
	return s.noBody(w, r)
}

// ifNoneMatchAny reads the If-None-Match of an onboarding: true for "*",
// which makes it conditional on the id having no registry entry yet. RFC
// 9110 13.1.2 makes "*" false when the target has a current
// representation, and a change whose condition is false 412 rather than
// made: ignored, the header left a client that asked "create, never
// overwrite" to tell a 409 from its own condition failing. A tenant not
// yet onboarded has no ETag, so a tag can't name anything the client
// read: any other value is refused, as noIfMatch refuses one.
func ifNoneMatchAny(h http.Header) (bool, error) {
	vals := h.Values("If-None-Match")
	if len(vals) == 0 {
		return false, nil
	}
	if strings.TrimSpace(strings.Join(vals, ",")) == "*" {
		return true, nil
	}
	return false, httperr.New(http.StatusBadRequest, "invalid_if_none_match",
		`If-None-Match is taken here only as "*", to onboard an id that has no registry entry yet: %s`, noTenantETag)
}

// Why a route refuses any If-Match but "*" (noIfMatch), and any
// If-None-Match but onboarding's "*" (noIfNoneMatch), for its message.
const (
	noTenantETag   = "a tenant not yet onboarded has no ETag; onboarding an id already taken is 409 tenant_exists"
	noApproverETag = "an approver assignment has no ETag; assigning an approver twice, or removing one who is not, changes nothing"
)
