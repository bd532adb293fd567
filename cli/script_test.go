package cli

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/server"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
)

// scriptUsers are the users of the scripts' Lockbox; each script gets
// $TOKEN_<NAME> (the name in upper case, "-" as "_") for each.
var scriptUsers = map[string]identity.Claims{
	"operator":      {Subject: "alice@provider.example", Roles: []identity.Role{identity.RoleOperator}},
	"manager":       {Subject: "mary@provider.example", Roles: []identity.Role{identity.RoleSupportManager}},
	"manager2":      {Subject: "max@provider.example", Roles: []identity.Role{identity.RoleSupportManager}},
	"admin":         {Subject: "admin@contoso.example", Roles: []identity.Role{identity.RoleGlobalAdmin}, TenantID: "contoso"},
	"approver":      {Subject: "adam@contoso.example", Roles: []identity.Role{identity.RoleApprover}, TenantID: "contoso"},
	"lockbox-admin": {Subject: "lara@provider.example", Roles: []identity.Role{identity.RoleLockboxAdmin}},
	"auditor":       {Subject: "sue@provider.example", Roles: []identity.Role{identity.RoleAuditReader}},
}

// TestScripts runs the scripts of testdata/script, each against its own
// Lockbox (the wiring of "lockbox serve", on its own database of a real
// redis-server) with tenants contoso and fabrikam onboarded. In the
// scripts:
//
//	lockboxctl ARGS...  runs lockboxctl in-process with the script's
//	                    environment ($LOCKBOX_ADDR names the server)
//	status N            the last lockboxctl's exit code was N
//	save VAR            sets $VAR to the last command's stdout, trimmed
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			addr, tokens := startLockbox(t, env.Defer)
			env.Setenv(EnvAddr, addr)
			env.Setenv(EnvConfigDir, filepath.Join(env.WorkDir, ".lockboxctl"))
			for name, tok := range tokens {
				env.Setenv("TOKEN_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_")), tok)
			}
			env.Values[statusKey{}] = new(int)
			return nil
		},
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"lockboxctl": func(ts *testscript.TestScript, neg bool, args []string) {
				code := Run(context.Background(), args, ts.Getenv, ts.Stdout(), ts.Stderr())
				*ts.Value(statusKey{}).(*int) = code
				switch {
				case neg && code == 0:
					ts.Fatalf("lockboxctl succeeded, want a failure")
				case !neg && code != 0:
					ts.Fatalf("lockboxctl: exit %d", code)
				}
			},
			"status": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: status N")
				}
				want, err := strconv.Atoi(args[0])
				ts.Check(err)
				if got := *ts.Value(statusKey{}).(*int); (got == want) == neg {
					ts.Fatalf("exit code %d, want %s%d", got, map[bool]string{true: "not ", false: ""}[neg], want)
				}
			},
			"save": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 || neg {
					ts.Fatalf("usage: save VAR")
				}
				ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile("stdout")))
			},
		},
	})
}

type statusKey struct{}

// keysOnce holds the signing keys every test's Lockbox shares, in a
// directory of the test binary's own (removed by TestMain): a test's
// TempDir would be gone for the tests after it.
var keysOnce struct {
	sync.Once
	dir string
	key []byte
	err error
}

func TestMain(m *testing.M) {
	// redistest.Run also stops the package's shared redis-server and
	// removes its directory.
	code := redistest.Run(m)
	if keysOnce.dir != "" {
		_ = os.RemoveAll(keysOnce.dir)
	}
	os.Exit(code)
}

// startLockbox starts a Lockbox for one script and returns its API
// address and a token for each of scriptUsers; defer registers its
// shutdown.
func startLockbox(t *testing.T, deferFn func(func())) (string, map[string]string) {
	return startLockboxAt(t, deferFn, time.Now)
}

// startLockboxAt is startLockbox with now as the clock of every
// component and of the tokens.
func startLockboxAt(t *testing.T, deferFn func(func()), now func() time.Time) (string, map[string]string) {
	_, addr, tokens := startLockboxServer(t, deferFn, now)
	return addr, tokens
}

// startLockboxServer is startLockboxAt that also returns the server, for
// a test that writes what no API call writes in bulk (thousands of audit
// records) straight through its components.
func startLockboxServer(t *testing.T, deferFn func(func()), now func() time.Time) (*server.Server, string, map[string]string) {
	keysOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lockboxctl-test-keys-")
		keysOnce.dir = dir
		var key []byte
		if err == nil {
			key, err = identity.GenerateDevKey()
		}
		if err == nil {
			_, _, err = identity.WriteDevKeys(keysOnce.dir, key)
		}
		if err == nil {
			_, err = grantsig.EnsureKeyFiles(filepath.Join(keysOnce.dir, "grant.pem"), filepath.Join(keysOnce.dir, "grant.pub.pem"))
		}
		keysOnce.key, keysOnce.err = key, err
	})
	if keysOnce.err != nil {
		t.Fatal(keysOnce.err)
	}
	dir := keysOnce.dir
	env := map[string]string{
		"LOCKBOX_REDIS_URL": redistest.URL(t),
		// The scripts test lockboxctl, not Redis's deadlines: on a
		// loaded machine the default 2 s could fail a set-up call, so
		// the longest allowed.
		"LOCKBOX_REDIS_TIMEOUT": "5s",
		// No call goes through the proxy in these scripts.
		"LOCKBOX_UPSTREAMS":              "exchange=http://127.0.0.1:9",
		"LOCKBOX_PROXY_SIGNING_KEY_FILE": filepath.Join(dir, "grant.pem"),
		"LOCKBOX_JWT_JWKS_FILE":          filepath.Join(dir, identity.DevJWKSFile),
		"LOCKBOX_API_ADDR":               "127.0.0.1:0",
		"LOCKBOX_PROXY_ADDR":             "127.0.0.1:0",
		"LOCKBOX_METRICS_ADDR":           "127.0.0.1:0",
		"LOCKBOX_SIEM_SINK":              "file:" + filepath.Join(t.TempDir(), "siem.jsonl"),
	}
	cfg, err := config.Load(maps.Clone(env))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(config.ModeServe); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Options{Now: now, DevMailDir: filepath.Join(t.TempDir(), "mail")})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	tenanttest.Onboard(t, srv.Tenants, "contoso", "fabrikam")
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	deferFn(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	tokens := map[string]string{}
	for name, claims := range scriptUsers {
		claims.TTL = time.Hour
		tok, err := identity.Mint(keysOnce.key, cfg.JWTIssuer, cfg.JWTAudience, claims, now())
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = tok
	}
	return srv, "http://" + srv.APIAddr(), tokens
}
