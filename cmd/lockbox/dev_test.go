package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// The banner's "Mint other tokens" command signs with the key in
// LOCKBOX_DEV_DIR: without the directory the server was started with, it
// signed with ./.lockbox-dev's key and the server refused the token.
func TestBannerMintCommandNamesTheDevDir(t *testing.T) {
	const mint = "go run ./cmd/lockbox dev token --sub bob@fabrikam.example --roles global-admin --tid fabrikam"
	for _, tc := range []struct{ dir, want string }{
		{".lockbox-dev", mint},
		{"./.lockbox-dev", mint},
		{"/tmp/dev", "LOCKBOX_DEV_DIR=/tmp/dev " + mint},
		{"other", "LOCKBOX_DEV_DIR=other " + mint},
		{"/tmp/my dev", "LOCKBOX_DEV_DIR='/tmp/my dev' " + mint},
		{"/tmp/it's", `LOCKBOX_DEV_DIR='/tmp/it'\''s' ` + mint},
	} {
		var out bytes.Buffer
		printWelcome(&out, tc.dir, "http://127.0.0.1:8080", "http://127.0.0.1:8081", "http://127.0.0.1:8082", "")
		line := "Mint other tokens: " + tc.want + "\n"
		if !strings.Contains(out.String(), line) {
			t.Errorf("LOCKBOX_DEV_DIR=%q: banner lacks %q:\n%s", tc.dir, line, out.String())
		}
	}
}

// mintCommand leaves the directory out when it is the default: the two
// defaults must not drift apart.
func TestDefaultDevDir(t *testing.T) {
	cfg, err := config.Load(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DevDir != defaultDevDir {
		t.Errorf("config's default LOCKBOX_DEV_DIR is %q, defaultDevDir %q", cfg.DevDir, defaultDevDir)
	}
}

// syncBuffer is a bytes.Buffer that dev's goroutines and the test may use
// at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runDev runs a whole "lockbox dev" with env, in-process, until the test
// ends, and returns its output once its banner is out.
func runDev(t *testing.T, env map[string]string) (stdout, stderr *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- dev(ctx, env, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev: %v", err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), "Stop with Ctrl-C.") {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("dev ended: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no banner after 30s; logs:\n%s", stderr.String())
		}
	}
	return stdout, stderr
}

// A whole "lockbox dev", in-process: its banner names the dev directory it
// was given, and the demo services' log lines say component=demo once
// (both dev and the demo package added it).
func TestDevBannerAndLogs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	env := map[string]string{
		"LOCKBOX_DEV_DIR":      dir,
		"LOCKBOX_API_ADDR":     "127.0.0.1:0",
		"LOCKBOX_PROXY_ADDR":   "127.0.0.1:0",
		"LOCKBOX_METRICS_ADDR": "127.0.0.1:0",
	}
	stdout, stderr := runDev(t, env)
	if want := "Mint other tokens: LOCKBOX_DEV_DIR=" + dir + " go run ./cmd/lockbox dev token "; !strings.Contains(stdout.String(), want) {
		t.Errorf("banner lacks %q:\n%s", want, stdout.String())
	}
	var listening int
	for line := range strings.Lines(stderr.String()) {
		if !strings.Contains(line, `msg="demo service listening"`) {
			continue
		}
		listening++
		if n := strings.Count(line, "component=demo"); n != 1 {
			t.Errorf("component=demo %d times in %s", n, line)
		}
	}
	if listening == 0 {
		t.Errorf("no demo service logged it was listening:\n%s", stderr.String())
	}
}

// "lockbox dev" offers a sign-in to the admin center as any of its dev
// identities (a global administrator, a support manager, ...) to whoever
// opens the page, with no credential. On an API address other machines
// reach, that is anyone on the network: dev refuses such an address
// before it starts anything, naming the variable.
func TestDevRefusesSigninBeyondLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		t.Run(addr, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "dev")
			env := map[string]string{
				"LOCKBOX_DEV_DIR":      dir,
				"LOCKBOX_API_ADDR":     addr,
				"LOCKBOX_PROXY_ADDR":   "127.0.0.1:0",
				"LOCKBOX_METRICS_ADDR": "127.0.0.1:0",
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout, stderr syncBuffer
			done := make(chan int, 1)
			go func() { done <- run(ctx, []string{"dev"}, env, &stdout, &stderr) }()
			// Only bounds a failure: a refusal comes before anything
			// starts.
			deadline := time.After(30 * time.Second)
			for {
				select {
				case code := <-done:
					// A setting to change, not a failure that may pass.
					if code != exitConfig {
						t.Fatalf("exit %d, want %d\n%s", code, exitConfig, stderr.String())
					}
					if got := stderr.String(); !strings.Contains(got, "lockbox: LOCKBOX_API_ADDR: ") || !strings.Contains(got, "loopback") {
						t.Errorf("stderr does not name LOCKBOX_API_ADDR and loopback:\n%s", got)
					}
					if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("LOCKBOX_DEV_DIR was created (%v): dev started something", err)
					}
					return
				case <-time.After(20 * time.Millisecond):
					if strings.Contains(stdout.String(), "Stop with Ctrl-C.") {
						cancel()
						<-done
						t.Fatalf("lockbox dev started with its dev sign-in on %s:\n%s", addr, stdout.String())
					}
				case <-deadline:
					cancel()
					<-done
					t.Fatalf("lockbox dev neither refused nor started within 30s:\n%s", stderr.String())
				}
			}
		})
	}
}

// The addresses dev's sign-in may listen on: loopback only.
func TestLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.0.0.2:0": true, "[::1]:8080": true, "localhost:8080": true,
		"0.0.0.0:8080": false, ":8080": false, "[::]:8080": false, "192.0.2.10:8080": false,
		"lockbox.example.com:8080": false, "127.0.0.1": false,
	} {
		if got := loopbackAddr(addr); got != want {
			t.Errorf("loopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}

// The banner's "source the env file" line is pasted into a shell: a
// LOCKBOX_DEV_DIR with a space or a quote in it must come out quoted, as
// the mint command's already does, or the shell sources another file.
func TestBannerEnvLineIsQuoted(t *testing.T) {
	for _, tc := range []struct{ dir, want string }{
		{".lockbox-dev", "  . .lockbox-dev/env\n"},
		{"/tmp/dev", "  . /tmp/dev/env\n"},
		{"/tmp/my dev", "  . '/tmp/my dev/env'\n"},
		{"/tmp/it's", `  . '/tmp/it'\''s/env'` + "\n"},
	} {
		var out bytes.Buffer
		printWelcome(&out, tc.dir, "http://127.0.0.1:8080", "http://127.0.0.1:8081", "http://127.0.0.1:8082", "")
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("LOCKBOX_DEV_DIR=%q: banner lacks %q:\n%s", tc.dir, tc.want, out.String())
		}
	}
}

// devEnv is the environment of an in-process "lockbox dev" on free
// loopback ports, keeping its files in dir.
func devEnv(dir string) map[string]string {
	return map[string]string{
		"LOCKBOX_DEV_DIR":      dir,
		"LOCKBOX_API_ADDR":     "127.0.0.1:0",
		"LOCKBOX_PROXY_ADDR":   "127.0.0.1:0",
		"LOCKBOX_METRICS_ADDR": "127.0.0.1:0",
	}
}

// LOCKBOX_DEV_DIR holds the dev signing key and a token for every role. A
// directory that already existed open to other users (made by hand, or
// with a umask of 022 by another tool) was used as it was, so anyone on the
// machine could list it and read whatever in it was not 0600 itself. dev
// refuses it, naming the variable, before it writes anything there.
func TestDevRefusesDevDirOthersCanOpen(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no permission bits on Windows: the profile's ACL protects the directory")
	}
	for _, mode := range []fs.FileMode{0o755, 0o750, 0o701} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "dev")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, mode); err != nil {
				t.Fatal(err)
			}
			// Bounds a start that should not happen.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr syncBuffer
			code := run(ctx, []string{"dev"}, devEnv(dir), &stdout, &stderr)
			// A directory to change, not a failure that may pass.
			if code != exitConfig {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, exitConfig, stdout.String(), stderr.String())
			}
			if got := stderr.String(); !strings.Contains(got, "lockbox: LOCKBOX_DEV_DIR: ") || !strings.Contains(got, "chmod 700") {
				t.Errorf("stderr does not name LOCKBOX_DEV_DIR and the fix:\n%s", got)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				t.Errorf("dev wrote %s into a directory it refused", e.Name())
			}
			if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != mode {
				t.Errorf("directory changed: %v, %v; want it left %v", fi.Mode(), err, mode)
			}
		})
	}
}

// The token files and the env file were written with os.WriteFile, which
// keeps the mode of a file that already exists: a token file left 0644 (by
// a copy, an editor, an older checkout) got a fresh token each start and
// stayed readable by everyone. Every token, key and the env file is
// owner-only however it was before.
func TestDevTokenFilesAreOwnerOnly(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no permission bits on Windows")
	}
	dir := filepath.Join(t.TempDir(), "dev")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"operator.jwt", "admin.jwt", "env"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runDev(t, devEnv(dir))
	secret := []string{"env", "dev-signing-key.pem", "grant-signing-key.pem"}
	for _, id := range devIdentities {
		secret = append(secret, id.file)
	}
	for _, name := range secret {
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s is %v, want -rw-------", name, fi.Mode())
		}
		if b, err := os.ReadFile(path); err != nil || string(b) == "old\n" {
			t.Errorf("%s was not rewritten (%v)", name, err)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("LOCKBOX_DEV_DIR is %v (%v), want drwx------", fi.Mode(), err)
	}
}

// The env file names the proxy's URL as well as the API's: on free ports
// only the banner said where the proxy listened, and README's calls
// through it, which use $LOCKBOX_PROXY_URL, reached nothing.
func TestDevEnvNamesTheProxy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	stdout, _ := runDev(t, devEnv(dir))
	m := regexp.MustCompile(`(?m)^\s*proxy\s+(http://127\.0\.0\.1:\d+)/`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("the banner names no proxy:\n%s", stdout.String())
	}
	env, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "\nexport LOCKBOX_PROXY_URL=" + m[1] + "\n"; !strings.Contains(string(env), want) {
		t.Errorf("env file lacks %q:\n%s", want, env)
	}
}

// A second "lockbox dev" in the same LOCKBOX_DEV_DIR (another shell, other
// ports) started its own empty store and rewrote the token and env files of
// the first to point at itself: the first one's requests vanished from
// whatever read the env file next. The second refuses, naming the variable,
// and leaves the first one's files alone; the lock goes with the process
// that held it, so none is left stale.
func TestDevRefusesSecondInSameDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	runDev(t, devEnv(dir))
	before, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	// Bounds a second start that should not happen.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"dev"}, devEnv(dir), &stdout, &stderr) }()
	for {
		select {
		case code := <-done:
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, stderr.String())
			}
			if got := stderr.String(); !strings.Contains(got, "lockbox: LOCKBOX_DEV_DIR: ") || !strings.Contains(got, "already") {
				t.Errorf("stderr does not say LOCKBOX_DEV_DIR is in use:\n%s", got)
			}
			after, err := os.ReadFile(filepath.Join(dir, "env"))
			if err != nil || !bytes.Equal(before, after) {
				t.Errorf("the first dev's env file changed (%v):\n%s\nnow:\n%s", err, before, after)
			}
			return
		case <-time.After(20 * time.Millisecond):
			if strings.Contains(stdout.String(), "Stop with Ctrl-C.") {
				cancel()
				<-done
				t.Fatalf("a second lockbox dev started in the same LOCKBOX_DEV_DIR:\n%s", stdout.String())
			}
		case <-ctx.Done():
			<-done
			t.Fatalf("the second lockbox dev neither refused nor started within 30s:\n%s", stderr.String())
		}
	}
}

// The banner offers /readyz beside the metrics, and a newcomer (or a
// script waiting for "make run") asks it whether dev is up: it answers
// 200 once dev has printed its banner. It answered 503 "redis: ERR wrong
// number of arguments for 'hello' command" for as long as dev ran, the
// embedded store refusing the HELLO the Redis check asks.
func TestDevIsReady(t *testing.T) {
	stdout, _ := runDev(t, devEnv(filepath.Join(t.TempDir(), "dev")))
	m := regexp.MustCompile(`(?m)^\s*metrics\s+(http://\S+)/metrics\s`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("banner names no metrics address:\n%s", stdout.String())
	}
	// Each check has a second (health.CheckTimeout): on a loaded machine
	// one answer may be a timeout, so ask until the deadline, which only
	// bounds a failure.
	var last string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(m[1] + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
		last = resp.Status + ": " + string(body)
	}
	t.Errorf("GET %s/readyz of a running lockbox dev: %s", m[1], last)
}

// The lock of LOCKBOX_DEV_DIR lasts as long as the dev holding it: once it
// stopped, the next one starts in the same directory.
func TestDevStartsAgainAfterStop(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	t.Run("first", func(t *testing.T) { runDev(t, devEnv(dir)) })
	t.Run("second", func(t *testing.T) { runDev(t, devEnv(dir)) })
}

// tokenExpiry is the exp claim of the JWT in file, read without verifying
// it (the server verifies; the test only asks when it ends).
func tokenExpiry(t *testing.T, file string) (string, time.Time) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(b))
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%s holds no JWT: %q", file, tok)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return tok, time.Unix(claims.Exp, 0)
}

// The dev tokens last devTokenTTL (a working day) from start: a dev left
// running overnight served on with every token file expired and said
// nothing. dev writes fresh tokens (and the env file) before they expire,
// and logs that it did, so a shell that sourced the old env file knows to
// source it again.
func TestDevRenewsTokensBeforeTheyExpire(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	start := time.Now().Truncate(time.Second)
	clk := clock.NewFake(start)
	renew := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- devAt(ctx, devEnv(dir), stdout, stderr, devTime{now: clk.Now, renew: renew}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev: %v", err)
		}
	})
	// The deadlines only bound a failure.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), "Stop with Ctrl-C.") {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("dev ended: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no banner after 30s; logs:\n%s", stderr.String())
		}
	}
	old, exp := tokenExpiry(t, filepath.Join(dir, "operator.jwt"))
	if want := start.Add(devTokenTTL); !exp.Equal(want) {
		t.Fatalf("operator.jwt expires at %v, want %v", exp, want)
	}

	// Half way through the tokens' life, dev's renewal comes due.
	clk.Advance(devTokenTTL / 2)
	select {
	case renew <- clk.Now():
	case err := <-done:
		done <- err
		t.Fatalf("dev ended: %v\n%s", err, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("dev took no renewal within 10s")
	}
	want := start.Add(devTokenTTL / 2).Add(devTokenTTL)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if tok, exp := tokenExpiry(t, filepath.Join(dir, "operator.jwt")); tok != old {
			if !exp.Equal(want) {
				t.Fatalf("renewed operator.jwt expires at %v, want %v", exp, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("operator.jwt not renewed within 10s; logs:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Every file renewed, the env file with them (written last).
	for deadline := time.Now().Add(10 * time.Second); ; {
		env, err := os.ReadFile(filepath.Join(dir, "env"))
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := tokenExpiry(t, filepath.Join(dir, "operator.jwt"))
		if strings.Contains(string(env), "LOCKBOX_OPERATOR_TOKEN="+tok+" ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("env file does not hold the renewed token within 10s:\n%s", env)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, id := range devIdentities {
		if _, exp := tokenExpiry(t, filepath.Join(dir, id.file)); !exp.Equal(want) {
			t.Errorf("%s expires at %v, want %v", id.file, exp, want)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stderr.String(), `msg="dev tokens renewed`); {
		if time.Now().After(deadline) {
			t.Fatalf("no log of the renewal within 10s:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// On the embedded store each run's audit chains start again, so the last
// run's SIEM lines move to siem.jsonl.1: in one file with this run's,
// "audit check-siem" would find two chains of one tenant. On the Redis of
// one's own the last run used, the chains go on, and so does the file; on
// another, or after the embedded store, they start again (a run on
// LOCKBOX_REDIS_URL after make run appended its chains to the embedded
// run's, and check-siem called the file broken, exit 4). A sink one set
// is left alone.
func TestDevStartsTheSIEMFileAgainOnTheEmbeddedStore(t *testing.T) {
	own := redistest.URL(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		// was is the store the last run's sidecar names; none when empty.
		was   string
		moved bool
	}{
		{"embedded store", nil, embeddedStore, true},
		{"own redis, as the last run", map[string]string{"LOCKBOX_REDIS_URL": own}, storeIdentity(config.Config{RedisURL: own}), false},
		{"own redis after the embedded store", map[string]string{"LOCKBOX_REDIS_URL": own}, embeddedStore, true},
		{"own redis after another", map[string]string{"LOCKBOX_REDIS_URL": own}, "redis://192.0.2.1:6379/0", true},
		{"own redis after a run that named none", map[string]string{"LOCKBOX_REDIS_URL": own}, "", true},
		{"sink set", map[string]string{"LOCKBOX_SIEM_SINK": "off"}, embeddedStore, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "dev")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			siem := filepath.Join(dir, "siem.jsonl")
			for _, f := range []string{siem, siem + ".1"} {
				if err := os.WriteFile(f, []byte(filepath.Base(f)+" of an earlier run\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.was != "" {
				if err := os.WriteFile(siem+".store", []byte(tc.was), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env := devEnv(dir)
			for k, v := range tc.env {
				env[k] = v
			}
			runDev(t, env)
			now, _ := os.ReadFile(siem)
			kept, _ := os.ReadFile(siem + ".1")
			if tc.moved {
				if string(kept) != "siem.jsonl of an earlier run\n" || strings.Contains(string(now), "earlier run") {
					t.Fatalf("siem.jsonl.1 holds %q, siem.jsonl %q; want the last run's lines moved aside", kept, now)
				}
				return
			}
			if !strings.HasPrefix(string(now), "siem.jsonl of an earlier run\n") || string(kept) != "siem.jsonl.1 of an earlier run\n" {
				t.Fatalf("siem.jsonl holds %q, siem.jsonl.1 %q; want both as they were", now, kept)
			}
		})
	}
}
