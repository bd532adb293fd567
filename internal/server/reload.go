package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/lockbox-oss/lockbox/internal/tlsfiles"
)

// restartOnly is the warning of every reload: operators used to daemons
// that re-read all their configuration on SIGHUP would otherwise expect
// a changed variable or address to take effect.
const restartOnly = "SIGHUP re-reads only the policy directory, the token key files, the grant signing and published key files, the assertion secret files and the TLS certificate files; every other setting (LOCKBOX_* variables, listen addresses, Redis, LOCKBOX_ISSUERS_FILE itself, CA files, the other secret files) takes effect on a restart"

// Reload re-reads at once every file whose contents can change while
// Lockbox serves (an operator's SIGHUP), rather than when the watchers
// next look: the policy directory (LOCKBOX_POLICY_DIR), the token key
// files, the grant signing and published keys, the assertion secrets
// (LOCKBOX_PROXY_ASSERTION_SECRET_FILES), and the TLS certificate pairs. Each file is checked before it replaces what it held: one that
// can't be used is logged at error, naming it, and the contents loaded
// before stay in force, so a bad file never leaves the process without a
// policy or a key. Each source reloaded gets an info line. The error
// joins every source's failure; each is logged already.
//
// What serves calls is swapped with an atomic store, which a call reads
// with one atomic load: a reload neither blocks nor slows the proxy.
func (s *Server) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.log.Warn(restartOnly)
	var errs []error
	if s.cfg.PolicyDir != "" {
		// The engine logs and counts its reloads itself
		// (lockbox_policy_reloads_total), as the watcher's.
		errs = append(errs, s.Policy.Reload())
	}
	errs = append(errs, s.reloadTokenKeys(), s.reloadGrantKeys(), s.reloadAssertionSecrets(), s.reloadTLS())
	return errors.Join(errs...)
}

// reloadLoop reloads on each value of reload until ctx ends.
func (s *Server) reloadLoop(ctx context.Context, reload <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
			_ = s.Reload() // logged
		}
	}
}

// reloadTokenKeys reads the token verifier's key files again. Keys from
// JWKS URLs are the fetcher's to refresh (LOCKBOX_JWT_JWKS_REFRESH).
func (s *Server) reloadTokenKeys() error {
	files := s.Verifier.KeyFiles()
	if len(files) == 0 {
		return nil
	}
	setting := shorthandKeyVar(s.cfg)
	if s.cfg.IssuersFile != "" {
		setting = "LOCKBOX_ISSUERS_FILE"
	}
	if err := s.Verifier.Reload(); err != nil {
		s.log.Error("token key file reload failed; the keys loaded before stay in use",
			"component", "identity", "setting", setting, "files", files, "error", err)
		return fmt.Errorf("%s: %w", setting, err)
	}
	s.log.Info("token key files reloaded", "component", "identity", "setting", setting, "files", files)
	return nil
}

// reloadGrantKeys reads the grant signing key and the published keys
// again: the JWKS of GET /v1/keys and LOCKBOX_PROXY_JWKS_FILE are
// rewritten before the proxy signs with a new key, so an upstream that
// reads them on an unknown key id finds it there.
func (s *Server) reloadGrantKeys() error {
	if s.cfg.ProxySigningKeyFile == "" && len(s.cfg.PublishedKeyFiles()) == 0 {
		return nil
	}
	setting, file := "LOCKBOX_PROXY_SIGNING_KEY_FILE", s.cfg.ProxySigningKeyFile
	if file == "" {
		setting, file = "LOCKBOX_PROXY_PUBLISHED_KEY_FILES", s.cfg.ProxyPublishedKeyFiles
	}
	fail := func(err error) error {
		s.log.Error("grant key reload failed; the keys loaded before stay in use",
			"component", "proxy", "setting", setting, "file", file, "error", err)
		return err
	}
	keys, err := loadGrantKeys(s.cfg)
	if err != nil {
		return fail(err)
	}
	s.grantKeys.Store(&keys.jwks)
	attrs := []any{"component", "proxy", "setting", setting, "file", file, "published_keys", keys.count}
	if s.Proxy != nil && keys.signing != nil {
		if err := s.Proxy.SetSigningKey(keys.signing); err != nil {
			return fail(fmt.Errorf("LOCKBOX_PROXY_SIGNING_KEY_FILE: %w", err))
		}
		attrs = append(attrs, "kid", s.Proxy.SigningKeyID())
	}
	// The audit seals follow: checked against the keys now published,
	// made with the key the proxy now signs with.
	if err := s.setSealKeys(keys); err != nil {
		return fail(err)
	}
	s.log.Info("grant keys reloaded", attrs...)
	return nil
}

// reloadAssertionSecrets reads LOCKBOX_PROXY_ASSERTION_SECRET_FILES
// again: a service's new secret keys its calls' assertions from the next
// call on, so its upstream must take both the old and the new secret
// before the switch. Files that can't be used leave every secret as it
// was.
func (s *Server) reloadAssertionSecrets() error {
	if s.Proxy == nil || s.cfg.ProxyAssertionSecretFiles == "" {
		return nil
	}
	const setting = "LOCKBOX_PROXY_ASSERTION_SECRET_FILES"
	secrets, err := s.cfg.ReloadAssertionSecrets(s.Verifier.SecretOf)
	if err == nil {
		err = s.Proxy.SetAssertionSecrets(secrets)
	}
	if err != nil {
		s.log.Error("assertion secret reload failed; the secrets loaded before stay in use",
			"component", "proxy", "setting", setting, "error", err)
		return err
	}
	s.log.Info("assertion secrets reloaded", "component", "proxy", "setting", setting, "kids", s.Proxy.AssertionKeyIDs())
	return nil
}

// reloadTLS reads the certificate pairs again: the listeners' and the one
// the proxy presents to upstreams. CA files are read at start-up only
// (tlsfiles).
func (s *Server) reloadTLS() error {
	var errs []error
	for _, kp := range []*tlsfiles.KeyPair{s.tls.cert, s.tls.upstreamCert} {
		if kp == nil {
			continue
		}
		changed, err := kp.Reload()
		cfg := kp.Config()
		if err != nil {
			s.log.Error("TLS certificate reload failed; still serving the previous certificate",
				"component", "tls", "setting", cfg.Setting, "cert_file", cfg.CertFile, "key_file", cfg.KeyFile, "error", err)
			errs = append(errs, err)
			continue
		}
		leaf := kp.Leaf()
		s.log.Info("TLS certificate reloaded", "component", "tls", "setting", cfg.Setting, "cert_file", cfg.CertFile,
			"changed", changed, "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC())
	}
	return errors.Join(errs...)
}
