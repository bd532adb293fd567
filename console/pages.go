package console

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/httperr"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/peer"
	"github.com/lockbox-oss/lockbox/internal/readlimit"
	"github.com/lockbox-oss/lockbox/internal/writedeadline"
	"github.com/lockbox-oss/lockbox/tenants"
)

func actor(r *http.Request, sess Session) grants.Actor {
	return grants.Actor{Principal: sess.Principal, ClientIP: peer.IP(r)}
}

// seeOther redirects after a successful form post, so reloading the result
// doesn't post again.
func seeOther(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// requestRow is a request in a list, with the time left on its clock.
type requestRow struct {
	grants.Request
	// Left is the time until the decision deadline (pending) or the end
	// of access (approved); empty otherwise.
	Left   string
	Urgent bool // under an hour left
	// Yours marks a pending request that waits for the viewer's kind of
	// decision: a manager's for support managers, the customer's for
	// the tenant's users who decide (decidesForTenant).
	Yours bool
}

func (c *Console) row(r grants.Request) requestRow {
	row := requestRow{Request: r}
	var until *time.Time
	switch {
	case r.State.Pending():
		until = r.DecideBy
	case r.State == grants.StateApproved:
		until = r.ExpiresAt
	}
	if until != nil {
		left := until.Sub(c.cfg.Now())
		row.Left, row.Urgent = humanDuration(left), left < time.Hour
	}
	return row
}

// listLimit is how many requests a page of the history or of the pending
// list shows.
const listLimit = 200

type requestsView struct {
	Pending pendingView
	History []requestRow
	// Unreadable are the requests of the history's page that can't be
	// read: a row each, below the others.
	Unreadable []grants.Unreadable
	Filter     historyFilter
	States     []grants.State
	// Query is the page's query string (filters and cursors), which the
	// live pending list polls with so that it stays on the page shown and
	// its links keep the history where it is.
	Query string
	// Older links to the history's next page, Newer to the page before
	// (none on the first); First to its first when a cursor was refused.
	Older, Newer, First template.URL
	Problem             string
	Invalid             string // the id of the filter Problem is about
}

type historyFilter struct {
	State    string
	From, To string // YYYY-MM-DD, UTC
}

// Query parameters of the requests page besides the history filters: the
// cursor of the history's page, and that of the pending list's.
const (
	historyCursorParam = "cursor"
	pendingCursorParam = "pending_cursor"
)

// requestsQuery is the part of q the requests page reads: the history's
// filters and both lists' cursors. Links carry it on, each changing its
// own list's cursor, so that paging one list leaves the other where it is.
func requestsQuery(q url.Values) url.Values {
	out := url.Values{}
	for _, k := range []string{"state", "from", "to", historyCursorParam, pendingCursorParam} {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	return out
}

// requestsLink is the requests page with query q. It is a template.URL
// for the reason auditView's query strings are.
func requestsLink(q url.Values) template.URL {
	if len(q) == 0 {
		return "/console/requests"
	}
	return template.URL("/console/requests?" + q.Encode())
}

// with returns a copy of q with k set to v, or removed when v is empty.
func with(q url.Values, k, v string) url.Values {
	out := maps.Clone(q)
	if out == nil {
		out = url.Values{}
	}
	if v == "" {
		out.Del(k)
	} else {
		out.Set(k, v)
	}
	return out
}

// historyStates are the states the history filter offers.
var historyStates = []grants.State{grants.StateApproved, grants.StateCompleted, grants.StateRevoked, grants.StateDenied, grants.StateExpired, grants.StateCanceled}

// badHistoryCursor is what the page says of a history cursor the store
// refused. The store's own message speaks to API clients. Older and Newer
// links carry the same parameter, and a cursor the store refused may not
// say which it was, so the message names both.
const badHistoryCursor = "This link to older or newer requests is not valid: it was changed, or it belongs to other filters or to another user. Start again from the newest requests."

// requestsPage lists what is pending (what waits for the viewer first,
// then by deadline) and the history, filtered by state and creation date,
// each a page at a time.
func (c *Console) requestsPage(w http.ResponseWriter, r *http.Request, sess Session) error {
	q := requestsQuery(r.URL.Query())
	v := requestsView{States: historyStates, Filter: historyFilter{State: q.Get("state"), From: q.Get("from"), To: q.Get("to")},
		Query: q.Encode()}
	pending, err := c.pending(r.Context(), sess, q)
	if err != nil {
		return err
	}
	v.Pending = pending
	status := http.StatusOK
	if pending.Problem != "" {
		status = http.StatusBadRequest
	}
	// The history is the requests no longer pending, matched by the
	// store before it cuts a page: filtering a page afterwards left it
	// short, or empty while older requests matched.
	f := grants.Filter{Limit: listLimit, ExcludePending: true, Cursor: q.Get(historyCursorParam)}
	if v.Filter.State != "" {
		if f.State = grants.State(v.Filter.State); !slices.Contains(historyStates, f.State) {
			return httperr.New(http.StatusBadRequest, "invalid_state", "Choose a state from the list.")
		}
	}
	from, to, problem, field := dateRange(v.Filter.From, v.Filter.To)
	if problem != "" {
		v.Problem, v.Invalid = problem, field
		c.render(w, r, http.StatusBadRequest, "requests", &sess, v)
		return nil
	}
	if !from.IsZero() {
		// from is the first instant of its day; the bound is exclusive.
		f.CreatedAfter = from.Add(-time.Nanosecond)
	}
	if !to.IsZero() {
		// to is the last instant of its day; the bound is exclusive.
		f.CreatedBefore = to.Add(time.Nanosecond)
	}
	page, err := c.cfg.Requests.ListPage(r.Context(), sess.Principal, f)
	if err != nil {
		if _, code, _ := httperr.FromError(err); code != "invalid_cursor" {
			return err
		}
		v.Problem, v.First = badHistoryCursor, requestsLink(with(q, historyCursorParam, ""))
		c.render(w, r, http.StatusBadRequest, "requests", &sess, v)
		return nil
	}
	for _, req := range page.Requests {
		v.History = append(v.History, c.row(req))
	}
	v.Unreadable = page.Unreadable
	if page.Next != "" {
		v.Older = requestsLink(with(q, historyCursorParam, page.Next))
	}
	if page.Prev != "" {
		v.Newer = requestsLink(with(q, historyCursorParam, page.Prev))
	}
	c.render(w, r, status, "requests", &sess, v)
	return nil
}

// pendingView is a page of the pending list.
type pendingView struct {
	Rows []requestRow
	// Total is how many requests are pending that the viewer may see,
	// Yours how many of them wait for the viewer's decision; From is the
	// place of the page's first row among them (1 for the first page).
	Total, Yours, From int
	// Next links to the next page, First to the first: set when there
	// is one, and on any page but the first.
	Next, First template.URL
	Problem     string
	// Unreadable are the pending requests that can't be read, on every
	// page: whether they still wait is unknown, and none may go unseen.
	Unreadable []grants.Unreadable
}

// To is the place of the page's last row.
func (p pendingView) To() int { return p.From + len(p.Rows) - 1 }

// Paged tells whether the list doesn't fit on one page, or this isn't its
// first.
func (p pendingView) Paged() bool { return p.Next != "" || p.First != "" }

// badPendingCursor is what the page says of a pending list's cursor that
// is not one the page gave the viewer.
const badPendingCursor = "This link to more pending requests is not valid: it was changed, or it belongs to another user. Start again from the first pending requests."

// pending returns the page of the pending requests sess may see that q's
// cursor names: first those that wait for the viewer's kind of decision,
// then by deadline. A cursor it can't read leaves the view with only a
// Problem, for a 400.
//
// An approver must never miss a pending request, so the list is never cut
// silently: a page says how many there are and links to the next. The
// store returns every pending request (it reads them all to order them by
// deadline anyway), so the page knows the total and orders them all,
// those waiting for the viewer first across every page, not only within
// one.
func (c *Console) pending(ctx context.Context, sess Session, q url.Values) (pendingView, error) {
	var after pendingCursor
	if s := q.Get(pendingCursorParam); s != "" {
		k, ok := parsePendingCursor(s, sess.Principal)
		if !ok {
			return pendingView{Problem: badPendingCursor, First: requestsLink(with(q, pendingCursorParam, ""))}, nil
		}
		after = k
	}
	list, err := c.cfg.Requests.PendingList(ctx, sess.Principal)
	if err != nil {
		return pendingView{}, err
	}
	reqs := list.Requests
	decides, err := c.decidesForTenant(ctx, sess.Principal)
	if err != nil {
		return pendingView{}, err
	}
	p := sess.Principal
	all := make([]requestRow, 0, len(reqs))
	v := pendingView{Total: len(reqs), From: 1, Unreadable: list.Unreadable}
	for _, req := range reqs {
		row := c.row(req)
		// The two-person rule, as the lifecycle applies it: a tenant
		// user's rows are the tenant's view, which names none of the
		// provider's staff, so the list says whom the stored request
		// names.
		row.Yours = (req.State == grants.StatePendingCustomer && decides && !list.TookPart[req.ID]) ||
			(req.State == grants.StatePendingManager && p.IsProvider() && p.Has(identity.RoleSupportManager) && !grants.SelfFiled(req, p))
		if row.Yours {
			v.Yours++
		}
		all = append(all, row)
	}
	slices.SortFunc(all, func(a, b requestRow) int { return keyOf(a).compare(keyOf(b)) })
	// A page starts after the cursor's requests, not at a count: requests
	// decided since the previous page leave it without making this one
	// skip any. It starts after one request in each part of the list, the
	// viewer's and the others', each read on from where it was left: a
	// request that came to wait for the viewer since (the manager passed
	// it on to the tenant) moves to the viewer's part, which an earlier
	// page may have finished, and is shown first, not skipped with it.
	rest := slices.Concat(after.yours.rowsAfter(all[:v.Yours]), after.others.rowsAfter(all[v.Yours:]))
	if q.Get(pendingCursorParam) != "" {
		v.First = requestsLink(with(q, pendingCursorParam, ""))
	}
	end := min(listLimit, len(rest))
	v.Rows, v.From = rest[:end], len(all)-len(rest)+1
	if end < len(rest) {
		next := after
		for _, row := range v.Rows {
			k := keyOf(row)
			if k.yours {
				next.yours = &k
			} else {
				next.others = &k
			}
		}
		v.Next = requestsLink(with(q, pendingCursorParam, next.cursor(p)))
	}
	return v, nil
}

// pendingKey is a pending request's place in the pending list's order.
type pendingKey struct {
	yours    bool
	decideBy int64 // Unix nanoseconds
	tenant   string
	id       string
}

func keyOf(row requestRow) pendingKey {
	k := pendingKey{yours: row.Yours, tenant: row.Tenant, id: row.ID}
	if row.DecideBy != nil {
		k.decideBy = row.DecideBy.UnixNano()
	}
	return k
}

// compare orders the pending list: the viewer's decisions first, then by
// deadline, then by tenant and id so that every request has one place.
func (k pendingKey) compare(o pendingKey) int {
	if k.yours != o.yours {
		if k.yours {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(k.decideBy, o.decideBy), cmp.Compare(k.tenant, o.tenant), cmp.Compare(k.id, o.id))
}

// rowsAfter returns the rows of part (one part of the sorted list, all
// of whose keys have k's yours) that come after k; all of them for a nil
// k.
func (k *pendingKey) rowsAfter(part []requestRow) []requestRow {
	if k == nil {
		return part
	}
	i, _ := slices.BinarySearchFunc(part, *k, func(row requestRow, k pendingKey) int {
		if keyOf(row).compare(k) <= 0 {
			return -1
		}
		return 1
	})
	return part[i:]
}

// pendingCursor is where a viewer stands in the pending list: the last
// request shown of each of its parts, the requests waiting for the
// viewer's decision and the others (nil before the first). Its checksum
// binds it to the viewer (the parts are the viewer's). The checksum is no
// secret: a cursor holds nothing the pages didn't show, and what follows
// it is only ever what the store let the viewer see, so a forged cursor
// shows nothing more; it makes a cursor changed on the way, or another
// user's, a clear refusal rather than some other page.
type pendingCursor struct {
	yours, others *pendingKey
}

// pendingCursorVersion is the first field of every pending cursor. The
// cursors of "p1", one place in the whole list, are refused: a page that
// polls with one shows the way back to the first page.
const pendingCursorVersion = "p2"

// fields are the cursor's fields as it writes them: the deadline, tenant
// and id of each part's place, empty for none.
func (c pendingCursor) fields() []string {
	out := []string{pendingCursorVersion}
	for _, k := range []*pendingKey{c.yours, c.others} {
		if k == nil {
			out = append(out, "", "", "")
			continue
		}
		out = append(out, strconv.FormatInt(k.decideBy, 10), k.tenant, k.id)
	}
	return out
}

// check is the checksum of c for viewer p.
func (c pendingCursor) check(p identity.Principal) string {
	h := sha256.New()
	// Each field length-prefixed, so no two inputs hash the same.
	for _, s := range append([]string{p.Subject, p.TenantID}, c.fields()...) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// cursor is the pending list's cursor continuing after c, for viewer p.
func (c pendingCursor) cursor(p identity.Principal) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(append(c.fields(), c.check(p)), ":")))
}

// parsePendingCursor returns the places of a pending cursor, refusing any
// that cursor did not return for viewer p.
func parsePendingCursor(s string, p identity.Principal) (pendingCursor, bool) {
	if len(s) > 512 {
		return pendingCursor{}, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return pendingCursor{}, false
	}
	parts := strings.Split(string(b), ":")
	if len(parts) != 8 || parts[0] != pendingCursorVersion {
		return pendingCursor{}, false
	}
	var c pendingCursor
	for i, dst := range []**pendingKey{&c.yours, &c.others} {
		f := parts[1+3*i : 4+3*i]
		if f[0] == "" && f[1] == "" && f[2] == "" {
			continue
		}
		at, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || !keys.IsTenant(f[1]) || !keys.IsUUID(f[2]) {
			return pendingCursor{}, false
		}
		*dst = &pendingKey{yours: i == 0, decideBy: at, tenant: f[1], id: f[2]}
	}
	if c.cursor(p) != s {
		return pendingCursor{}, false
	}
	return c, true
}

// pendingFragment is the pending list alone, which the page's script
// polls with the page's query, so it refreshes the page of the list shown.
// It does not count as activity for the idle timeout. A cursor it refuses
// is answered 400 with the list saying so, which the script shows as it
// shows any list: no other failure of this route answers 400.
func (c *Console) pendingFragment(w http.ResponseWriter, r *http.Request, sess Session) error {
	pending, err := c.pending(r.Context(), sess, requestsQuery(r.URL.Query()))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if pending.Problem != "" {
		status = http.StatusBadRequest
	}
	c.renderTemplate(w, r, status, "requests", "pending", &sess, requestsView{Pending: pending})
	return nil
}

// dateRange parses the YYYY-MM-DD bounds of a filter as whole UTC days.
// A problem comes with the id of the field it is about ("from" or "to"),
// which the page marks and puts the focus on: a screen reader then reads
// the problem with the date to correct.
func dateRange(fromS, toS string) (from, to time.Time, problem, field string) {
	var err error
	if fromS != "" {
		if from, err = time.Parse(time.DateOnly, fromS); err != nil {
			return from, to, "The start date must be a date such as 2026-03-01.", "from"
		}
	}
	if toS != "" {
		if to, err = time.Parse(time.DateOnly, toS); err != nil {
			return from, to, "The end date must be a date such as 2026-03-31.", "to"
		}
		to = to.Add(24*time.Hour - time.Nanosecond)
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return from, to, "The end date is before the start date.", "to"
	}
	return from, to, "", ""
}

type requestView struct {
	requestRow
	Activity []record.Record
	// Unreadable are the records of the request's span of the tenant's
	// log that can't be read: a row names each, as the audit page does,
	// since each may be one of the request's.
	Unreadable []audit.UnreadableRecord
	// Older and Newer link to the next and the previous page of the
	// trail; empty when there is none.
	Older, Newer template.URL
	Actions      []actionView
	// SelfFiled tells a manager why they can't approve their own request.
	SelfFiled bool
	// TookPart tells a tenant user who took part in the request for the
	// provider (grants.TookPart) why they can't decide it.
	TookPart bool
	Provider bool
	// EndedAt is when a request in a final state ended (grants.EndedAt,
	// the API's ended_at), which the page gives instead of the end of its
	// window (ExpiresAt): a revocation ends access before it, and a
	// request denied, canceled or expired had no window at all.
	EndedAt *time.Time
}

// endedAt is when r ended, nil while it has not.
func endedAt(r grants.Request) *time.Time {
	if at, ok := grants.EndedAt(r); ok {
		return &at
	}
	return nil
}

type actionView struct {
	Name, Label, Style string
}

// offer is what the request page offers: its buttons, and why a decision
// is not among them when the two-person rule keeps it from the user.
type offer struct {
	actions   []actionView
	selfFiled bool
	tookPart  bool
}

// offered returns what the request page offers sess on req.
func (c *Console) offered(ctx context.Context, sess Session, req grants.Request) (offer, error) {
	decides, err := c.decidesForTenant(ctx, sess.Principal)
	if err != nil {
		return offer{}, err
	}
	tookPart := false
	if decides && req.State == grants.StatePendingCustomer {
		// Only the stored request names the provider's staff: the one
		// read for the page is the tenant's view.
		if tookPart, err = c.cfg.Requests.SelfApproval(ctx, sess.Principal, req.ID); err != nil {
			return offer{}, err
		}
	}
	return actions(sess, req, decides, tookPart), nil
}

// offers reports whether o has the action named name.
func (o offer) offers(name string) bool {
	return slices.ContainsFunc(o.actions, func(a actionView) bool { return a.Name == name })
}

// actions are the buttons the request page offers sess; decides says
// whether sess's user decides for its tenant (decidesForTenant), tookPart
// whether the two-person rule keeps them from deciding req
// (grants.TookPart). They only spare users a button that would fail; the
// lifecycle decides.
func actions(sess Session, req grants.Request, decides, tookPart bool) (o offer) {
	p := sess.Principal
	decide := []actionView{{"approve", "Approve", "primary"}, {"deny", "Deny", "danger"}}
	switch {
	case req.State == grants.StatePendingCustomer && !p.IsProvider() && decides:
		if tookPart {
			o.tookPart = true
		} else {
			o.actions = append(o.actions, decide...)
		}
	case req.State == grants.StatePendingManager && p.IsProvider() && p.Has(identity.RoleSupportManager):
		if grants.SelfFiled(req, p) {
			o.selfFiled = true
		} else {
			o.actions = append(o.actions, decide...)
		}
	case req.State == grants.StateApproved && ((!p.IsProvider() && decides) || (p.IsProvider() && p.Has(identity.RoleSupportManager))):
		o.actions = append(o.actions, actionView{"revoke", "Revoke access", "danger"})
	}
	if req.State.Pending() && grants.Filed(req, p) {
		o.actions = append(o.actions, actionView{"cancel", "Cancel request", "secondary"})
	}
	return o
}

// requestPage shows one request: every field, its history, what was done
// under it, and the actions sess may take.
func (c *Console) requestPage(w http.ResponseWriter, r *http.Request, sess Session) error {
	id := r.PathValue("id")
	cursor := r.URL.Query().Get(trailCursorParam)
	trail, err := c.cfg.Requests.Trail(r.Context(), sess.Principal, id, grants.TrailPage{Cursor: cursor, Limit: trailPageSize})
	if cursor != "" && errors.Is(err, fault.ErrInvalid) {
		// A link of the trail this server no longer takes (cut, or from a
		// version before): the request's page, from the newest records,
		// rather than an error in its place.
		trail, err = c.cfg.Requests.Trail(r.Context(), sess.Principal, id, grants.TrailPage{Limit: trailPageSize})
	}
	if err != nil {
		return err
	}
	req := trail.Request
	o, err := c.offered(r.Context(), sess, req)
	if err != nil {
		return err
	}
	v := requestView{requestRow: c.row(req), Activity: trail.Records, Unreadable: trail.Unreadable, Provider: sess.Principal.IsProvider(), EndedAt: endedAt(req),
		Actions: o.actions, SelfFiled: o.selfFiled, TookPart: o.tookPart}
	if trail.Next != "" {
		v.Older = trailLink(id, trail.Next)
	}
	if trail.Prev != "" {
		v.Newer = trailLink(id, trail.Prev)
	}
	if want, ok := flashStates[r.URL.Query().Get("done")]; ok && req.State != want {
		r = withoutFlash(r)
	}
	c.render(w, r, http.StatusOK, "request", &sess, v)
	return nil
}

// trailPageSize is how many of a request's audit records its page shows
// at once: a window of up to 4 hours holds any number of calls.
const trailPageSize = 50

// trailCursorParam carries the request page's place in its audit trail.
const trailCursorParam = "trail"

// trailLink is the request page of request id at cursor of its trail.
func trailLink(id, cursor string) template.URL {
	return template.URL("/console/requests/" + url.PathEscape(id) + "?" + url.Values{trailCursorParam: {cursor}}.Encode())
}

// flashStates are the states the request page's notices speak of: the
// state the action leaves the request in. A notice rides in the page's
// URL, so the browser's Back and reload bring it back long after the
// request moved on, and shown then ("It now awaits the approvers of the
// tenant" on a denied request) it would tell the user something false. No
// request comes back to a state it left, so while the request is in the
// state the notice names, the notice is still true.
var flashStates = map[string]grants.State{
	"created":           grants.StatePendingManager,
	"approve_forwarded": grants.StatePendingCustomer,
	"approve":           grants.StateApproved,
	"deny":              grants.StateDenied,
	"revoke":            grants.StateRevoked,
	"cancel":            grants.StateCanceled,
}

// withoutFlash is r with no notice to show: its URL without done.
func withoutFlash(r *http.Request) *http.Request {
	u := *r.URL
	q := u.Query()
	q.Del("done")
	u.RawQuery = q.Encode()
	r = r.WithContext(r.Context()) // a shallow copy, whose URL is its own
	r.URL = &u
	return r
}

// confirmable are the request actions the console offers, by URL segment.
var confirmable = map[string]grants.Action{
	"approve": grants.ActionApprove,
	"deny":    grants.ActionDeny,
	"revoke":  grants.ActionRevoke,
	"cancel":  grants.ActionCancel,
}

type confirmView struct {
	requestRow
	Action  actionView
	Comment string
	Problem string
	// Offered shows the form: the action is one the request page offers.
	Offered bool
}

// confirmPage asks for a comment and a confirmation before an action. An
// action the request page does not offer the session (its roles or the
// request's state changed since the page was opened: a form posted by a
// session due to be verified again comes back here from the identity
// provider with the roles it gives now) gets no form, only why.
func (c *Console) confirmPage(w http.ResponseWriter, r *http.Request, sess Session) error {
	name := r.PathValue("action")
	if _, ok := confirmable[name]; !ok {
		return httperr.New(http.StatusNotFound, "not_found", "There is no such page.")
	}
	req, err := c.cfg.Requests.Get(r.Context(), sess.Principal, r.PathValue("id"))
	if err != nil {
		return err
	}
	o, err := c.offered(r.Context(), sess, req)
	if err != nil {
		return err
	}
	v := confirmView{requestRow: c.row(req), Action: actionNamed(name)}
	if v.Offered = o.offers(name); !v.Offered {
		v.Problem = v.Action.Label + " is not open to you on this request now: its state or your roles don't allow it."
	}
	c.render(w, r, http.StatusOK, "confirm", &sess, v)
	return nil
}

func actionNamed(name string) actionView {
	switch name {
	case "approve":
		return actionView{name, "Approve", "primary"}
	case "deny":
		return actionView{name, "Deny", "danger"}
	case "revoke":
		return actionView{name, "Revoke access", "danger"}
	}
	return actionView{name, "Cancel request", "secondary"}
}

// act takes a confirmed action on a request.
func (c *Console) act(w http.ResponseWriter, r *http.Request, sess Session) error {
	name := r.PathValue("action")
	a, ok := confirmable[name]
	if !ok {
		return httperr.New(http.StatusNotFound, "not_found", "There is no such action.")
	}
	id, comment := r.PathValue("id"), strings.TrimSpace(formText(r, "comment"))
	done, err := c.cfg.Requests.Act(r.Context(), id, a, actor(r, sess), comment)
	if err != nil {
		status, _, msg := httperr.FromError(err)
		if status >= http.StatusInternalServerError || status == http.StatusNotFound {
			return err
		}
		// A refusal the user can act on: show it on the form they sent,
		// while the action is still one the request page offers (a
		// comment to shorten). One the request moved past, or the user
		// may not take, gets no form to send again, only why, and the
		// comment typed.
		req, gerr := c.cfg.Requests.Get(r.Context(), sess.Principal, id)
		if gerr != nil {
			return err
		}
		o, gerr := c.offered(r.Context(), sess, req)
		if gerr != nil {
			return err
		}
		c.render(w, r, status, "confirm", &sess, confirmView{requestRow: c.row(req), Action: actionNamed(name), Comment: comment, Problem: msg,
			Offered: o.offers(name)})
		return nil
	}
	flash := name
	if a == grants.ActionApprove && done.State == grants.StatePendingCustomer {
		// The manager's approval, with the tenant's Customer Lockbox on:
		// nothing is approved yet, and "The request was approved." would
		// tell the manager the engineer has access.
		flash = "approve_forwarded"
	}
	seeOther(w, r, "/console/requests/"+url.PathEscape(id)+"?done="+flash)
	return nil
}

type newRequestView struct {
	// FormID names this form's filing (see fileOnce): the same form sent
	// again files nothing more.
	FormID    string
	Services  []serviceView
	Durations []string
	In        grants.CreateInput
	Duration  string
	Problem   string
	Invalid   string // the id of the field Problem is about
}

type serviceView struct {
	Name       string
	Activities []string
}

// requestFields are the new-request form's fields the lifecycle's error
// codes are about.
var requestFields = map[string]string{
	"invalid_tenant":          "tenant",
	"tenant_not_found":        "tenant",
	"tenant_offboarded":       "tenant",
	"invalid_service":         "service",
	"invalid_service_request": "service_request",
	"invalid_reason":          "reason",
	"invalid_duration":        "duration",
}

// requestDurations are the windows the form offers; 4 h is the most.
var requestDurations = []string{"30m", "1h", "2h", "3h", "4h"}

func (c *Console) newRequestView() newRequestView {
	cat := c.cfg.Catalog()
	v := newRequestView{FormID: rand.Text(), Durations: requestDurations, Duration: "1h"}
	for _, s := range cat.Services() {
		acts, _ := cat.Activities(s)
		v.Services = append(v.Services, serviceView{Name: s, Activities: acts})
	}
	return v
}

// fileRefusal is why the new-request form is not for the session's user,
// as the lifecycle refuses them.
const fileRefusal = "Only the provider's support engineers (operators) file lockbox requests."

// newRequestPage is the operator's form for a new request. Anyone else
// is refused with why, not shown the catalog in a form whose every
// sending the lifecycle refuses.
func (c *Console) newRequestPage(w http.ResponseWriter, r *http.Request, sess Session) error {
	if !canFile(sess.Principal) {
		return httperr.New(http.StatusForbidden, "forbidden", "%s", fileRefusal)
	}
	c.render(w, r, http.StatusOK, "new", &sess, c.newRequestView())
	return nil
}

// createRequest files the form's request, once for each form (fileOnce).
// A refusal comes back on the form with everything the engineer typed,
// and the same form id, for the corrected form to be filed once too. A
// user who may not file (no operator, or no longer one) gets why, and no
// form to send again: the lifecycle would refuse it the same way.
func (c *Console) createRequest(w http.ResponseWriter, r *http.Request, sess Session) error {
	if !canFile(sess.Principal) {
		return httperr.New(http.StatusForbidden, "forbidden", "%s", fileRefusal)
	}
	v := c.newRequestView()
	formID := r.PostFormValue("form_id")
	if validFormID(formID) {
		v.FormID = formID
	}
	v.In = grants.CreateInput{
		Tenant:         strings.TrimSpace(r.PostFormValue("tenant")),
		Service:        r.PostFormValue("service"),
		ServiceRequest: strings.TrimSpace(r.PostFormValue("service_request")),
		Reason:         strings.TrimSpace(formText(r, "reason")),
	}
	v.Duration = r.PostFormValue("duration")
	// Only the chosen service's activities count: the form lists every
	// service's, and a box left ticked under another service is not a
	// request for it.
	if acts, ok := c.cfg.Catalog().Activities(v.In.Service); ok {
		for _, a := range r.PostForm["activity"] {
			if svc, name, ok := strings.Cut(a, "/"); ok && svc == v.In.Service && slices.Contains(acts, name) {
				v.In.Activities = append(v.In.Activities, name)
			}
		}
	}
	d, err := time.ParseDuration(v.Duration)
	if err != nil || !slices.Contains(requestDurations, v.Duration) {
		v.Problem, v.Invalid = "Choose a duration from the list (at most 4 hours).", "duration"
		c.render(w, r, http.StatusBadRequest, "new", &sess, v)
		return nil
	}
	v.In.Duration = grants.Duration(d)
	id, err := c.fileOnce(r.Context(), sess, v.FormID, func() (string, error) {
		req, err := c.cfg.Requests.Create(r.Context(), actor(r, sess), v.In)
		return req.ID, err
	})
	if err != nil {
		status, _, msg := httperr.FromError(err)
		if status >= http.StatusInternalServerError {
			return err
		}
		v.Problem, v.Invalid = msg, invalidField(err, requestFields)
		c.render(w, r, status, "new", &sess, v)
		return nil
	}
	seeOther(w, r, "/console/requests/"+url.PathEscape(id)+"?done=created")
	return nil
}

// formText is the text a form's textarea sent as name, its line breaks
// as LF. A browser counts a line break as one character against the
// textarea's maxlength but sends it as CRLF (HTML's form encoding), and the
// lifecycle counts characters as sent: a reason or comment with line
// breaks, typed up to the length its field allowed, was refused as that
// many characters too long. A lone CR is left for the lifecycle to refuse;
// no browser sends one.
func formText(r *http.Request, name string) string {
	return strings.ReplaceAll(r.PostFormValue(name), "\r\n", "\n")
}

// tenantOf is the tenant a settings, approvers or audit page is about: a
// tenant user's own; for the provider's staff, the one they asked for.
func tenantOf(r *http.Request, sess Session) string {
	if !sess.Principal.IsProvider() {
		return sess.Principal.TenantID
	}
	return strings.TrimSpace(r.URL.Query().Get("tenant"))
}

// formTenant is the tenant whose settings or approvers sess's form
// changes: the session's own. The provider's staff have none and change no
// tenant's (they only read them, with ?tenant=), so they get 403 with
// refusal, as the API refuses them. Handing the domain their empty tenant
// answered 400 about an invalid identifier, and the settings page then
// offered them the form again.
func formTenant(sess Session, refusal string) (string, error) {
	if t := sess.Principal.TenantID; t != "" {
		return t, nil
	}
	return "", httperr.New(http.StatusForbidden, "forbidden", "%s", refusal)
}

type settingsView struct {
	Tenant   string
	Settings tenants.Settings
	// Revision is the form's revision field: the revision of the
	// settings it shows, or empty for none (saving then checks none).
	Revision  string
	CanChange bool
	Addresses string
	Problem   string
	Invalid   string // the id of the field Problem is about
	// Offboarded is set once the provider offboarded the tenant: its
	// settings are shown, and can no longer change.
	Offboarded *tenants.Offboarded
	// ReadOnlyAddresses: the notification addresses are shown as text,
	// to the tenant's own users, whose form showed them before.
	ReadOnlyAddresses bool
	// Unsaved is the change a form opened before someone else's did not
	// save, as typed, shown beside the form that now holds the settings
	// as stored: to copy from, not to send again unseen.
	Unsaved *unsavedSettings
}

type unsavedSettings struct {
	LockboxEnabled bool
	Addresses      string
}

// settingsPage shows the tenant's switch; its global admins may change it.
func (c *Console) settingsPage(w http.ResponseWriter, r *http.Request, sess Session) error {
	return c.showSettings(w, r, sess, http.StatusOK, "")
}

func (c *Console) showSettings(w http.ResponseWriter, r *http.Request, sess Session, status int, problem string) error {
	t := tenantOf(r, sess)
	if t == "" {
		return httperr.New(http.StatusBadRequest, "tenant_required", "Name a tenant: /console/settings?tenant=…")
	}
	st, err := c.cfg.Tenants.Settings(r.Context(), sess.Principal, t)
	if err != nil {
		return err
	}
	// Whoever reads the settings reads the entry (a global admin, an
	// assigned approver, a provider manager).
	entry, err := c.cfg.Tenants.Tenant(r.Context(), sess.Principal, t)
	if err != nil {
		return err
	}
	c.render(w, r, status, "settings", &sess, settingsView{Tenant: t, Settings: st, Revision: strconv.FormatInt(st.Revision, 10), Problem: problem,
		// Reading them means a global admin, an assigned approver or a
		// provider manager; the tenant's own may change them, until the
		// provider offboards it: a form whose saving is refused (409)
		// would only offer a dead end.
		CanChange: sess.Principal.InTenant(t) && !entry.IsOffboarded(), Addresses: strings.Join(st.NotificationAddresses, "\n"),
		Offboarded: entry.Offboarded, ReadOnlyAddresses: entry.IsOffboarded() && sess.Principal.InTenant(t)})
	return nil
}

// offboardedConflict reports whether err is the refusal of a change to a
// tenant the provider offboarded (tenants' tenant_offboarded conflict).
func offboardedConflict(err error) bool {
	fe, ok := errors.AsType[*fault.Error](err)
	return ok && errors.Is(err, fault.ErrConflict) && fe.Code == "tenant_offboarded"
}

// refusedOffboarded answers a settings or approvers form (what names
// which) refused with err: when the provider offboarded tenant t, most
// likely after the form was opened, with show's page as it now reads,
// read-only, saying when it was offboarded and that nothing changed (409);
// a bare error page would leave the user wondering what became of their
// change. Any other err is returned as it is.
func (c *Console) refusedOffboarded(w http.ResponseWriter, r *http.Request, sess Session, t string, err error, what string,
	show func(http.ResponseWriter, *http.Request, Session, int, string) error) error {
	if !offboardedConflict(err) {
		return err
	}
	entry, rerr := c.cfg.Tenants.Tenant(r.Context(), sess.Principal, t)
	if rerr != nil {
		return rerr
	}
	if entry.Offboarded == nil {
		// The refusal and the entry disagree (a restore from backup?):
		// the refusal stands, as it was given.
		return err
	}
	problem := fmt.Sprintf("Your change was not saved: the provider offboarded tenant %s on %s, and its %s can no longer change. Nothing was changed; they are shown below as they are.",
		t, entry.Offboarded.At.UTC().Format("2006-01-02 15:04 UTC"), what)
	return show(w, r, sess, http.StatusConflict, problem)
}

// settingsChangedProblem is what the settings page says when its form was
// opened on settings that someone has changed since.
const settingsChangedProblem = "The settings changed since you opened this page, and your change was not saved. Review them below and save again."

// saveSettings saves the settings form. The form carries the revision of
// the settings it was rendered with (field revision), and the change is
// saved only over that revision: the form sends every setting, so saving
// a page opened before another administrator's change would undo it. A
// stale form shows the settings as they are now, with the new revision,
// and saves nothing. A form without the field (a page from before
// revisions) saves whatever the revision, as it always did.
func (c *Console) saveSettings(w http.ResponseWriter, r *http.Request, sess Session) error {
	t, err := formTenant(sess, "Only a tenant's global administrators and approvers change its Customer Lockbox settings.")
	if err != nil {
		return err
	}
	// The right comes before the form: a user who may not change the
	// settings is told that, not what is wrong with the form they sent.
	if err := c.cfg.Tenants.CanConfigure(r.Context(), sess.Principal, t); err != nil {
		return c.refusedOffboarded(w, r, sess, t, err, "settings", c.showSettings)
	}
	ifRevision, err := formRevision(r)
	if err != nil {
		return err
	}
	st := tenants.Settings{LockboxEnabled: r.PostFormValue("lockbox_enabled") == "on", NotificationAddresses: []string{}}
	addrs := r.PostFormValue("notification_addresses")
	for _, a := range strings.FieldsFunc(addrs, func(r rune) bool { return r == '\n' || r == ',' }) {
		if a = strings.TrimSpace(a); a != "" {
			st.NotificationAddresses = append(st.NotificationAddresses, a)
		}
	}
	if _, err := c.cfg.Tenants.PutSettingsIf(r.Context(), sess.Principal, peer.IP(r), t, st, ifRevision); err != nil {
		status, _, msg := httperr.FromError(err)
		switch {
		case offboardedConflict(err):
			// Offboarded between the check above and the save.
			return c.refusedOffboarded(w, r, sess, t, err, "settings", c.showSettings)
		case errors.Is(err, fault.ErrPrecondition):
			cur, err := c.cfg.Tenants.Settings(r.Context(), sess.Principal, t)
			if err != nil {
				return err
			}
			if sameSettings(cur, st) {
				// The form sent again (a double click on Save): its
				// first sending saved what it asks, and "your change
				// was not saved" would say otherwise.
				seeOther(w, r, "/console/settings?done=settings")
				return nil
			}
			c.render(w, r, status, "settings", &sess, settingsView{Tenant: t, Settings: cur, Revision: strconv.FormatInt(cur.Revision, 10),
				CanChange: true, Addresses: strings.Join(cur.NotificationAddresses, "\n"), Problem: settingsChangedProblem,
				Unsaved: &unsavedSettings{LockboxEnabled: st.LockboxEnabled, Addresses: formText(r, "notification_addresses")}})
			return nil
		case status == http.StatusBadRequest:
			// What was typed comes back, under the revision it was
			// based on, so fixing it and saving still checks that one.
			c.render(w, r, status, "settings", &sess, settingsView{Tenant: t, Settings: st, Revision: r.PostFormValue("revision"), CanChange: true, Addresses: addrs, Problem: msg,
				Invalid: invalidField(err, map[string]string{"invalid_settings": "notification_addresses"})})
			return nil
		}
		return err
	}
	seeOther(w, r, "/console/settings?done=settings")
	return nil
}

// sameSettings reports whether the settings are cur already where a
// settings form asks for form: the switch, and the addresses as the store
// keeps them (Settings.Validate).
func sameSettings(cur, form tenants.Settings) bool {
	form.NotificationAddresses = slices.Clone(form.NotificationAddresses)
	if form.Validate() != nil {
		return false
	}
	return cur.LockboxEnabled == form.LockboxEnabled && slices.Equal(cur.NotificationAddresses, form.NotificationAddresses)
}

type approversView struct {
	Tenant    string
	Domains   []string
	Approvers []string
	// NotCounting are assignments that approve nothing (their domain was
	// removed), shown apart so the page never names them as approvers.
	NotCounting []tenants.NotCounting
	CanChange   bool
	User        string
	Problem     string
	// Offboarded is set once the provider offboarded the tenant: its
	// approvers are shown, and can no longer change.
	Offboarded *tenants.Offboarded
}

// approversPage lists the tenant's assigned approvers; its global admins
// may add and remove them.
func (c *Console) approversPage(w http.ResponseWriter, r *http.Request, sess Session) error {
	return c.showApprovers(w, r, sess, http.StatusOK, "", "")
}

// showApproversProblem is showApprovers with problem and no user typed.
func (c *Console) showApproversProblem(w http.ResponseWriter, r *http.Request, sess Session, status int, problem string) error {
	return c.showApprovers(w, r, sess, status, "", problem)
}

func (c *Console) showApprovers(w http.ResponseWriter, r *http.Request, sess Session, status int, user, problem string) error {
	t := tenantOf(r, sess)
	if t == "" {
		return httperr.New(http.StatusBadRequest, "tenant_required", "Name a tenant: /console/approvers?tenant=…")
	}
	list, err := c.cfg.Tenants.Approvers(r.Context(), sess.Principal, t)
	if err != nil {
		return err
	}
	entry, err := c.cfg.Tenants.Tenant(r.Context(), sess.Principal, t)
	if err != nil {
		return err
	}
	// The forms follow the registry's rule for assigning (a global admin
	// who is a user of the tenant, without a provider-only role), not the
	// role alone: only the reads above keep the two alike today.
	c.render(w, r, status, "approvers", &sess, approversView{Tenant: t, Domains: entry.Domains, Approvers: list.Approvers, NotCounting: list.NotCounting,
		CanChange: entry.ActsAsGlobalAdmin(sess.Principal) && !entry.IsOffboarded(), User: user, Problem: problem, Offboarded: entry.Offboarded})
	return nil
}

// approversRefusal is why the provider's staff can't post the approvers
// forms.
const approversRefusal = "Only a tenant's global administrators assign and remove its approvers."

func (c *Console) addApprover(w http.ResponseWriter, r *http.Request, sess Session) error {
	t, err := formTenant(sess, approversRefusal)
	if err != nil {
		return err
	}
	user := strings.TrimSpace(r.PostFormValue("user"))
	if err := c.cfg.Tenants.AddApprover(r.Context(), sess.Principal, peer.IP(r), t, user); err != nil {
		status, _, msg := httperr.FromError(err)
		if status != http.StatusBadRequest {
			return c.refusedOffboarded(w, r, sess, t, err, "approvers", c.showApproversProblem)
		}
		return c.showApprovers(w, r, sess, status, user, msg)
	}
	seeOther(w, r, "/console/approvers?done=approver_added")
	return nil
}

func (c *Console) removeApprover(w http.ResponseWriter, r *http.Request, sess Session) error {
	t, err := formTenant(sess, approversRefusal)
	if err != nil {
		return err
	}
	if err := c.cfg.Tenants.RemoveApprover(r.Context(), sess.Principal, peer.IP(r), t, r.PostFormValue("user")); err != nil {
		// The list's Remove button names an approver: one no longer is
		// after a second click, or another administrator's removal
		// meanwhile, and what was asked holds. Answered as the removal,
		// as it was before the store refused removing a non-approver.
		if fe, ok := errors.AsType[*fault.Error](err); !ok || fe.Code != "approver_not_found" {
			return c.refusedOffboarded(w, r, sess, t, err, "approvers", c.showApproversProblem)
		}
	}
	seeOther(w, r, "/console/approvers?done=approver_removed")
	return nil
}

type auditView struct {
	Filter  auditFilter
	Records []record.Record
	// Unreadable are the records of the page that can't be read: a row
	// each, below the others.
	Unreadable []audit.UnreadableRecord
	// Next and Export are query strings built by url.Values.Encode. They
	// are template.URL because html/template would otherwise escape their
	// '=' and '&' in an href, and the links would lose every filter (and
	// the cursor).
	Next   template.URL // query string of the next page
	Prev   template.URL // query string of the page before; none on the first
	Export template.URL // query string of the CSV export
	// CanExport is set once the filters searched: the export of filters
	// the page refused would be refused too, so it gets no link.
	CanExport  bool
	AllTenants bool // the provider's auditors may leave the tenant empty
	// VerifyLink is the query string that verifies the page's tenant's
	// chain, set when a tenant is chosen and the chain was not verified.
	VerifyLink   template.URL
	Verification *audit.Verification
	// KeptSeal is set on a verification: the page offers to check the
	// chain against a seal the auditor kept, in a form that keeps the
	// page's filters (Keep).
	KeptSeal bool
	Keep     []keptField
	// SinceSeal is the kept seal the form sent, shown again in it;
	// SinceSealProblem why it was refused (no verdict is then shown).
	SinceSeal, SinceSealProblem string
	// SinceSealedAt is when the kept seal was made; zero without one.
	SinceSealedAt time.Time
	Problem       string
	Invalid       string // the id of the filter Problem is about
	Searched      bool
}

// keptField is a filter of the audit page the kept-seal form sends again.
type keptField struct{ Name, Value string }

// badAuditCursor is what the audit page says of a cursor the search
// refused: changed, or kept from a search with other filters (a link to
// older records, edited or followed after the filters changed).
const badAuditCursor = "This link to older or newer records is not valid for these filters: it was changed, or it belongs to a search with other filters. Search again to start from the newest records."

type auditFilter struct {
	Tenant, From, To, User, Operation string
}

func (f auditFilter) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"tenant": f.Tenant, "from": f.From, "to": f.To, "user": f.User, "operation": f.Operation} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// auditQuery reads the page's filters into a query for the audit log;
// a problem with their dates comes with the id of the field it is about.
func auditQuery(r *http.Request, sess Session) (auditFilter, audit.Query, string, string) {
	q := r.URL.Query()
	f := auditFilter{Tenant: tenantOf(r, sess), From: q.Get("from"), To: q.Get("to"),
		User: strings.TrimSpace(q.Get("user")), Operation: strings.TrimSpace(q.Get("operation"))}
	from, to, problem, field := dateRange(f.From, f.To)
	return f, audit.Query{Tenant: f.Tenant, From: from, To: to, User: f.User, Operation: f.Operation, Cursor: q.Get("cursor"), Limit: 50}, problem, field
}

// auditPage searches the audit log and, when asked (verify=1), shows
// whether the tenant's chain verifies. Verification reads and hashes the
// tenant's whole log, a second or more for a million records, so it is a
// button, not part of every visit to the page.
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, sess Session) error {
	f, aq, problem, field := auditQuery(r, sess)
	// The right comes before the filters: a user who may not read the log
	// is told so, not what is wrong with a date.
	if err := c.mayReadAudit(r, sess, f.Tenant); err != nil {
		return err
	}
	v := auditView{Filter: f, AllTenants: sess.Principal.IsProvider(), Export: template.URL(f.values().Encode())}
	if problem != "" {
		v.Problem, v.Invalid = problem, field
		c.render(w, r, http.StatusBadRequest, "audit", &sess, v)
		return nil
	}
	head := r.Method == http.MethodHead
	var page audit.Page
	var err error
	if head {
		// The mux serves HEAD with this handler and net/http drops the
		// body: HEAD gets the status and headers GET would answer,
		// without reading the log (nor, below, verifying the chain,
		// which no deadline bounds).
		err = c.cfg.Audit.CheckRead(r.Context(), sess.Principal, aq)
	} else {
		page, err = c.cfg.Audit.Search(r.Context(), sess.Principal, aq)
	}
	if err != nil {
		status, code, msg := httperr.FromError(err)
		if status != http.StatusBadRequest {
			return err
		}
		v.Problem = msg
		if code == "invalid_tenant" && v.AllTenants {
			// Only the provider's auditors have a tenant field to mark.
			v.Invalid = "tenant"
		}
		if code == "invalid_cursor" {
			// The API's words name its parameters; the page's user
			// followed a link.
			v.Problem = badAuditCursor
		}
		c.render(w, r, status, "audit", &sess, v)
		return nil
	}
	v.Records, v.Unreadable, v.Searched, v.CanExport = page.Records, page.Unreadable, true, true
	if page.Next != "" {
		next := f.values()
		next.Set("cursor", page.Next)
		v.Next = template.URL(next.Encode())
	}
	if page.Prev != "" {
		prev := f.values()
		prev.Set("cursor", page.Prev)
		v.Prev = template.URL(prev.Encode())
	}
	// A seal pasted from elsewhere may come with the line breaks or
	// spaces around it; a JWS holds none.
	since := strings.TrimSpace(r.URL.Query().Get("since_seal"))
	switch {
	case f.Tenant == "":
	case r.URL.Query().Get("verify") == "1" && head:
		if err := c.cfg.Audit.CheckVerifySince(r.Context(), sess.Principal, f.Tenant, since); err != nil {
			return err
		}
	case r.URL.Query().Get("verify") == "1":
		v.KeptSeal, v.SinceSeal = true, since
		for k, vals := range f.values() {
			v.Keep = append(v.Keep, keptField{k, vals[0]})
		}
		slices.SortFunc(v.Keep, func(a, b keptField) int { return strings.Compare(a.Name, b.Name) })
		ver, err := c.verifyAudit(w, r, sess, f.Tenant, since)
		if _, code, msg := httperr.FromError(err); err != nil && code == "invalid_since_seal" {
			// As a bad filter is: said beside the form, with what was
			// pasted, and no verdict at all.
			v.SinceSealProblem = keptSealProblem(msg)
			c.render(w, r, http.StatusBadRequest, "audit", &sess, v)
			return nil
		}
		if err != nil {
			return err
		}
		v.Verification = &ver
		if ver.SinceSeal != "" {
			v.SinceSealedAt, _ = time.Parse(time.RFC3339, ver.SinceSealedAt)
		}
	default:
		link := f.values()
		link.Set("verify", "1")
		v.VerifyLink = template.URL(link.Encode())
	}
	c.render(w, r, http.StatusOK, "audit", &sess, v)
	return nil
}

// mayReadAudit returns the refusal (403, 404, or the store's failure) of
// a read of tenant's log by sess's user, judged before the page's filters
// are. A tenant named wrong (400) is left to the search, whose page says
// so beside the filters, as it did.
func (c *Console) mayReadAudit(r *http.Request, sess Session, tenant string) error {
	err := c.cfg.Audit.CanRead(r.Context(), sess.Principal, tenant)
	if status, _, _ := httperr.FromError(err); err != nil && status != http.StatusBadRequest {
		return err
	}
	return nil
}

// verifyAudit verifies tenant's chain for the audit page. On a log of
// millions of records that takes longer than the page's deadline and the
// listener's WriteTimeout, which would cut it and leave the log never
// verified; like an export, it runs until it is done or the browser goes
// away (withSession's record.CallContext lets it tell, also past the
// deadline), and moves the write deadline on meanwhile. A verification cut
// short is an error, never a partial verdict.
//
// since is a seal of the chain the auditor kept (empty for none): refused,
// like a user who may not verify the chain, before anything is read.
func (c *Console) verifyAudit(w http.ResponseWriter, r *http.Request, sess Session, tenant, since string) (audit.Verification, error) {
	ctx, cancel := record.ExportContext(r.Context())
	defer cancel()
	// As for an export: a verification that could never run is answered
	// for what it is before the bound on long reads is judged.
	if err := c.cfg.Audit.CheckVerifySince(ctx, sess.Principal, tenant, since); err != nil {
		return audit.Verification{}, err
	}
	release, err := c.longRead(w, r, sess)
	if err != nil {
		return audit.Verification{}, err
	}
	defer release()
	out := writedeadline.New(w, r)
	// Closed before the page is written, which then gets a whole
	// WriteTimeout.
	defer out.Close()
	if since == "" {
		return c.cfg.Audit.Verify(ctx, sess.Principal, tenant)
	}
	return c.cfg.Audit.VerifySince(ctx, sess.Principal, tenant, since)
}

// keptSealProblem words the refusal of a kept seal for the page, whose
// user pasted it into a field rather than named the API's parameter.
func keptSealProblem(msg string) string {
	msg = strings.Replace(msg, "since_seal", "the seal you kept", 1)
	if msg == "" {
		return msg
	}
	return strings.ToUpper(msg[:1]) + msg[1:]
}

// exportAudit streams every record matching the filters as CSV, in the
// columns of the unified audit log's export.
func (c *Console) exportAudit(w http.ResponseWriter, r *http.Request, sess Session) error {
	f, aq, problem, _ := auditQuery(r, sess)
	if err := c.mayReadAudit(r, sess, f.Tenant); err != nil {
		return err
	}
	if problem != "" {
		return httperr.New(http.StatusBadRequest, "invalid_range", "%s", problem)
	}
	aq.Cursor, aq.Limit = "", 0
	name := record.ExportCSV.FileName(f.Tenant)
	begin := func() {
		w.Header().Set("Content-Type", record.ExportCSV.ContentType())
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, name))
		w.WriteHeader(http.StatusOK)
	}
	if r.Method == http.MethodHead {
		// The mux serves HEAD with this handler and net/http drops the
		// body: the export would read the whole range, with no deadline,
		// for nothing. HEAD gets what GET would answer before its first
		// record.
		if err := c.cfg.Audit.CheckRead(r.Context(), sess.Principal, aq); err != nil {
			return err
		}
		begin()
		return nil
	}
	// The page deadline is for single calls; an export may take longer,
	// until the browser goes away (withSession's record.CallContext lets
	// it tell, also past the deadline).
	ctx, cancel := record.ExportContext(r.Context())
	defer cancel()
	// What the export would answer before its first record comes first: a
	// user who may not read the log, or asks for a tenant never onboarded,
	// is told so, not "too many audit reads, try again" (no retry makes it
	// pass), and is no long read refused.
	if err := c.cfg.Audit.CheckRead(ctx, sess.Principal, aq); err != nil {
		return err
	}
	release, err := c.longRead(w, r, sess)
	if err != nil {
		return err
	}
	defer release()
	// Nor is it cut by the listener's WriteTimeout while the browser
	// takes its bytes: the export moves that deadline on as it goes.
	out := writedeadline.New(w, r)
	defer out.Close()
	x := record.NewExportWriter(out, record.ExportCSV)
	x.Begin = begin
	x.Flush = out.Flush
	err = x.Finish(c.cfg.Audit.Export(ctx, sess.Principal, aq, x.Write))
	if errors.Is(err, record.ErrExportCut) {
		c.log.ErrorContext(r.Context(), "console: audit export ended early", "tenant", f.Tenant, "records", x.Records(), "error", err)
		panic(http.ErrAbortHandler) // the browser must see a broken download, not a short one
	}
	return err
}

// longRead takes a slot of Config.LongReads for an export or a
// verification of the session's user, which runs until it is done or the
// browser goes away: beyond the bound the user gets a 429 page that says
// why, before anything is read. The caller must call release when the
// read has ended, however it ended.
func (c *Console) longRead(w http.ResponseWriter, r *http.Request, sess Session) (release func(), err error) {
	p := sess.Principal
	release, err = c.cfg.LongReads.Acquire(p)
	if err == nil {
		return release, nil
	}
	c.log.WarnContext(r.Context(), "console: audit read refused: too many at once", "user", p.Subject, "tenant", p.TenantID, "error", err)
	w.Header().Set("Retry-After", readlimit.RetryAfter)
	if errors.Is(err, readlimit.ErrCallerBusy) {
		return nil, httperr.New(http.StatusTooManyRequests, "too_many_reads",
			"You already run %d audit exports or verifications at once, the most one user may. "+
				"Wait until one of them has finished (or cancel it), then try again.", c.cfg.LongReads.PerCaller())
	}
	return nil, httperr.New(http.StatusTooManyRequests, "too_many_reads",
		"The server already runs as many audit exports and verifications at once as it may. Try again in a minute.")
}
