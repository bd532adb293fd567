package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/identity/jwksfetch"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/logurl"
)

// keyFileCheck is how often key files are looked at for changes. A token
// naming an unknown key reads them at once anyway; this catches a key
// removed from a file.
const keyFileCheck = 10 * time.Second

// newVerifier builds the token verifier from LOCKBOX_ISSUERS_FILE, or from
// the single issuer of the LOCKBOX_JWT_* settings (the shared scope). The
// fetcher, when some issuer has a JWKS URL, must be closed with the server.
func newVerifier(cfg config.Config, opts Options) (*identity.Verifier, *jwksfetch.Fetcher, error) {
	issuers := []config.Issuer{cfg.ShorthandIssuer()}
	if cfg.IssuersFile != "" {
		var err error
		if issuers, err = config.LoadIssuers(cfg.IssuersFile); err != nil {
			return nil, nil, fmt.Errorf("LOCKBOX_ISSUERS_FILE: %w", err)
		}
	}
	log := opts.Logger.With("component", "identity")
	// LOCKBOX_JWT_LEEWAY=0 means none: to the verifier, a zero Leeway
	// alone means its default.
	ic := identity.Config{Leeway: cfg.JWTLeeway, NoLeeway: cfg.JWTLeeway == 0, MaxKeyAge: cfg.JWKSMaxAge, Now: opts.Now, Logger: log}
	var fetcher *jwksfetch.Fetcher
	for _, is := range issuers {
		if is.JWKSURL != "" && fetcher == nil {
			var err error
			if fetcher, err = jwksfetch.New(jwksfetch.Config{Refresh: cfg.JWKSRefresh, HTTPClient: opts.JWKSHTTPClient, Logger: log,
				Workers: fetchWorkers(issuers)}); err != nil {
				return nil, nil, fmt.Errorf("LOCKBOX_JWT_JWKS_REFRESH: %w", err)
			}
			ic.Fetcher = fetcher
		}
		var scope identity.Scope
		switch {
		case is.Scope.Provider:
			scope = identity.ProviderScope()
		case is.Scope.Tenant != "":
			scope = identity.TenantScope(is.Scope.Tenant)
		default:
			scope = identity.SharedScope()
		}
		ic.Issuers = append(ic.Issuers, identity.IssuerConfig{
			Issuer: is.Issuer, Audience: is.Audience, Scope: scope,
			JWKSURL: is.JWKSURL, JWKSFile: is.JWKSFile, HMACSecretFile: is.HMACSecretFile,
			Claims:     identity.ClaimMapping{Subject: is.Claims.Subject, Roles: is.Claims.Roles, Email: is.Claims.Email},
			TokenTypes: is.TokenTypes,
		})
	}
	v, err := identity.NewVerifier(ic)
	if err != nil {
		if fetcher != nil {
			fetcher.Close()
		}
		if cfg.IssuersFile != "" {
			return nil, nil, fmt.Errorf("LOCKBOX_ISSUERS_FILE: %w", err)
		}
		return nil, nil, fmt.Errorf("%s: %w", shorthandKeyVar(cfg), err)
	}
	for _, is := range issuers {
		log.Info("trusting token issuer", "issuer", logurl.Show(is.Issuer), "name", shownName(is), "scope", is.Scope.String(), "audience", is.Audience)
	}
	if cfg.Runs(config.ComponentAPI) || cfg.Runs(config.ComponentProxy) {
		warnAudienceIsClientID(opts.Logger, cfg, issuers)
	}
	return v, fetcher, nil
}

// fetchWorkers is how many JWKS fetches run at once: one for each JWKS
// URL, so that the first fetches, at start-up, all run side by side.
// Fetched a few at a time, a deployment with many tenants' identity
// providers waited one fetch timeout for each few that hang before it
// served anything, and one that answered got its keys only after them.
func fetchWorkers(issuers []config.Issuer) int {
	urls := map[string]bool{}
	for _, is := range issuers {
		if is.JWKSURL != "" {
			urls[is.JWKSURL] = true
		}
	}
	return max(len(urls), jwksfetch.DefaultWorkers)
}

// shownName is is's name as logs may show it (config.Issuer.ShownName).
func shownName(is config.Issuer) string { return is.ShownName() }

// warnAudienceIsClientID warns of each issuer whose tokens' audience is the
// admin center's client id at that issuer: the ID tokens it signs for the
// admin center then carry the audience the API and the proxy check, and
// one with no nonce or at_hash (Entra ID's, refreshed) can't be told from
// an access token. Not an error: one app registration serving both is
// common, and requiring at+jwt, where the identity provider types its
// access tokens so, closes it (ID tokens are typed JWT).
func warnAudienceIsClientID(log *slog.Logger, cfg config.Config, issuers []config.Issuer) {
	const msg = "the API's token audience is the admin center's client id: the API and the proxy may take the admin center's ID tokens for access tokens (those with no nonce or at_hash, as Entra ID refreshes them); give the API an audience of its own, or require at+jwt (README, Access tokens only)"
	if cfg.IssuersFile == "" {
		if cfg.OIDCIssuer != "" && cfg.OIDCIssuer == cfg.JWTIssuer && cfg.OIDCClientID == cfg.JWTAudience && takesJWT(cfg.JWTTokenTypesList()) {
			log.Warn(msg, "setting", "LOCKBOX_JWT_AUDIENCE", "client_id_setting", "LOCKBOX_OIDC_CLIENT_ID", "client_id", cfg.OIDCClientID,
				"fix", "LOCKBOX_JWT_AUDIENCE of its own, or LOCKBOX_JWT_TOKEN_TYPES=at+jwt")
		}
		return
	}
	for _, is := range issuers {
		if is.Console != nil && is.Console.ClientID == is.Audience && takesJWT(is.TokenTypes) {
			log.Warn(msg, "setting", "LOCKBOX_ISSUERS_FILE", "issuer", shownName(is), "client_id", is.Audience,
				"fix", "an audience other than its console client_id, or token_types: [at+jwt]")
		}
	}
}

// takesJWT reports whether an issuer with token types types takes tokens
// typed JWT, as ID tokens are: with none listed, it does.
func takesJWT(types []string) bool {
	if len(types) == 0 {
		return true
	}
	for _, t := range types {
		if strings.EqualFold(strings.TrimPrefix(strings.ToLower(t), "application/"), "jwt") {
			return true
		}
	}
	return false
}

// warnNotOnboarded warns of each issuer of LOCKBOX_ISSUERS_FILE whose scope
// names a tenant that is not onboarded: its users are refused everything
// (tenant_not_found) until a Lockbox administrator onboards the tenant. Not
// an error: the issuer may be listed before the onboarding, and every
// replica refusing to start over it would be an outage; but a misspelt
// tenant there would otherwise lock that tenant's users out without a
// word. (The file was read and checked by newVerifier.)
func (s *Server) warnNotOnboarded(ctx context.Context) {
	issuers, err := config.LoadIssuers(s.cfg.IssuersFile)
	if err != nil {
		return
	}
	for _, is := range issuers {
		t := is.Scope.Tenant
		if t == "" {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, s.cfg.RedisTimeout)
		err := s.Tenants.Onboarded(lctx, t)
		cancel()
		switch {
		case errors.Is(err, fault.ErrNotFound):
			s.log.Warn("an issuer's scope names a tenant that is not onboarded: its users are refused until a Lockbox administrator onboards it (lockboxctl create tenant)",
				"setting", "LOCKBOX_ISSUERS_FILE", "issuer", shownName(is), "tenant", t)
		case err != nil:
			s.log.Warn("could not check that an issuer's tenant is onboarded", "setting", "LOCKBOX_ISSUERS_FILE", "issuer", shownName(is), "tenant", t, "err", err)
		}
	}
}

// consoleSignins are the admin center's OpenID Connect sign-ins: the
// issuers file's console sections, or LOCKBOX_OIDC_* (one issuer for
// everyone, the tenant from a claim).
func consoleSignins(cfg config.Config, opts Options) ([]console.OIDCConfig, error) {
	var out []console.OIDCConfig
	if cfg.IssuersFile == "" {
		if cfg.OIDCIssuer == "" {
			return nil, nil
		}
		return []console.OIDCConfig{{
			Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, ClientSecret: cfg.OIDCClientSecret.Value(), Scope: identity.SharedScope(),
			Scopes: strings.Fields(cfg.OIDCScopes), SubjectClaim: cfg.OIDCSubjectClaim,
			RolesClaim: cfg.OIDCRolesClaim, TenantClaim: cfg.OIDCTenantClaim, HTTPClient: opts.OIDCHTTPClient,
			KeysRefresh: cfg.JWKSRefresh, KeysMaxAge: cfg.JWKSMaxAge,
		}}, nil
	}
	issuers, err := config.LoadIssuers(cfg.IssuersFile)
	if err != nil {
		return nil, fmt.Errorf("LOCKBOX_ISSUERS_FILE: %w", err)
	}
	for _, is := range issuers {
		if is.Console == nil {
			continue
		}
		secret, err := config.ReadClientSecret(is.Console.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("LOCKBOX_ISSUERS_FILE: issuer %s: console client_secret_file: %w", shownName(is), err)
		}
		scope := identity.ProviderScope()
		if is.Scope.Tenant != "" {
			scope = identity.TenantScope(is.Scope.Tenant)
		}
		scopes := is.Console.Scopes
		if scopes == nil {
			scopes = []string{"profile", "email"}
		}
		out = append(out, console.OIDCConfig{
			Issuer: is.Issuer, ClientID: is.Console.ClientID, ClientSecret: secret, Scope: scope, Scopes: scopes,
			SubjectClaim: is.Claims.Subject, RolesClaim: is.Claims.Roles, EmailClaim: is.Claims.Email, NameClaim: is.Claims.Name,
			HTTPClient: opts.OIDCHTTPClient, KeysRefresh: cfg.JWKSRefresh, KeysMaxAge: cfg.JWKSMaxAge,
		})
	}
	return out, nil
}

// logNoSignin warns when nobody can sign in to the admin center.
func logNoSignin(log *slog.Logger, signins []console.OIDCConfig, devIdentities int) {
	if len(signins) == 0 && devIdentities == 0 {
		log.Warn("no OpenID Connect sign-in (LOCKBOX_ISSUERS_FILE console sections or LOCKBOX_OIDC_ISSUER): nobody can sign in to the admin center")
	}
}

// shorthandKeyVar names the variable of the single issuer's keys (config
// allows one), which is what a verifier built from them refuses: a key
// file it can't read as keys, a JWKS URL it can't use. LOCKBOX_JWT_* when
// none is set.
func shorthandKeyVar(cfg config.Config) string {
	switch {
	case cfg.JWKSFile != "":
		return "LOCKBOX_JWT_JWKS_FILE"
	case cfg.JWTHMACSecretFile != "":
		return "LOCKBOX_JWT_HMAC_SECRET_FILE"
	case cfg.JWKSURL != "":
		return "LOCKBOX_JWT_JWKS_URL"
	}
	return "LOCKBOX_JWT_*"
}
