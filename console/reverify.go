package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/lockbox-oss/lockbox/internal/logurl"
)

// A session's roles are those of the ID token it was signed in with, and
// an identity provider may take them away at any time: a support manager
// loses the role, a user is disabled. The API verifies a bearer token on
// every call; the console verifies its sessions again every
// Config.Reverify instead, by redeeming the refresh token of the sign-in
// at the issuer's token endpoint and taking the principal from the ID
// token of the answer, checked as a sign-in checks it (an answer without
// one, as OpenID Connect Core 1.0 section 12.2 allows, still proves the
// grant stands, and the session keeps the claims it had). A session without a
// refresh token is verified by the identity provider's sign-in instead,
// which the browser goes through without its user seeing it (prompt=none;
// see silent.go). An answer that refuses, or names someone else, ends the
// session at once; an identity provider that can't answer is given
// reverifyGrace intervals, then the session ends too (fail closed). Dev
// sign-ins have no identity provider to ask.

// reverifyGrace is how many intervals since its last verification a
// session outlives an identity provider that can't be reached or answers
// with a server error, so a short outage or a restart does not sign
// everyone out.
const reverifyGrace = 4

// reverifyRetry is how long a session waits to ask an identity provider
// that failed to answer again (or the interval, if shorter): a console tab
// polls every few seconds, and each of its polls would otherwise ask, and
// log the failure, while the identity provider is down.
const reverifyRetry = time.Minute

// due reports whether sess is to be verified again at now: its interval
// has passed, and the identity provider's last failure is not too recent,
// unless the grace is over.
func (c *Console) due(sess Session, now time.Time) bool {
	age := now.Sub(sess.verifiedAt())
	if sess.Via != "oidc" || age < c.cfg.Reverify {
		return false
	}
	return !now.Before(sess.ReverifyRetryAt) || age >= reverifyGrace*c.cfg.Reverify
}

// errSilentReverify is a session due to be verified again that has no
// refresh token: the browser is to go through the identity provider's
// sign-in, if the request is one that can take it there (see
// reverifySilently).
var errSilentReverify = errors.New("console: the session is to be verified again by its identity provider's sign-in")

// reverified returns sess, verified again first when it is due: with its
// principal, name and refresh token as the identity provider says now.
// A session that can't be verified is deleted, and errNoSession returned.
// One without a refresh token is returned with errSilentReverify, unless
// its identity provider can't be reached to start that.
func (c *Console) reverified(ctx context.Context, sess Session) (Session, error) {
	if !c.due(sess, c.cfg.Now()) {
		return sess, nil
	}
	oc := c.issuerOf(sess)
	if oc == nil {
		// session() ended it already; this is for a caller that did not.
		return Session{}, c.endUnverified(ctx, sess, "its issuer no longer signs its user in")
	}
	if sess.RefreshToken == "" {
		p, err := oc.discover(ctx)
		if err != nil {
			return c.notVerified(ctx, sess, c.cfg.Now(), &idpDown{err}, "")
		}
		if p.Endpoint().AuthURL == "" {
			return Session{}, c.endUnverified(ctx, sess, "the session has no refresh token, and its issuer no authorization endpoint to verify it with: its user signs in again")
		}
		return sess, errSilentReverify
	}
	// The page's deadline bounds the work, the browser going away does
	// not: once the identity provider has rotated the refresh token, the
	// new one must reach Redis, or the session's next request would redeem
	// the spent one and be refused.
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(c.cfg.Timeout)
	}
	wctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), d)
	defer cancel()
	// Identity providers rotate refresh tokens: each redemption returns a
	// new one and spends the old, and many take a spent one redeemed again
	// for a stolen copy and revoke them all. So one request of a session
	// redeems at a time, under a lock in Redis (every replica sees it), and
	// the others wait for its answer rather than act on roles that may be
	// gone. The lock lives no longer than the holder's deadline (wctx's,
	// which began before it), so a holder that dies frees it soon.
	unlock, err := c.sessions.lockReverify(wctx, sess.id, c.cfg.Timeout)
	if err != nil {
		return Session{}, err
	}
	defer unlock()
	// Read again under the lock: the request that held it before may have
	// verified the session (with a refresh token this copy does not have),
	// or ended it.
	if sess, err = c.sessions.readID(wctx, sess.id, sess.token); err != nil {
		return Session{}, err
	}
	now := c.cfg.Now()
	if !c.due(sess, now) {
		return sess, nil
	}
	id, rt, err := oc.refresh(wctx, sess.RefreshToken, c.cfg.Now)
	if err != nil {
		return c.notVerified(wctx, sess, now, err, rt)
	}
	return c.verifiedAgain(wctx, sess, oc, id, rt, now)
}

// notVerified is what becomes of sess when the identity provider's answer
// at now, err, does not verify it. An *idpDown is no answer: within
// reverifyGrace intervals of its last verification the session keeps its
// roles and asks again in a minute (keeping rt, the refresh token a token
// endpoint rotated to, when there is one), past them it ends. Any other
// error ends it. An ended session is errNoSession.
func (c *Console) notVerified(ctx context.Context, sess Session, now time.Time, err error, rt string) (Session, error) {
	var down *idpDown
	switch {
	case errors.As(err, &down) && now.Sub(sess.verifiedAt()) < reverifyGrace*c.cfg.Reverify:
		c.log.WarnContext(ctx, "console: the identity provider can't verify a session now; it keeps its roles until verified or "+
			"it was last verified too long ago", "user", sess.Principal.Subject, "tenant", sess.Principal.TenantID, "issuer", logurl.Show(sess.Issuer),
			"verified_at", sess.verifiedAt(), "error", echoErr(err))
		retryAt := now.Add(min(reverifyRetry, c.cfg.Reverify))
		oc := c.issuerOf(sess)
		return c.sessions.update(ctx, sess, func(s *Session) bool {
			s.ReverifyRetryAt, s.SilentReverifyAt = retryAt, time.Time{}
			if rt != "" && oc != nil {
				// The token endpoint answered (the keys to check its ID
				// token could not be had): the token it rotated to is the
				// one to redeem next.
				s.RefreshToken = oc.keptRefreshToken(ctx, rt)
			}
			return true
		})
	case down != nil:
		return Session{}, c.endUnverified(ctx, sess, fmt.Sprintf("not verified for %s: %v", now.Sub(sess.verifiedAt()), err))
	}
	return Session{}, c.endUnverified(ctx, sess, err.Error())
}

// verifiedAgain stores in sess what the identity provider said of its user
// at now: id (checked as a sign-in checks it), and rt, the refresh token to
// verify it with next ("" for none). Another user ends the session, and so
// does a refreshed ID token that does not repeat the claims of the
// session's authentication (see authentication); an answer without an ID
// token keeps the principal and name the session was last verified with. Only the session as it was read is changed (see
// sessions.update), and it is due no more.
func (c *Console) verifiedAgain(ctx context.Context, sess Session, oc *oidcClient, id refreshedIdentity, rt string, now time.Time) (Session, error) {
	old := sess.Principal
	if id.noIDToken {
		sess, err := c.sessions.update(ctx, sess, func(s *Session) bool {
			s.RefreshToken, s.VerifiedAt = oc.keptRefreshToken(ctx, rt), now
			s.ReverifyRetryAt, s.SilentReverifyAt = time.Time{}, time.Time{}
			return true
		})
		if err != nil {
			return Session{}, err
		}
		// At info, once per refresh: the session keeps roles nobody read
		// again from the identity provider, which a security team
		// auditing who held what must be able to see (at debug it was
		// off in every production log level).
		c.log.InfoContext(ctx, "console: the identity provider refreshed a session without an ID token; it keeps the claims it was last verified with",
			"user", old.Subject, "tenant", old.TenantID, "issuer", logurl.Show(sess.Issuer), "roles", old.Roles)
		return sess, nil
	}
	if id.principal.Subject != old.Subject || id.principal.TenantID != old.TenantID {
		return Session{}, c.endUnverified(ctx, sess, fmt.Sprintf("the identity provider's new ID token names another user (%q of tenant %q)",
			id.principal.Subject, id.principal.TenantID))
	}
	if a := sess.Authentication; a != nil && !id.authenticated {
		if err := a.sameAuthentication(id.auth); err != nil {
			return Session{}, c.endUnverified(ctx, sess, err.Error())
		}
	}
	idToken := id.rawIDToken
	sess, err := c.sessions.update(ctx, sess, func(s *Session) bool {
		s.Principal, s.Name, s.RefreshToken, s.VerifiedAt = id.principal, id.name, oc.keptRefreshToken(ctx, rt), now
		if id.authenticated {
			auth := id.auth
			s.Authentication = &auth
		}
		s.ReverifyRetryAt, s.SilentReverifyAt = time.Time{}, time.Time{}
		if s.Logout != nil {
			// Sign-out sends the newest ID token as its hint, and so does
			// a silent re-verification.
			if l := oc.logout(ctx, idToken); l != nil {
				s.Logout = l
			}
		}
		return true
	})
	if err != nil {
		return Session{}, err
	}
	if !slices.Equal(old.Roles, id.principal.Roles) {
		c.log.InfoContext(ctx, "console: the session's roles changed at the identity provider", "user", old.Subject,
			"tenant", old.TenantID, "issuer", logurl.Show(sess.Issuer), "old_roles", old.Roles, "new_roles", id.principal.Roles)
	}
	return sess, nil
}

// endUnverified ends sess, whose identity could not be verified again, and
// returns errNoSession: its user signs in again.
func (c *Console) endUnverified(ctx context.Context, sess Session, reason string) error {
	c.log.WarnContext(ctx, "console: session ended, its identity could not be verified again", "user", sess.Principal.Subject,
		"tenant", sess.Principal.TenantID, "issuer", logurl.Show(sess.Issuer), "reason", cut(reason, maxEchoError))
	// Deleted even when the browser went away: the session must not
	// outlive the verdict.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Timeout)
	defer cancel()
	if err := c.sessions.deleteID(dctx, sess.id); err != nil {
		return err
	}
	return errNoSession
}

// idpDown is a failure to get an answer from the identity provider: it
// can't be reached, or answers with a server error (5xx, or 429 too many
// requests). Unlike a refusal, it says nothing of the user.
type idpDown struct{ err error }

func (e *idpDown) Error() string { return "the identity provider did not answer: " + e.err.Error() }
func (e *idpDown) Unwrap() error { return e.err }

// refreshedIdentity is what a redeemed refresh token says of its user.
type refreshedIdentity struct {
	identified
	rawIDToken string
	// noIDToken is an answer without an ID token: the grant stands, and
	// the claims are those the session was last verified with.
	noIDToken bool
	// authenticated: the ID token is an authentication's (a silent
	// re-verification's), not a refresh's, and the session's refreshed
	// ID tokens repeat its claims from now on.
	authenticated bool
}

// refresh redeems refreshToken at the issuer's token endpoint and checks
// the answer's ID token as a sign-in does (verifyIDToken, identify). It
// returns who the ID token names and the refresh token to use next: the
// one the identity provider rotated to, or refreshToken again from one
// that does not rotate (oauth2 keeps it when the answer names none). An
// *idpDown error is an answer not had; any other, an answer that ends the
// session. An answer whose ID token can't be checked because the issuer's
// keys can't be fetched is an *idpDown too, returned with the refresh token
// of the answer: the identity provider spent the one redeemed. An answer
// without an ID token is no error: its refreshedIdentity says so.
func (o *oidcClient) refresh(ctx context.Context, refreshToken string, now func() time.Time) (refreshedIdentity, string, error) {
	p, err := o.discover(ctx)
	if err != nil {
		return refreshedIdentity{}, "", &idpDown{err}
	}
	tok, err := o.oauth2(p).TokenSource(oidc.ClientContext(ctx, o.cfg.HTTPClient), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return refreshedIdentity{}, "", tokenEndpointError(tokenURLError(p, err))
	}
	if raw, _ := tok.Extra("id_token").(string); raw == "" {
		// OpenID Connect Core 1.0 section 12.2 lets the answer to a
		// refresh leave the ID token out. The redemption itself is the
		// identity provider's word that the grant stands (a disabled user
		// or a revoked grant is refused above); only the claims can't be
		// read again.
		return refreshedIdentity{noIDToken: true}, tok.RefreshToken, nil
	}
	idt, raw, err := o.verifyIDToken(ctx, p, tok, now)
	if err != nil {
		return refreshedIdentity{}, tok.RefreshToken, err
	}
	id, code, err := o.identify(ctx, idt)
	if code != "" {
		return refreshedIdentity{}, "", fmt.Errorf("%s: %w", code, err)
	}
	return refreshedIdentity{identified: id, rawIDToken: raw}, tok.RefreshToken, nil
}

// tokenURLError is err of a request to p's token endpoint with the
// endpoint's URL, wherever its text names it, shown as logs may show it
// (logurl.Show): a request that got no answer fails with a *url.Error,
// which quotes the URL with only its password redacted, and the
// identity provider may take a credential in the URL's query. errors.As
// still sees err, *url.Error and *oauth2.RetrieveError alike.
func tokenURLError(p *oidc.Provider, err error) error {
	return shownURLError{err, p.Endpoint().TokenURL}
}

// tokenEndpointError describes a failed refresh without the response body,
// which is the identity provider's to fill: only its status and OAuth
// error code. A refusal (invalid_grant for a revoked token or a disabled
// user, or any other 4xx) is an error; no answer, a 5xx or a 429 is an
// *idpDown.
func tokenEndpointError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		e := fmt.Errorf("the token endpoint answered %d %s", status, re.ErrorCode)
		if status >= http.StatusInternalServerError || status == http.StatusTooManyRequests {
			return &idpDown{e}
		}
		return e
	}
	if _, ok := errors.AsType[*url.Error](err); ok {
		// The request never got an answer: refused, reset, timed out.
		return &idpDown{err}
	}
	return fmt.Errorf("the token endpoint's answer: %w", err)
}
