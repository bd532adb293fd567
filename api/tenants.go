package api

import (
	"net/http"

	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/httperr"
	"github.com/lockbox-oss/lockbox/internal/peer"
	"github.com/lockbox-oss/lockbox/tenants"
)

// settingsInput is the body of PUT /v1/tenants/{tenant}/settings. The
// switch is a pointer so that a body that forgets it is refused instead of
// turning Customer Lockbox off.
type settingsInput struct {
	LockboxEnabled        *bool    `json:"lockbox_enabled"`
	NotificationAddresses []string `json:"notification_addresses"`
}

// onboarded is the body of POST /v1/tenants' answer: the registry entry and
// the settings the tenant starts with.
type onboarded struct {
	tenants.Tenant
	Settings tenants.Settings `json:"settings"`
}

// tenantList is the body of GET /v1/tenants.
type tenantList struct {
	Tenants []tenants.Tenant `json:"tenants"`
}

func (s *server) onboardTenant(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	var in tenants.Onboarding
	if err := s.decode(w, r, &in, false); err != nil {
		return err
	}
	t, st, err := s.cfg.Tenants.Onboard(r.Context(), p, peer.IP(r), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/tenants/"+t.ID)
	return writeJSON(w, http.StatusCreated, onboarded{Tenant: t, Settings: st})
}

func (s *server) listTenants(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	list, err := s.cfg.Tenants.List(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, tenantList{Tenants: list})
}

func (s *server) getTenant(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	t, err := s.cfg.Tenants.Tenant(r.Context(), p, r.PathValue("tenant"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

func (s *server) updateTenant(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	var u tenants.TenantUpdate
	if err := s.decode(w, r, &u, false); err != nil {
		return err
	}
	t, err := s.cfg.Tenants.UpdateTenant(r.Context(), p, peer.IP(r), r.PathValue("tenant"), u)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

// approverList is the body of GET /v1/tenants/{tenant}/approvers.
type approverList struct {
	Approvers []string `json:"approvers"`
}

func (s *server) getSettings(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	st, err := s.cfg.Tenants.Settings(r.Context(), p, r.PathValue("tenant"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *server) putSettings(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	var in settingsInput
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
	st, err := s.cfg.Tenants.PutSettings(r.Context(), p, peer.IP(r), r.PathValue("tenant"), st)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *server) listApprovers(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	users, err := s.cfg.Tenants.Approvers(r.Context(), p, r.PathValue("tenant"))
	if err != nil {
		return err
	}
	if users == nil {
		users = []string{}
	}
	return writeJSON(w, http.StatusOK, approverList{Approvers: users})
}

func (s *server) addApprover(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	if err := s.cfg.Tenants.AddApprover(r.Context(), p, peer.IP(r), r.PathValue("tenant"), r.PathValue("user")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) removeApprover(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	if err := s.cfg.Tenants.RemoveApprover(r.Context(), p, peer.IP(r), r.PathValue("tenant"), r.PathValue("user")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
