package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf16"

	"go.yaml.in/yaml/v3"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit/record"
)

// timeLayout shows times in UTC, sortable and unambiguous across the
// provider's and the tenant's time zones.
const timeLayout = "2006-01-02 15:04:05Z"

// writeJSON prints v as indented JSON, with the characters clean escapes
// escaped (escapeUnsafe).
func writeJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(escapeUnsafe(b.Bytes(), false))
	return err
}

// unsafeHigh reports the runes of unsafeRune that encoding/json writes as
// they are: those from DEL on (C1 controls such as U+009B, which some
// terminals read as the start of an escape sequence; bidirectional
// overrides and other format characters). JSON escapes those below.
func unsafeHigh(r rune) bool { return r >= 0x7f && unsafeRune(r) }

// escapeUnsafe writes the unsafeHigh runes of b, JSON (or, with yaml,
// YAML) in which they can only stand inside strings that take escapes, as
// such escapes, so -o json and -o yaml show a server's text as the tables
// do (clean), and it still reads back as itself. Past U+FFFF, JSON takes a
// UTF-16 surrogate pair and YAML a \U escape.
func escapeUnsafe(b []byte, yaml bool) []byte {
	if bytes.IndexFunc(b, unsafeHigh) < 0 {
		return b
	}
	var out bytes.Buffer
	for _, r := range string(b) {
		if !unsafeHigh(r) {
			out.WriteRune(r)
			continue
		}
		switch {
		case yaml && r > 0xffff:
			fmt.Fprintf(&out, `\U%08x`, r)
		default:
			for _, u := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(&out, `\u%04x`, u)
			}
		}
	}
	return out.Bytes()
}

// writeYAML prints v as YAML with the field names and order of its JSON,
// the API's: v goes through encoding/json, and the JSON is read as a YAML
// document (JSON is YAML) and written back in block style.
func writeYAML(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	// encoding/json writes a NEL (U+0085) as is, and YAML reads one in a
	// quoted string as a line break, folded to a space: a reason holding
	// one came out of -o yaml with a space instead; and other C1 controls
	// it refuses outright. Escaped, they stay themselves.
	b = escapeUnsafe(b, true)
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err
	}
	blockStyle(&doc)
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	// The encoder writes what YAML deems printable as is (a bidirectional
	// override is); blockStyle double-quoted every string holding one, so
	// it can be escaped there.
	_, err = w.Write(escapeUnsafe(out.Bytes(), true))
	return err
}

// blockStyle clears the flow and quoting styles the JSON brought. A
// string holding an unsafeHigh rune is double-quoted, the one style with
// escapes, so writeYAML can escape it; so is one that a YAML reader could
// take for another type (plainString).
func blockStyle(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.ScalarNode && (strings.IndexFunc(n.Value, unsafeHigh) >= 0 || n.ShortTag() == "!!str" && !plainString(n.Value)) {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// yaml11Implicit matches the plain scalars YAML 1.1 reads as another type
// than a string: its type repository's bool, int, float, null, timestamp,
// merge and value (yaml.org/type), as PyYAML, SnakeYAML or yaml.v2 read
// them.
var yaml11Implicit = regexp.MustCompile(`^(?:` +
	`y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF` + // bool
	`|[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+` + // int
	`|[-+]?(?:[0-9][0-9_]*)?\.[0-9.]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*` + // float
	`|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)` +
	`|~|null|Null|NULL|` + // null
	`|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*Z|[-+][0-9][0-9]?(?::[0-9][0-9])?)?)?` + // timestamp
	`|<<|=)$`) // merge, value

// plainString reports whether s may be written unquoted and still read
// back as a string by YAML 1.1 readers as by 1.2 ones. The encoder quotes
// what YAML 1.2 would read as another type, not what 1.1 would: it wrote
// an audit record's CreationTime (2026-03-04T10:00:00, a 1.1 timestamp),
// "no", "on" or "y" (1.1 booleans) and "1:20" (a 1.1 base-60 integer)
// plain, and a 1.1 reader changed their type.
func plainString(s string) bool { return !yaml11Implicit.MatchString(s) }

// emit prints the answer v of a command in the -o format: v itself as JSON
// or YAML, ids one a line for -o id, else the table.
func (e *env) emit(v any, ids []string, table func(io.Writer) error) error {
	switch e.g.output {
	case "json":
		return writeJSON(e.stdout, v)
	case "yaml":
		return writeYAML(e.stdout, v)
	case "id":
		for _, id := range ids {
			if _, err := fmt.Fprintln(e.stdout, clean(id)); err != nil {
				return err
			}
		}
		return nil
	}
	return table(e.stdout)
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

// shellWord is s as one word of a POSIX shell command line, for a hint
// the user copies onto one: as it is when every character is one the
// shell reads as itself, else single-quoted. A cursor is the server's
// text, and "--cursor x;rm -rf ~" would have run the rm.
func shellWord(s string) string {
	plain := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("-_.=+/:,@%", r))
	}) < 0
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
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
// end of its access window, for one that ended the time it ended. A
// revoked request's window end, which it keeps, read as access lasting
// until then to the administrator who had just revoked it.
func printRequests(w io.Writer, reqs []wire.Request) error {
	tw := newTable(w)
	row(tw, "ID", "TENANT", "SERVICE", "STATE", "REQUESTER", "CREATED", "EXPIRES/DECIDE BY")
	for _, r := range reqs {
		ends := fmtTimePtr(r.ExpiresAt)
		if r.State.Pending() && r.DecideBy != nil {
			ends = fmtTime(*r.DecideBy)
		} else if at, ok := endedAt(r); ok {
			ends = fmtTime(at)
		}
		row(tw, cell(r.ID), cell(r.Tenant), cell(r.Service), cell(string(r.State)), cell(r.Requester),
			fmtTime(r.CreatedAt), ends)
	}
	return tw.Flush()
}

// endedAt is when r reached the state it ended in: the API's ended_at.
// False while r is pending or approved, or when neither ended_at nor its
// history shows when.
func endedAt(r wire.Request) (time.Time, bool) {
	if r.State.Pending() || r.State == wire.StateApproved {
		return time.Time{}, false
	}
	if r.EndedAt != nil {
		return *r.EndedAt, true
	}
	// A server older than ended_at does not send it: the time of the last
	// event of the history that led to r's state is what the server
	// derives it from (grants.EndedAt), so the two can't disagree.
	for i := len(r.History) - 1; i >= 0; i-- {
		if r.History[i].To == r.State {
			return r.History[i].At, true
		}
	}
	return time.Time{}, false
}

// requestIDs are the ids of reqs, for -o id.
func requestIDs(reqs ...wire.Request) []string {
	ids := make([]string, len(reqs))
	for i, r := range reqs {
		ids[i] = r.ID
	}
	return ids
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
	ended := "-"
	if at, ok := endedAt(r); ok {
		ended = fmtTime(at)
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
		{"Ended:", ended},
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

func printSettings(w io.Writer, tenant string, s wire.Settings, more ...[2]string) error {
	addrs := "-"
	if len(s.NotificationAddresses) > 0 {
		addrs = clean(strings.Join(s.NotificationAddresses, ", "))
	}
	tw := newTable(w)
	row(tw, "Tenant:", cell(tenant))
	row(tw, "Customer Lockbox:", onOff(s.LockboxEnabled))
	row(tw, "Notification addresses:", addrs)
	for _, r := range more {
		row(tw, r[0], r[1])
	}
	return tw.Flush()
}

// printApprovers prints a tenant's approver assignments: those that count,
// then those that approve nothing, each with why, so the table never shows
// as an approver someone whose approval Lockbox refuses.
func printApprovers(w io.Writer, l wire.ApproverList) error {
	tw := newTable(w)
	row(tw, "APPROVER", "COUNTS")
	for _, u := range l.Approvers {
		row(tw, cell(u), "yes")
	}
	for _, n := range l.NotCounting {
		row(tw, cell(n.User), "no: "+clean(n.Reason))
	}
	return tw.Flush()
}

// printAudit prints audit records with the unified audit log's column
// names. The date is CreationDate, as -o csv, the export and Microsoft's
// own tooling (Search-UnifiedAuditLog's results, the audit search's
// export) head it: CreationTime is its name inside a record's JSON. The
// tenant is its short name (LockboxTenant): the GUID in OrganizationId is
// in -o json and csv. An operator action's query comes last, after the
// columns scripts already read by position, and because it may be 2 KiB
// long.
func printAudit(w io.Writer, recs []record.Record) error {
	tw := newTable(w)
	row(tw, "CreationDate", "LockboxTenant", "Operation", "UserId", "ApprovalDecision", "ObjectId", "ClientIP", "LockboxQuery")
	for _, r := range recs {
		row(tw, fmtTime(r.CreationTime.Time), cell(r.LockboxTenant), cell(r.Operation), cell(r.UserId), cell(r.ApprovalDecision),
			cell(r.ObjectId), cell(r.ClientIP), queryCell(r))
	}
	return tw.Flush()
}

// queryCell is r's query, and when the record keeps only its start, how
// long it was: a cut query must not read as the whole one.
func queryCell(r record.Record) string {
	q := cell(r.LockboxQuery)
	if r.LockboxQueryLength != 0 {
		q += fmt.Sprintf(" (first %d of %d bytes)", len(r.LockboxQuery), r.LockboxQueryLength)
	}
	return q
}
