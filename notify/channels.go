package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net"
	"net/http"
	netmail "net/mail"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wneessen/go-mail"
	mailsmtp "github.com/wneessen/go-mail/smtp"
)

// Mailer sends one e-mail. id is stable across retries of the same
// message (tenant, outbox entry and recipient) and unique across tenants,
// usable as a Message-ID.
type Mailer interface {
	Name() string
	Send(ctx context.Context, id string, m Message) error
}

// StartTLSPolicy says when the SMTP client upgrades with STARTTLS.
type StartTLSPolicy string

// STARTTLS policies.
const (
	// StartTLSOpportunistic upgrades when the server offers STARTTLS.
	StartTLSOpportunistic StartTLSPolicy = "opportunistic"
	// StartTLSMandatory refuses to send over an unencrypted connection.
	StartTLSMandatory StartTLSPolicy = "mandatory"
	// StartTLSNone never upgrades (local relays only).
	StartTLSNone StartTLSPolicy = "none"
)

// SMTPConfig configures delivery through an SMTP server.
type SMTPConfig struct {
	// Addr is host:port of the submission server.
	Addr string
	// From is the sender address.
	From string
	// Username and Password enable SMTP AUTH.
	Username string
	Password string
	// StartTLS is the STARTTLS policy; opportunistic by default.
	StartTLS StartTLSPolicy
	// Timeout bounds one connection and delivery; 30s by default.
	Timeout time.Duration
	// ServerName overrides the TLS server name (tests).
	ServerName string

	host string
	port int
}

// CheckAndSetDefaults validates the settings and fills defaults.
func (c *SMTPConfig) CheckAndSetDefaults() error {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil || host == "" {
		return fmt.Errorf("notify: SMTP address %q must be host:port", c.Addr)
	}
	if c.port, err = strconv.Atoi(port); err != nil || c.port <= 0 || c.port > 65535 {
		return fmt.Errorf("notify: SMTP address %q has a bad port", c.Addr)
	}
	c.host = host
	if c.From == "" || strings.ContainsAny(c.From, "\r\n") {
		return errors.New("notify: SMTP sender address is required")
	}
	// Parsed here as Send parses it for every e-mail: a sender that is no
	// address, or one outside ASCII (no SMTPUTF8), would fail each of
	// them, retried for hours, rather than the start-up.
	if a, err := netmail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("notify: SMTP sender %q is not an e-mail address: %w", c.From, err)
	} else if !ascii(a.Address) {
		return fmt.Errorf("notify: SMTP sender %q is not an ASCII address", a.Address)
	}
	switch c.StartTLS {
	case "":
		c.StartTLS = StartTLSOpportunistic
	case StartTLSOpportunistic, StartTLSMandatory, StartTLSNone:
	default:
		return fmt.Errorf("notify: STARTTLS policy %q must be opportunistic, mandatory or none", c.StartTLS)
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if (c.Username == "") != (c.Password == "") {
		return errors.New("notify: SMTP username and password go together")
	}
	return nil
}

// SMTP sends e-mail through an SMTP server with go-mail, one connection
// per message.
type SMTP struct {
	cfg SMTPConfig
	// logger hears of errors after a message was accepted (Send).
	logger *slog.Logger
}

// NewSMTP returns an SMTP mailer; cfg must have passed CheckAndSetDefaults.
func NewSMTP(cfg SMTPConfig) *SMTP { return &SMTP{cfg: cfg, logger: slog.New(slog.DiscardHandler)} }

// Name is the metrics channel label.
func (s *SMTP) Name() string { return "smtp" }

// Timeout is what bounds one connection and delivery (SMTPConfig.Timeout).
func (s *SMTP) Timeout() time.Duration { return s.cfg.Timeout }

// Send delivers m.
func (s *SMTP) Send(ctx context.Context, id string, m Message) error {
	policy := map[StartTLSPolicy]mail.TLSPolicy{
		StartTLSOpportunistic: mail.TLSOpportunistic, StartTLSMandatory: mail.TLSMandatory, StartTLSNone: mail.NoTLS,
	}[s.cfg.StartTLS]
	// go-mail honours ctx while it dials, and then only its own deadline
	// per command: a server that stops answering held the send past ctx
	// (the worker's bound on a send, and a replica's stop, which waits
	// for its jobs). The connection is closed when ctx ends instead.
	var stop func() bool
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(dctx, network, addr)
		if err == nil {
			stop = context.AfterFunc(ctx, func() { conn.Close() })
		}
		return conn, err
	}
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	opts := []mail.Option{mail.WithPort(s.cfg.port), mail.WithTLSPolicy(policy), mail.WithTimeout(s.cfg.Timeout),
		mail.WithDialContextFunc(dial)}
	if s.cfg.ServerName != "" {
		opts = append(opts, mail.WithTLSConfig(&tls.Config{ServerName: s.cfg.ServerName, MinVersion: tls.VersionTLS12}))
	}
	if s.cfg.Username != "" {
		// Lockbox's own PLAIN, not go-mail's: go-mail says only "server
		// does not support SMTP AUTH" when the server offers none, which
		// left a relay that offers AUTH only after STARTTLS an ordinary
		// error, retried for two hours without a word of the setting to
		// change.
		opts = append(opts, mail.WithSMTPAuthCustom(&plainAuth{
			Auth: mailsmtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.cfg.host, false), policy: s.cfg.StartTLS}))
	}
	c, err := mail.NewClient(s.cfg.host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	// Without go-mail's default User-Agent and X-Mailer, which name the
	// library, its version and its web site: every e-mail would carry a
	// link, and tell each recipient what the provider's mail stack is.
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := msg.From(s.cfg.From); err != nil {
		return fmt.Errorf("smtp from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return permanent(fmt.Errorf("smtp recipient: %w", err))
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(messageID(id, s.cfg.From))
	msg.SetDate()
	for _, h := range automatedHeaders {
		msg.SetGenHeader(mail.Header(h[0]), h[1])
	}
	msg.SetBodyString(mail.TypeTextPlain, m.Body)
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		if msg.IsDelivered() {
			// The server accepted the message (250 after DATA) and only
			// what follows failed: the RSET, QUIT or close. The message is
			// on its way; reporting a failure would make the worker send
			// it again on every retry, a duplicate each time.
			s.logger.WarnContext(ctx, "SMTP error after the message was accepted", "message_id", id, "err", err)
			return nil
		}
		if se, ok := errors.AsType[*mail.SendError](err); ok && se.Reason == mail.ErrSMTPDataClose && se.ErrorCode() == 0 {
			// The message went out whole and no reply came: the
			// server may have taken it.
			return unansweredError{fmt.Errorf("smtp send: no answer to the message: %w", err)}
		}
		if se, ok := errors.AsType[*mail.SendError](err); ok && se.Reason == mail.ErrSMTPRcptTo && se.ErrorCode() >= 500 &&
			!ascii(m.To) && !policyRefusal(se) {
			// An address outside ASCII (stored before the tenant's
			// settings refused one), which a server without SMTPUTF8
			// turns away whatever its reply says (Postfix: 553 5.6.7;
			// others a syntax error): no retry changes that, and the
			// retries would report a refusal of Lockbox itself every time
			// for two hours. A dead letter at once, saying what to fix.
			return permanent(fmt.Errorf("smtp send: recipient refused: its address is not ASCII, which the tenant's settings no longer take: replace it: %w", err))
		}
		if se, ok := errors.AsType[*mail.SendError](err); ok && se.Reason == mail.ErrSMTPRcptTo && recipientGone(se) {
			// The server refused the recipient for good (550 5.1.1 no
			// such mailbox, 553 a name it does not take): asking again
			// changes nothing, so the message is a dead letter at once.
			// Other refusals, permanent ones at RCPT TO included, concern
			// every message (relaying denied, authentication required)
			// and are the operator's to fix: those are retried.
			return permanent(fmt.Errorf("smtp send: recipient refused: %w", err))
		}
		if c := smtpReplyCode(err); c >= 500 && c <= 599 {
			// Refused for good, but not for the recipient's sake:
			// relaying denied, authentication required or failed, the
			// sender or the message refused. Every message gets it until
			// the operator fixes the relay or Lockbox's settings, which
			// loses nothing if they are retried: retried, and reported at
			// once (misconfigured).
			return misconfiguredError{fmt.Errorf("smtp send: %w", err)}
		}
		if ae, ok := errors.AsType[*authSettingsError](err); ok {
			// The server can't take Lockbox's credentials on this
			// connection: every message fails alike until the settings
			// or the relay change. Retried, and reported at once.
			return misconfiguredError{fmt.Errorf("smtp send: %w", ae)}
		}
		if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
			// The server's STARTTLS certificate is not one Lockbox trusts
			// (a private CA not installed, another name, expired, or
			// someone in between): every message meets it until someone
			// acts. Retried like a refusal of Lockbox itself, and
			// reported at once.
			return misconfiguredError{fmt.Errorf("smtp send: the server's TLS certificate is not trusted: %w", err)}
		}
		if cerr := ctx.Err(); cerr != nil {
			// The connection was closed under the library: it reports
			// the closed connection, not why.
			return fmt.Errorf("smtp send: %w: %w", cerr, err)
		}
		return fmt.Errorf("smtp send: %w", err)
	}
	return nil
}

// plainAuth is SMTP AUTH PLAIN that says, when the server can't take it,
// which setting to look at (authSettingsError).
type plainAuth struct {
	mailsmtp.Auth
	policy StartTLSPolicy
}

// authSettingsError is a server that can't take Lockbox's credentials on
// the connection it got: it offers no AUTH (many offer it only after
// STARTTLS), not PLAIN, or offers it only without TLS to a host the
// password must not reach in the clear.
type authSettingsError struct{ msg string }

func (e *authSettingsError) Error() string { return e.msg }

func (a *plainAuth) Start(info *mailsmtp.ServerInfo) (string, []byte, error) {
	switch {
	case len(info.Auth) == 0 && !info.TLS:
		return "", nil, &authSettingsError{fmt.Sprintf("the server offers no SMTP AUTH on a connection without TLS "+
			"(LOCKBOX_SMTP_STARTTLS=%s): a relay that offers AUTH only after STARTTLS needs LOCKBOX_SMTP_STARTTLS=mandatory "+
			"(with opportunistic, the server did not offer STARTTLS, or something in between removed it)", a.policy)}
	case len(info.Auth) == 0:
		return "", nil, &authSettingsError{"the server offers no SMTP AUTH: LOCKBOX_SMTP_USERNAME is set for a relay that does not sign anyone in"}
	case !slices.ContainsFunc(info.Auth, func(m string) bool { return strings.EqualFold(m, "PLAIN") }):
		return "", nil, &authSettingsError{fmt.Sprintf("the server does not offer SMTP AUTH PLAIN, the mechanism Lockbox signs in with (it offers %s)",
			strings.Join(info.Auth, " "))}
	}
	proto, resp, err := a.Auth.Start(info)
	if errors.Is(err, mailsmtp.ErrUnencrypted) {
		return "", nil, &authSettingsError{fmt.Sprintf("the password is not sent over a connection without TLS "+
			"(LOCKBOX_SMTP_STARTTLS=%s): use LOCKBOX_SMTP_STARTTLS=mandatory with a relay that offers STARTTLS", a.policy)}
	}
	return proto, resp, err
}

// automatedHeaders say that an e-mail was generated by a program: RFC
// 3834's Auto-Submitted, which automatic responders honour, and the header
// Exchange and Outlook read instead. Without them every approver's
// out-of-office reply, and a ticketing system behind a notification
// address, answers each ask to LOCKBOX_SMTP_FROM. Non-delivery reports are
// not suppressed: a relay that accepted a message for a mailbox that then
// refused it has no other way to say so.
var automatedHeaders = [][2]string{
	{"Auto-Submitted", "auto-generated"},
	{"X-Auto-Response-Suppress", "OOF, AutoReply"},
}

// smtpReplyCode returns the server's reply code in err, the error of a
// send (a command's reply, or SMTP AUTH's), or 0 when the server gave
// none (a network error).
func smtpReplyCode(err error) int {
	if se, ok := errors.AsType[*mail.SendError](err); ok {
		return se.ErrorCode()
	}
	if te, ok := errors.AsType[*textproto.Error](err); ok {
		return te.Code
	}
	return 0
}

// rcptReply finds the server's reply to RCPT TO in a SendError's text
// (`sending SMTP RCPT TO command: 550 "5.1.1 no such user", affected
// recipient(s): ...`, the text quoted as net/textproto quotes it): its
// code and, when it has one, its enhanced status code's subject and
// detail (5.1.1: 1 and 1). The reply comes first, before the recipient,
// and ": " followed by a code can't be part of an address.
var rcptReply = regexp.MustCompile(`: (5\d\d) "?(?:5\.(\d{1,3})\.(\d{1,3})\b)?`)

// recipientGone reports whether a refusal at RCPT TO says the recipient's
// mailbox can never take the message: an enhanced status code of the
// address (5.1.x: no such mailbox, bad domain, bad syntax) or a disabled
// mailbox (5.2.1), or, from a server that gives no enhanced code, 550,
// 551 or 553, RFC 5321's mailbox refusals. A 5xx reply with any other
// enhanced code concerns the relay or the sender rather than this
// recipient (5.7.1 relaying denied, 5.7.0 authentication required,
// 5.5.x protocol): every message would get it, and a dead letter is not
// retried, so it must not be one. 552 at RCPT TO is temporary (RFC 5321
// 4.5.3.1.10), and 554 says nothing about the mailbox.
func recipientGone(se *mail.SendError) bool {
	m := rcptReply.FindStringSubmatch(se.Error())
	if m == nil {
		return false
	}
	switch subject, detail := m[2], m[3]; {
	case subject == "":
		return m[1] == "550" || m[1] == "551" || m[1] == "553"
	case subject == "1":
		return true
	default:
		return subject == "2" && detail == "1"
	}
}

// policyRefusal reports whether a refusal at RCPT TO carries an enhanced
// status code of security or policy (5.7.x: relaying denied,
// authentication required), which concerns every message the relay is
// given, not the recipient's address.
func policyRefusal(se *mail.SendError) bool {
	m := rcptReply.FindStringSubmatch(se.Error())
	return m != nil && m[2] == "7"
}

// messageID is the Message-ID (without its angle brackets) of the message
// id sent from the address from. Its right side is from's domain, one the
// provider controls, as RFC 5322 asks: spam filters score a made-up one.
// Receivers drop duplicates by the whole Message-ID; Lockbox itself keys
// its sent marks and re-drives on id alone, so changing the sender's
// domain changes only what receivers see.
func messageID(id, from string) string {
	domain := "localhost"
	if a, err := netmail.ParseAddress(from); err == nil {
		if i := strings.LastIndexByte(a.Address, '@'); i >= 0 && i < len(a.Address)-1 {
			domain = a.Address[i+1:]
		}
	}
	return id + "@" + domain
}

// ascii reports whether s is all ASCII.
func ascii(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r >= utf8.RuneSelf })
}

// DevSink is the mailer of `lockbox dev` and of servers without SMTP: it
// logs each e-mail and, when Dir is set, writes it there as an .eml file.
type DevSink struct {
	Dir    string
	From   string
	Logger *slog.Logger
	// Now dates each e-mail: the worker's clock; time.Now when nil.
	Now func() time.Time
}

// Name is the metrics channel label.
func (d *DevSink) Name() string { return "dev" }

// Send logs m and writes it under Dir.
func (d *DevSink) Send(ctx context.Context, id string, m Message) error {
	d.Logger.InfoContext(ctx, "notification e-mail", "to", m.To, "subject", m.Subject, "body", m.Body)
	if d.Dir == "" {
		return nil
	}
	if err := os.MkdirAll(d.Dir, 0o750); err != nil {
		return err
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	var b bytes.Buffer
	// An .eml file is an RFC 5322 message (CRLF ends every line, the
	// body's too; Date and From are required) with a MIME body, which
	// says how it is encoded: as written (8bit, so that the file reads as
	// plain text), unless a line is longer than the 998 octets a line of
	// a message may have (a long reason): then quoted-printable, which
	// wraps it, as the SMTP channel sends every body.
	body := strings.ReplaceAll(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n", "\r\n")
	cte := "8bit"
	if slices.ContainsFunc(strings.Split(body, "\r\n"), func(l string) bool { return len(l) > 998 }) {
		var qp bytes.Buffer
		w := quotedprintable.NewWriter(&qp)
		if _, err := w.Write([]byte(body)); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		body, cte = qp.String(), "quoted-printable"
	}
	fmt.Fprintf(&b, "Message-ID: <%s>\r\nDate: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: %s\r\n",
		messageID(id, d.From), now().Format(time.RFC1123Z), HeaderValue(d.From), m.To, m.Subject)
	for _, h := range automatedHeaders {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: %s\r\n\r\n%s", cte, body)
	name := strings.NewReplacer(":", "_", "/", "_", "@", "_at_").Replace(id) + ".eml"
	tmp := filepath.Join(d.Dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, b.Bytes(), 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(d.Dir, name))
}

// WebhookConfig is one webhook endpoint.
type WebhookConfig struct {
	// URL is the receiver's URL; its v2 key is derived from it exactly as
	// given here (WebhookKey).
	URL string
	// Secret is the shared secret: it keys v1 (Sign) and derives the
	// receiver's v2 key (WebhookKey).
	Secret []byte
	// Signatures lists the schemes each delivery is signed with,
	// SignatureVersion ("v1") and SignatureVersion2 ("v2"); v1 alone when
	// empty. They go out v1 first whatever the order here.
	Signatures []string
	// Timeout bounds one delivery; 10s by default.
	Timeout time.Duration
}

// SignatureHeader carries the signatures of a delivery, comma-separated:
// "v1=<hex>" (Sign) and "v2=<hex>" (SignKey), as WebhookConfig.Signatures
// says. Receivers check it with VerifyKeys, or Verify for v1.
const SignatureHeader = "X-Lockbox-Signature"

// TimestampHeader carries when a delivery was signed, in Unix seconds. The
// signature covers it, so a captured delivery can't be replayed once it
// is older than the receiver's tolerance (Verify).
const TimestampHeader = "X-Lockbox-Timestamp"

// DeliveryHeader carries an id that stays the same across retries of one
// delivery, so receivers can drop duplicates. The signature covers it, so
// a captured delivery can't pass for a new one under a fresh id.
const DeliveryHeader = "X-Lockbox-Delivery"

// SignatureVersion prefixes the signature: "v1" is HMAC-SHA256 of
// "timestamp.deliveryID.body". A receiver that sees another version knows
// the scheme changed, rather than that the secret is wrong.
const SignatureVersion = "v1"

// SignatureVersion2 names the scheme keyed with the receiver's own key
// (WebhookKey), over the same text as v1. A receiver knows the key it
// checks its deliveries with; under v1 that key is the shared secret,
// which signs every other receiver's deliveries too, so any receiver can
// forge one for another. Under v2 it signs only its own.
const SignatureVersion2 = "v2"

// webhookKeyLabel starts the text a receiver's key is derived from, so
// the derivation can't coincide with a signature, whose text starts with
// digits.
const webhookKeyLabel = "lockbox webhook key v2\n"

// DefaultTolerance is how far a delivery's timestamp may be from the
// receiver's clock when Verify is given no tolerance: retries are signed
// anew, so only clock skew and transit count.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify.
var (
	// ErrBadSignature: the signature is missing, of another version, or
	// does not match the secret, timestamp, delivery id and body.
	ErrBadSignature = errors.New("notify: webhook signature does not match")
	// ErrStaleDelivery: the timestamp is missing, malformed or outside the
	// tolerance: possibly a replay.
	ErrStaleDelivery = errors.New("notify: webhook timestamp outside the tolerance")
)

// Sign returns the v1 signature of a delivery: "v1=" and the hex
// HMAC-SHA256, keyed with secret, of the timestamp (Unix seconds), a dot,
// the delivery id, a dot and the body, as Stripe and Slack sign theirs.
func Sign(secret []byte, timestamp int64, deliveryID string, body []byte) string {
	return sign(SignatureVersion, secret, timestamp, deliveryID, body)
}

// SignKey returns the v2 signature of a delivery: "v2=" and the hex
// HMAC-SHA256 of the same text as Sign's, keyed with the receiver's key
// (WebhookKey).
func SignKey(key []byte, timestamp int64, deliveryID string, body []byte) string {
	return sign(SignatureVersion2, key, timestamp, deliveryID, body)
}

func sign(scheme string, key []byte, timestamp int64, deliveryID string, body []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(strconv.FormatInt(timestamp, 10) + "." + deliveryID + "."))
	h.Write(body)
	return scheme + "=" + hex.EncodeToString(h.Sum(nil))
}

// WebhookKey returns the 32-byte key of the receiver at url, which keys
// its v2 signatures: HMAC-SHA256, keyed with the shared secret, of
// "lockbox webhook key v2", a newline and the URL exactly as configured.
// A receiver is given its key ("lockbox webhook-key"), never the secret,
// and can't work out another receiver's key from its own.
func WebhookKey(secret []byte, url string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(webhookKeyLabel + url))
	return h.Sum(nil)
}

// Keys are what a receiver verifies deliveries with, one per scheme; a
// scheme without a key is not checked.
type Keys struct {
	// V1 is the shared secret (LOCKBOX_WEBHOOK_SECRET_FILE).
	V1 []byte
	// V2 is the receiver's own key (WebhookKey).
	V2 []byte
}

// checkSignatures validates a list of signature schemes (empty: v1 alone,
// the header of earlier versions, which a receiver comparing it whole
// still takes) and returns them in the order they are sent, v1 first.
func checkSignatures(schemes []string) ([]string, error) {
	if len(schemes) == 0 {
		return []string{SignatureVersion}, nil
	}
	var v1, v2 int
	for _, s := range schemes {
		switch s {
		case SignatureVersion:
			v1++
		case SignatureVersion2:
			v2++
		default:
			return nil, fmt.Errorf("signature scheme %q is not one of v1, v2", s)
		}
	}
	if v1 > 1 || v2 > 1 {
		return nil, fmt.Errorf("signature schemes %q name one twice", schemes)
	}
	var out []string
	if v1 == 1 {
		out = append(out, SignatureVersion)
	}
	if v2 == 1 {
		out = append(out, SignatureVersion2)
	}
	return out, nil
}

// Verify checks a delivery's v1 signature, keyed with the shared secret:
// VerifyKeys with Keys{V1: secret}.
func Verify(secret, body []byte, deliveryID, timestamp, signature string, now time.Time, tolerance time.Duration) error {
	return VerifyKeys(Keys{V1: secret}, body, deliveryID, timestamp, signature, now, tolerance)
}

// VerifyKeys checks a delivery as a receiver gets it: the body, and the
// values of DeliveryHeader, TimestampHeader and SignatureHeader. A
// delivery id of any other shape than Lockbox gives ("<entry>.<hash>",
// exactly one dot) does not verify. The timestamp must be within
// tolerance of now either way (DefaultTolerance when tolerance is 0 or
// less). The signature header lists signatures separated by commas, each
// "<scheme>=<hex>"; it verifies when the signature of a scheme keys has a
// key for matches, compared in constant time. Schemes without a key, or
// unknown to this version, are skipped, so a receiver that checks v2
// alone is not fooled by a v1 (which any other receiver could make).
//
// A delivery replayed within the tolerance verifies again: receivers drop
// it by its delivery id, which the signature covers.
func VerifyKeys(keys Keys, body []byte, deliveryID, timestamp, signature string, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrStaleDelivery
	}
	// In whole seconds, on the receiver's side of the subtraction: a
	// timestamp far out of range can't overflow.
	if tol := int64(tolerance / time.Second); ts < now.Unix()-tol || ts > now.Unix()+tol {
		return ErrStaleDelivery
	}
	if !wellFormedDeliveryID(deliveryID) {
		return ErrBadSignature
	}
	// An empty key is no key: HMAC takes it, and anyone could sign with it.
	var want [][]byte
	if len(keys.V1) > 0 {
		want = append(want, []byte(Sign(keys.V1, ts, deliveryID, body)))
	}
	if len(keys.V2) > 0 {
		want = append(want, []byte(SignKey(keys.V2, ts, deliveryID, body)))
	}
	ok := false
	for sig := range strings.SplitSeq(signature, ",") {
		// Every candidate is compared with every expected signature, the
		// scheme name included, so the time taken says nothing of which
		// one matched, and a signature is only taken under its own
		// scheme.
		for _, w := range want {
			if hmac.Equal(w, []byte(strings.TrimSpace(sig))) {
				ok = true
			}
		}
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

// wellFormedDeliveryID reports whether id has the one shape deliveryID
// gives: "<outbox entry id>.<16 hex digits>", an entry id being a stream
// id, "<digits>-<digits>". The signed text joins the id and the body with a
// dot, so the same bytes would sign an id cut short at its dot, with the
// rest moved into the body, or an id that took in the body up to a dot of
// its own; an id with exactly one dot has only one place to end.
func wellFormedDeliveryID(id string) bool {
	entry, hash, ok := strings.Cut(id, ".")
	if !ok || len(hash) != 16 || strings.Trim(hash, "0123456789abcdef") != "" {
		return false
	}
	ms, seq, ok := strings.Cut(entry, "-")
	return ok && ms != "" && seq != "" && strings.Trim(ms, "0123456789") == "" && strings.Trim(seq, "0123456789") == ""
}

type webhook struct {
	cfg WebhookConfig
	// key is the receiver's own (WebhookKey), keying v2.
	key []byte
	// schemes are the signatures sent, v1 first.
	schemes []string
	client  *http.Client
	now     func() time.Time
}

// newWebhook returns the channel of one receiver; cfg's Signatures must
// have passed checkSignatures (Config.CheckAndSetDefaults).
func newWebhook(cfg WebhookConfig, now func() time.Time) *webhook {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	schemes, _ := checkSignatures(cfg.Signatures)
	return &webhook{cfg: cfg, key: WebhookKey(cfg.Secret, cfg.URL), schemes: schemes, now: now, client: &http.Client{
		Timeout: cfg.Timeout,
		// A redirect would send the signed body somewhere not configured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// post sends one delivery, signed as of now: a retry carries a fresh
// timestamp and so passes the receiver's tolerance however late it is.
func (w *webhook) post(ctx context.Context, id string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return permanent(err)
	}
	ts := w.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lockbox-notify")
	req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
	req.Header.Set(DeliveryHeader, id)
	req.Header.Set(SignatureHeader, w.sign(ts, id, body))
	resp, err := w.client.Do(req)
	if err != nil {
		// net/http's error quotes the whole URL, and a receiver's URL may
		// carry its credential in the path or query (as Slack's and
		// Teams' incoming webhooks do). The error reaches the log and the
		// dead-letter stream, so it names the receiver by origin only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("webhook %s: %w", w.origin(), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	err = &statusError{origin: w.origin(), code: resp.StatusCode}
	if refusedForGood(resp.StatusCode) {
		return permanent(err)
	}
	if misconfigured(resp.StatusCode) {
		return misconfiguredError{err}
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		return &delayedError{error: err, wait: retryAfter(resp.Header.Get("Retry-After"), w.now())}
	}
	return err
}

// sign returns the SignatureHeader value of a delivery: each scheme's
// signature, comma-separated, v1 first.
func (w *webhook) sign(ts int64, id string, body []byte) string {
	sigs := make([]string, 0, len(w.schemes))
	for _, s := range w.schemes {
		if s == SignatureVersion {
			sigs = append(sigs, Sign(w.cfg.Secret, ts, id, body))
		} else {
			sigs = append(sigs, SignKey(w.key, ts, id, body))
		}
	}
	return strings.Join(sigs, ",")
}

// statusError is a receiver's answer other than 2xx. It names the
// receiver by origin, like every webhook error.
type statusError struct {
	origin string
	code   int
}

func (e *statusError) Error() string {
	return strings.TrimSpace(fmt.Sprintf("webhook %s: status %d %s", e.origin, e.code, http.StatusText(e.code)))
}

// refusedForGood reports whether a receiver's answer says that no retry of
// the same signed body can succeed: the receiver can't parse or won't take
// it (400, 411, 413, 414, 415, 422), or the URL is not a receiver (405)
// or is gone for good (410). Those deliveries are dead letters at once.
// 404 is retried: a receiver in the middle of a redeploy may answer it for
// a while, and a dead letter is not sent again. So are 401 and 403: a
// receiver's operator may fix the credential it checks, which is none of
// the body's doing (both, and redirects, are reported at once: see
// misconfigured). So is every other answer, throttling (429), timeouts
// (408, 425), server errors and statuses Lockbox does not know.
func refusedForGood(code int) bool {
	switch code {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusGone,
		http.StatusLengthRequired, http.StatusRequestEntityTooLarge, http.StatusRequestURITooLong,
		http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// misconfigured reports whether a receiver's answer says that its URL or
// the key it checks is wrong rather than that it is down: 401 and 403 (it
// refuses the signature: a key not given, or not yet rotated), 404 (no
// receiver at that path) and a redirect (the receiver moved; it is never
// followed, as it would send the signed body somewhere not configured).
// Each may end without anyone touching Lockbox (a redeploy, a key rotation
// finishing), so the delivery is retried as usual rather than lost as a
// dead letter; but left to its attempts it would only be told of, at
// error level, hours later, when it is dead-lettered. The worker reports
// it as a refusal at once instead (Worker.process).
func misconfigured(code int) bool {
	return code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusNotFound ||
		code >= 300 && code <= 399
}

// misconfiguredError is a failure that someone must fix, a receiver's
// answer that misconfigured says is its operator's or a mail server's
// permanent refusal of Lockbox itself (SMTP.Send). It is retried like any
// failure, and reported at once.
type misconfiguredError struct{ error }

func (e misconfiguredError) Unwrap() error { return e.error }

// unansweredError is a failure after the whole message went out, the
// answer to it never coming (the connection broke, or the answer came
// after the timeout): the receiver may have taken the message. It is
// retried like any failure; an ask that fails so may have reached its
// recipient (Worker.process).
type unansweredError struct{ error }

func (e unansweredError) Unwrap() error { return e.error }

// delayedError is a failure whose receiver asked to be left alone for
// wait (Retry-After): the worker retries no earlier than that.
type delayedError struct {
	error
	wait time.Duration
}

func (e *delayedError) Unwrap() error { return e.error }

func (e *delayedError) Error() string {
	if e.wait <= 0 {
		return e.error.Error()
	}
	return fmt.Sprintf("%v, retry after %s", e.error, e.wait)
}

// retryAfter reads a Retry-After header (RFC 9110 10.2.3) as of now: a
// number of seconds or an HTTP-date, in any of the three formats a
// recipient must accept, capped at maxBackoff; a value in the
// past or that does not parse is 0, which leaves the retry to the backoff.
//
// The cap is DefaultBackoff's longest wait: a receiver asking for more is
// tried again after that all the same, so a mistaken or hostile header
// holds a delivery back no longer than Lockbox's own backoff would.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if strings.Trim(v, "0123456789") == "" {
		// Digits only, however many: a number too long for an int64 is
		// more than the cap too.
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(maxBackoff/time.Second) {
			return maxBackoff
		}
		return time.Duration(n) * time.Second
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return min(max(at.Sub(now), 0), maxBackoff)
}

// origin names the receiver in errors and logs: scheme and host, without
// the user info, path and query that may hold a credential.
func (w *webhook) origin() string {
	u, err := url.Parse(w.cfg.URL)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host
}

// permanentError marks a failure retrying can't fix; it goes straight to
// the dead-letter stream.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func permanent(err error) error { return permanentError{err} }
