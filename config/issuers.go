package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/lockbox-oss/lockbox/internal/logurl"
)

// Issuers is the content of LOCKBOX_ISSUERS_FILE: the identity providers
// whose tokens Lockbox accepts, and through which the admin center signs
// users in.
type Issuers struct {
	Issuers []Issuer `yaml:"issuers"`
}

// Issuer is one trusted identity provider.
type Issuer struct {
	// Name labels the issuer in logs; the issuer URL when empty.
	Name string `yaml:"name"`
	// Issuer is the exact "iss" of its tokens, and its OpenID Connect
	// discovery URL when it has a console section.
	Issuer string `yaml:"issuer"`
	// Audience must be in the "aud" of its API tokens.
	Audience string `yaml:"audience"`
	// Scope is whose users it signs in.
	Scope IssuerScope `yaml:"scope"`
	// Exactly one key source. Relative paths are relative to the issuers
	// file's directory.
	JWKSURL        string `yaml:"jwks_url"`
	JWKSFile       string `yaml:"jwks_file"`
	HMACSecretFile string `yaml:"hmac_secret_file"`
	// Claims names the claims its tokens carry the identity in.
	Claims IssuerClaims `yaml:"claims"`
	// TokenTypes, when set, are the only "typ" headers its API tokens may
	// carry (e.g. at+jwt).
	TokenTypes []string `yaml:"token_types"`
	// Console, when set, signs its users in to the admin center with
	// OpenID Connect (authorization code flow with PKCE).
	Console *IssuerConsole `yaml:"console"`
}

// ShownName is is's name as logs and errors may show it: the issuer URL,
// without user name or password and its query's values redacted
// (logurl.Show), when the entry gives it no name of its own, for a
// credential may ride in either; a name given is the operator's label, and
// is shown as given.
func (is Issuer) ShownName() string {
	if is.Name == "" || is.Name == is.Issuer {
		return logurl.Show(is.Issuer)
	}
	return is.Name
}

// IssuerScope is "provider" (the provider's staff, who may hold provider
// roles) or {tenant: <id>} (the users of that one tenant, whatever their
// tokens claim). Shared is the single-issuer shorthand's scope
// (LOCKBOX_JWT_*, LOCKBOX_OIDC_*), which the file can't say.
type IssuerScope struct {
	Provider bool
	Tenant   string
	Shared   bool
}

// UnmarshalYAML reads `scope: provider` or `scope: {tenant: contoso}`.
func (s *IssuerScope) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "provider" {
			*s = IssuerScope{Provider: true}
			return nil
		}
	case yaml.MappingNode:
		var m struct {
			Tenant string `yaml:"tenant"`
		}
		dec := n.Decode
		if err := dec(&m); err == nil && len(n.Content) == 2 && m.Tenant != "" {
			*s = IssuerScope{Tenant: m.Tenant}
			return nil
		}
	}
	return fmt.Errorf("line %d: scope must be provider or {tenant: <id>}", n.Line)
}

func (s IssuerScope) String() string {
	switch {
	case s.Provider:
		return "provider"
	case s.Tenant != "":
		return "tenant " + s.Tenant
	case s.Shared:
		return "shared"
	}
	return "none"
}

// IssuerClaims names the claims an issuer's tokens carry the identity in.
// Empty names mean the defaults: sub, roles, email and name.
type IssuerClaims struct {
	Subject string `yaml:"subject"`
	Roles   string `yaml:"roles"`
	Email   string `yaml:"email"`
	// Name is what the admin center shows; ID tokens only.
	Name string `yaml:"name"`
}

// IssuerConsole is an issuer's admin center sign-in.
type IssuerConsole struct {
	ClientID         string   `yaml:"client_id"`
	ClientSecretFile string   `yaml:"client_secret_file"`
	Scopes           []string `yaml:"scopes"`
}

// maxIssuersFile bounds what LoadIssuers reads.
const maxIssuersFile = 1 << 20

// tenantID is a tenant id's shape (internal/keys.IsTenant; this package
// imports no other Lockbox package).
var tenantID = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// LoadIssuers reads and checks an issuers file: every entry has an issuer,
// an audience, a scope and exactly one key source; no issuer is listed
// twice; at most one console sign-in is for the provider's staff and at
// most one for each tenant; the key files named exist. (A console's
// client_secret_file is checked by Config.Validate, and only where the admin
// center runs.) Errors name the entry.
func LoadIssuers(path string) ([]Issuer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxIssuersFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxIssuersFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxIssuersFile)
	}
	var doc Issuers
	dec := yaml.NewDecoder(bytes.NewReader(b))
	// A misspelt setting (audiance, jwks_uri) must stop start-up, not be
	// ignored.
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: is empty", path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// A second document (two files concatenated, a template's "---") was
	// dropped unread: its issuers' users locked out with nothing said, and
	// its mistakes never seen.
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: holds more than one YAML document (a line \"---\" separates them): give all issuers in one list", path)
	}
	if len(doc.Issuers) == 0 {
		return nil, fmt.Errorf("%s: lists no issuers", path)
	}
	dir := filepath.Dir(path)
	seen := map[string]bool{}
	var staffConsole bool
	consoleTenants := map[string]bool{}
	var errs []error
	for i := range doc.Issuers {
		is := &doc.Issuers[i]
		for _, p := range []*string{&is.JWKSFile, &is.HMACSecretFile} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
		if is.Console != nil && is.Console.ClientSecretFile != "" && !filepath.IsAbs(is.Console.ClientSecretFile) {
			is.Console.ClientSecretFile = filepath.Join(dir, is.Console.ClientSecretFile)
		}
		if is.Name == "" {
			is.Name = is.Issuer
		}
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: issuer %d (%s): %s", path, i+1, is.ShownName(), fmt.Sprintf(format, args...)))
		}
		if err := is.check(); err != nil {
			fail("%v", err)
			continue
		}
		if seen[is.Issuer] {
			fail("listed twice")
		}
		seen[is.Issuer] = true
		if is.Console != nil {
			switch t := is.Scope.Tenant; {
			case t != "" && consoleTenants[t]:
				fail("a second console sign-in for tenant %s", t)
			case t != "":
				consoleTenants[t] = true
			case staffConsole:
				fail("a second console sign-in for the provider's staff")
			default:
				staffConsole = true
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return doc.Issuers, nil
}

// check checks one entry on its own.
func (is *Issuer) check() error {
	switch {
	case is.Issuer == "":
		return errors.New("issuer is required")
	case is.Audience == "":
		return errors.New("audience is required")
	case !is.Scope.Provider && is.Scope.Tenant == "":
		return errors.New("scope is required: provider or {tenant: <id>}")
	case is.Scope.Tenant != "" && !tenantID.MatchString(is.Scope.Tenant):
		return fmt.Errorf("scope: %q is not a tenant id", is.Scope.Tenant)
	}
	n := 0
	for _, s := range []string{is.JWKSURL, is.JWKSFile, is.HMACSecretFile} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return errors.New("exactly one of jwks_url, jwks_file and hmac_secret_file is required")
	}
	if is.JWKSURL != "" {
		if err := checkJWKSURL(is.JWKSURL); err != nil {
			return err
		}
	}
	if err := checkTokenTypes(is.TokenTypes); err != nil {
		return fmt.Errorf("token_types: %w", err)
	}
	for _, f := range []string{is.JWKSFile, is.HMACSecretFile} {
		if f != "" {
			if err := readableFile(f); err != nil {
				return err
			}
		}
	}
	if c := is.Console; c != nil {
		// The admin center fetches the issuer's discovery document, and
		// through it the keys that verify ID tokens, from this URL: the
		// JWKS URLs' rule applies.
		if err := checkOIDCIssuer("console: the issuer", is.Issuer); err != nil {
			return err
		}
		if c.ClientID == "" || c.ClientSecretFile == "" {
			return errors.New("console: client_id and client_secret_file are required")
		}
		// Whether client_secret_file can be read is Config.Validate's
		// question, asked only of a process that runs the admin center: a
		// sidecar shares the deployment's issuers file but is given no
		// console secrets.
	}
	return nil
}

// checkJWKSURL: https, or http on a loopback address (a local identity
// provider or a test). Keys fetched in the clear from elsewhere could be
// anyone's.
func checkJWKSURL(u string) error { return checkFetchURL("JWKS URL", u) }

// checkFetchURL is checkJWKSURL's rule for any URL Lockbox fetches something
// from that decides who signs in; what names u in the error. It is
// identity.CheckFetchURL's, which this package does not import. The error
// shows u as identity and console log it (logurl.Show: no user info, each
// query value redacted), since a query may carry a credential as well.
func checkFetchURL(what, u string) error {
	pu, err := url.Parse(u)
	switch {
	case err != nil && strings.Contains(u, "@"):
		// Neither u nor the parser's error is quoted: a password that is
		// not percent-encoded ends the authority early, and its first part
		// is quoted as the port. This message goes to logs.
		return fmt.Errorf("%s is not a URL (not shown: it may hold a password)", what)
	case err == nil && pu.User != nil:
		return fmt.Errorf("%s %q must not carry a user name or password", what, logurl.Show(u))
	case err != nil || pu.Host == "" || pu.Fragment != "":
		return fmt.Errorf("%s %q is not an absolute URL with a host", what, logurl.Show(u))
	case badPort(pu):
		return fmt.Errorf("%s %q: port %s is not a TCP port from 1 to 65535", what, logurl.Show(u), pu.Port())
	}
	switch h := pu.Hostname(); {
	case pu.Scheme == "https":
		return nil
	case pu.Scheme == "http" && (h == "localhost" || h == "127.0.0.1" || h == "::1"):
		return nil
	}
	return fmt.Errorf("%s %q must be https (http only on localhost)", what, logurl.Show(u))
}

// checkOIDCIssuer is checkFetchURL for an OpenID Connect issuer, which
// has no query either (OpenID Connect Discovery 1.0 section 2, RFC 8414
// section 2): its discovery document is read from the issuer plus
// /.well-known/openid-configuration, which after a query lands in the
// query, and the document must name the issuer as configured. The admin
// center started with one and failed every sign-in. The query is not
// shown: it may carry a credential.
func checkOIDCIssuer(what, u string) error {
	if err := checkFetchURL(what, u); err != nil {
		return err
	}
	if pu, err := url.Parse(u); err == nil && (pu.RawQuery != "" || pu.ForceQuery) {
		return fmt.Errorf("%s %q has a query: an OpenID Connect issuer is a URL without one, its discovery document at the issuer plus /.well-known/openid-configuration", what, logurl.Show(u))
	}
	return nil
}

// ShorthandIssuer is the single issuer of the LOCKBOX_JWT_* settings, in the
// shared scope: the tenant comes from the token's tid claim, as Lockbox
// always did with one issuer.
func (c Config) ShorthandIssuer() Issuer {
	return Issuer{Name: c.JWTIssuer, Issuer: c.JWTIssuer, Audience: c.JWTAudience, Scope: IssuerScope{Shared: true},
		JWKSURL: c.JWKSURL, JWKSFile: c.JWKSFile, HMACSecretFile: c.JWTHMACSecretFile, TokenTypes: c.JWTTokenTypesList(),
		Claims: IssuerClaims{Subject: c.JWTSubjectClaim}}
}

// JWTTokenTypesList is LOCKBOX_JWT_TOKEN_TYPES as a list; nil when unset.
func (c Config) JWTTokenTypesList() []string {
	if strings.TrimSpace(c.JWTTokenTypes) == "" {
		return nil
	}
	out := strings.Split(c.JWTTokenTypes, ",")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}

// checkTokenTypes checks a list of "typ" values: media types such as
// at+jwt or application/at+jwt, none empty.
func checkTokenTypes(types []string) error {
	for _, t := range types {
		if t == "" || strings.HasPrefix(t, "/") || strings.HasSuffix(t, "/") || strings.ContainsFunc(t, unicode.IsSpace) || strings.Contains(t, ",") {
			return fmt.Errorf("%q is not a token type (a media type such as at+jwt)", t)
		}
	}
	return nil
}
