package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// Session is one signed-in browser.
type Session struct {
	Principal identity.Principal `json:"principal"`
	// Name is what the header shows: the identity provider's "name" claim,
	// or the subject.
	Name string `json:"name"`
	// Via is how the user signed in: "oidc" or "dev".
	Via string `json:"via"`
	// Issuer is who signed the user in: the OIDC issuer's URL, or devIssuer.
	// A session lasts only while its issuer signs in its user here, so
	// taking a (compromised) issuer out of the configuration ends its
	// sessions too, not only its sign-ins.
	Issuer string `json:"issuer"`
	// Logout is how signing out ends the user's session at the identity
	// provider too (OpenID Connect RP-Initiated Logout 1.0), for a sign-in
	// through an issuer that names an end_session_endpoint; nil for dev
	// sign-ins, other issuers, and sessions from before Lockbox kept it.
	Logout *idpLogout `json:"logout,omitempty"`
	// CSRF is the form token every state-changing form carries.
	CSRF      string    `json:"csrf"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`

	token string // the cookie value; never stored
}

// idpLogout is what sign-out sends to an issuer's end_session_endpoint.
// IDToken, the ID token of the sign-in (its id_token_hint), is a credential
// of the user's at that identity provider: it stays here, in Redis, and
// leaves only in the sign-out's redirect to Endpoint; no cookie and no page
// holds it. "" when it was too large to keep (see maxIDTokenHint).
type idpLogout struct {
	Endpoint string `json:"endpoint"`
	ClientID string `json:"client_id"`
	IDToken  string `json:"id_token,omitempty"`
}

// devIssuer is the Issuer of a session "lockbox dev"'s dev sign-in made. It
// is no URL, so no OIDC issuer can be mistaken for it.
const devIssuer = "lockbox-dev-signin"

// errNoSession is a missing, unknown, idle or too old session: the user
// signs in again.
var errNoSession = errors.New("console: no session")

// sessions keeps sessions in Redis, so every replica behind a load balancer
// knows them and signing out ends them everywhere. The key's TTL is only
// cleanup: idle and absolute expiry are checked against the injected clock.
type sessions struct {
	rdb       redis.UniversalClient
	now       func() time.Time
	idle, max time.Duration
}

// tokenHash is the Redis key part of a cookie value.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// create stores a new session for p and returns it with its cookie value.
// A sign-in always makes a new session, so an id planted before sign-in
// (session fixation) is worthless.
func (s *sessions) create(ctx context.Context, p identity.Principal, name, via, issuer string, logout *idpLogout) (Session, error) {
	now := s.now()
	sess := Session{Principal: p, Name: name, Via: via, Issuer: issuer, Logout: logout, CSRF: rand.Text(), CreatedAt: now, LastSeen: now, token: rand.Text()}
	if err := s.save(ctx, sess, false); err != nil {
		return Session{}, err
	}
	return sess, nil
}

// save writes sess. A rewrite (existing) writes it only while it is still
// in Redis: a page load reads the session, then records the activity, and a
// sign-out (or an ended session's deletion) between the two must not be
// undone by the write, which would bring back a session its user ended —
// for a stolen cookie too. A session gone by then is errNoSession.
func (s *sessions) save(ctx context.Context, sess Session, existing bool) error {
	b, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("console: encode session: %w", err)
	}
	ttl := min(s.idle, sess.CreatedAt.Add(s.max).Sub(s.now()))
	if ttl <= 0 {
		return errNoSession
	}
	// A little past the deadline: the clock check below decides, Redis
	// only forgets.
	key, ttl := keys.ConsoleSession(tokenHash(sess.token)), ttl+time.Minute
	if !existing {
		if err := s.rdb.Set(ctx, key, b, ttl).Err(); err != nil {
			return fault.Unavailable("console: save session", err)
		}
		return nil
	}
	ok, err := s.rdb.SetXX(ctx, key, b, ttl).Result()
	if err != nil {
		return fault.Unavailable("console: save session", err)
	}
	if !ok {
		return errNoSession
	}
	return nil
}

// lookup returns the session of token. touch records activity, pushing the
// idle deadline; the live lists' polling does not touch, so a forgotten tab
// still times out.
func (s *sessions) lookup(ctx context.Context, token string, touch bool) (Session, error) {
	if token == "" || len(token) > 64 {
		return Session{}, errNoSession
	}
	key := keys.ConsoleSession(tokenHash(token))
	b, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return Session{}, errNoSession
	}
	if err != nil {
		return Session{}, fault.Unavailable("console: read session", err)
	}
	var sess Session
	if err := json.Unmarshal(b, &sess); err != nil {
		return Session{}, errNoSession
	}
	sess.token = token
	now := s.now()
	if !now.Before(sess.LastSeen.Add(s.idle)) || !now.Before(sess.CreatedAt.Add(s.max)) {
		_ = s.rdb.Del(ctx, key).Err()
		return Session{}, errNoSession
	}
	// Touch at most every few seconds: a burst of page loads is one write.
	if touch && now.Sub(sess.LastSeen) >= 5*time.Second {
		sess.LastSeen = now
		if err := s.save(ctx, sess, true); err != nil {
			return Session{}, err
		}
	}
	return sess, nil
}

// delete ends the session of token.
func (s *sessions) delete(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	if err := s.rdb.Del(ctx, keys.ConsoleSession(tokenHash(token))).Err(); err != nil {
		return fault.Unavailable("console: delete session", err)
	}
	return nil
}

// validCSRF reports whether the form carries the session's token.
func (sess Session) validCSRF(r *http.Request) bool {
	got := r.PostFormValue("csrf_token")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) == 1
}

// cookieName is the session cookie's name. Under HTTPS the __Host- prefix
// makes browsers refuse the cookie unless it is Secure, host-only and for
// the whole path, so a sibling subdomain can't plant or shadow it.
func (c *Console) cookieName(r *http.Request) string {
	if c.secureRequest(r) {
		return "__Host-lockbox_session"
	}
	return "lockbox_session"
}

// secureRequest reports whether cookies for r must be Secure: the console is
// published over HTTPS, or r itself came over TLS.
func (c *Console) secureRequest(r *http.Request) bool { return c.secure || r.TLS != nil }

// setSessionCookie hands the browser its session. HttpOnly keeps it from
// scripts; SameSite=Strict keeps other sites' links and forms from carrying
// it. It has no Max-Age: closing the browser ends it, and the server's idle
// and absolute limits end it anyway.
func (c *Console) setSessionCookie(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: c.cookieName(r), Value: token, Path: "/",
		HttpOnly: true, Secure: c.secureRequest(r), SameSite: http.SameSiteStrictMode,
	})
}

func (c *Console) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: c.cookieName(r), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: c.secureRequest(r), SameSite: http.SameSiteStrictMode,
	})
}

// session returns r's session. A session whose issuer no longer signs in
// its user here is ended.
func (c *Console) session(r *http.Request, touch bool) (Session, error) {
	ck, err := r.Cookie(c.cookieName(r))
	if err != nil {
		return Session{}, errNoSession
	}
	sess, err := c.sessions.lookup(r.Context(), ck.Value, touch)
	if err != nil {
		return Session{}, err
	}
	if !c.signsIn(sess) {
		c.log.InfoContext(r.Context(), "console: session ended, its issuer no longer signs its user in", "user", sess.Principal.Subject,
			"tenant", sess.Principal.TenantID, "issuer", sess.Issuer)
		if err := c.sessions.delete(r.Context(), sess.token); err != nil {
			return Session{}, err
		}
		return Session{}, errNoSession
	}
	return sess, nil
}

// signsIn reports whether the issuer that made sess would still sign in its
// user: the same issuer URL, configured for the user's tenant (or, shared,
// for everyone's), or the dev sign-in where it is offered. A session from
// before sessions named their issuer names none, and ends.
func (c *Console) signsIn(sess Session) bool {
	p := sess.Principal
	switch {
	case sess.Issuer == devIssuer:
		return sess.Via == "dev" && slices.ContainsFunc(c.cfg.DevIdentities, func(d DevIdentity) bool { return d.Principal.Subject == p.Subject })
	case sess.Issuer == "":
		return false
	case c.staff != nil && c.staff.cfg.Issuer == sess.Issuer && (p.TenantID == "" || c.staff.cfg.Scope.IsShared()):
		return true
	}
	oc := c.orgs[p.TenantID]
	return p.TenantID != "" && oc != nil && oc.cfg.Issuer == sess.Issuer
}

// pageFunc is a page handler: it gets the verified session and returns any
// failure for withSession to render.
type pageFunc func(w http.ResponseWriter, r *http.Request, sess Session) error

// withSession runs h for a signed-in user under the page deadline, checks
// the form token of every POST, and renders h's error. Without a session a
// page redirects to sign-in (a fragment answers 401, so the script can
// tell).
func (c *Console) withSession(h pageFunc, touch bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), c.cfg.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
		sess, err := c.session(r, touch)
		if errors.Is(err, errNoSession) {
			c.clearSessionCookie(w, r)
			if !touch {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
			return
		}
		if err != nil {
			c.fail(w, r, nil, err)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if !sess.validCSRF(r) {
				c.renderError(w, r, &sess, http.StatusForbidden, "This form has expired or did not come from this page. Go back, reload and try again.")
				return
			}
		}
		if err := h(w, r, sess); err != nil {
			c.fail(w, r, &sess, err)
		}
	})
}

// maxFormBytes bounds a form post; the largest, a new request with its
// reason, is a few kilobytes.
const maxFormBytes = 64 << 10
