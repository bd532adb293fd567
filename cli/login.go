package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/cli/login"
)

// EnvConfigDir names lockboxctl's own directory, where `lockboxctl login`
// keeps tokens; the lockbox directory in the user's config directory when
// unset.
const EnvConfigDir = "LOCKBOX_CONFIG_DIR"

// sessionDeps are what signing in needs from outside; the zero value is
// the real clock, timers and a default HTTP client. Tests set them.
type sessionDeps struct {
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
	http  *http.Client
	// apiTimeout bounds each API call (and an export's silence):
	// client.DefaultTimeout when zero. Tests shorten it.
	apiTimeout time.Duration
}

// timeout is how long an API call may go without an answer.
func (d sessionDeps) timeout() time.Duration {
	if d.apiTimeout > 0 {
		return d.apiTimeout
	}
	return client.DefaultTimeout
}

func (d sessionDeps) clock() time.Time {
	if d.now != nil {
		return d.now()
	}
	return time.Now()
}

// sessionCommands are login and logout.
func (e *env) sessionCommands() []*cobra.Command {
	var (
		issuer, clientID string
		scopes           listValue
	)
	loginCmd := &cobra.Command{
		Use:   "login --issuer URL --client-id ID [--scope S]...",
		Short: "sign in at your identity provider and keep the token for this Lockbox server",
		Long: `Sign in at your identity provider and keep the token for this Lockbox server.

The device flow is used where the identity provider offers it (enter the code shown at the
address shown, on any device); otherwise open the address shown in a browser on this machine.

The token is kept in lockbox/tokens/ in your config directory, or under $` + EnvConfigDir + ` when
set, one file per Lockbox server (--addr); --token-file and $` + EnvToken + ` take precedence.`,
		GroupID: groupSession,
		Args:    args(),
		RunE: func(*cobra.Command, []string) error {
			return e.login(issuer, clientID, scopes)
		},
	}
	f := loginCmd.Flags()
	f.StringVar(&issuer, "issuer", "", "the identity provider's issuer: your organization's, or the provider's for its staff")
	f.StringVar(&clientID, "client-id", "", "lockboxctl's client id there (a public client: no secret)")
	f.Var(&scopes, "scope", "a scope to ask for besides openid and offline_access, e.g. the Lockbox API's; repeat or separate with commas")
	logout := &cobra.Command{
		Use:   "logout",
		Short: "sign out: remove the token login stored for this Lockbox server",
		Long: "Sign out: remove the token login stored for this Lockbox server (--addr), in\n" +
			"lockbox/tokens/ in your config directory, or under $" + EnvConfigDir + " when set.",
		GroupID: groupSession,
		Args:    args(),
		RunE:    func(*cobra.Command, []string) error { return e.logout() },
	}
	return []*cobra.Command{loginCmd, logout}
}

// server is the Lockbox API this run talks to, as tokens are stored.
func (e *env) server() (string, error) { return login.ServerKey(apiURL(e.g.addr)) }

func (e *env) tokenStore() (login.Store, error) {
	if d := strings.TrimSpace(e.getenv(EnvConfigDir)); d != "" {
		return login.Store{Dir: d}, nil
	}
	d, err := login.DefaultDir()
	if err != nil {
		return login.Store{}, err
	}
	return login.Store{Dir: d}, nil
}

func (e *env) login(issuer, clientID string, scopes []string) error {
	switch {
	case strings.TrimSpace(issuer) == "":
		// "run lockboxctl login" is what the no-token message offers
		// first, and lockbox dev has no identity provider to name.
		return e.usage("missing --issuer, your identity provider's issuer URL (lockbox dev has none: use a token file it writes, e.g. --token-file .lockbox-dev/operator.jwt, or source .lockbox-dev/env)")
	case strings.TrimSpace(clientID) == "":
		return e.usage("missing --client-id")
	}
	// An issuer refused on sight is a wrong command line (exit 2), like
	// any other flag value lockboxctl refuses before sending anything.
	if err := login.CheckIssuer(issuer); err != nil {
		return e.usage("--issuer: %v", err)
	}
	// The token is kept for the API address, and every later command
	// refuses one it can't call: signing in for it would only store a
	// token no command sends.
	if err := e.checkAddr(); err != nil {
		return err
	}
	server, err := e.server()
	if err != nil {
		return err
	}
	store, err := e.tokenStore()
	if err != nil {
		return err
	}
	iss, err := login.Discover(e.ctx, e.session.http, issuer)
	if err != nil {
		return &idpError{issuer: strings.TrimSpace(issuer), err: err}
	}
	flow := &login.Flow{
		Issuer: iss, ClientID: strings.TrimSpace(clientID), Scopes: append(append([]string(nil), login.DefaultScopes...), scopes...),
		HTTP: e.session.http, Now: e.session.now, Sleep: e.session.sleep,
		Tell: func(p login.Prompt) {
			// Prompts go to stderr, so stdout stays the command's result.
			if p.UserCode != "" {
				fmt.Fprintf(e.stderr, "To sign in, open %s and enter the code %s\n", clean(p.VerificationURI), clean(p.UserCode))
				if p.VerificationURIComplete != "" {
					fmt.Fprintf(e.stderr, "(or open %s)\n", clean(p.VerificationURIComplete))
				}
				fmt.Fprintln(e.stderr, "Waiting for the sign-in to be approved...")
				return
			}
			fmt.Fprintf(e.stderr, "To sign in, open this address in a browser on this machine:\n\n  %s\n\nWaiting for the sign-in...\n", clean(p.URL))
		},
	}
	tok, err := flow.Run(e.ctx)
	switch {
	case errors.Is(err, login.ErrDenied):
		return fmt.Errorf("%w at %s", err, iss.URL)
	case errors.Is(err, login.ErrExpired):
		return fmt.Errorf("%w: run lockboxctl login again", err)
	case err != nil:
		return &idpError{issuer: iss.URL, err: err}
	}
	tok.Server = server
	if err := store.Save(tok); err != nil {
		return err
	}
	until := ""
	if !tok.Expiry.IsZero() {
		until = fmt.Sprintf("; it expires at %s", tok.Expiry.Local().Format(time.RFC3339))
		if tok.RefreshToken != "" {
			until += " and is refreshed as needed"
		}
	}
	_, err = fmt.Fprintf(e.stdout, "Signed in to %s through %s. The token is stored in %s%s.\n",
		clean(server), clean(iss.URL), clean(store.Path(server)), until)
	return err
}

func (e *env) logout() error {
	// The address names the token file, so one no command can call is
	// refused as they refuse it: login never stored a token for it, and
	// "Not signed in" would hide the mistake (a typo in $LOCKBOX_ADDR)
	// behind a success. Nothing is sent, so plain http off loopback needs
	// no --insecure-http here, and a bad $LOCKBOX_INSECURE_HTTP doesn't
	// stop a token from being removed.
	if err := e.checkAddrForm(); err != nil {
		return err
	}
	server, err := e.server()
	if err != nil {
		return err
	}
	store, err := e.tokenStore()
	if err != nil {
		return err
	}
	removed, err := store.Remove(server)
	if err != nil {
		return err
	}
	if !removed {
		_, err = fmt.Fprintf(e.stdout, "Not signed in to %s.\n", clean(server))
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "Signed out of %s: removed %s.\n", clean(server), clean(store.Path(server)))
	return err
}

// idpError is a failure in talking to the identity provider at issuer
// (discovery, the sign-in flows, a refresh). report would otherwise take
// the *url.Error inside it for a failure to reach the Lockbox API, and
// name the API's address for an identity provider that is down.
type idpError struct {
	issuer string
	err    error
}

func (e *idpError) Error() string {
	if u, ok := errors.AsType[*url.Error](e.err); ok {
		return fmt.Sprintf("cannot reach the identity provider at %s: %s", e.issuer, u.Err)
	}
	return e.err.Error()
}

func (e *idpError) Unwrap() error { return e.err }

// errNotSignedIn: neither a token flag nor variable, nor a stored token.
var errNotSignedIn = fmt.Errorf("no token: set %s or pass --token-file FILE, or run lockboxctl login (with `lockbox dev`, use a token file it writes, e.g. --token-file .lockbox-dev/operator.jwt, or source .lockbox-dev/env)", EnvToken)

// hasStoredLogin reports whether lockboxctl login stored a token for the
// server, whether or not it is still current: it is what another token
// sent instead shadows.
func (e *env) hasStoredLogin() bool {
	server, err := e.server()
	if err != nil {
		return false
	}
	store, err := e.tokenStore()
	if err != nil {
		return false
	}
	_, err = store.Load(server)
	return err == nil
}

// storedToken is the access token `lockboxctl login` stored for this
// server, refreshed first when it has expired or is about to.
func (e *env) storedToken() (string, error) {
	server, err := e.server()
	if err != nil {
		return "", err
	}
	store, err := e.tokenStore()
	if err != nil {
		return "", err
	}
	tok, err := store.Load(server)
	switch {
	case errors.Is(err, login.ErrNotSignedIn):
		return "", errNotSignedIn
	case errors.As(err, new(*login.InsecureFileError)):
		return "", err // it says what to do
	case err != nil:
		// A file that holds no token (cut short, edited by hand):
		// signing in again replaces it.
		return "", fmt.Errorf("%w: run lockboxctl login", err)
	}
	now := e.session.clock()
	if !tok.NeedsRefresh(now) {
		return tok.AccessToken, nil
	}
	if tok.RefreshToken == "" {
		if tok.Expired(now) {
			return "", fmt.Errorf("the token from lockboxctl login expired at %s: run lockboxctl login", tok.Expiry.Local().Format(time.RFC3339))
		}
		return tok.AccessToken, nil
	}
	fresh, err := login.Refresh(e.ctx, e.session.http, now, tok)
	if err != nil {
		err = &idpError{issuer: tok.Issuer, err: err}
		// Another lockboxctl may have refreshed first: with rotating
		// refresh tokens, ours is then spent, and the one it saved is the
		// token to use.
		if again, lerr := store.Load(server); lerr == nil && again.RefreshToken != tok.RefreshToken && !again.NeedsRefresh(now) {
			return again.AccessToken, nil
		}
		if !tok.Expired(now) {
			// Still good for a moment: this call goes through.
			fmt.Fprintf(e.stderr, "lockboxctl: warning: %s; run lockboxctl login\n", clean(err.Error()))
			return tok.AccessToken, nil
		}
		return "", fmt.Errorf("%w; run lockboxctl login", err)
	}
	if err := store.Save(fresh); err != nil {
		// The new token works for this call, but the provider may have
		// rotated the refresh token we could not keep.
		fmt.Fprintf(e.stderr, "lockboxctl: warning: %s; the next command may need lockboxctl login\n", clean(err.Error()))
	}
	return fresh.AccessToken, nil
}
