package api

import (
	_ "embed"
	"net/http"

	"github.com/lockbox-oss/lockbox/identity"
)

// openAPIDocument is openapi.yaml, served as is.
//
//go:embed openapi.yaml
var openAPIDocument []byte

func (s *server) openAPI(w http.ResponseWriter, r *http.Request, _ identity.Principal) error {
	// RFC 9512 registers application/yaml.
	w.Header().Set("Content-Type", "application/yaml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPIDocument)
	return nil
}

// grantKeys serves the JWKS upstreams verify X-Lockbox-Grant assertions
// with. It is public: public keys, and upstreams hold no Lockbox token.
func (s *server) grantKeys(w http.ResponseWriter, r *http.Request, _ identity.Principal) error {
	keys := s.cfg.GrantKeys
	if s.cfg.CurrentGrantKeys != nil {
		keys = s.cfg.CurrentGrantKeys()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(keys)
	return nil
}
