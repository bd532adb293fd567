package api

import (
	"net/http"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/httperr"
)

// recordList is the body of GET /v1/audit.
type recordList struct {
	Records []audit.Record `json:"records"`
}

func (s *server) searchAudit(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	q, err := query(r, "tenant", "limit")
	if err != nil {
		return err
	}
	tenant := q.Get("tenant")
	if tenant == "" {
		// Audit logs are per tenant; there is no "everything" to search.
		return httperr.New(http.StatusBadRequest, "invalid_query", "the tenant query parameter is required")
	}
	n, err := limit(q, audit.MaxLimit)
	if err != nil {
		return err
	}
	recs, err := s.cfg.Audit.Search(r.Context(), p, tenant, n)
	if err != nil {
		return err
	}
	if recs == nil {
		recs = []audit.Record{}
	}
	return writeJSON(w, http.StatusOK, recordList{Records: recs})
}
