package notify

import (
	"fmt"
	"regexp"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/text"
)

// Message is one rendered e-mail.
type Message struct {
	To      string
	Subject string
	Body    string
}

// Template is which e-mail a recipient gets. Each template has a fixed
// audience: the tenant's templates show the tenant's view of the request,
// in which no provider identity appears.
type Template string

// The e-mails.
const (
	// TemplateNewRequest tells support managers a request awaits them
	// (provider audience).
	TemplateNewRequest Template = "new_request"
	// TemplatePendingCustomer asks the tenant's approvers to decide
	// (tenant audience).
	TemplatePendingCustomer Template = "pending_customer"
	// TemplateRequesterUpdate tells the engineer of a decision, a
	// revocation, an expiry or the end of the window (provider audience).
	TemplateRequesterUpdate Template = "requester_update"
	// TemplateAlreadyDecided tells the others the tenant asked to decide
	// (approvers, global administrators, notification addresses) that one
	// of its approvers decided (tenant audience).
	TemplateAlreadyDecided Template = "already_decided"
	// TemplateExpiryWarning warns the engineer the window ends soon
	// (provider audience).
	TemplateExpiryWarning Template = "expiry_warning"
	// TemplateNoLongerPending tells the people asked to decide a request
	// that it no longer awaits them, though none of them decided: the
	// engineer canceled it, or it expired (tenant audience). Without it
	// an approver signs in to decide a request that is gone.
	TemplateNoLongerPending Template = "no_longer_pending"
	// TemplateAccessEnded tells the tenant's people that the provider, or
	// another of the tenant's approvers, revoked access the tenant
	// approved, before its window ended (tenant audience).
	TemplateAccessEnded Template = "access_ended"
)

// Templates lists every e-mail.
var Templates = []Template{TemplateNewRequest, TemplatePendingCustomer, TemplateRequesterUpdate,
	TemplateAlreadyDecided, TemplateExpiryWarning, TemplateNoLongerPending, TemplateAccessEnded}

// forTenant reports whether t goes to the tenant's people.
func (t Template) forTenant() bool {
	switch t {
	case TemplatePendingCustomer, TemplateAlreadyDecided, TemplateNoLongerPending, TemplateAccessEnded:
		return true
	}
	return false
}

// followsAsk reports whether t follows the tenant's "awaits your decision"
// (TemplatePendingCustomer), and is news only to those the ask reached:
// that it no longer awaits them, that one of them decided it, or that the
// access they were asked about ended early. To anyone else (an approver
// assigned after the ask went out, one whose ask was a dead letter) it
// tells of a request they never heard of. See Worker.askGate.
func (t Template) followsAsk() bool {
	switch t {
	case TemplateNoLongerPending, TemplateAlreadyDecided, TemplateAccessEnded:
		return true
	}
	return false
}

// AllReadActivities stands for the activities of a request that named
// none: the service's pre-approved read activities (the policy decides
// which).
const AllReadActivities = "all read activities"

var templates = template.Must(template.New("").Parse(`
{{define "details"}}Tenant:                  {{.Tenant}}
Service:                 {{.Service}}
Service request number:  {{.ServiceRequest}}
Reason:                  {{.Reason}}
Requested activities:    {{.Activities}}
Requested duration:      {{.Duration}}
{{- end}}
{{define "nolinks"}}This message deliberately contains no links: a message that asks you to
follow a link to decide a Lockbox request is not from Lockbox.
{{- end}}
{{define "new_request.subject"}}Lockbox request {{.ID}} awaits a support manager ({{.Tenant}}, {{.Service}}){{end}}
{{define "new_request.body"}}{{.Requester}} filed a Lockbox request that awaits the decision of a
support manager other than them (two-person rule).

{{template "details" .}}
Expires if undecided:    {{.DecideBy}}
Request id:              {{.ID}}

To approve or deny it, sign in to Lockbox yourself and open request
{{.ID}}.

{{template "nolinks"}}
{{end}}
{{define "pending_customer.subject"}}Lockbox request {{.ID}} awaits your decision ({{.Tenant}}, {{.Service}}){{end}}
{{define "pending_customer.body"}}A support engineer of your service provider asks for access to your data
through Customer Lockbox. Nobody reaches your data unless an approver of
your organization approves this request.

{{template "details" .}}
Expires if undecided:    {{.DecideBy}}
Request id:              {{.ID}}

To approve or deny it, sign in to Lockbox yourself and open request
{{.ID}}.

{{template "nolinks"}}
{{end}}
{{define "requester_update.subject"}}Lockbox request {{.ID}} {{.Outcome}} ({{.Tenant}}, {{.Service}}){{end}}
{{define "requester_update.body"}}Your Lockbox request {{.ID}} {{.Outcome}}.

{{template "details" .}}
State:                   {{.State}}
By:                      {{.Actor}}
At:                      {{.At}}
{{- if .Comment}}
Comment:                 {{.Comment}}{{end}}
{{- if .ExpiresAt}}
Access ends:             {{.ExpiresAt}}{{end}}
{{end}}
{{define "already_decided.subject"}}Lockbox request {{.ID}} was already {{.Decision}} by {{.Actor}}{{end}}
{{define "already_decided.body"}}Lockbox request {{.ID}} of tenant {{.Tenant}} was already {{.Decision}}
by {{.Actor}} at {{.At}}. No action is needed from you.

{{template "details" .}}
Request id:              {{.ID}}
{{end}}
{{define "no_longer_pending.subject"}}Lockbox request {{.ID}} no longer needs your decision ({{.Tenant}}, {{.Service}}){{end}}
{{define "no_longer_pending.body"}}Lockbox request {{.ID}} of tenant {{.Tenant}} {{.Outcome}}
{{- if ne .Actor "Lockbox"}} by {{.Actor}}{{end}} at {{.At}}.
{{- with .Why}}
{{.}}{{end}}
It no longer awaits a decision, and it gives nobody access to your data.
No action is needed from you.

{{template "details" .}}
Request id:              {{.ID}}
{{end}}
{{define "access_ended.subject"}}Lockbox request {{.ID}}: access ended early ({{.Tenant}}, {{.Service}}){{end}}
{{define "access_ended.body"}}Your organization approved Lockbox request {{.ID}} of tenant {{.Tenant}}
and its access was revoked by {{.Actor}} at {{.At}}, before its window ended.
{{- with .Why}}
{{.}}{{end}}
Nobody reaches your data through it any more.
No action is needed from you.

{{template "details" .}}
Request id:              {{.ID}}
{{end}}
{{define "expiry_warning.subject"}}Lockbox request {{.ID}}: your access ends in {{.Left}} ({{.Tenant}}, {{.Service}}){{end}}
{{define "expiry_warning.body"}}Your access through Lockbox request {{.ID}} ends at {{.ExpiresAt}},
in {{.Left}}. It is revoked then whether or not the issue is fixed; if you
need more time, file a new request.

{{template "details" .}}
Access ends:             {{.ExpiresAt}}
Request id:              {{.ID}}
{{end}}
`))

// view holds the sanitized values a template shows.
type view struct {
	ID, Tenant, Service, ServiceRequest, Reason, Duration, DecideBy string
	Activities, Requester, Left                                     string
	State, Outcome, Decision, Actor, At, Comment, ExpiresAt         string
	// Why says what ended the request when its actor did not choose to
	// end it (grants.Event.Cause); empty otherwise.
	Why string
}

const timeLayout = "2006-01-02 15:04 UTC"

func utc(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

// TenantView returns ev as the tenant's people see it: the request as
// grants.TenantView shows it (no provider identity at all), and the event's
// actor labelled by the same rule: the engineer's own steps "Microsoft
// Operator", the support manager's "Microsoft Support".
func TenantView(ev Event) Event {
	ev.Request = grants.TenantView(ev.Request)
	switch ev.Event.ActorKind {
	case grants.KindTenant, grants.KindSystem:
	default:
		// The provider's, or of no known side: fail closed.
		ev.Event.Actor, ev.Event.ClientIP = grants.ProviderLabel(ev.Event), ""
	}
	return ev
}

// activities is how messages list a request's activities.
func activities(r grants.Request) string {
	if len(r.Activities) == 0 {
		return AllReadActivities
	}
	return strings.Join(r.Activities, ", ")
}

// viewOf fills the template values of ev, unsanitized. ev must already be
// in the view its audience may see.
func viewOf(ev Event) view {
	r, e := ev.Request, ev.Event
	v := view{
		ID: r.ID, Tenant: r.Tenant, Service: r.Service,
		ServiceRequest: r.ServiceRequest, Reason: r.Reason,
		Duration: r.Duration.String(), DecideBy: utc(r.DecideBy), Activities: activities(r),
		Requester: r.Requester,
		State:     string(r.State), Actor: e.Actor, At: e.At.UTC().Format(timeLayout),
		Comment: e.Comment, ExpiresAt: utc(r.ExpiresAt),
	}
	if r.State != grants.StateApproved {
		v.ExpiresAt = ""
	}
	if r.ExpiresAt != nil {
		// Rounded to the minute the clock shows, and never "0s": a warning
		// queued a few seconds late still reads "15m".
		v.Left = grants.Duration(max(r.ExpiresAt.Sub(e.At).Round(time.Minute), time.Minute)).String()
	}
	if e.ActorKind == grants.KindSystem {
		v.Actor = "Lockbox"
	}
	if e.Cause == grants.CauseTenantOffboarded {
		// Each request keeps its own e-mail to those it concerned: the
		// line tells them none of them, nor the engineer, ended it.
		v.Why = "The service provider offboarded tenant " + r.Tenant + ": Lockbox ended all of its access and open requests."
	}
	switch e.Action {
	case grants.ActionApprove:
		v.Decision = "approved"
		v.Outcome = "was approved"
		if e.To == grants.StatePendingCustomer {
			v.Outcome = "was approved by the support manager and awaits the tenant's approvers"
		}
	case grants.ActionDeny:
		v.Decision, v.Outcome = "denied", "was denied"
	case grants.ActionExpire:
		v.Outcome = "expired without a decision"
	case grants.ActionRevoke:
		v.Outcome = "was revoked"
	case grants.ActionComplete:
		v.Outcome = "ended: its access window is over"
	case grants.ActionCancel:
		v.Outcome = "was canceled"
	default:
		v.Outcome = "changed to " + string(e.To)
	}
	return v
}

// Render renders the e-mail t of ev for one recipient. A tenant template
// shows the tenant's view (TenantView) whoever calls it.
func Render(ev Event, t Template, to string) (Message, error) {
	if t.forTenant() {
		ev = TenantView(ev)
	}
	v := viewOf(ev).sanitized()
	var subj, body strings.Builder
	if err := templates.ExecuteTemplate(&subj, string(t)+".subject", v); err != nil {
		return Message{}, fmt.Errorf("notify: render %s: %w", t, err)
	}
	if err := templates.ExecuteTemplate(&body, string(t)+".body", v); err != nil {
		return Message{}, fmt.Errorf("notify: render %s: %w", t, err)
	}
	return Message{To: HeaderValue(to), Subject: HeaderValue(subj.String()), Body: body.String()}, nil
}

// Summary is the one line a webhook delivery shows people, in the tenant's
// view.
func Summary(ev Event) string {
	ev = TenantView(ev)
	v := viewOf(ev).sanitized()
	head := fmt.Sprintf("Lockbox request %s (%s, %s, %s for %s)", v.ID, v.Tenant, v.Service, v.Activities, v.Duration)
	var what string
	switch ev.Kind {
	case KindCreated:
		what = "was filed by " + v.Actor + " and awaits a support manager"
	case KindPendingCustomer:
		what = "was approved by " + v.Actor + " and awaits the approvers of " + v.Tenant + " until " + v.DecideBy
	case KindApproved:
		what = "was approved by " + v.Actor + "; access ends " + v.ExpiresAt
	case KindDenied, KindCanceled, KindRevoked:
		what = v.Outcome + " by " + v.Actor
		if ev.Event.Cause == grants.CauseTenantOffboarded {
			what += ": the tenant was offboarded"
		}
	case KindExpiring:
		what = "ends at " + v.ExpiresAt + ", in " + v.Left
	default:
		what = v.Outcome
	}
	return head + " " + what
}

// sanitized makes every value safe to show: one line, no control
// characters, and nothing a mail client would turn into a link.
//
// Requester and Actor are the subjects of verified tokens (whose alphabet,
// identity.ValidSubject, has no ":" or "/") or a fixed label. A subject
// that is a plain address stays readable: recipients must recognize who
// filed or decided, and it names a signed-in identity (for the tenant's
// deciders, one of the tenant's domains), not a link someone typed. Any
// other value is defanged in full: above all the reason, the comment and
// the service request number, which are free text.
func (v view) sanitized() view {
	for _, p := range []*string{&v.ID, &v.Tenant, &v.Service, &v.ServiceRequest, &v.Reason, &v.Duration,
		&v.DecideBy, &v.Activities, &v.Requester, &v.Left,
		&v.State, &v.Outcome, &v.Decision, &v.Actor, &v.At, &v.Comment, &v.ExpiresAt, &v.Why} {
		*p = HeaderValue(*p)
		if (p != &v.Requester && p != &v.Actor) || !identityAddress(*p) {
			*p = Defang(*p)
		}
	}
	return v
}

// identityAddress reports whether s is a subject that is one plain
// address, local@domain.
func identityAddress(s string) bool {
	at := strings.IndexByte(s, '@')
	return keys.IsUser(s) && at > 0 && at == strings.LastIndexByte(s, '@') && at < len(s)-1
}

var (
	// uncRE is the start of a UNC path, "\\host": Outlook links one, and
	// opening it makes Windows sign in to the host with NTLM, leaking the
	// reader's credentials hash. Any character after the two backslashes
	// counts, except another backslash (the run's last two are the ones),
	// a bracket (no host name has one, and the defanged form "[\\]" is
	// followed by one, so that Defang stays idempotent) and white space.
	uncRE    = regexp.MustCompile(`\\\\([^\\\[\]\s])`)
	schemeRE = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*):/+`)
	// uriRE is the start of a scheme-only URI ("mailto:x",
	// "javascript:alert(1)"): an RFC 3986 scheme that does not continue an
	// ASCII word, and its colon. The prefix is captured because RE2 has no
	// look-behind; the character after the colon is looked at, not
	// matched, so that it can be the prefix of the next scheme ("A:!tel:1").
	uriRE  = regexp.MustCompile(`(?i)(^|[^a-z0-9])([a-z][a-z0-9+.-]*):`)
	httpRE = regexp.MustCompile(`(?i)h(tt)p`)
	wwwRE  = regexp.MustCompile(`(?i)(www)\.`)
	// hostRE is a run of host-name characters: labels of letters, digits
	// and marks in any script joined by hyphens and dots, where a dot is
	// also each character IDNA maps to one (U+3002, U+FF0E, U+FF61), which
	// browsers, and so the mail clients that link for them, accept.
	hostRE = regexp.MustCompile(`[\p{L}\p{N}\p{M}\-.\x{3002}\x{FF0E}\x{FF61}]+`)
)

// linkSchemes are schemes mail clients link, or hand to an application,
// whatever follows the colon; another scheme counts only before a letter
// (see Defang). Digits and "+" are where phone numbers start.
var linkSchemes = map[string]bool{
	"mailto": true, "tel": true, "sms": true, "smsto": true, "mms": true, "callto": true, "fax": true,
	"sip": true, "sips": true, "facetime": true, "facetime-audio": true, "skype": true, "im": true, "xmpp": true,
	"data": true, "javascript": true, "vbscript": true, "file": true, "news": true, "nntp": true,
	"geo": true, "magnet": true, "webcal": true, "bitcoin": true,
}

// maxLinkScheme is the length of the longest of linkSchemes.
var maxLinkScheme = func() int {
	n := 0
	for s := range linkSchemes {
		n = max(n, len(s))
	}
	return n
}()

// HeaderValue returns s on one line: CR, LF and other control characters
// become spaces, so a value can't add a header, and bidirectional controls
// too, so a value reads in the order it is written.
//
// What it replaces is text.Misleading, the set the domain refuses in new
// text: C0 and C1 controls (a mail client may break a line at NEL,
// U+0085), the Unicode line and paragraph separators, and the
// bidirectional controls. A run of them becomes one space; bytes that are
// not UTF-8 are left as they are.
func HeaderValue(s string) string {
	if !strings.ContainsFunc(s, text.Misleading) {
		return strings.TrimSpace(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	inRun := false
	for i := 0; i < len(s); {
		c, n := utf8.DecodeRuneInString(s[i:])
		if c != utf8.RuneError && text.Misleading(c) {
			if !inRun {
				b.WriteByte(' ')
			}
			inRun = true
		} else {
			b.WriteString(s[i : i+n])
			inRun = false
		}
		i += n
	}
	return strings.TrimSpace(b.String())
}

// Defang neutralizes anything in user-supplied text that a mail client
// could render as a link, so a request's reason can't smuggle a link into
// an approver's mailbox: "https://x" becomes "hxxps[:]//x", a scheme-only
// URI such as "mailto:x" or "tel:+1555" "mailto[:]x", and the dots of a
// host name become "[.]", as defanging conventionally writes them, so
// "evil.com/login", "www.evil.com" and the address "x@evil.com" read
// "evil[.]com/login", "www[.]evil[.]com" and "x@evil[.]com".
//
// Ordinary text keeps its shape: a colon before a space ("note: ..."), a
// digit ("10:30", "SR:1234") or punctuation is no URI unless the scheme is
// one of linkSchemes, and a name is a host only when it ends in a label
// that can be a top-level domain (two or more letters, or an IDNA
// "xn--" label), so "v1.2.3" and "e.g." stay as they are. Any other
// "word.letters" ("notes.txt") is defanged: file names and domain names
// can't be told apart ("readme.md" is a host in Moldova), and "[.]" keeps
// them readable.
//
// A UNC path's leading backslashes are written "[\\]": "\\fileserver\share"
// reads "[\\]fileserver\share", which no client opens (see uncRE).
func Defang(s string) string {
	s, _ = defang(s)
	return s
}

// defangWork is what one Defang did beyond its regular expressions, for
// the tests that bound it: how many passes of defangURIs it made, and how
// many bytes of scheme names it looked up in linkSchemes.
type defangWork struct{ passes, lookedUp int }

// defang is Defang, also returning its work.
func defang(s string) (string, defangWork) {
	var w defangWork
	s = uncRE.ReplaceAllString(s, `[\\]$1`)
	s = schemeRE.ReplaceAllString(s, "$1[:]//")
	s = httpRE.ReplaceAllString(s, "hxxp")
	s = wwwRE.ReplaceAllString(s, "$1[.]")
	// Hosts before URIs: "[.]" ends a host, so a name after it
	// ("x.y:z" becoming "x[.]y:z") is then a scheme like any other.
	s = hostRE.ReplaceAllStringFunc(s, defangHost)
	// A match takes the characters around a scheme, so in "a:b:c" the
	// "b" after one colon is the scheme of the next: repeat until nothing
	// changes. Each round defangs a colon, so it ends; and it ends after
	// three passes at most, not one per colon: a pass misses a scheme only
	// right after the colon of the match before, which, followed by the
	// scheme's letter, is a URI that the pass defangs, so the next pass
	// finds the scheme after its "]".
	for prev := ""; prev != s; {
		prev, s = s, defangURIs(s, &w)
		w.passes++
	}
	return s, w
}

// defangURIs writes "[:]" for the colon of each match of uriRE that starts
// a URI (startsURI), given the character after it, which must be there
// and not be white space. It adds its lookups to w.
func defangURIs(s string, w *defangWork) string {
	var b strings.Builder
	last := 0
	for _, m := range uriRE.FindAllStringSubmatchIndex(s, -1) {
		colon := m[1] - 1
		next, size := utf8.DecodeRuneInString(s[m[1]:])
		if size == 0 || strings.ContainsRune("\t\n\f\r ", next) || !startsURI(s[m[4]:m[5]], next, w) {
			continue
		}
		b.WriteString(s[last:colon])
		b.WriteString("[:]")
		last = m[1]
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// startsURI reports whether scheme, its colon and next start a URI: the
// scheme is one of linkSchemes, or ends in one after a "+", "." or "-" (a
// link detector may start the URI there: "+tel:1"), or a letter follows
// the colon. It adds its lookups to w.
//
// Only the scheme's tail as long as the longest link scheme is looked
// at: a longer name is none of them. Looking up every suffix after a
// separator, as it did, took time quadratic in the scheme's length, which
// the text sets ("a+a+a+...:", a million bytes looked up for a reason of
// 2000).
func startsURI(scheme string, next rune, w *defangWork) bool {
	scheme = strings.ToLower(scheme)
	known := false
	if len(scheme) <= maxLinkScheme {
		w.lookedUp += len(scheme)
		known = linkSchemes[scheme]
	}
	for i := max(1, len(scheme)-maxLinkScheme); i < len(scheme) && !known; i++ {
		if strings.IndexByte("+.-", scheme[i-1]) >= 0 {
			w.lookedUp += len(scheme) - i
			known = linkSchemes[scheme[i:]]
		}
	}
	return known || unicode.IsLetter(next)
}

func isDot(r rune) bool { return r == '.' || r == '\u3002' || r == '\uff0e' || r == '\uff61' }

// defangHost returns tok, a run of hostRE, with each dot written "[.]" if
// it may be a host name: two labels or more, any label after the first
// one that can be a top-level domain (link detectors may stop a name at
// any of them: "evil.com.x"), or an IPv4 address. Dots after the last
// label (the full stop of a sentence) stay.
func defangHost(tok string) string {
	name := strings.TrimRightFunc(tok, isDot)
	var n, digits int
	top := false
	for l := range strings.FieldsFuncSeq(name, isDot) {
		if n > 0 && topLabel(l) {
			top = true
		}
		if len(l) <= 3 && strings.Trim(l, "0123456789") == "" {
			digits++
		}
		n++
	}
	if n < 2 || !top && !(n == 4 && digits == 4) {
		return tok
	}
	var b strings.Builder
	for _, r := range name {
		if isDot(r) {
			b.WriteString("[.]")
		} else {
			b.WriteRune(r)
		}
	}
	return b.String() + tok[len(name):]
}

// topLabel reports whether l can be a top-level domain as link detectors
// see one: two letters or more in any script (a trailing hyphen ignored, as
// they stop the link before it), or an IDNA A-label.
func topLabel(l string) bool {
	l = strings.TrimRight(l, "-")
	if len(l) > 4 && strings.EqualFold(l[:4], "xn--") {
		return true
	}
	n := 0
	for _, r := range l {
		if !unicode.IsLetter(r) && !unicode.Is(unicode.M, r) {
			return false
		}
		n++
	}
	return n >= 2
}
