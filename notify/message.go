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
	// TemplateAlreadyDecided tells the tenant's other approvers that one
	// of them decided (tenant audience).
	TemplateAlreadyDecided Template = "already_decided"
	// TemplateExpiryWarning warns the engineer the window ends soon
	// (provider audience).
	TemplateExpiryWarning Template = "expiry_warning"
)

// forTenant reports whether t goes to the tenant's people.
func (t Template) forTenant() bool {
	return t == TemplatePendingCustomer || t == TemplateAlreadyDecided
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
		ev.Event.Actor, ev.Event.ClientIP = grants.ProviderLabel(ev.Event.Action), ""
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
	case KindExpiring:
		what = "ends at " + v.ExpiresAt + ", in " + v.Left
	default:
		what = v.Outcome
	}
	return head + " " + what
}

// sanitized makes every value safe to show: one line, no control
// characters, and nothing a mail client would turn into a link.
func (v view) sanitized() view {
	for _, p := range []*string{&v.ID, &v.Tenant, &v.Service, &v.ServiceRequest, &v.Reason, &v.Duration,
		&v.DecideBy, &v.Activities, &v.Requester, &v.Left,
		&v.State, &v.Outcome, &v.Decision, &v.Actor, &v.At, &v.Comment, &v.ExpiresAt} {
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
