package login

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/oidctest"
)

// discoveryServer serves doc, with {url} replaced by the server's URL.
func discoveryServer(t *testing.T, doc map[string]string) string {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := map[string]string{}
		for k, v := range doc {
			out[k] = strings.ReplaceAll(v, "{url}", srv.URL)
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestDiscoverRefuses(t *testing.T) {
	ctx := context.Background()
	good := map[string]string{"issuer": "{url}", "token_endpoint": "{url}/token", "authorization_endpoint": "{url}/authorize"}
	if _, err := Discover(ctx, nil, discoveryServer(t, good)+"/"); err != nil {
		t.Fatalf("a good document (issuer typed with a trailing slash): %v", err)
	}
	for _, c := range []struct {
		name, want string
		doc        map[string]string
		issuer     string
	}{
		{name: "plain http to a remote issuer", issuer: "http://idp.example.com", want: "must be https"},
		{name: "not a URL", issuer: "idp.example.com", want: "not an absolute URL"},
		{name: "another issuer's document", doc: map[string]string{"issuer": "https://evil.example", "token_endpoint": "{url}/token",
			"authorization_endpoint": "{url}/authorize"}, want: `the document is the issuer "https://evil.example"'s`},
		{name: "a plain http token endpoint", doc: map[string]string{"issuer": "{url}", "token_endpoint": "http://idp.example.com/token",
			"authorization_endpoint": "{url}/authorize"}, want: "token_endpoint"},
		{name: "a plain http device endpoint", doc: map[string]string{"issuer": "{url}", "token_endpoint": "{url}/token",
			"device_authorization_endpoint": "http://idp.example.com/device"}, want: "device_authorization_endpoint"},
		{name: "no token endpoint", doc: map[string]string{"issuer": "{url}", "authorization_endpoint": "{url}/authorize"}, want: "token_endpoint"},
		{name: "nowhere to sign in", doc: map[string]string{"issuer": "{url}", "token_endpoint": "{url}/token"}, want: "neither"},
	} {
		issuer := c.issuer
		if c.doc != nil {
			issuer = discoveryServer(t, c.doc)
		}
		if _, err := Discover(ctx, nil, issuer); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error mentioning %q", c.name, err, c.want)
		}
	}
}

// TestBrowserRefusesAnotherIssuer: a code that comes back from an issuer
// other than the one the flow began at is not redeemed (RFC 9207).
func TestBrowserRefusesAnotherIssuer(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{PublicClientID: "cli", NoDeviceFlow: true})
	p.QueueUser(oidctest.User{Subject: "alice"})
	iss, err := Discover(context.Background(), nil, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	iss.URL = "https://expected.example"
	errc := make(chan error, 1)
	f := &Flow{Issuer: iss, ClientID: "cli", Tell: func(pr Prompt) {
		go func() {
			resp, err := http.Get(pr.URL)
			if err != nil {
				errc <- err
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				errc <- errors.New("the browser was told " + resp.Status)
			}
			errc <- nil
		}()
	}}
	if _, err := f.Browser(context.Background()); err == nil || !strings.Contains(err.Error(), "came back from issuer") {
		t.Fatalf("Browser: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestStoreKeepsEachServersToken(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if k, _ := ServerKey("HTTPS://Lockbox.Example.com:8443/"); k != "https://lockbox.example.com:8443" {
		t.Fatalf("ServerKey: %q", k)
	}
	// Two servers whose names map to one file name.
	a, b := "https://x:1", "https://x_1"
	if s.Path(a) != s.Path(b) {
		t.Fatalf("%s and %s: %s, %s", a, b, s.Path(a), s.Path(b))
	}
	if err := s.Save(Token{Server: a, AccessToken: "a-token"}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load(a); err != nil || got.AccessToken != "a-token" {
		t.Fatalf("Load(a): %+v %v", got, err)
	}
	if got, err := s.Load(b); !errors.Is(err, ErrNotSignedIn) {
		t.Fatalf("b got a's token: %+v %v", got, err)
	}
	removed, err := s.Remove(a)
	if err != nil || !removed {
		t.Fatalf("Remove: %v %v", removed, err)
	}
	if _, err := os.Stat(s.Path(a)); !os.IsNotExist(err) {
		t.Fatal("still there")
	}
}

// TestRefreshRefusesRedirectToHTTP: a token endpoint on https that
// redirects to http does not get the refresh token resent in the clear.
func TestRefreshRefusesRedirectToHTTP(t *testing.T) {
	var clear atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clear.Add(1)
		http.Error(w, "no", http.StatusBadRequest)
	}))
	t.Cleanup(plain.Close)
	idp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// 307 keeps the method and the body: the refresh token.
		http.Redirect(w, r, plain.URL+"/token", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(idp.Close)
	tok := Token{Issuer: idp.URL, ClientID: "lockboxctl", TokenURL: idp.URL + "/token", RefreshToken: "rt-secret"}
	_, err := Refresh(context.Background(), idp.Client(), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), tok)
	if err == nil || !strings.Contains(err.Error(), "redirect from https to http refused") {
		t.Errorf("Refresh: %v", err)
	}
	if n := clear.Load(); n != 0 {
		t.Errorf("the http endpoint got %d requests", n)
	}
}

// TestDeviceWithoutExpiresInEnds: a device authorization answer without
// expires_in (required by RFC 8628, but left out by a provider that keeps
// the code alive) no longer has lockboxctl poll until it is killed: the
// code is taken to expire after DefaultDeviceCodeLifetime.
func TestDeviceWithoutExpiresInEnds(t *testing.T) {
	var polls atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/device":
			_ = json.NewEncoder(w).Encode(map[string]any{"device_code": "dc", "user_code": "ABCD-EFGH",
				"verification_uri": srv.URL + "/verify", "interval": 60})
		case "/token":
			polls.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "authorization_pending"})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	start := now
	// Far more waits than the lifetime holds: reached, the flow would
	// never have ended.
	const most = 10_000
	waits := 0
	f := &Flow{Issuer: Issuer{URL: srv.URL, TokenURL: srv.URL + "/token", DeviceAuthURL: srv.URL + "/device"}, ClientID: "lockboxctl",
		Now: func() time.Time { return now },
		Sleep: func(_ context.Context, d time.Duration) error {
			if waits++; waits > most {
				return errors.New("still polling")
			}
			now = now.Add(d)
			return nil
		}}
	_, err := f.Device(context.Background())
	if !errors.Is(err, ErrExpired) {
		t.Fatalf("Device: %v after %d polls, want ErrExpired", err, polls.Load())
	}
	if waited := now.Sub(start); waited < DefaultDeviceCodeLifetime || waited > DefaultDeviceCodeLifetime+time.Minute {
		t.Errorf("gave up after %v, want %v", waited, DefaultDeviceCodeLifetime)
	}
}

// TestDeviceVerificationURIMustBeHTTPS: the user signs in, password and
// all, at the device authorization answer's verification_uri: one that is
// plain http off loopback, like the endpoints discovery refuses, is
// refused before the user is told to go there or the token endpoint is
// polled.
func TestDeviceVerificationURIMustBeHTTPS(t *testing.T) {
	for _, c := range []struct {
		name             string
		verify, complete string
	}{
		{"verification_uri", "http://idp.example.com/device", ""},
		{"verification_uri_complete", "https://idp.example.com/device", "http://idp.example.com/device?user_code=ABCD-EFGH"},
		{"verification_uri", "idp.example.com/device", ""}, // not a URL
	} {
		t.Run(c.name, func(t *testing.T) {
			var polls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				switch r.URL.Path {
				case "/device":
					doc := map[string]any{"device_code": "dc", "user_code": "ABCD-EFGH", "verification_uri": c.verify, "expires_in": 600, "interval": 5}
					if c.complete != "" {
						doc["verification_uri_complete"] = c.complete
					}
					_ = json.NewEncoder(w).Encode(doc)
				case "/token":
					polls.Add(1)
					_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600})
				default:
					http.NotFound(w, r)
				}
			}))
			t.Cleanup(srv.Close)
			told := false
			f := &Flow{Issuer: Issuer{URL: srv.URL, TokenURL: srv.URL + "/token", DeviceAuthURL: srv.URL + "/device"}, ClientID: "lockboxctl",
				Tell:  func(Prompt) { told = true },
				Sleep: func(context.Context, time.Duration) error { return nil }}
			_, err := f.Device(context.Background())
			if err == nil || !strings.Contains(err.Error(), c.name) {
				t.Errorf("Device: %v, want an error naming %s", err, c.name)
			}
			if told || polls.Load() != 0 {
				t.Errorf("told the user: %v; token endpoint polled %d times", told, polls.Load())
			}
		})
	}
}

// TestDeviceIntervalLongerThanTheCodeLives: a provider whose polling
// interval is longer than its device code lives (interval 600 s, expires_in
// 60 s) had lockboxctl wait the whole interval, nine minutes past the
// code's end, before saying it expired. The wait now ends with the code,
// and the answer is that it expired.
func TestDeviceIntervalLongerThanTheCodeLives(t *testing.T) {
	var polls atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/device":
			_ = json.NewEncoder(w).Encode(map[string]any{"device_code": "dc", "user_code": "ABCD-EFGH",
				"verification_uri": srv.URL + "/verify", "expires_in": 60, "interval": 600})
		case "/token":
			polls.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "authorization_pending"})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	start := now
	const most = 100
	waits := 0
	f := &Flow{Issuer: Issuer{URL: srv.URL, TokenURL: srv.URL + "/token", DeviceAuthURL: srv.URL + "/device"}, ClientID: "lockboxctl",
		Now: func() time.Time { return now },
		Sleep: func(_ context.Context, d time.Duration) error {
			if waits++; waits > most {
				return errors.New("still polling")
			}
			now = now.Add(d)
			return nil
		}}
	_, err := f.Device(context.Background())
	if !errors.Is(err, ErrExpired) {
		t.Fatalf("Device: %v after %d polls, want ErrExpired", err, polls.Load())
	}
	if waited := now.Sub(start); waited > 60*time.Second {
		t.Errorf("said the code expired after waiting %v; it expired after 60s", waited)
	}
	if n := polls.Load(); n != 0 {
		t.Errorf("%d polls with an expired code", n)
	}
}

// TestRedirectsStayInOrigin: a request to the identity provider follows a
// redirect only within the scheme, host and port of the URL it started
// at. A token endpoint's 307 to another https origin would have the
// refresh token sent there again; a discovery document redirected to
// another origin would name, believed, the endpoints the codes and tokens
// go to. A redirect within the origin is followed.
func TestRedirectsStayInOrigin(t *testing.T) {
	var elsewhere atomic.Int32
	var other *httptest.Server
	other = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		http.Error(w, "no", http.StatusBadRequest)
	}))
	t.Cleanup(other.Close)
	var idp *httptest.Server
	idp = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			// 307 keeps the method and the body: the refresh token.
			http.Redirect(w, r, other.URL+"/token", http.StatusTemporaryRedirect)
		case "/.well-known/openid-configuration":
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
		case "/moved/.well-known/openid-configuration":
			http.Redirect(w, r, "/discovery", http.StatusFound)
		case "/discovery":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": idp.URL + "/moved",
				"token_endpoint": idp.URL + "/token", "authorization_endpoint": idp.URL + "/authorize"})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(idp.Close)
	ctx := context.Background()

	tok := Token{Issuer: idp.URL, ClientID: "lockboxctl", TokenURL: idp.URL + "/token", RefreshToken: "rt-secret"}
	if _, err := Refresh(ctx, idp.Client(), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), tok); err == nil || !strings.Contains(err.Error(), "another origin") {
		t.Errorf("Refresh: %v", err)
	}
	if _, err := Discover(ctx, idp.Client(), idp.URL); err == nil || !strings.Contains(err.Error(), "another origin") {
		t.Errorf("Discover: %v", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the other origin got %d requests", n)
	}
	if iss, err := Discover(ctx, idp.Client(), idp.URL+"/moved"); err != nil || iss.TokenURL != idp.URL+"/token" {
		t.Errorf("Discover redirected within the origin: %+v, %v", iss, err)
	}

	// The default client, which does not trust the test's certificate,
	// has the same rule.
	from, err := http.NewRequest(http.MethodPost, "https://idp.example/token", nil)
	if err != nil {
		t.Fatal(err)
	}
	for to, refused := range map[string]bool{"https://idp.example:443/token2": false, "https://login.idp.example/token": true,
		"https://idp.example:8443/token": true, "http://idp.example/token": true} {
		req, err := http.NewRequest(http.MethodPost, to, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := client(nil).CheckRedirect(req, []*http.Request{from}); (err != nil) != refused {
			t.Errorf("the default client's redirect to %s: %v", to, err)
		}
	}
}
