package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit/record"
)

// timeLayout shows times in UTC, sortable and unambiguous across the
// provider's and the tenant's time zones.
const timeLayout = "2006-01-02 15:04:05Z"

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// clean makes text from the server safe to print on a terminal. A request's
// reason or comment is written by another party (the operator asking for
// access, for one); escape sequences or bidirectional overrides in it could
// rewrite what an approver sees before deciding, so control and format
// characters are shown escaped instead of interpreted.
func clean(s string) string {
	if strings.IndexFunc(s, unsafeRune) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

// cell is clean text for a table cell, "-" when empty.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return clean(s)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeLayout)
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtTime(*t)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

func row(w io.Writer, cells ...string) {
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// printRequests prints requests as a table. The last column is when the
// request stops mattering: for a pending request the time by which its
// current stage must be decided (or it expires), for an approved one the
// end of its access window.
func printRequests(w io.Writer, reqs []wire.Request) error {
	tw := newTable(w)
	row(tw, "ID", "TENANT", "SERVICE", "STATE", "REQUESTER", "CREATED", "EXPIRES/DECIDE BY")
	for _, r := range reqs {
		ends := fmtTimePtr(r.ExpiresAt)
		if r.State.Pending() && r.DecideBy != nil {
			ends = fmtTime(*r.DecideBy)
		}
		row(tw, cell(r.ID), cell(r.Tenant), cell(r.Service), cell(string(r.State)), cell(r.Requester),
			fmtTime(r.CreatedAt), ends)
	}
	return tw.Flush()
}

// printIDs prints the requests' ids, one a line (-o id).
func printIDs(w io.Writer, reqs []wire.Request) error {
	for _, r := range reqs {
		if _, err := fmt.Fprintln(w, clean(r.ID)); err != nil {
			return err
		}
	}
	return nil
}

// printRequest prints one request: its row, every field and its history.
func printRequest(w io.Writer, r wire.Request) error {
	if err := printRequests(w, []wire.Request{r}); err != nil {
		return err
	}
	acts := "(the service's pre-approved activities)"
	if len(r.Activities) > 0 {
		acts = clean(strings.Join(r.Activities, ", "))
	}
	fmt.Fprintln(w)
	tw := newTable(w)
	for _, f := range [][2]string{
		{"Service request:", cell(r.ServiceRequest)},
		{"Reason:", cell(r.Reason)},
		{"Duration:", r.Duration.String()},
		{"Activities:", acts},
		{"Decide by:", fmtTimePtr(r.DecideBy)},
		{"Manager approver:", cell(r.ManagerApprover)},
		{"Approver:", cell(r.Approver)},
		{"Approved:", fmtTimePtr(r.ApprovedAt)},
		{"Expires:", fmtTimePtr(r.ExpiresAt)},
	} {
		row(tw, f[0], f[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "History:")
	if len(r.History) == 0 {
		fmt.Fprintln(w, "  (none)")
		return nil
	}
	tw = newTable(w)
	row(tw, "  TIME", "ACTION", "ACTOR", "FROM", "TO", "CLIENT IP", "COMMENT")
	for _, ev := range r.History {
		actor := cell(ev.Actor)
		if ev.ActorKind != "" {
			actor += " (" + clean(string(ev.ActorKind)) + ")"
		}
		row(tw, "  "+fmtTime(ev.At), cell(string(ev.Action)), actor, cell(string(ev.From)), cell(string(ev.To)),
			cell(ev.ClientIP), cell(ev.Comment))
	}
	return tw.Flush()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func printSettings(w io.Writer, tenant string, s wire.Settings) error {
	addrs := "-"
	if len(s.NotificationAddresses) > 0 {
		addrs = clean(strings.Join(s.NotificationAddresses, ", "))
	}
	tw := newTable(w)
	row(tw, "Tenant:", cell(tenant))
	row(tw, "Customer Lockbox:", onOff(s.LockboxEnabled))
	row(tw, "Notification addresses:", addrs)
	return tw.Flush()
}

func printApprovers(w io.Writer, users []string) error {
	tw := newTable(w)
	row(tw, "APPROVER")
	for _, u := range users {
		row(tw, cell(u))
	}
	return tw.Flush()
}

// printAudit prints audit records with the unified audit log's column
// names. The tenant is its short name (LockboxTenant): the GUID in
// OrganizationId is in -o json and csv.
func printAudit(w io.Writer, recs []record.Record) error {
	tw := newTable(w)
	row(tw, "CreationTime", "LockboxTenant", "Operation", "UserId", "ApprovalDecision", "ObjectId", "ClientIP")
	for _, r := range recs {
		row(tw, fmtTime(r.CreationTime.Time), cell(r.LockboxTenant), cell(r.Operation), cell(r.UserId), cell(r.ApprovalDecision),
			cell(r.ObjectId), cell(r.ClientIP))
	}
	return tw.Flush()
}
