package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/demo"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/devstore"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/server"
	"github.com/lockbox-oss/lockbox/tenants"
)

// demoTenant is the tenant "lockbox dev" sets up, with lockbox on.
const demoTenant = "contoso"

// devManager is the support manager of "lockbox dev" (manager.jwt), and
// the address new requests are mailed to unless
// LOCKBOX_NOTIFY_MANAGER_ADDRESSES says otherwise.
const devManager = "mary@provider.example"

// devTokenTTL is how long the dev tokens written to LOCKBOX_DEV_DIR last: a
// working day.
const devTokenTTL = 12 * time.Hour

// devIdentity is one of the ready-made identities of "lockbox dev".
type devIdentity struct {
	file, envVar string
	claims       identity.Claims
	what         string
}

var devIdentities = []devIdentity{
	{"operator.jwt", "LOCKBOX_OPERATOR_TOKEN", identity.Claims{Subject: "alice@provider.example", Roles: []identity.Role{identity.RoleOperator}}, "support engineer (operator)"},
	{"operator2.jwt", "LOCKBOX_OPERATOR2_TOKEN", identity.Claims{Subject: "bob@provider.example", Roles: []identity.Role{identity.RoleOperator}}, "second support engineer (operator)"},
	{"manager.jwt", "LOCKBOX_MANAGER_TOKEN", identity.Claims{Subject: devManager, Roles: []identity.Role{identity.RoleSupportManager}}, "support manager"},
	{"admin.jwt", "LOCKBOX_ADMIN_TOKEN", identity.Claims{Subject: "gina@contoso.example", Roles: []identity.Role{identity.RoleGlobalAdmin}, TenantID: demoTenant}, "global administrator of contoso"},
	{"approver.jwt", "LOCKBOX_APPROVER_TOKEN", identity.Claims{Subject: "adam@contoso.example", Roles: []identity.Role{identity.RoleApprover}, TenantID: demoTenant}, "assigned lockbox approver of contoso"},
	{"auditor.jwt", "LOCKBOX_AUDITOR_TOKEN", identity.Claims{Subject: "sue@provider.example", Roles: []identity.Role{identity.RoleAuditReader}}, "provider security auditor (all tenants)"},
	{"lockbox-admin.jwt", "LOCKBOX_LOCKBOX_ADMIN_TOKEN", identity.Claims{Subject: "lara@provider.example", Roles: []identity.Role{identity.RoleLockboxAdmin}}, "provider Lockbox administrator (onboards tenants)"},
}

// demoTenants are the tenants "lockbox dev" onboards: contoso with Customer
// Lockbox on and an assigned approver, fabrikam with it on and no approver.
// Their global administrators' contacts receive the tenant's notification
// e-mails (as .eml files in dev).
var demoTenants = []tenants.Onboarding{
	{ID: "contoso", DisplayName: "Contoso Ltd", Domains: []string{"contoso.example"}, GlobalAdmins: []string{"gina@contoso.example"}},
	{ID: "fabrikam", DisplayName: "Fabrikam, Inc.", Domains: []string{"fabrikam.example"}, GlobalAdmins: []string{"fay@fabrikam.example"}},
}

// devTime is the clock of the dev tokens: when they are minted, and when
// they are renewed.
type devTime struct {
	now   func() time.Time
	renew <-chan time.Time // nil: every devTokenTTL/2
}

// dev runs Lockbox with everything a newcomer needs and nothing installed:
// an embedded store unless LOCKBOX_REDIS_URL is set, a dev signing key, the
// demo tenant, and token files for every role.
func dev(ctx context.Context, env map[string]string, stdout, stderr io.Writer) error {
	return devAt(ctx, env, stdout, stderr, devTime{now: time.Now})
}

// devAt is dev with the tokens' clock given.
func devAt(ctx context.Context, env map[string]string, stdout, stderr io.Writer, dt devTime) (err error) {
	kept, ignored := devEnviron(env)
	cfg, log, err := loadConfig(kept, config.ModeDev, stderr)
	if err != nil {
		return err
	}
	if len(ignored) > 0 {
		log.Warn("lockbox dev ignores these settings, which it replaces with its own: it verifies tokens with its dev key, signs grant assertions with a key of its own, runs the proxy, the API and the jobs, and stops at once",
			"ignored", strings.Join(ignored, ","))
	}
	// Ctrl-C while the dev server starts (the demo services, the store,
	// Redis) is a stop like any other.
	defer func() { err = stoppedStarting(ctx, log, err) }()
	// Ctrl-C ends a dev server at once: no load balancer sends it calls
	// while it learns of the stop.
	cfg.ShutdownDelay = 0
	if cfg.OIDCIssuer == "" && !loopbackAddr(cfg.APIAddr) {
		// The admin center then signs in as any dev identity (a global
		// administrator, a support manager) whoever asks, with no
		// credential: on an address other machines reach, anyone.
		return config.Invalid(fmt.Errorf("LOCKBOX_API_ADDR: %s is not a loopback address: lockbox dev offers sign-in as any dev identity to whoever opens the admin center, so it listens on loopback only (127.0.0.1, [::1] or localhost), unless LOCKBOX_OIDC_ISSUER signs users in instead", cfg.APIAddr))
	}
	unlock, err := openDevDir(cfg.DevDir)
	if err != nil {
		return err
	}
	defer unlock()
	key, jwks, err := ensureDevKey(cfg.DevDir)
	if err != nil {
		return err
	}
	// One issuer for everyone, its tenant from the token: the dev tokens
	// are provider staff and tenant users signed by the same key. (The
	// other key sources were left out of the configuration loaded.)
	cfg.JWKSFile = jwks
	// One process is the whole system in dev.
	cfg.Serve = "proxy,api,jobs"
	if _, set := env["LOCKBOX_NOTIFY_MANAGER_ADDRESSES"]; !set {
		// The dev manager hears of new requests, as .eml files.
		cfg.NotifyManagerAddresses = devManager
	}
	devSIEM := ""
	if _, set := env["LOCKBOX_SIEM_SINK"]; !set {
		// stdout carries the welcome text in dev: the SIEM lines go to a file.
		devSIEM = filepath.Join(cfg.DevDir, "siem.jsonl")
		cfg.SIEMSink = "file:" + devSIEM
	}

	grantKey, err := grantsig.EnsureKeyFiles(filepath.Join(cfg.DevDir, "grant-signing-key.pem"), filepath.Join(cfg.DevDir, "grant-signing-key.pub.pem"))
	if err != nil {
		return fmt.Errorf("LOCKBOX_DEV_DIR: grant signing key: %w", err)
	}
	cfg.ProxySigningKeyFile = filepath.Join(cfg.DevDir, "grant-signing-key.pem")
	if cfg.ProxyJWKSFile == "" {
		// Beside the key: what an upstream of a dev proxy verifies with.
		cfg.ProxyJWKSFile = filepath.Join(cfg.DevDir, "grant-jwks.json")
	}
	if len(cfg.Upstreams) == 0 {
		grantKeys, err := grantsig.NewKeySet(grantKey.Public())
		if err != nil {
			return err
		}
		cluster, err := demo.Start(ctx, demo.ServiceConfig{
			// demo labels its own lines component=demo.
			GrantKeys: grantKeys, Issuer: cfg.ProxyAssertionIssuer, Now: time.Now, Logger: log,
		})
		if err != nil {
			return err
		}
		defer cluster.Close()
		cfg.Upstreams = map[config.Service]string{}
		for svc, u := range cluster.Upstreams() {
			cfg.Upstreams[config.Service(svc)] = u
		}
		log.Info("demo tenant services started", "upstreams", cfg.Upstreams)
	}

	if devSIEM != "" {
		if err := startSIEMFile(devSIEM, storeIdentity(cfg)); err != nil {
			return err
		}
	}
	if !cfg.RedisConfigured() {
		store, err := devstore.Start(ctx)
		if err != nil {
			return err
		}
		defer store.Close()
		cfg.RedisURL = store.URL()
		log.Info("using the embedded dev store (data is lost on exit); set LOCKBOX_REDIS_URL, LOCKBOX_REDIS_SENTINEL_ADDRS or LOCKBOX_REDIS_CLUSTER_ADDRS to use a Redis")
	}
	var signins []console.DevIdentity
	if cfg.OIDCIssuer == "" {
		for _, id := range devIdentities {
			signins = append(signins, console.DevIdentity{Description: id.what,
				Principal: identity.Principal{Subject: id.claims.Subject, Roles: id.claims.Roles, TenantID: id.claims.TenantID}})
		}
	}
	srv, err := server.New(ctx, cfg, server.Options{Logger: log, DevMailDir: filepath.Join(cfg.DevDir, "mail"), DevIdentities: signins})
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			// Another checkout's dev holds the defaults: told only of the
			// first port taken, a newcomer moved that one and met the
			// next. Port 0 picks free ones, which the banner and the env
			// file name.
			return fmt.Errorf("%w: another lockbox dev or another program listens there: stop it, or start this one on free ports with LOCKBOX_API_ADDR=127.0.0.1:0 LOCKBOX_PROXY_ADDR=127.0.0.1:0 LOCKBOX_METRICS_ADDR=127.0.0.1:0 (its banner and %s name them)",
				err, filepath.Join(cfg.DevDir, "env"))
		}
		return err
	}
	if err := seedDemo(ctx, srv); err != nil {
		return err
	}
	// Loopback HTTP unless LOCKBOX_TLS_CERT_FILE is set.
	addr, proxy := srv.APIURL(), srv.ProxyURL()
	if err := writeTokens(cfg, key, addr, proxy, dt.now()); err != nil {
		return err
	}
	printWelcome(stdout, cfg.DevDir, addr, proxy, srv.MetricsURL(), cfg.NotifyManagerAddresses)

	// A dev left running past devTokenTTL (overnight) served on with
	// every token file expired: new ones are written half way through.
	renew := dt.renew
	if renew == nil {
		tick := time.NewTicker(devTokenTTL / 2)
		defer tick.Stop()
		renew = tick.C
	}
	rctx, stopRenewing := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		renewTokens(rctx, renew, func() error { return writeTokens(cfg, key, addr, proxy, dt.now()) }, log, cfg.DevDir)
	}()
	err = srv.Run(ctx)
	// No token file is written once dev has returned.
	stopRenewing()
	<-renewed
	return err
}

// devReplaced are the settings "lockbox dev" puts its own in place of: it
// verifies tokens with its dev key whatever the token key sources say,
// signs grant assertions with a key of its own in LOCKBOX_DEV_DIR, runs
// every component, and stops at once. Loaded and validated as "lockbox
// serve" loads them, they stopped dev on files it never reads: a shell
// still holding a production LOCKBOX_PROXY_SIGNING_KEY_FILE, or a path
// of another machine, could not run "make run". Every other setting is
// honoured, and checked as serve checks it.
var devReplaced = []string{
	"LOCKBOX_JWT_JWKS_URL", "LOCKBOX_JWT_JWKS_FILE", "LOCKBOX_JWT_HMAC_SECRET_FILE", "LOCKBOX_ISSUERS_FILE",
	"LOCKBOX_PROXY_SIGNING_KEY_FILE", "LOCKBOX_SERVE", "LOCKBOX_SHUTDOWN_DELAY",
}

// devEnviron returns env without the settings dev replaces, so that
// nothing reads or checks them, and the ones of them that were set, to
// be named in a warning. An empty value sets nothing, as for config.
func devEnviron(env map[string]string) (kept map[string]string, ignored []string) {
	kept = maps.Clone(env)
	for _, name := range devReplaced {
		if env[name] != "" {
			ignored = append(ignored, name)
		}
		delete(kept, name)
	}
	return kept, ignored
}

// renewTokens writes the dev tokens anew on every tick of renew until ctx
// ends. A failure is logged and the next tick tries again: the tokens
// written before still hold until they expire.
func renewTokens(ctx context.Context, renew <-chan time.Time, write func() error, log *slog.Logger, dir string) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew:
		}
		if err := write(); err != nil {
			log.Error("dev tokens not renewed; the ones written before still hold until they expire", "err", err)
			continue
		}
		// LOCKBOX_*_TOKEN variables from the env file sourced earlier
		// keep the old tokens.
		log.Info("dev tokens renewed: source the env file again in shells that sourced it", "env", filepath.Join(dir, "env"), "ttl", devTokenTTL)
	}
}

// loopbackAddr reports whether host:port addr listens on loopback only.
// An empty host, or a name other than localhost (which may resolve
// anywhere), does not.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// ensureDevKey loads the dev signing key, creating it the first time, so
// tokens minted earlier stay valid across restarts.
func ensureDevKey(dir string) (ed25519.PrivateKey, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("LOCKBOX_DEV_DIR: %w", err)
	}
	keyPath := filepath.Join(dir, identity.DevSigningKeyFile)
	key, err := identity.LoadDevKey(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = identity.GenerateDevKey()
	}
	if err != nil {
		return nil, "", fmt.Errorf("LOCKBOX_DEV_DIR: dev signing key: %w", err)
	}
	_, jwks, err := identity.WriteDevKeys(dir, key)
	if err != nil {
		return nil, "", fmt.Errorf("LOCKBOX_DEV_DIR: %w", err)
	}
	return key, jwks, nil
}

// openDevDir creates LOCKBOX_DEV_DIR if need be, refuses it if others can
// open it, and locks it for this dev: all before anything is written
// there, so a refused dev leaves the files in it as they were.
func openDevDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, config.InvalidFile(fmt.Errorf("LOCKBOX_DEV_DIR: %w", err))
	}
	if err := checkDevDirMode(dir); err != nil {
		return nil, err
	}
	return lockDevDir(dir)
}

// checkDevDirMode refuses a LOCKBOX_DEV_DIR that other users may open.
// MkdirAll leaves the mode of a directory that already exists as it was,
// and this one holds the dev signing key and a token for every role. It is
// refused rather than chmod-ed: LOCKBOX_DEV_DIR may name a directory the
// user shares on purpose ($HOME, /tmp), which is not dev's to change.
func checkDevDirMode(dir string) error {
	if runtime.GOOS == "windows" {
		// No such bits: the profile's ACL protects the directory.
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("LOCKBOX_DEV_DIR: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return config.Invalid(fmt.Errorf("LOCKBOX_DEV_DIR: %s is open to other users (%v) and would hold the dev signing key and tokens: chmod 700 %s, or set LOCKBOX_DEV_DIR to a new directory",
			dir, fi.Mode(), shellQuote(dir)))
	}
	return nil
}

// writeOwnerOnly writes a token or env file readable by its owner alone.
// os.WriteFile keeps the mode of a file that already exists (a token file
// copied or edited to 0644 stayed so with each new token); a temporary file
// renamed into place is 0600 whatever was there, and a reader never sees
// it half-written.
func writeOwnerOnly(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // nothing left to remove after the rename
	// CreateTemp makes the file 0600; Chmod says so where the umask or
	// the platform might not.
	if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// seedDemo sets up the demo tenants through the same code paths users take:
// the provider's Lockbox administrator onboards them, and contoso's global
// admin assigns its approver (each audited like any other). Against a Redis
// that already has them (LOCKBOX_REDIS_URL), it changes nothing.
func seedDemo(ctx context.Context, srv *server.Server) error {
	var admin, approver, lockboxAdmin identity.Claims
	for _, id := range devIdentities {
		switch id.file {
		case "admin.jwt":
			admin = id.claims
		case "approver.jwt":
			approver = id.claims
		case "lockbox-admin.jwt":
			lockboxAdmin = id.claims
		}
	}
	la := identity.Principal{Subject: lockboxAdmin.Subject, Roles: lockboxAdmin.Roles}
	for _, t := range demoTenants {
		_, _, err := srv.Tenants.Onboard(ctx, la, "127.0.0.1", t)
		if fe, ok := errors.AsType[*fault.Error](err); ok && fe.Code == "tenant_exists" {
			continue
		}
		if err != nil {
			return fmt.Errorf("onboard demo tenant %s: %w", t.ID, err)
		}
	}
	p := identity.Principal{Subject: admin.Subject, Roles: admin.Roles, TenantID: admin.TenantID}
	if err := srv.Tenants.AddApprover(ctx, p, "127.0.0.1", demoTenant, approver.Subject); err != nil {
		return fmt.Errorf("seed demo tenant: %w", err)
	}
	return nil
}

// writeTokens writes one token file per dev identity and an env file. The
// env file names the proxy's URL as well as the API's: on free ports
// (LOCKBOX_PROXY_ADDR=127.0.0.1:0) only the banner said where the proxy
// was, and README's calls through it reached nothing.
func writeTokens(cfg config.Config, key ed25519.PrivateKey, addr, proxy string, now time.Time) error {
	var env strings.Builder
	fmt.Fprintf(&env, "# source this file: . %s\nexport LOCKBOX_ADDR=%s\nexport %s=%s\n", shellQuote(filepath.Join(cfg.DevDir, "env")), addr, envProxyURL, proxy)
	for _, id := range devIdentities {
		c := id.claims
		c.TTL = devTokenTTL
		tok, err := identity.Mint(key, cfg.JWTIssuer, cfg.JWTAudience, c, now)
		if err != nil {
			return err
		}
		if err := writeOwnerOnly(filepath.Join(cfg.DevDir, id.file), []byte(tok+"\n")); err != nil {
			return fmt.Errorf("LOCKBOX_DEV_DIR: %w", err)
		}
		fmt.Fprintf(&env, "export %s=%s  # %s: %s\n", id.envVar, tok, c.Subject, id.what)
	}
	if err := writeOwnerOnly(filepath.Join(cfg.DevDir, "env"), []byte(env.String())); err != nil {
		return fmt.Errorf("LOCKBOX_DEV_DIR: %w", err)
	}
	return nil
}

// printWelcome prints the banner. It says when the tokens end: a shell
// that sourced the env file had every call refused twelve hours on, and
// nothing the newcomer had read said new ones were written. The workflow
// it offers ends by revoking its request: left approved, the request held
// the engineer's one open request for exchange at contoso until it ended,
// and README's walkthrough, which newcomers try next, could file none (409
// open_request_exists). Its commands are spelled as README's walkthrough
// spells them (create request, approve), not in the earlier forms
// (request create, request approve), which still work.
func printWelcome(w io.Writer, dir, addr, proxy, metrics, managers string) {
	if managers == "" {
		managers = "nobody (LOCKBOX_NOTIFY_MANAGER_ADDRESSES is empty)"
	}
	fmt.Fprintf(w, `
Lockbox dev is running.
  console  %s/console/   (sign in as any dev identity)
  API      %s/v1   (OpenAPI: %s/v1/openapi.yaml)
  proxy    %s/{exchange,sharepoint,onedrive}/...   (demo tenant services behind it)
  metrics  %s/metrics   health: /livez /readyz
  tokens   %s/*.jwt  (operator, operator2, manager, admin, approver, auditor, lockbox-admin)
           last %s; every %s dev writes new ones, and the env file: source it again
  tenants  contoso (Customer Lockbox on, approver adam@contoso.example), fabrikam
  mail     %s/mail/*.eml   (new requests to %s; requests awaiting contoso
           to gina@contoso.example and adam@contoso.example; decisions to the engineer)

Try the whole workflow in another shell:
  make build && export PATH=$PWD/bin:$PATH   # lockbox and lockboxctl in bin/
  . %s
  curl -s -H "Authorization: Bearer $LOCKBOX_OPERATOR_TOKEN" %s/exchange/tenants/contoso/mailboxes   # 403 no_grant
  ID=$(LOCKBOX_TOKEN=$LOCKBOX_OPERATOR_TOKEN lockboxctl create request --tenant contoso --service exchange \
      --service-request SR-1001 --reason "mailbox will not open" --duration 2h -o id)
  LOCKBOX_TOKEN=$LOCKBOX_MANAGER_TOKEN  lockboxctl approve $ID --comment "case checked"
  LOCKBOX_TOKEN=$LOCKBOX_APPROVER_TOKEN lockboxctl Set-AccessToCustomerDataRequest -RequestId $ID -ApprovalDecision Approve -Comment "go ahead"
  curl -s -H "Authorization: Bearer $LOCKBOX_OPERATOR_TOKEN" %s/exchange/tenants/contoso/mailboxes   # 200
  LOCKBOX_TOKEN=$LOCKBOX_ADMIN_TOKEN    lockboxctl revoke $ID --comment "fixed"   # ends the access early
  LOCKBOX_TOKEN=$LOCKBOX_ADMIN_TOKEN    lockboxctl audit search

Mint other tokens: %s
Stop with Ctrl-C.
`, addr, addr, addr, proxy, metrics, dir, hours(devTokenTTL), hours(devTokenTTL/2), dir, managers, shellQuote(filepath.Join(dir, "env")), proxy, proxy, mintCommand(dir))
}

// hours writes d, a whole number of hours, as the banner does: 12h, not
// Duration's 12h0m0s.
func hours(d time.Duration) string {
	return strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m")
}

// envProxyURL is the variable of the env file that holds the proxy's URL,
// for README's calls through it (lockboxctl reads LOCKBOX_ADDR alone).
const envProxyURL = "LOCKBOX_PROXY_URL"

// defaultDevDir is LOCKBOX_DEV_DIR's default (config.Config.DevDir's
// envDefault; TestDefaultDevDir keeps the two the same).
const defaultDevDir = ".lockbox-dev"

// mintCommand is the command the banner offers for minting other tokens.
// "dev token" signs with the key in LOCKBOX_DEV_DIR, so a server started
// with another directory refuses a token minted without it: the command
// names the directory unless it is the default.
func mintCommand(dir string) string {
	const cmd = "go run ./cmd/lockbox dev token --sub bob@fabrikam.example --roles global-admin --tid fabrikam"
	if filepath.Clean(dir) == defaultDevDir {
		return cmd
	}
	return "LOCKBOX_DEV_DIR=" + shellQuote(dir) + " " + cmd
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// characters that are safe bare in a path.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-+:@%=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// devTokenRoles refuses the tokens no call could use, which Mint would
// sign: dev's issuer makes a user with --tid a tenant's and one without
// the provider's, and the server gives each only the roles of its side, so
// a global-admin without --tid or an operator with it was refused every
// call ("only the provider's operators can file lockbox requests", to an
// operator), and a token without roles could do nothing at all.
// audit-reader is both sides' role.
func devTokenRoles(c identity.Claims) error {
	if len(c.Roles) == 0 {
		return errors.New("--roles is required: operator, support-manager, global-admin, lockbox-approver, audit-reader, lockbox-admin")
	}
	for _, r := range c.Roles {
		switch {
		case !r.Known(), c.TenantID != "" && !identity.ValidTenantID(c.TenantID):
			// Mint names it.
		case c.TenantID == "" && !r.ProviderRole():
			return fmt.Errorf("%s is a role of a tenant's users: add --tid TENANT, e.g. --tid %s", r, demoTenant)
		case c.TenantID != "" && !r.TenantRole():
			return fmt.Errorf("%s is a role of the provider's staff, and --tid %s makes a user of tenant %s: leave --tid out", r, c.TenantID, c.TenantID)
		}
	}
	return nil
}

// devTenantWarning says what makes a tenant user's token, minted all the
// same, find nothing under lockbox dev: a tenant it does not onboard (a
// typo, most likely; one onboarded since is fine), or a user outside the
// tenant's domains, whom the server refuses as the tenant's. Without it a
// typo looked like a tenant with no data. The command can't see the
// running store, so it only notes it.
func devTenantWarning(c identity.Claims) string {
	if c.TenantID == "" {
		return ""
	}
	var ids []string
	for _, t := range demoTenants {
		if t.ID != c.TenantID {
			ids = append(ids, t.ID)
			continue
		}
		_, domain, _ := strings.Cut(c.Subject, "@")
		if !slices.Contains(t.Domains, strings.ToLower(domain)) {
			return fmt.Sprintf("%s is not of tenant %s's domains (%s): the server will not take it as one of %s's users", c.Subject, t.ID, strings.Join(t.Domains, ", "), t.ID)
		}
		return ""
	}
	return fmt.Sprintf("lockbox dev onboards %s, not %s: the token finds nothing unless %s was onboarded since (lockboxctl tenant onboard)", strings.Join(ids, " and "), c.TenantID, c.TenantID)
}

// devTokenEnvHelp ends "lockbox dev token --help": the variables it reads.
const devTokenEnvHelp = `
It signs with the dev signing key in LOCKBOX_DEV_DIR (.lockbox-dev), which "lockbox dev" creates.
The token's issuer is LOCKBOX_JWT_ISSUER and its audience LOCKBOX_JWT_AUDIENCE (both "lockbox"
by default), which "lockbox dev" with the same settings verifies.
`

// devToken mints a token from the dev signing key in LOCKBOX_DEV_DIR.
func devToken(args []string, env map[string]string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("lockbox dev token", flag.ContinueOnError)
	sub := fset.String("sub", "", "subject (user id), required; a tenant user's is user@ one of the tenant's domains (contoso.example, fabrikam.example)")
	roles := fset.String("roles", "", "comma-separated roles, required: operator, support-manager, global-admin, lockbox-approver, audit-reader, lockbox-admin")
	tid := fset.String("tid", "", "tenant of a tenant user (global-admin, lockbox-approver, audit-reader); empty for the provider's staff (operator, support-manager, lockbox-admin, audit-reader)")
	ttl := fset.Duration("ttl", time.Hour, "lifetime of the token, more than 0")
	fset.Usage = func() {
		fmt.Fprintln(fset.Output(), "usage: lockbox dev token --sub S --roles R[,R] [--tid T] [--ttl D]")
		fset.PrintDefaults()
		fmt.Fprint(fset.Output(), devTokenEnvHelp)
	}
	// Help goes to stdout and exits 0; a mistake is one line and exits 2.
	fset.SetOutput(io.Discard)
	if err := fset.Parse(args); errors.Is(err, flag.ErrHelp) || len(args) == 1 && args[0] == "help" {
		fset.SetOutput(stdout)
		fset.Usage()
		return errHelpShown
	} else if err != nil {
		return wrongCommandLine("dev token", err)
	}
	if fset.NArg() > 0 {
		return usageError{fmt.Errorf("dev token: unexpected argument %q", fset.Arg(0))}
	}
	if *sub == "" {
		return usageError{errors.New("dev token: --sub is required")}
	}
	// identity.Mint reads a zero TTL as its default hour: from the command
	// line, "--ttl 0" (or a variable left unset) is a mistake to name, not
	// an hour's token.
	if *ttl <= 0 {
		return usageError{fmt.Errorf("dev token: --ttl must be a positive duration, such as 1h or 30m, got %s", *ttl)}
	}
	c := identity.Claims{Subject: *sub, TenantID: *tid, TTL: *ttl}
	for r := range strings.SplitSeq(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			c.Roles = append(c.Roles, identity.Role(r))
		}
	}
	if err := devTokenRoles(c); err != nil {
		return usageError{fmt.Errorf("dev token: %w", err)}
	}
	// Read only once the command line is: a bad LOCKBOX_ variable made
	// --help fail.
	// The settings dev replaces are left out, as dev leaves them out:
	// the token depends on none of them.
	kept, _ := devEnviron(env)
	cfg, err := config.Load(kept)
	if err != nil {
		return err
	}
	key, err := identity.LoadDevKey(filepath.Join(cfg.DevDir, identity.DevSigningKeyFile))
	if err != nil {
		return fmt.Errorf("dev token: %w (run \"lockbox dev\" once to create the dev key in LOCKBOX_DEV_DIR=%s)", err, cfg.DevDir)
	}
	tok, err := identity.Mint(key, cfg.JWTIssuer, cfg.JWTAudience, c, time.Now())
	if err != nil {
		return usageError{fmt.Errorf("dev token: %w", err)}
	}
	fmt.Fprintln(stdout, tok)
	if w := devTenantWarning(c); w != "" {
		fmt.Fprintln(stderr, "lockbox dev token: note: "+w)
	}
	return nil
}

// startSIEMFile moves the last run's SIEM file aside, to path.1 (replacing
// the one before), unless that run used the same Redis as this one, store
// (storeIdentity), which its sidecar path.store names: the embedded store
// starts empty at each run, and another Redis holds other chains, so each
// tenant's audit chain starts again. The last run's lines are then the
// SIEM's copy of another log, and in one file with this run's, "lockboxctl
// audit check-siem" finds two chains where it checks one: it reported the
// file broken (exit 4) after a run on the embedded store was followed by
// one on LOCKBOX_REDIS_URL.
func startSIEMFile(path, store string) error {
	sidecar := path + ".store"
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("LOCKBOX_DEV_DIR: %w", err)
	case fi.Size() == 0:
	default:
		if was, err := os.ReadFile(sidecar); err == nil && store != embeddedStore && string(was) == store {
			break // the file goes on
		}
		if err := os.Rename(path, path+".1"); err != nil {
			return fmt.Errorf("LOCKBOX_DEV_DIR: keeping the last run's SIEM lines: %w", err)
		}
	}
	if err := os.WriteFile(sidecar, []byte(store), 0o600); err != nil {
		return fmt.Errorf("LOCKBOX_DEV_DIR: %w", err)
	}
	return nil
}

// embeddedStore is storeIdentity's name of lockbox dev's embedded store.
const embeddedStore = "embedded"

// storeIdentity names the store cfg uses, without its credentials: the
// Redis URL's host, port and database, the sentinels and their master,
// or the cluster's seeds; embeddedStore with none.
func storeIdentity(cfg config.Config) string {
	switch {
	case cfg.RedisURL != "":
		u, err := url.Parse(cfg.RedisURL)
		if err != nil {
			return "redis"
		}
		u.User, u.RawQuery = nil, ""
		return u.String()
	case cfg.RedisSentinelAddrs != "":
		return "sentinel:" + cfg.RedisSentinelMaster + "@" + cfg.RedisSentinelAddrs
	case cfg.RedisClusterAddrs != "":
		return "cluster:" + cfg.RedisClusterAddrs
	}
	return embeddedStore
}
