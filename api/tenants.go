package api

import (
	"net/http"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/httperr"
	"github.com/lockbox-oss/lockbox/internal/peer"
	"github.com/lockbox-oss/lockbox/tenants"
)

func (s *server) onboardTenant(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	var in wire.Onboarding
	if err := s.decode(w, r, &in, false); err != nil {
		return err
	}
	t, st, err := s.cfg.Tenants.Onboard(r.Context(), p, peer.IP(r), onboarding(in))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/tenants/"+t.ID)
	return writeJSON(w, http.StatusCreated, wire.OnboardedTenant{Tenant: wireTenant(t), Settings: wireSettings(st)})
}

func (s *server) listTenants(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	list, err := s.cfg.Tenants.List(r.Context(), p)
	if err != nil {
		return err
	}
	out := wire.TenantList{Tenants: make([]wire.Tenant, len(list))}
	for i, t := range list {
		out.Tenants[i] = wireTenant(t)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *server) getTenant(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	t, err := s.cfg.Tenants.Tenant(r.Context(), p, r.PathValue("tenant"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wireTenant(t))
}

func (s *server) updateTenant(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	var u wire.TenantUpdate
	if err := s.decode(w, r, &u, false); err != nil {
		return err
	}
	t, err := s.cfg.Tenants.UpdateTenant(r.Context(), p, peer.IP(r), r.PathValue("tenant"), tenantUpdate(u))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wireTenant(t))
}

func (s *server) getSettings(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	st, err := s.cfg.Tenants.Settings(r.Context(), p, r.PathValue("tenant"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wireSettings(st))
}

func (s *server) putSettings(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
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
	st, err := s.cfg.Tenants.PutSettings(r.Context(), p, peer.IP(r), r.PathValue("tenant"), st)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wireSettings(st))
}

func (s *server) listApprovers(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	users, err := s.cfg.Tenants.Approvers(r.Context(), p, r.PathValue("tenant"))
	if err != nil {
		return err
	}
	if users == nil {
		users = []string{}
	}
	return writeJSON(w, http.StatusOK, wire.ApproverList{Approvers: users})
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
