package server

import (
	"context"
	"fmt"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/grantsig"
)

// setSealKeys makes k the keys of the audit seals: the published ones
// check them (every replica that verifies), the signing key makes them
// (the proxy's, on the replicas that seal). Called at start-up and on
// each reload, after the key was accepted, so a seal never names a key
// GET /v1/keys does not publish yet.
func (s *Server) setSealKeys(k grantKeys) error {
	if k.count > 0 {
		ks, err := grantsig.ParseJWKS(k.jwks)
		if err != nil {
			return err
		}
		s.sealKeys.Store(ks)
	} else {
		s.sealKeys.Store(nil)
	}
	if k.signing != nil {
		signer, err := grantsig.NewSigner(k.signing)
		if err != nil {
			return fmt.Errorf("LOCKBOX_PROXY_SIGNING_KEY_FILE: %w", err)
		}
		s.sealSigner.Store(signer)
	}
	return nil
}

// newSealer builds the sealer of the tenants' audit chains: on a replica
// that runs the proxy with a signing key, unless
// LOCKBOX_AUDIT_SEAL_INTERVAL is 0.
func (s *Server) newSealer(cfg config.Config, opts Options) error {
	if !cfg.Runs(config.ComponentProxy) || cfg.AuditSealInterval <= 0 || s.sealSigner.Load() == nil {
		return nil
	}
	sealer, err := audit.NewSealer(audit.SealerConfig{
		Redis: s.Redis, Issuer: cfg.ProxyAssertionIssuer, Signer: s.sealSigner.Load, Keys: s.sealKeys.Load,
		Now: opts.Now, Registerer: s.Registry, Logger: opts.Logger.With("component", "seal"),
	})
	if err != nil {
		return err
	}
	s.sealer = sealer
	return nil
}

// sealLoop seals the chains every LOCKBOX_AUDIT_SEAL_INTERVAL.
func (s *Server) sealLoop(ctx context.Context) { s.sealer.Run(ctx, s.cfg.AuditSealInterval) }
