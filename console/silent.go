package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/lockbox-oss/lockbox/internal/logurl"
)

// A session whose sign-in brought no refresh token (identity providers that
// issue none, or don't offer offline_access) is verified again by the
// identity provider's sign-in itself: an authorization request with
// prompt=none, which the identity provider answers at once, without a
// page, from the session its user has there. It is the sign-in's machinery
// (PKCE, state and nonce sealed in a cookie, the same redirect URI and
// callback, the same checks of the ID token), with two more things in the
// sealed sign-in: the session it is the re-verification of, by its name in
// Redis, so the answer updates that session only and never signs a
// browser in; and the console page to go back to. Its cookie is not the
// login cookie but one of its own (reverifyCookie), so that a sign-in its
// user started in another tab and a re-verification of the session that
// sign-in replaces don't end each other.
//
// Only a request that can follow a redirect to the identity provider can
// do that: a page the browser navigates to, and a form it posts (which is
// not acted on: its roles may be gone; its page, once verified, tells the
// user to post it again). A page's poll can't, and must not be answered
// with roles that may be gone either: it is answered 401, as for an ended
// session, and the page reloads itself, a navigation that goes. One attempt at a time, at most
// one a minute (silentRetry): within a minute of the last start, a poll is
// told to wait and a page shows a notice that reloads it shortly, so a
// browser that never comes back from the identity provider, or comes back
// without its login cookie, can't loop through it.

// silentRetry is how long after a silent re-verification started another
// may start: the first had that long to come back.
const silentRetry = time.Minute

// silentInFlight reports whether a silent re-verification of sess started
// at most silentRetry before now and has not come back.
func silentInFlight(sess Session, now time.Time) bool {
	return !sess.SilentReverifyAt.IsZero() && now.Before(sess.SilentReverifyAt.Add(silentRetry))
}

// requestKind sorts requests by what they can do when their session is to
// be verified by the identity provider's sign-in.
type requestKind int

const (
	// kindFetch is a poll of a page's script, or a request of a client
	// that does not say it navigates: it can't go to the identity
	// provider.
	kindFetch requestKind = iota
	// kindPage is a navigation to a page.
	kindPage
	// kindForm is a form posted.
	kindForm
)

// kindOf is the kind of r, served by a page route (touch) or a poll's.
// Browsers say a navigation by Sec-Fetch-Mode; a client without Fetch
// Metadata navigates when it asks a page (never a poll's route) for HTML.
func kindOf(r *http.Request, touch bool) requestKind {
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		return kindForm
	case !touch:
		return kindFetch
	}
	switch r.Header.Get("Sec-Fetch-Mode") {
	case "navigate":
		return kindPage
	case "":
		if strings.Contains(r.Header.Get("Accept"), "text/html") {
			return kindPage
		}
	}
	return kindFetch
}

// maxReturn bounds the page a re-verification returns to, which the login
// cookie carries.
const maxReturn = 1 << 10

// defaultReturn is where a re-verification returns when the page it was
// asked from can't be named.
const defaultReturn = "/console/requests"

// localPage is the console page u names, as a path and query of the
// console's own ("/console/requests?state=approved"), or "" when u names
// none: another origin's, a scheme-relative or too long one, or a page not
// under /console/. Only such a page is ever a redirect's target.
func localPage(u *url.URL) string {
	p := u.EscapedPath()
	if !strings.HasPrefix(p, "/console/") || strings.ContainsAny(p, "\\") {
		return ""
	}
	// Judged as the browser and the mux resolve it, escapes decoded and
	// dot segments removed: "/console/%73ignin/oidc" and
	// "/console/requests/../login" are sign-in steps too.
	if clean := path.Clean(u.Path); !strings.HasPrefix(clean+"/", "/console/") || signinStep(clean) {
		return ""
	}
	if q, err := url.ParseQuery(u.RawQuery); err == nil && len(q) > 0 {
		p += "?" + q.Encode()
	}
	if len(p) > maxReturn {
		return ""
	}
	return p
}

// signinSteps are the paths that sign in or out, or start to: no page to
// go on to. A sign-in that went on to /console/signin/oidc?tenant=evil,
// as a link to the sign-in page may ask, would start another sign-in,
// at evil's identity provider, by the console's own navigation, which
// oidcStart takes for the user's choice (see startedElsewhere): evil's
// identity provider would sign the browser in as whomever it likes.
var signinSteps = []string{"/console/signin", "/console/login", "/console/oidc", "/console/signout"}

// signinStep reports whether clean, a cleaned path, is one of signinSteps
// or under one.
func signinStep(clean string) bool {
	return slices.ContainsFunc(signinSteps, func(s string) bool { return clean == s || strings.HasPrefix(clean, s+"/") })
}

// returnPage is the page a re-verification started by r returns to: the
// page itself for a navigation; for a form, the page it was on (its
// Referer, when it is one of the console's own, as Referrer-Policy
// same-origin lets browsers send it), saying the form was not sent (see
// resubmit).
func (c *Console) returnPage(r *http.Request, kind requestKind) string {
	if kind == kindPage {
		if p := localPage(r.URL); p != "" {
			return p
		}
		return defaultReturn
	}
	return resubmit(c.formPage(r))
}

// formPage is the page the form r posted was on: its Referer, when it is
// one of the console's own, as Referrer-Policy same-origin lets browsers
// send it; defaultReturn when it names none.
func (c *Console) formPage(r *http.Request) string {
	ref, err := url.Parse(r.Referer())
	if err != nil || !ref.IsAbs() || !c.ownOrigin(r, ref) {
		return defaultReturn
	}
	if p := localPage(ref); p != "" {
		return p
	}
	return defaultReturn
}

// resubmit is page, a localPage, with the flash that tells its user their
// sign-in was confirmed and the form they sent was not acted on: a form
// of a session due to be verified is never acted on (its roles may be
// gone), and its user, sent through the identity provider and back, would
// otherwise find the page as they left it, and believe it done.
func resubmit(page string) string { return withFlash(page, "resubmit") }

// withFlash is page, a localPage, with the flash of code (see flashes).
func withFlash(page, code string) string {
	u, err := url.Parse(page)
	if err != nil {
		return defaultReturn + "?done=" + code
	}
	q := u.Query()
	q.Set("done", code)
	u.RawQuery = q.Encode()
	if p := localPage(u); p != "" {
		return p
	}
	return defaultReturn + "?done=" + code
}

// returnParam is the page a sign-in goes on to that ret names (the return
// parameter of the sign-in page and of its forms and links), or "" when
// ret names no page of the console's own: the browser is only ever sent
// on to a path of the console's, never to another site.
func returnParam(ret string) string {
	if ret == "" || len(ret) > maxReturn || !strings.HasPrefix(ret, "/console/") {
		return ""
	}
	u, err := url.Parse(ret)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.Contains(ret, "\\") {
		return ""
	}
	return localPage(u)
}

// ownOrigin reports whether u is of the console's origin: the public URL's,
// or the one r came to.
func (c *Console) ownOrigin(r *http.Request, u *url.URL) bool {
	if pu, err := url.Parse(c.cfg.PublicURL); err == nil && c.cfg.PublicURL != "" && strings.EqualFold(u.Scheme, pu.Scheme) && strings.EqualFold(u.Host, pu.Host) {
		return true
	}
	scheme := "http"
	if c.secureRequest(r) {
		scheme = "https"
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host)
}

// reverifySilently answers r, a request of sess, which is due to be
// verified again and has no refresh token (reverified said
// errSilentReverify), without doing what r asks: see the comment at the
// top of this file.
func (c *Console) reverifySilently(w http.ResponseWriter, r *http.Request, sess Session, touch bool) {
	ctx := r.Context()
	now := c.cfg.Now()
	kind := kindOf(r, touch)
	if !silentInFlight(sess, now) {
		if kind == kindFetch {
			// The page's script reloads the page, which comes back here
			// as a navigation.
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		started := false
		var err error
		sess, err = c.sessions.update(ctx, sess, func(s *Session) bool {
			// Another request of the session may have started one
			// since this one read it.
			if started = !silentInFlight(*s, now); started {
				s.SilentReverifyAt = now
			}
			return started
		})
		if err != nil {
			c.sessionFailed(w, r, touch, err)
			return
		}
		if started {
			c.startSilent(w, r, sess, kind)
			return
		}
	}
	// One is under way, or got lost on its way back.
	if now.Sub(sess.verifiedAt()) >= reverifyGrace*c.cfg.Reverify {
		c.sessionFailed(w, r, touch, c.endUnverified(ctx, sess, fmt.Sprintf("not verified for %s: the identity provider's sign-in "+
			"started at %s did not come back", now.Sub(sess.verifiedAt()), sess.SilentReverifyAt.UTC().Format(time.RFC3339))))
		return
	}
	wait := sess.SilentReverifyAt.Add(silentRetry).Sub(now)
	switch kind {
	case kindFetch:
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		w.WriteHeader(http.StatusServiceUnavailable)
	case kindForm:
		seeOther(w, r, c.returnPage(r, kind))
	default:
		c.render(w, r, http.StatusOK, "reverifying", nil, pageLink{To: c.returnPage(r, kind)})
	}
}

// startSilent sends the browser to sess's identity provider with an
// authorization request that must not show anything (prompt=none), for
// the user of sess: the ID token it last had (id_token_hint) when the
// session keeps one for sign-out, else its subject (login_hint). The
// answer comes back to the sign-in's callback (see silentAnswer).
func (c *Console) startSilent(w http.ResponseWriter, r *http.Request, sess Session, kind requestKind) {
	ctx := r.Context()
	oc := c.issuerOf(sess)
	p, err := oc.discover(ctx) // reverified discovered it
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	hint := oauth2.SetAuthURLParam("login_hint", sess.Principal.Subject)
	if sess.Logout != nil && sess.Logout.IDToken != "" {
		hint = oauth2.SetAuthURLParam("id_token_hint", sess.Logout.IDToken)
	}
	to, err := c.beginLogin(ctx, w, r, oc, p, pendingLogin{Tenant: oc.cfg.Scope.Tenant(), Reverify: sess.id, Return: c.returnPage(r, kind),
		Form: kind == kindForm},
		oauth2.SetAuthURLParam("prompt", "none"), hint)
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	c.log.InfoContext(ctx, "console: verifying a session without a refresh token by its identity provider's sign-in",
		"user", sess.Principal.Subject, "tenant", sess.Principal.TenantID, "issuer", logurl.Show(sess.Issuer))
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// silentErrors are the errors of an authorization request with prompt=none
// that say the identity provider won't verify its user without showing a
// page (OpenID Connect Core 1.0 section 3.1.2.6): the session ends, and its
// user signs in again.
var silentErrors = map[string]bool{
	"login_required": true, "interaction_required": true, "consent_required": true, "account_selection_required": true,
}

// reportedDown is an authorization answer saying the identity provider
// can't answer now (temporarily_unavailable, server_error). It comes back
// through the browser, unsigned, so its user may have written it: it is
// not the outage an *idpDown is (which the console sees for itself), and
// keeps no roles (see waitForIdentityProvider).
type reportedDown struct{ code string }

func (e *reportedDown) Error() string { return "the authorization endpoint answered " + e.code }

// authorizationError is the error an authorization response's error code
// means for a re-verification: temporarily_unavailable and server_error
// are an identity provider that says it can't answer now (*reportedDown);
// any other, an answer that ends the session.
func authorizationError(code string) error {
	switch {
	case code == "temporarily_unavailable" || code == "server_error":
		return &reportedDown{code}
	case silentErrors[code]:
		return fmt.Errorf("the identity provider won't verify its user without a sign-in: %s", code)
	}
	return fmt.Errorf("the authorization endpoint answered %q", echo(code))
}

// silentAnswer finishes a silent re-verification at the sign-in's callback,
// once the callback found the browser's sealed sign-in (login) and checked
// where the answer comes from: it verifies the answer as a sign-in does
// (redeem), and updates the session the re-verification is of, which it
// names (login.Reverify), in place. It never creates a session. The
// browser's session cookie, when it brings one (SameSite=Strict keeps it
// off the identity provider's redirect in browsers, but not every client
// minds), must be that session's. One it does not bring may be another's:
// the user may have signed in again since the re-verification started, so
// the answer clears it only when it brought it. forget clears the cookie
// that held login.
func (c *Console) silentAnswer(w http.ResponseWriter, r *http.Request, oc *oidcClient, p *oidc.Provider, login pendingLogin, forget func(), problem func(string, error)) {
	ctx := r.Context()
	ck, err := r.Cookie(c.cookieName(r))
	if err == nil && tokenHash(ck.Value) != login.Reverify {
		problem("failed", errors.New("a re-verification's answer came back to a browser with another session"))
		return
	}
	brought := err == nil
	sess, err := c.sessions.readID(ctx, login.Reverify, "")
	if errors.Is(err, errNoSession) {
		// Ended meanwhile (signed out, idle, replaced by a new sign-in):
		// there is nothing to verify.
		forget()
		if brought {
			c.clearSessionCookie(w, r)
		}
		http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
		return
	}
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	// The answer is done with, whatever it says.
	forget()
	now := c.cfg.Now()
	if sess.Via != "oidc" || c.issuerOf(sess) != oc {
		err = errors.New("the session's issuer is not the one that answered")
	} else if e := r.URL.Query().Get("error"); e != "" {
		err = authorizationError(e)
	} else {
		var id refreshedIdentity
		var rt string
		if id, rt, err = oc.redeem(ctx, p, r.URL.Query().Get("code"), login, c.cfg.Now); err == nil {
			sess, err = c.verifiedAgain(ctx, sess, oc, id, rt, now)
			c.afterSilent(w, r, login, brought, err)
			return
		}
	}
	if down, ok := errors.AsType[*reportedDown](err); ok {
		err = c.waitForIdentityProvider(ctx, sess, now, down)
	} else {
		_, err = c.notVerified(ctx, sess, now, err, "")
	}
	c.afterSilent(w, r, login, brought, err)
}

// waitForIdentityProvider is what becomes of sess when its silent
// re-verification's answer at now says the identity provider can't answer
// (down). Had that kept the session's roles, as an outage the console sees
// for itself does, a user whose roles were removed could keep them for the
// whole grace by sending that answer to the callback themselves. So the
// session waits: within reverifyGrace intervals of its last verification
// it is kept, but serves no page until verified, and the next attempt may
// start silentRetry after now (it counts as one that just started); past
// them it ends.
func (c *Console) waitForIdentityProvider(ctx context.Context, sess Session, now time.Time, down *reportedDown) error {
	if now.Sub(sess.verifiedAt()) >= reverifyGrace*c.cfg.Reverify {
		return c.endUnverified(ctx, sess, fmt.Sprintf("not verified for %s: %v", now.Sub(sess.verifiedAt()), down))
	}
	c.log.WarnContext(ctx, "console: the identity provider says it can't verify a session now; the session waits for it, "+
		"without its roles, until verified or it was last verified too long ago", "user", sess.Principal.Subject,
		"tenant", sess.Principal.TenantID, "issuer", logurl.Show(sess.Issuer), "verified_at", sess.verifiedAt(), "error", down)
	_, err := c.sessions.update(ctx, sess, func(s *Session) bool {
		s.SilentReverifyAt, s.ReverifyRetryAt = now, time.Time{}
		return true
	})
	return err
}

// afterSilent answers the callback of a silent re-verification that ended
// with err: back to the page it started from, or to sign-in when the
// session ended. The page is reached by a navigation of the console's own
// (the continue page), for the reason startSession gives. brought: the
// request brought the session's cookie, which an ended session's answer
// clears (see silentAnswer).
func (c *Console) afterSilent(w http.ResponseWriter, r *http.Request, login pendingLogin, brought bool, err error) {
	switch {
	case errors.Is(err, errNoSession):
		if brought {
			c.clearSessionCookie(w, r)
		}
		// As any page of an ended session (signinAgain): the sign-in
		// goes back to the page, where a form is asked for again.
		page := returnParam(login.Return)
		if u, perr := url.Parse(page); perr == nil && login.Form {
			q := u.Query()
			q.Del("done") // resubmit's, for a session verified
			u.RawQuery = q.Encode()
			page = localPage(u)
		}
		http.Redirect(w, r, signinReturning(page, login.Form), http.StatusSeeOther)
	case err != nil:
		c.fail(w, r, nil, err)
	default:
		to := login.Return
		if u, perr := url.Parse(to); perr != nil || localPage(u) != to {
			to = defaultReturn
		}
		c.render(w, r, http.StatusOK, "continue", nil, pageLink{To: to})
	}
}

// sessionFailed answers a request whose session could not be read or
// written (err), or ended (errNoSession).
func (c *Console) sessionFailed(w http.ResponseWriter, r *http.Request, touch bool, err error) {
	if errors.Is(err, errNoSession) {
		// Only a cookie the request brought is deleted: a navigation
		// another site started (a link in a chat, a redirect) comes
		// without the SameSite=Strict cookie the browser still holds,
		// and deleting it signed its user out of every tab whenever
		// any site sent them to a console page.
		if _, cerr := r.Cookie(c.cookieName(r)); cerr == nil {
			c.clearSessionCookie(w, r)
		}
		if !touch {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, c.signinAgain(r), http.StatusSeeOther)
		return
	}
	c.fail(w, r, nil, err)
}

// signinAgain is where a page of a session that ended (signed out in
// another tab, idle, too old) sends the browser: the sign-in page, which
// goes on to the page the user was on once they signed in again. A form
// they posted is not acted on: nobody signed in sent it. The sign-in page
// says so, and the page the form was on, when the sign-in comes back to
// it, asks for it again; a sign-in that went on to act on it would have
// acted on a form its user may have no longer meant to send, with the
// roles of another sign-in. A sign-in goes on to the requests page
// anyway, which needs no return.
func (c *Console) signinAgain(r *http.Request) string {
	if kindOf(r, true) == kindForm {
		return signinReturning(c.formPage(r), true)
	}
	return signinReturning(localPage(r.URL), false)
}

// signinReturning is the sign-in page that goes on to page, a localPage
// ("" for the requests page); form says a form posted on page was not
// sent (see signinAgain).
func signinReturning(page string, form bool) string {
	q := url.Values{}
	switch {
	case form:
		q.Set("problem", "not_sent")
		q.Set("return", withFlash(cmp.Or(page, defaultReturn), "signed_in_again"))
	case page != "" && page != defaultReturn:
		q.Set("return", page)
	}
	if len(q) == 0 {
		return "/console/signin"
	}
	return "/console/signin?" + q.Encode()
}

// pageLink is the page a continue or reverifying page goes on to.
type pageLink struct{ To string }

// redeem redeems the code of an authorization answer to login, at the
// issuer's token endpoint with the sign-in's PKCE verifier, and checks the
// ID token as every sign-in is checked: verifyIDToken (signature, issuer,
// audience, expiry), the sign-in's nonce, identify. It returns whom it
// names, with the refresh token of the answer ("" for none). A token
// endpoint or key server that does not answer is an *idpDown.
func (o *oidcClient) redeem(ctx context.Context, p *oidc.Provider, code string, login pendingLogin, now func() time.Time) (refreshedIdentity, string, error) {
	tok, err := o.oauth2(p).Exchange(oidc.ClientContext(ctx, o.cfg.HTTPClient), code, oauth2.VerifierOption(login.Verifier))
	if err != nil {
		err = tokenURLError(p, err)
		if down, ok := errors.AsType[*idpDown](tokenEndpointError(err)); ok {
			return refreshedIdentity{}, "", down
		}
		// A refusal's description helps whoever reads the log.
		return refreshedIdentity{}, "", fmt.Errorf("code exchange: %w", err)
	}
	idt, raw, err := o.verifyIDToken(ctx, p, tok, now)
	if err != nil {
		return refreshedIdentity{}, "", err
	}
	if idt.Nonce != login.Nonce {
		return refreshedIdentity{}, "", errors.New("id token nonce does not match")
	}
	id, problem, err := o.identify(ctx, idt)
	if problem != "" {
		return refreshedIdentity{}, "", &claimsProblem{code: problem, err: err}
	}
	return refreshedIdentity{identified: id, rawIDToken: raw, authenticated: true}, tok.RefreshToken, nil
}

// claimsProblem is an ID token whose claims make no principal here, with
// the sign-in page's problem code for it.
type claimsProblem struct {
	code string
	err  error
}

func (e *claimsProblem) Error() string { return e.code + ": " + e.err.Error() }
func (e *claimsProblem) Unwrap() error { return e.err }
