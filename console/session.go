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

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/logurl"
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
	// RefreshToken is the refresh token of an OIDC sign-in, with which the
	// session's identity is verified again (see reverify.go). Like
	// Logout's ID token it is a credential of the user's at the identity
	// provider: it stays here, in Redis, and leaves only to the issuer's
	// token endpoint; no cookie and no page holds it. "" when the issuer
	// gave none, or one too large to keep (see maxRefreshToken).
	RefreshToken string `json:"refresh_token,omitempty"`
	// VerifiedAt is when Principal was last read from an ID token the
	// issuer signed: the sign-in, then each re-verification. Sessions from
	// before Lockbox re-verified have none (see verifiedAt).
	VerifiedAt time.Time `json:"verified_at,omitzero"`
	// Authentication is what the ID token of the session's last
	// authentication (its sign-in, or a silent re-verification) said of
	// it, which every ID token a refresh returns must repeat (see
	// authentication). nil for dev sign-ins and sessions from before
	// Lockbox kept it: those are held to the subject and tenant only.
	Authentication *authentication `json:"authentication,omitempty"`
	// ReverifyRetryAt is when a session the identity provider could not
	// verify (down, or answering 5xx) asks it again: not before, however
	// often its pages poll. Zero when the last try succeeded.
	ReverifyRetryAt time.Time `json:"reverify_retry_at,omitzero"`
	// SilentReverifyAt is when the browser was last sent to the identity
	// provider to verify a session without a refresh token (see
	// silent.go); zero once that answer came back.
	SilentReverifyAt time.Time `json:"silent_reverify_at,omitzero"`
	// CSRF is the form token every state-changing form carries.
	CSRF      string    `json:"csrf"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`

	token string // the cookie value; never stored
	// id is the session's name in Redis, tokenHash(token). A
	// re-verification's answer names its session by it (see silent.go),
	// and finds it without the token.
	id string
	// raw is the session as read from Redis, which a rewrite must find
	// there still (see sessions.update); nil for a new session.
	raw []byte
}

// verifiedAt is when the session's identity was last verified: a session
// stored before Lockbox recorded it was verified at its sign-in.
func (sess Session) verifiedAt() time.Time {
	if sess.VerifiedAt.IsZero() {
		return sess.CreatedAt
	}
	return sess.VerifiedAt
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

// maxSessionToken bounds the session cookie values looked up; the console
// makes them 26 characters long (rand.Text).
const maxSessionToken = 64

// tokenHash is the Redis key part of a cookie value.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// create stores a new session for p and returns it with its cookie value.
// A sign-in always makes a new session, so an id planted before sign-in
// (session fixation) is worthless. refreshToken is the sign-in's, "" when
// there is none, and auth what its ID token said of the authentication
// (nil for none).
func (s *sessions) create(ctx context.Context, p identity.Principal, name, via, issuer string, logout *idpLogout, refreshToken string, auth *authentication) (Session, error) {
	now := s.now()
	sess := Session{Principal: p, Name: name, Via: via, Issuer: issuer, Logout: logout, RefreshToken: refreshToken, VerifiedAt: now, Authentication: auth,
		CSRF: rand.Text(), CreatedAt: now, LastSeen: now, token: rand.Text()}
	sess.id = tokenHash(sess.token)
	b, ttl, err := s.encode(sess)
	if err != nil {
		return Session{}, err
	}
	if err := s.rdb.Set(ctx, keys.ConsoleSession(sess.id), b, ttl).Err(); err != nil {
		return Session{}, fault.Unavailable("console: save session", err)
	}
	sess.raw = b
	return sess, nil
}

// encode is sess as stored, and the TTL of its key: a little past the
// session's deadline, as the clock check in read decides and Redis only
// forgets. A session past its absolute deadline is errNoSession.
func (s *sessions) encode(sess Session) ([]byte, time.Duration, error) {
	b, err := json.Marshal(sess)
	if err != nil {
		return nil, 0, fmt.Errorf("console: encode session: %w", err)
	}
	ttl := min(s.idle, sess.CreatedAt.Add(s.max).Sub(s.now()))
	if ttl <= 0 {
		return nil, 0, errNoSession
	}
	return b, ttl + time.Minute, nil
}

// rewriteScript writes a session (ARGV[2], with a TTL of ARGV[3] ms) over
// the version its writer read (ARGV[1]) only: 1 when it did, 0 when the
// session is gone, 2 when another write came in between.
var rewriteScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if cur ~= ARGV[1] then return 2 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// maxRewrites bounds the attempts of update. Only the requests of one
// browser write its session: one touch of a burst of page loads (the
// others find it touched), and one re-verification at a time.
const maxRewrites = 10

// update applies change to sess and writes it, over the version of it read
// from Redis only. A page load reads the session and writes it back later
// (its activity, a re-verification), and nothing between the two may be
// undone: a sign-out, or an ended session's deletion, which the write
// would bring back — for a stolen cookie too — (the session is gone:
// errNoSession); or another request's write, such as the refresh token a
// re-verification rotated to, which a page load's stale copy would
// overwrite with one the identity provider no longer takes (the session is
// read again, and change applied to what it holds now). change returns
// false when the session needs no write as it is, and update returns it.
func (s *sessions) update(ctx context.Context, sess Session, change func(*Session) bool) (Session, error) {
	key := keys.ConsoleSession(sess.id)
	for range maxRewrites {
		next := sess
		if !change(&next) {
			return sess, nil
		}
		b, ttl, err := s.encode(next)
		if err != nil {
			return Session{}, err
		}
		res, err := rewriteScript.Run(ctx, s.rdb, []string{key}, sess.raw, b, ttl.Milliseconds()).Int()
		if err != nil {
			return Session{}, fault.Unavailable("console: save session", err)
		}
		switch res {
		case 0:
			return Session{}, errNoSession
		case 1:
			next.raw = b
			return next, nil
		}
		if sess, err = s.readID(ctx, sess.id, sess.token); err != nil {
			return Session{}, err
		}
	}
	return Session{}, fault.Unavailable("console: save session", errors.New("the session changed under every attempt to write it"))
}

// lookup returns the session of token. touch records activity, pushing the
// idle deadline; the live lists' polling does not touch, so a forgotten tab
// still times out.
func (s *sessions) lookup(ctx context.Context, token string, touch bool) (Session, error) {
	sess, err := s.read(ctx, token)
	if err != nil {
		return Session{}, err
	}
	if !touch {
		return sess, nil
	}
	// Touch at most every few seconds: a burst of page loads is one write
	// (and the others, finding it written, none).
	now := s.now()
	return s.update(ctx, sess, func(sess *Session) bool {
		if now.Sub(sess.LastSeen) < 5*time.Second {
			return false
		}
		sess.LastSeen = now
		return true
	})
}

// read returns the session of token, and ends it when it is idle or too
// old.
func (s *sessions) read(ctx context.Context, token string) (Session, error) {
	if token == "" || len(token) > maxSessionToken {
		return Session{}, errNoSession
	}
	return s.readID(ctx, tokenHash(token), token)
}

// readID returns the session named id, whose cookie value is token ("" when
// the request did not bring it), and ends it when it is idle or too old.
func (s *sessions) readID(ctx context.Context, id, token string) (Session, error) {
	if len(id) != sha256.Size*2 {
		return Session{}, errNoSession
	}
	key := keys.ConsoleSession(id)
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
	sess.token, sess.id, sess.raw = token, id, b
	now := s.now()
	if !now.Before(sess.LastSeen.Add(s.idle)) || !now.Before(sess.CreatedAt.Add(s.max)) {
		_ = s.rdb.Del(ctx, key).Err()
		return Session{}, errNoSession
	}
	return sess, nil
}

// unlockScript releases a lock only its holder (ARGV[1]) still holds: one
// that outlived its TTL may be another request's by now.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// lockReverify takes the re-verification lock of the session sessionID for
// at most ttl, waiting while another request holds it until ctx ends, and
// returns its release. ttl must outlast the holder's work (its ctx), so
// the lock never expires under a redemption still in flight.
func (s *sessions) lockReverify(ctx context.Context, sessionID string, ttl time.Duration) (func(), error) {
	key, id := keys.ConsoleReverify(sessionID), rand.Text()
	wait := 5 * time.Millisecond
	for {
		ok, err := s.rdb.SetNX(ctx, key, id, ttl).Result()
		if err != nil {
			return nil, fault.Unavailable("console: lock session", err)
		}
		if ok {
			return func() {
				// Released even when the request's context is done: the
				// other requests of the session wait for it.
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				defer cancel()
				_ = unlockScript.Run(ctx, s.rdb, []string{key}, id).Err()
			}, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fault.Unavailable("console: wait for the session's re-verification", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// delete ends the session of token.
func (s *sessions) delete(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	return s.deleteID(ctx, tokenHash(token))
}

// deleteID ends the session named id.
func (s *sessions) deleteID(ctx context.Context, id string) error {
	if err := s.rdb.Del(ctx, keys.ConsoleSession(id)).Err(); err != nil {
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
			"tenant", sess.Principal.TenantID, "issuer", logurl.Show(sess.Issuer))
		if err := c.sessions.deleteID(r.Context(), sess.id); err != nil {
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
	switch sess.Issuer {
	case devIssuer:
		return sess.Via == "dev" && slices.ContainsFunc(c.cfg.DevIdentities, func(d DevIdentity) bool { return d.Principal.Subject == sess.Principal.Subject })
	case "":
		return false
	}
	return c.issuerOf(sess) != nil
}

// issuerOf is the issuer that signs in the user of an OIDC session here:
// the session's own, configured for the user's tenant (or, shared, for
// everyone's); nil when there is none.
func (c *Console) issuerOf(sess Session) *oidcClient {
	p := sess.Principal
	if c.staff != nil && c.staff.cfg.Issuer == sess.Issuer && (p.TenantID == "" || c.staff.cfg.Scope.IsShared()) {
		return c.staff
	}
	if oc := c.orgs[p.TenantID]; p.TenantID != "" && oc != nil && oc.cfg.Issuer == sess.Issuer {
		return oc
	}
	return nil
}

// pageFunc is a page handler: it gets the verified session and returns any
// failure for withSession to render.
type pageFunc func(w http.ResponseWriter, r *http.Request, sess Session) error

// withSession runs h for a signed-in user under the page deadline, checks
// the form token of every POST, and renders h's error. Without a session a
// page redirects to sign-in (a fragment answers 401, so the script can
// tell). A session whose identity is due to be verified again is verified
// first (see reverified): one that can't be ends the same way, before
// anything the request asks is done; one verified by the identity
// provider's sign-in gets its answer from reverifySilently, which does
// nothing the request asks either. An approver role the tenant no longer
// assigns is dropped then (heldRoles), ending a session it was all of.
func (c *Console) withSession(h pageFunc, touch bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A call's context, so that an export the page serves still
		// ends when the browser goes away after the deadline
		// (record.ExportContext).
		ctx, cancel := record.CallContext(r.Context(), c.cfg.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
		sess, err := c.session(r, touch)
		if err == nil {
			sess, err = c.reverified(ctx, sess)
		}
		if err == nil {
			sess, err = c.heldRoles(ctx, sess)
		}
		if errors.Is(err, errSilentReverify) {
			c.reverifySilently(w, r, sess, touch)
			return
		}
		if err != nil {
			c.sessionFailed(w, r, touch, err)
			return
		}
		if r.Method == http.MethodPost {
			if c.formTooLarge(w, r, &sess) {
				return
			}
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

// formTooLarge reads r's form, at most maxFormBytes of it, and reports
// whether it answered: a form larger than that gets 413 and a page that
// says so, and nothing it asks is done. Its form token may lie past the
// limit, unread, and the check that followed answered "This form has
// expired", which sent a user who had pasted a long log into a reason
// looking for a session problem. A form that fails to read for any other
// reason is left to that check.
func (c *Console) formTooLarge(w http.ResponseWriter, r *http.Request, sess *Session) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if _, ok := errors.AsType[*http.MaxBytesError](r.ParseForm()); !ok {
		return false
	}
	c.renderError(w, r, sess, http.StatusRequestEntityTooLarge, fmt.Sprintf(
		"This form is too large: the admin center takes at most %d KiB, and nothing was done. Go back, shorten what you entered (a pasted log, a long reason) and send it again.",
		maxFormBytes>>10))
	return true
}
