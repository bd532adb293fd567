package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/httperr"
)

// maxListLimit is the largest page GET /v1/requests serves; the store
// would silently cap a larger one, the API says so instead.
const maxListLimit = 1000

// requestList is the body of GET /v1/requests.
type requestList struct {
	Requests []grants.Request `json:"requests"`
}

// decision is the optional body of the approve, deny, cancel and revoke
// actions.
type decision struct {
	Comment string `json:"comment"`
}

func (s *server) createRequest(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	var in grants.CreateInput
	if err := s.decode(w, r, &in, false); err != nil {
		return err
	}
	req, err := s.cfg.Requests.Create(r.Context(), actor(r, p), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/requests/"+req.ID)
	return writeJSON(w, http.StatusCreated, req)
}

func (s *server) listRequests(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	q, err := query(r, "tenant", "state", "created_after", "limit")
	if err != nil {
		return err
	}
	f := grants.Filter{Tenant: q.Get("tenant")}
	if v := q.Get("state"); v != "" {
		if f.State = grants.State(v); !f.State.Valid() {
			names := make([]string, len(grants.States))
			for i, st := range grants.States {
				names[i] = string(st)
			}
			return httperr.New(http.StatusBadRequest, "invalid_state", "state %q must be one of %s", v, strings.Join(names, ", "))
		}
	}
	if v := q.Get("created_after"); v != "" {
		if f.CreatedAfter, err = time.Parse(time.RFC3339, v); err != nil {
			return httperr.New(http.StatusBadRequest, "invalid_created_after",
				"created_after must be an RFC 3339 time such as 2025-03-01T09:00:00Z")
		}
	}
	if f.Limit, err = limit(q, maxListLimit); err != nil {
		return err
	}
	reqs, err := s.cfg.Requests.List(r.Context(), p, f)
	if err != nil {
		return err
	}
	if reqs == nil {
		reqs = []grants.Request{}
	}
	return writeJSON(w, http.StatusOK, requestList{Requests: reqs})
}

func (s *server) getRequest(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	req, err := s.cfg.Requests.Get(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, req)
}

// act returns the handler of one user action on a request. Who may take it
// in which state is the lifecycle's decision, not the route's.
func act(a grants.Action) handlerFunc {
	return func(s *server, w http.ResponseWriter, r *http.Request, p identity.Principal) error {
		var body decision
		if err := s.decode(w, r, &body, true); err != nil {
			return err
		}
		req, err := s.cfg.Requests.Act(r.Context(), r.PathValue("id"), a, actor(r, p), body.Comment)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, req)
	}
}
