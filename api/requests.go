package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/httperr"
)

// maxListLimit is the largest page GET /v1/requests serves; the store
// would silently cap a larger one, the API says so instead.
const maxListLimit = 1000

func (s *server) createRequest(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	// The right comes before the body: a caller who may not file learns
	// nothing of what a valid request looks like.
	if err := grants.CanFile(p); err != nil {
		return err
	}
	if err := noIfMatch(r.Header, noRequestETag); err != nil {
		return err
	}
	if err := noIfNoneMatch(r.Header, noRequestETag); err != nil {
		return err
	}
	key, err := idempotencyKey(r.Header)
	if err != nil {
		return err
	}
	var in wire.CreateRequest
	if err := s.decode(w, r, &in, false); err != nil {
		return err
	}
	var req grants.Request
	if key == "" {
		req, err = s.cfg.Requests.Create(r.Context(), actor(r, p), createInput(in))
	} else {
		// A replay is answered as the filing was, 201 and all: the
		// client that lost the first answer gets the one it missed.
		req, _, err = s.cfg.Requests.CreateOnce(r.Context(), actor(r, p), createInput(in), key)
	}
	if fe, ok := errors.AsType[*fault.Error](err); ok && fe.Code == grants.CodeKeyReused {
		// 422, as the Idempotency-Key draft has it: the request is well
		// formed, but not the one the key stands for.
		return httperr.New(http.StatusUnprocessableEntity, fe.Code, "%s", fe.Message)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/requests/"+req.ID)
	return writeJSON(w, http.StatusCreated, wireRequest(req))
}

// idempotencyKey reads the Idempotency-Key of a filing, "" when there is
// none. The draft that names the header makes it a Structured Field string
// ("..."); a bare key, as many clients send it, is taken too. A key given
// twice is refused, as two Authorization headers are: a proxy in front of
// us and we could each take another one.
func idempotencyKey(h http.Header) (string, error) {
	vals := h.Values("Idempotency-Key")
	if len(vals) == 0 {
		return "", nil
	}
	if len(vals) > 1 {
		return "", httperr.New(http.StatusBadRequest, "invalid_idempotency_key", "the Idempotency-Key header is given more than once")
	}
	k := strings.TrimSpace(vals[0])
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	if err := grants.ValidIdempotencyKey(k); err != nil {
		return "", err
	}
	return k, nil
}

func (s *server) listRequests(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	q := r.URL.Query() // checked by the adapter against the route's params
	f := grants.Filter{Tenant: q.Get("tenant")}
	// The right to list the tenant's requests comes before the other
	// filters: a tenant's user naming another tenant is told only that.
	if err := grants.CanList(p, f.Tenant); err != nil {
		return err
	}
	if v := q.Get("state"); v != "" {
		if f.State = grants.State(v); !f.State.Valid() {
			names := make([]string, len(grants.States))
			for i, st := range grants.States {
				names[i] = string(st)
			}
			return httperr.New(http.StatusBadRequest, "invalid_state", "state %q must be one of %s", v, strings.Join(names, ", "))
		}
	}
	var err error
	if v := q.Get("created_after"); v != "" {
		if f.CreatedAfter, err = queryTime("created_after", v); err != nil {
			return err
		}
	}
	if f.Limit, err = limit(q, maxListLimit); err != nil {
		return err
	}
	// An empty cursor (allowed by the adapter) is the first page; any
	// other the store checks against the filter and the caller.
	f.Cursor = q.Get("cursor")
	page, err := s.cfg.Requests.ListPage(r.Context(), p, f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wire.RequestList{Requests: wireRequests(page.Requests), NextCursor: page.Next, PrevCursor: page.Prev,
		Unreadable: wireUnreadable(page.Unreadable)})
}

func (s *server) getRequest(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	req, err := s.cfg.Requests.Get(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wireRequest(req))
}

// act returns the handler of one user action on a request. Who may take it
// in which state is the lifecycle's decision, not the route's.
func act(a grants.Action) handlerFunc {
	return func(s *server, w http.ResponseWriter, r *http.Request, p identity.Principal) error {
		// The request and the right to act on it come before the body,
		// as for every other change: decoded first, a bad body got 400
		// for a request that does not exist, or that the caller may not
		// see or never act on, where they are told 404 or 403.
		if err := s.cfg.Requests.CanAct(r.Context(), p, r.PathValue("id"), a); err != nil {
			return err
		}
		if err := noIfMatch(r.Header, noRequestETag); err != nil {
			return err
		}
		if err := noIfNoneMatch(r.Header, noRequestETag); err != nil {
			return err
		}
		var body wire.Decision
		if err := s.decode(w, r, &body, true); err != nil {
			return err
		}
		req, err := s.cfg.Requests.Act(r.Context(), r.PathValue("id"), a, actor(r, p), body.Comment)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, wireRequest(req))
	}
}

// noIfMatch refuses an If-Match a route can't evaluate, why saying so for
// the message. A lockbox request has no ETag, nor a tenant yet to be
// onboarded, nor an approver assignment, so no tag can match them (RFC
// 9110 13.1.1): ignored, the header made an approval its sender meant to
// be conditional on the request being as they read it an unconditional
// one. Refused rather than answered 412, which would send a client round
// in circles re-reading for an ETag that never comes (as ifMatch refuses
// a weak tag). "*" holds: the request, or the list a new one joins,
// exists. An action needs no condition: it is judged against the state
// the request is in when it is taken, and a retried one changes nothing.
func noIfMatch(h http.Header, why string) error {
	vals := h.Values("If-Match")
	if len(vals) == 0 || strings.TrimSpace(strings.Join(vals, ",")) == "*" {
		return nil
	}
	return httperr.New(http.StatusBadRequest, "invalid_if_match", "If-Match is not taken here: %s", why)
}

// noRequestETag is why a request's routes refuse If-Match (noIfMatch) and
// If-None-Match (noIfNoneMatch).
const noRequestETag = "lockbox requests have no ETag; an action is judged against the state the request is in when it is taken, and a retried one returns it unchanged"
