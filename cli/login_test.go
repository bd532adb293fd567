package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/cli/login"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

const publicClient = "lockboxctl"

// session is a lockboxctl user at one Lockbox server (a fake API) and one
// identity provider, on a fake clock the provider shares.
type session struct {
	t     *testing.T
	clock *clock.Fake
	idp   *oidctest.Provider
	api   *fakeAPI
	addr  string
	dir   string // LOCKBOX_CONFIG_DIR
	// onSleep runs at each of the device flow's waits, numbered from 1,
	// with what lockboxctl has printed on stderr so far.
	onSleep func(n int, stderr string)
	sleeps  []time.Duration
	stderr  *bytes.Buffer
	// ctlHTTP, when set, is lockboxctl's client for the identity provider.
	ctlHTTP *http.Client
}

func newSession(t *testing.T, cfg oidctest.Config) *session {
	t.Helper()
	s := &session{t: t, clock: clock.NewFake(time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)), api: &fakeAPI{}, dir: t.TempDir()}
	if cfg.Now == nil {
		cfg.Now = s.clock.Now
	}
	cfg.PublicClientID = publicClient
	s.idp = oidctest.Start(t, cfg)
	srv := httptest.NewServer(s.api)
	t.Cleanup(srv.Close)
	s.addr = srv.URL
	return s
}

// ctl runs lockboxctl with env (LOCKBOX_ADDR and LOCKBOX_CONFIG_DIR are
// set unless env names them).
func (s *session) ctl(env map[string]string, args ...string) result {
	s.t.Helper()
	full := map[string]string{EnvAddr: s.addr, EnvConfigDir: s.dir}
	for k, v := range env {
		full[k] = v
	}
	var stdout, stderr bytes.Buffer
	s.stderr = &stderr
	s.sleeps = nil
	s.api.mu.Lock()
	s.api.calls, s.api.auth = nil, nil
	s.api.mu.Unlock()
	deps := sessionDeps{now: s.clock.Now, sleep: func(ctx context.Context, d time.Duration) error {
		s.sleeps = append(s.sleeps, d)
		s.clock.Advance(d)
		if s.onSleep != nil {
			s.onSleep(len(s.sleeps), stderr.String())
		}
		return ctx.Err()
	}, http: s.ctlHTTP}
	code := runWith(context.Background(), args, func(k string) string { return full[k] }, &stdout, &stderr, deps)
	s.api.mu.Lock()
	defer s.api.mu.Unlock()
	return result{code: code, stdout: stdout.String(), stderr: stderr.String(), calls: s.api.calls, auth: s.api.auth}
}

func (s *session) login(args ...string) result {
	s.t.Helper()
	return s.ctl(nil, append([]string{"login", "--issuer", s.idp.Issuer(), "--client-id", publicClient}, args...)...)
}

var userCodeRE = regexp.MustCompile(`enter the code ([A-Z0-9-]+)`)

func userCode(t *testing.T, stderr string) string {
	t.Helper()
	m := userCodeRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no user code in lockboxctl's output:\n%s", stderr)
	}
	return m[1]
}

var alice = oidctest.User{Subject: "alice@provider.example", Claims: map[string]any{"roles": []string{"operator"}}}

// approveAt approves the device flow at the n-th wait.
func (s *session) approveAt(n int, u oidctest.User) {
	s.onSleep = func(i int, stderr string) {
		if i == n {
			if err := s.idp.ApproveDevice(userCode(s.t, stderr), u); err != nil {
				s.t.Fatal(err)
			}
		}
	}
}

func (s *session) tokenPath() string {
	key, err := login.ServerKey(s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	return login.Store{Dir: s.dir}.Path(key)
}

func (s *session) stored() login.Token {
	s.t.Helper()
	b, err := os.ReadFile(s.tokenPath())
	if err != nil {
		s.t.Fatal(err)
	}
	var tok login.Token
	if err := json.Unmarshal(b, &tok); err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// subject is the unverified sub of a JWT: which user the provider issued
// it to.
func subject(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Sub string }
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Sub
}

// mustLogin signs alice in through the device flow.
func (s *session) mustLogin() login.Token {
	s.t.Helper()
	s.approveAt(2, alice)
	if r := s.login(); r.code != 0 {
		s.t.Fatalf("login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	s.onSleep = nil
	return s.stored()
}

// list runs request list and returns the Authorization it sent.
func (s *session) list(env map[string]string, args ...string) (result, string) {
	s.t.Helper()
	r := s.ctl(env, append([]string{"request", "list"}, args...)...)
	if len(r.auth) == 0 {
		return r, ""
	}
	return r, r.auth[0]
}

func TestLoginDeviceFlow(t *testing.T) {
	s := newSession(t, oidctest.Config{})
	s.approveAt(2, alice)
	r := s.login()
	if r.code != 0 {
		t.Fatalf("login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"To sign in, open " + s.idp.Issuer() + "/device and enter the code ", "user_code="} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "Signed in to "+s.addr+" through "+s.idp.Issuer()) || !strings.Contains(r.stdout, s.tokenPath()) {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	// Pending at the first poll, approved before the second.
	if len(s.sleeps) != 2 || s.sleeps[0] != time.Second || s.sleeps[1] != time.Second {
		t.Errorf("waits %v, want the provider's interval of 1s twice", s.sleeps)
	}

	tok := s.stored()
	if subject(t, tok.AccessToken) != alice.Subject || tok.RefreshToken == "" || tok.Issuer != s.idp.Issuer() ||
		tok.ClientID != publicClient || tok.Server != s.addr || tok.TokenURL != s.idp.TokenEndpoint() {
		t.Errorf("stored token %+v", tok)
	}
	if want := s.clock.Now().Add(s.idp.TTL()); !tok.Expiry.Equal(want) {
		t.Errorf("expiry %v, want %v", tok.Expiry, want)
	}
	for path, want := range map[string]os.FileMode{s.tokenPath(): 0o600, filepath.Dir(s.tokenPath()): 0o700 | os.ModeDir} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
	// No temporary file left behind.
	if ents, _ := os.ReadDir(filepath.Dir(s.tokenPath())); len(ents) != 1 {
		t.Errorf("token directory holds %d entries, want 1", len(ents))
	}

	// Later commands send it.
	r, auth := s.list(nil)
	if r.code != 0 || auth != "Bearer "+tok.AccessToken {
		t.Fatalf("request list: exit %d, Authorization %q\n%s", r.code, auth, r.stderr)
	}
	// It is this server's: another server's commands don't get it.
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	if r := s.ctl(map[string]string{EnvAddr: other.URL}, "request", "list"); r.code != 1 || !strings.Contains(r.stderr, "no token") {
		t.Errorf("another server: exit %d\n%s", r.code, r.stderr)
	}
}

func TestLoginDevicePendingAndSlowDown(t *testing.T) {
	s := newSession(t, oidctest.Config{})
	s.onSleep = func(i int, stderr string) {
		switch i {
		case 2: // the first poll was pending; the provider wants fewer
			if err := s.idp.SlowDownDevice(userCode(t, stderr)); err != nil {
				t.Fatal(err)
			}
		case 4:
			if err := s.idp.ApproveDevice(userCode(t, stderr), alice); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r := s.login(); r.code != 0 {
		t.Fatalf("login: exit %d\n%s", r.code, r.stderr)
	}
	// pending, slow_down, pending (6s later), token (6s later).
	want := []time.Duration{time.Second, time.Second, 6 * time.Second, 6 * time.Second}
	if len(s.sleeps) != len(want) {
		t.Fatalf("waits %v, want %v", s.sleeps, want)
	}
	for i := range want {
		if s.sleeps[i] != want[i] {
			t.Fatalf("waits %v, want %v", s.sleeps, want)
		}
	}
	polls := s.idp.DevicePolls(userCode(t, s.stderr.String()))
	if len(polls) != 4 || polls[2].Sub(polls[1]) != 6*time.Second || polls[3].Sub(polls[2]) != 6*time.Second {
		t.Errorf("the provider saw polls at %v", polls)
	}
	if subject(t, s.stored().AccessToken) != alice.Subject {
		t.Error("the stored token isn't alice's")
	}
}

func TestLoginDeviceRefused(t *testing.T) {
	t.Run("denied", func(t *testing.T) {
		s := newSession(t, oidctest.Config{})
		s.onSleep = func(i int, stderr string) {
			if i == 2 {
				if err := s.idp.DenyDevice(userCode(t, stderr)); err != nil {
					t.Fatal(err)
				}
			}
		}
		r := s.login()
		if r.code != 1 || !strings.Contains(r.stderr, "the sign-in was denied at "+s.idp.Issuer()) {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		if _, err := os.Stat(s.tokenPath()); !os.IsNotExist(err) {
			t.Errorf("a token was stored after a denial: %v", err)
		}
	})
	t.Run("expired at the provider", func(t *testing.T) {
		var skew time.Duration
		var s *session
		s = newSession(t, oidctest.Config{Now: func() time.Time { return s.clock.Now().Add(skew) }})
		s.onSleep = func(i int, _ string) {
			if i == 2 {
				skew = s.idp.TTL() // the provider's code has expired, lockboxctl's deadline not yet
			}
		}
		r := s.login()
		if r.code != 1 || !strings.Contains(r.stderr, "expired before it was approved: run lockboxctl login again") {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		if len(s.sleeps) != 2 {
			t.Errorf("waits %v: the provider's expired_token must end the polling", s.sleeps)
		}
	})
	t.Run("expired before the next poll", func(t *testing.T) {
		s := newSession(t, oidctest.Config{})
		s.onSleep = func(i int, _ string) {
			if i == 3 {
				s.clock.Advance(s.idp.TTL())
			}
		}
		r := s.login()
		if r.code != 1 || !strings.Contains(r.stderr, "expired before it was approved") {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		if n := len(s.idp.DevicePolls(userCode(t, r.stderr))); n != 2 {
			t.Errorf("%d polls, want 2: none once the code has expired", n)
		}
	})
	t.Run("unknown client", func(t *testing.T) {
		s := newSession(t, oidctest.Config{})
		r := s.ctl(nil, "login", "--issuer", s.idp.Issuer(), "--client-id", "nobody")
		if r.code != 1 || !strings.Contains(r.stderr, "invalid_client") {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
	})
	t.Run("usage", func(t *testing.T) {
		s := newSession(t, oidctest.Config{})
		for _, args := range [][]string{{"login"}, {"login", "--issuer", s.idp.Issuer()}, {"login", "--client-id", "x"}} {
			if r := s.ctl(nil, args...); r.code != 2 || !strings.Contains(r.stderr, "missing --") {
				t.Errorf("%v: exit %d\n%s", args, r.code, r.stderr)
			}
		}
	})
}

// lines is an io.Writer that passes on each complete line.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
	out chan string
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			l.buf.WriteString(line) // incomplete: kept for the next write
			return len(p), nil
		}
		l.out <- line
	}
}

func TestLoginBrowserFlow(t *testing.T) {
	s := newSession(t, oidctest.Config{NoDeviceFlow: true})
	s.idp.QueueUser(alice)
	out := &lines{out: make(chan string, 100)}
	var stdout bytes.Buffer
	done := make(chan int, 1)
	env := map[string]string{EnvAddr: s.addr, EnvConfigDir: s.dir}
	go func() {
		done <- runWith(context.Background(), []string{"login", "--issuer", s.idp.Issuer(), "--client-id", publicClient},
			func(k string) string { return env[k] }, &stdout, out, sessionDeps{now: s.clock.Now})
	}()
	var authURL string
	for authURL == "" {
		select {
		case line := <-out.out:
			if l := strings.TrimSpace(line); strings.HasPrefix(l, s.idp.AuthorizationEndpoint()+"?") {
				authURL = l
			}
		case code := <-done:
			t.Fatalf("login ended (exit %d) before printing the URL", code)
		}
	}
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme != "http" || redirect.Hostname() != "127.0.0.1" || redirect.Port() == "" || redirect.Port() == "0" {
		t.Fatalf("redirect_uri %q: want a loopback address with the port the system picked", q.Get("redirect_uri"))
	}
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("client_id") != publicClient {
		t.Fatalf("authorization request %v", q)
	}
	// A redirect that isn't this flow's is turned away; the flow goes on.
	stray := *redirect
	stray.RawQuery = url.Values{"code": {"stolen"}, "state": {"guess"}}.Encode()
	resp, err := http.Get(stray.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a redirect with another state: %d", resp.StatusCode)
	}
	// The browser: the provider signs alice in and sends it back.
	resp, err = http.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Signed in") {
		t.Fatalf("the browser's page: %d %s", resp.StatusCode, page)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("login: exit %d\n%s", code, stdout.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("login did not finish after the redirect")
	}
	tok := s.stored()
	if subject(t, tok.AccessToken) != alice.Subject || tok.RefreshToken == "" {
		t.Fatalf("stored %+v", tok)
	}
	if r, auth := s.list(nil); r.code != 0 || auth != "Bearer "+tok.AccessToken {
		t.Fatalf("request list: exit %d, %q", r.code, auth)
	}
}

func TestLoginBrowserFlowRefused(t *testing.T) {
	// Nobody signs in at the provider: it sends back login_required.
	s := newSession(t, oidctest.Config{NoDeviceFlow: true})
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var stdout bytes.Buffer
	env := map[string]string{EnvAddr: s.addr, EnvConfigDir: s.dir}
	go func() {
		done <- runWith(context.Background(), []string{"login", "--issuer", s.idp.Issuer(), "--client-id", publicClient},
			func(k string) string { return env[k] }, &stdout, pw, sessionDeps{})
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var all strings.Builder
	for sc.Scan() {
		all.WriteString(sc.Text() + "\n")
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, s.idp.AuthorizationEndpoint()) {
			resp, err := http.Get(l)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	if code := <-done; code != 1 || !strings.Contains(all.String(), "login_required") {
		t.Fatalf("exit %d\n%s", code, all.String())
	}
	if _, err := os.Stat(s.tokenPath()); !os.IsNotExist(err) {
		t.Errorf("a token was stored: %v", err)
	}
}

func TestStoredTokenRefresh(t *testing.T) {
	s := newSession(t, oidctest.Config{})
	first := s.mustLogin()

	// Still good: sent as it is.
	s.clock.Advance(s.idp.TTL() - 2*login.RefreshMargin)
	if r, auth := s.list(nil); r.code != 0 || auth != "Bearer "+first.AccessToken {
		t.Fatalf("a fresh token: exit %d, %q\n%s", r.code, auth, r.stderr)
	}

	// Expired: refreshed, sent, and kept.
	s.clock.Advance(2 * login.RefreshMargin)
	r, auth := s.list(nil)
	second := s.stored()
	if r.code != 0 || auth != "Bearer "+second.AccessToken || second.AccessToken == first.AccessToken {
		t.Fatalf("an expired token: exit %d, sent %q, stored %q\n%s", r.code, auth, second.AccessToken, r.stderr)
	}
	if second.RefreshToken == first.RefreshToken || !second.Expiry.Equal(s.clock.Now().Add(s.idp.TTL())) ||
		second.Server != first.Server || subject(t, second.AccessToken) != alice.Subject {
		t.Errorf("after refresh: %+v", second)
	}
	if fi, err := os.Stat(s.tokenPath()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("after refresh: %v %v", fi.Mode(), err)
	}

	// About to expire: refreshed too.
	s.clock.Advance(s.idp.TTL() - login.RefreshMargin/2)
	if r, auth := s.list(nil); r.code != 0 || auth == "Bearer "+second.AccessToken || auth != "Bearer "+s.stored().AccessToken {
		t.Fatalf("a token about to expire: exit %d, %q", r.code, auth)
	}

	// A refresh token the provider no longer knows.
	spent := s.stored()
	spent.RefreshToken = "spent"
	if err := (login.Store{Dir: s.dir}).Save(spent); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(s.idp.TTL())
	r, _ = s.list(nil)
	if r.code != 1 || !strings.Contains(r.stderr, "invalid_grant") || !strings.HasSuffix(strings.TrimSpace(r.stderr), "run lockboxctl login") {
		t.Fatalf("a failed refresh: exit %d\n%s", r.code, r.stderr)
	}
	if len(r.calls) != 0 {
		t.Errorf("the API was called with an expired token: %v", r.calls)
	}
}

func TestStoredTokenFileMode(t *testing.T) {
	s := newSession(t, oidctest.Config{})
	s.mustLogin()
	if err := os.Chmod(s.tokenPath(), 0o644); err != nil {
		t.Fatal(err)
	}
	r, _ := s.list(nil)
	if r.code != 1 || !strings.Contains(r.stderr, "chmod 600 "+s.tokenPath()) || !strings.Contains(r.stderr, "mode 0644") {
		t.Fatalf("a 0644 token file: exit %d\n%s", r.code, r.stderr)
	}
	if len(r.calls) != 0 {
		t.Errorf("the API was called: %v", r.calls)
	}
	if err := os.Chmod(s.tokenPath(), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.list(nil); r.code != 0 {
		t.Fatalf("after chmod 600: exit %d\n%s", r.code, r.stderr)
	}

	// Nor a link to a file elsewhere.
	target := filepath.Join(t.TempDir(), "elsewhere.json")
	b, err := os.ReadFile(s.tokenPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s.tokenPath()); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, s.tokenPath()); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.list(nil); r.code != 1 || !strings.Contains(r.stderr, "not a regular file") {
		t.Fatalf("a symbolic link: exit %d\n%s", r.code, r.stderr)
	}
}

func TestTokenPrecedence(t *testing.T) {
	s := newSession(t, oidctest.Config{})
	stored := s.mustLogin()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(fileTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"LOCKBOX_TOKEN over the stored token", map[string]string{EnvToken: envToken}, nil, envToken},
		{"--token-file over both", map[string]string{EnvToken: envToken}, []string{"--token-file", tokenFile}, fileTok},
		{"the stored token", nil, nil, stored.AccessToken},
	} {
		if r, auth := s.list(c.env, c.args...); r.code != 0 || auth != "Bearer "+c.want {
			t.Errorf("%s: exit %d, sent %q", c.name, r.code, auth)
		}
	}
	// LOCKBOX_TOKEN wins even over a stored token that can't be read.
	if err := os.Chmod(s.tokenPath(), 0o640); err != nil {
		t.Fatal(err)
	}
	if r, auth := s.list(map[string]string{EnvToken: envToken}); r.code != 0 || auth != "Bearer "+envToken {
		t.Errorf("LOCKBOX_TOKEN with an unsafe token file: exit %d, %q\n%s", r.code, auth, r.stderr)
	}
}

func TestLogout(t *testing.T) {
	s := newSession(t, oidctest.Config{})
	s.mustLogin()
	r := s.ctl(nil, "logout")
	if r.code != 0 || !strings.Contains(r.stdout, "Signed out of "+s.addr) {
		t.Fatalf("logout: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(s.tokenPath()); !os.IsNotExist(err) {
		t.Fatalf("the token file is still there: %v", err)
	}
	if r, _ := s.list(nil); r.code != 1 || !strings.Contains(r.stderr, "run lockboxctl login") || len(r.calls) != 0 {
		t.Errorf("after logout: exit %d, %d calls\n%s", r.code, len(r.calls), r.stderr)
	}
	if r := s.ctl(nil, "logout"); r.code != 0 || !strings.Contains(r.stdout, "Not signed in to "+s.addr) {
		t.Errorf("logout again: exit %d\n%s", r.code, r.stdout)
	}
}

// TestDefaultTokenDirectory: without LOCKBOX_CONFIG_DIR the token goes to
// the user's config directory, which XDG_CONFIG_HOME names on Linux.
func TestDefaultTokenDirectory(t *testing.T) {
	s := newSession(t, oidctest.Config{})
	xdg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", xdg)
	t.Setenv("HOME", t.TempDir())
	s.approveAt(2, alice)
	if r := s.ctl(map[string]string{EnvConfigDir: ""}, "login", "--issuer", s.idp.Issuer(), "--client-id", publicClient); r.code != 0 {
		t.Fatalf("login: exit %d\n%s", r.code, r.stderr)
	}
	key, _ := login.ServerKey(s.addr)
	want := login.Store{Dir: filepath.Join(xdg, "lockbox")}.Path(key)
	if _, err := os.Stat(want); err != nil {
		t.Fatalf("no token at %s: %v", want, err)
	}
}

// raceRefresh lets another lockboxctl refresh the stored token (rotating
// its refresh token) just before this one's refresh reaches the provider.
type raceRefresh struct {
	once  sync.Once
	other func()
}

func (r *raceRefresh) RoundTrip(req *http.Request) (*http.Response, error) {
	r.once.Do(r.other)
	return http.DefaultTransport.RoundTrip(req)
}

// TestStoredTokenRefreshedConcurrently: two lockboxctl commands find the
// token expired at once; the one whose refresh token was spent by the other
// uses the token the other saved instead of asking for a new login.
func TestStoredTokenRefreshedConcurrently(t *testing.T) {
	s := newSession(t, oidctest.Config{})
	first := s.mustLogin()
	s.clock.Advance(s.idp.TTL())
	store := login.Store{Dir: s.dir}
	var saved login.Token
	race := &raceRefresh{other: func() {
		fresh, err := login.Refresh(context.Background(), http.DefaultClient, s.clock.Now(), first)
		if err != nil {
			t.Errorf("the other command's refresh: %v", err)
			return
		}
		if err := store.Save(fresh); err != nil {
			t.Error(err)
		}
		saved = fresh
	}}
	var stdout, stderr bytes.Buffer
	env := map[string]string{EnvAddr: s.addr, EnvConfigDir: s.dir}
	code := runWith(context.Background(), []string{"request", "list"}, func(k string) string { return env[k] }, &stdout, &stderr,
		sessionDeps{now: s.clock.Now, http: &http.Client{Transport: race}})
	if code != 0 || saved.AccessToken == "" {
		t.Fatalf("exit %d, the other saved %q\n%s", code, saved.AccessToken, stderr.String())
	}
	s.api.mu.Lock()
	defer s.api.mu.Unlock()
	if len(s.api.auth) != 1 || s.api.auth[0] != "Bearer "+saved.AccessToken {
		t.Errorf("sent %q, want the other command's token", s.api.auth)
	}
	if got, err := store.Load(s.stored().Server); err != nil || got.RefreshToken != saved.RefreshToken {
		t.Errorf("stored %+v (%v), want the other command's token kept", got, err)
	}
}

// An identity provider that can't be reached is named as such: the
// *url.Error from talking to it was reported as "cannot reach the Lockbox
// API at" the API's address, sending users to debug the wrong server.
func TestIdentityProviderUnreachable(t *testing.T) {
	// A closed listener's address: nothing answers there.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()

	check := func(t *testing.T, r result, issuer string) {
		t.Helper()
		want := "cannot reach the identity provider at " + issuer + ": "
		if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "connect: connection refused") {
			t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and %q", r.code, r.stderr, want)
		}
		if strings.Contains(r.stderr, "Lockbox API") {
			t.Errorf("blames the Lockbox API:\n%s", r.stderr)
		}
	}

	t.Run("discovery", func(t *testing.T) {
		s := newSession(t, oidctest.Config{})
		check(t, s.ctl(nil, "login", "--issuer", dead.URL+"/", "--client-id", "x"), dead.URL+"/")
	})

	t.Run("device authorization", func(t *testing.T) {
		// Discovery works; the device endpoint it names is down.
		var issuer string
		idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(login.Issuer{URL: issuer, TokenURL: dead.URL + "/token", DeviceAuthURL: dead.URL + "/device"})
		}))
		defer idp.Close()
		issuer = idp.URL
		s := newSession(t, oidctest.Config{})
		check(t, s.ctl(nil, "login", "--issuer", issuer, "--client-id", "x"), issuer)
	})

	t.Run("refresh", func(t *testing.T) {
		s := newSession(t, oidctest.Config{})
		s.mustLogin()
		issuer := s.idp.Issuer()
		s.idp.Close()

		// About to expire: a warning, and the call goes through.
		s.clock.Advance(s.idp.TTL() - login.RefreshMargin/2)
		r, _ := s.list(nil)
		if r.code != 0 || !strings.Contains(r.stderr, "warning: cannot reach the identity provider at "+issuer+": ") {
			t.Errorf("a token about to expire: exit %d, stderr:\n%s", r.code, r.stderr)
		}

		// Expired: the command fails, naming the provider.
		s.clock.Advance(login.RefreshMargin)
		r, _ = s.list(nil)
		check(t, r, issuer)
		if len(r.calls) != 0 {
			t.Errorf("the API was called with an expired token: %v", r.calls)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// An --issuer lockboxctl refuses on sight (plain http off loopback, not a
// URL) is a wrong command line: exit 2, as README's exit statuses say of
// every command, with nothing sent to the identity provider or the API.
// It was exit 1, the status of a call that failed.
func TestLoginRefusesABadIssuerAsUsage(t *testing.T) {
	for _, issuer := range []string{"http://login.example.com", "login.example.com", "ftp://login.example.com"} {
		t.Run(issuer, func(t *testing.T) {
			s := newSession(t, oidctest.Config{})
			sent := false
			s.ctlHTTP = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				sent = true
				return nil, http.ErrHandlerTimeout
			})}
			r := s.ctl(nil, "login", "--issuer", issuer, "--client-id", publicClient)
			if r.code != exitUsage || !strings.Contains(r.stderr, "see 'lockboxctl login --help'") {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and the usage hint", r.code, r.stderr, exitUsage)
			}
			if !strings.Contains(r.stderr, "--issuer") {
				t.Errorf("the message does not name --issuer:\n%s", r.stderr)
			}
			if sent || len(r.calls) != 0 {
				t.Errorf("something was sent: to the identity provider %v, to the API %v", sent, r.calls)
			}
		})
	}
}
