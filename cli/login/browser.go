package login

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/lockbox-oss/lockbox/internal/httptimeouts"
)

// Browser signs the user in through the authorization code flow with PKCE
// (S256) and a loopback redirect (RFC 8252 section 7.3): it listens on
// 127.0.0.1 on a port the system picks, tells the user the URL to open,
// and takes the code from the one redirect whose state is this flow's.
// A redirect carrying another issuer's iss (RFC 9207) is refused.
func (f *Flow) Browser(ctx context.Context) (Token, error) {
	if f.Issuer.AuthURL == "" {
		return Token{}, fmt.Errorf("%s has no authorization endpoint", f.Issuer.URL)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Token{}, fmt.Errorf("listening for the sign-in's redirect: %w", err)
	}
	conf := f.config("http://" + ln.Addr().String() + "/callback")
	verifier := oauth2.GenerateVerifier()
	state := rand.Text()

	type result struct {
		code string
		err  error
	}
	done := make(chan result, 1)
	finish := func(r result) {
		select {
		case done <- r:
		default: // the flow already has its answer
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		// Only the redirect of this flow counts; anything else that
		// finds the port is turned away without ending the flow.
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			http.Error(w, "This sign-in link is not the one lockboxctl is waiting for.", http.StatusBadRequest)
			return
		}
		iss := q.Get("iss")
		switch {
		case (iss != "" || f.Issuer.IssParam) && iss != f.Issuer.URL:
			http.Error(w, "The sign-in came back from another identity provider.", http.StatusBadRequest)
			finish(result{err: fmt.Errorf("the sign-in came back from issuer %q, not %s", iss, f.Issuer.URL)})
		case q.Get("error") == "access_denied":
			http.Error(w, "The sign-in was denied.", http.StatusForbidden)
			finish(result{err: ErrDenied})
		case q.Get("error") != "":
			http.Error(w, "The sign-in failed: "+q.Get("error"), http.StatusBadRequest)
			finish(result{err: fmt.Errorf("the identity provider refused the sign-in: %s %s", q.Get("error"), q.Get("error_description"))})
		case q.Get("code") == "":
			http.Error(w, "The sign-in came back without a code.", http.StatusBadRequest)
			finish(result{err: errors.New("the sign-in came back without a code")})
		default:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = fmt.Fprintln(w, "Signed in to Lockbox. You may close this window and return to lockboxctl.")
			finish(result{code: q.Get("code")})
		}
	})
	rt := f.redirectTimeouts.orDefaults()
	srv := rt.Server(mux)
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		// Shutdown first: the browser still gets its page. It closes
		// idle connections (a browser's kept-alive one) at once, but
		// waits on any other, and counts a connection that has sent
		// nothing yet (a browser's spare one) as busy for its first
		// five seconds; after the grace, Close drops whatever is left
		// instead of leaving it to its timeouts.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rt.shutdown)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
	}()

	if f.Tell != nil {
		f.Tell(Prompt{URL: conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))})
	}
	var res result
	select {
	case <-ctx.Done():
		return Token{}, ctx.Err()
	case res = <-done:
	}
	if res.err != nil {
		return Token{}, res.err
	}
	tok, err := conf.Exchange(f.httpContext(ctx), res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Token{}, fmt.Errorf("redeeming the sign-in's code at %s: %w", f.Issuer.URL, err)
	}
	return f.token(tok)
}

// redirectTimeouts bound the loopback redirect server's connections, and
// how long the flow, once it has its answer, lets them finish. Zero
// fields take defaultRedirectTimeouts'; tests shorten them.
type redirectTimeouts struct {
	httptimeouts.Timeouts
	// shutdown is the grace for answers still being written when the
	// flow ends; connections still open after it are closed.
	shutdown time.Duration
}

// defaultRedirectTimeouts suit the one redirect the server is there for:
// a browser on this machine sends a GET without a body and reads a
// one-line page at once, and might ask for a favicon on the same
// connection straight after. Anything slower is not that browser, and
// is dropped instead of holding a goroutine and a connection for as long
// as it likes (net/http waits forever where a timeout is zero).
var defaultRedirectTimeouts = redirectTimeouts{
	Timeouts: httptimeouts.Timeouts{ReadHeader: 10 * time.Second, Read: 10 * time.Second, Write: 10 * time.Second, Idle: 10 * time.Second},
	shutdown: 2 * time.Second,
}

func (t redirectTimeouts) orDefaults() redirectTimeouts {
	d := defaultRedirectTimeouts
	return redirectTimeouts{Timeouts: t.Timeouts.Or(d.Timeouts), shutdown: cmp.Or(t.shutdown, d.shutdown)}
}
