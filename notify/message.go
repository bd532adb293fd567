package notify

import (
	"fmt"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
)

// Message is one rendered e-mail.
type Message struct {
	To      string
	Subject string
	Body    string
}

// Audience says whose view of a request a message shows.
type Audience int

// Audiences: tenant users see the provider's staff as "Microsoft Operator".
const (
	AudienceTenant Audience = iota
	AudienceProvider
)

var templates = template.Must(template.New("").Parse(`
{{define "pending_customer.subject"}}Lockbox request {{.ID}} awaits your decision ({{.Tenant}}, {{.Service}}){{end}}
{{define "pending_customer.body"}}A support engineer of your service provider asks for access to your data
through Customer Lockbox. Nobody reaches your data unless an approver of
your organization approves this request.

Tenant:                  {{.Tenant}}
Service:                 {{.Service}}
Service request number:  {{.ServiceRequest}}
Reason:                  {{.Reason}}
Requested duration:      {{.Duration}}
Expires if undecided:    {{.DecideBy}}
Request id:              {{.ID}}

To approve or deny it, sign in to Lockbox yourself and open request
{{.ID}}. This message deliberately contains no links: a message that
asks you to follow a link to decide a Lockbox request is not from Lockbox.
{{end}}
{{define "requester_update.subject"}}Lockbox request {{.ID}} {{.Outcome}} ({{.Tenant}}, {{.Service}}){{end}}
{{define "requester_update.body"}}Your Lockbox request {{.ID}} {{.Outcome}}.

Tenant:                  {{.Tenant}}
Service:                 {{.Service}}
Service request number:  {{.ServiceRequest}}
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

Service:                 {{.Service}}
Service request number:  {{.ServiceRequest}}
Reason:                  {{.Reason}}
Request id:              {{.ID}}
{{end}}
`))

// view holds the sanitized values a template shows.
type view struct {
	ID, Tenant, Service, ServiceRequest, Reason, Duration, DecideBy string
	State, Outcome, Decision, Actor, At, Comment, ExpiresAt         string
}

const timeLayout = "2006-01-02 15:04 UTC"

func utc(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

// Render renders ev for one recipient.
func Render(ev Event, to string, aud Audience) (Message, error) {
	r, e := ev.Request, ev.Event
	if aud == AudienceTenant {
		r = grants.TenantView(r)
		if e.ActorKind == grants.KindProvider {
			e.Actor = r.Requester // "Microsoft Operator"
		}
	}
	v := view{
		ID: r.ID, Tenant: r.Tenant, Service: r.Service,
		ServiceRequest: r.ServiceRequest, Reason: r.Reason,
		Duration: r.Duration.Std().String(), DecideBy: utc(r.DecideBy),
		State: string(r.State), Actor: e.Actor, At: e.At.UTC().Format(timeLayout),
		Comment: e.Comment, ExpiresAt: utc(r.ExpiresAt),
	}
	if r.State != grants.StateApproved {
		v.ExpiresAt = ""
	}
	if e.ActorKind == grants.KindSystem {
		v.Actor = "Lockbox"
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
	default:
		v.Outcome = "changed to " + string(e.To)
	}
	v = v.sanitized()
	var subj, body strings.Builder
	if err := templates.ExecuteTemplate(&subj, string(ev.Kind)+".subject", v); err != nil {
		return Message{}, fmt.Errorf("notify: render %s: %w", ev.Kind, err)
	}
	if err := templates.ExecuteTemplate(&body, string(ev.Kind)+".body", v); err != nil {
		return Message{}, fmt.Errorf("notify: render %s: %w", ev.Kind, err)
	}
	return Message{To: HeaderValue(to), Subject: HeaderValue(subj.String()), Body: body.String()}, nil
}

// sanitized makes every value safe to show: one line, no control
// characters, and nothing a mail client would turn into a link.
func (v view) sanitized() view {
	for _, p := range []*string{&v.ID, &v.Tenant, &v.Service, &v.ServiceRequest, &v.Reason, &v.Duration,
		&v.DecideBy, &v.State, &v.Outcome, &v.Decision, &v.Actor, &v.At, &v.Comment, &v.ExpiresAt} {
		*p = Defang(HeaderValue(*p))
	}
	return v
}

var (
	controlRE = regexp.MustCompile(`[\x00-\x1f\x7f\x{2028}\x{2029}]+`)
	schemeRE  = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*):/+`)
	httpRE    = regexp.MustCompile(`(?i)h(tt)p`)
	wwwRE     = regexp.MustCompile(`(?i)\b(www)\.`)
)

// HeaderValue returns s on one line: CR, LF and other control characters
// become spaces, so a value can't add a header.
func HeaderValue(s string) string {
	return strings.TrimSpace(controlRE.ReplaceAllString(s, " "))
}

// Defang neutralizes anything in user-supplied text that a mail client
// could render as a link ("https://x" becomes "hxxps[:]//x", "www.x"
// becomes "www[.]x"), so a request's reason can't smuggle a link into an
// approver's mailbox.
func Defang(s string) string {
	s = schemeRE.ReplaceAllString(s, "$1[:]//")
	s = httpRE.ReplaceAllString(s, "hxxp")
	return wwwRE.ReplaceAllString(s, "$1[.]")
}
