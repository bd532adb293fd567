package cli

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockbox-oss/lockbox/api/client"
)

// Search-UnifiedAuditLog is how Microsoft's Customer Lockbox documentation
// has an admin find the decisions and the engineers' actions in Exchange
// Online PowerShell:
//
//	Search-UnifiedAuditLog -StartDate ... -EndDate ... -Operations Set-AccessToCustomerDataRequest
//	Search-UnifiedAuditLog -StartDate ... -EndDate ... -UserIds "Microsoft Operator"
//
// It is "audit search" with the cmdlet's parameters and their meaning:
// both dates required, a date meaning its midnight (UTC), a time without
// a zone read as UTC, and at most -ResultSize records (100 unless given).

const (
	// psResultSize and psMaxResultSize are -ResultSize's default and
	// largest value, as Microsoft documents them.
	psResultSize    = 100
	psMaxResultSize = 5000
	// auditPageMax is the API's largest page of records.
	auditPageMax = 1000
)

func (e *env) searchUnifiedAuditLogCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "Search-UnifiedAuditLog -StartDate TIME -EndDate TIME [-Operations OP] [-UserIds USER] [-ResultSize N] [--tenant T] [--cursor C]",
		Short:   "search the audit log as PowerShell's cmdlet does, newest first",
		GroupID: groupCompat,
		Long: `Search the audit log as Exchange Online PowerShell's Search-UnifiedAuditLog does, newest first.

  -StartDate TIME          required: records created at or after TIME
  -EndDate TIME            required: records created at or before TIME
                           TIME is an RFC 3339 time ("2026-05-06 14:30:00z"), a time without a
                           zone, read as UTC ("2026-05-06 14:30:00"), or a date, meaning its
                           midnight UTC (-EndDate 2026-05-08 ends as the 8th begins). A date
                           with slashes (5/1/2026) is refused: its order is the computer's
                           short date format, which lockboxctl can't know.
  -Operations OP           only records of this operation, e.g. Set-AccessToCustomerDataRequest
                           or Get-Mailbox (one: Lockbox searches one operation at a time)
  -UserIds USER            only records of this user, e.g. "Microsoft Operator" (one)
  -ResultSize N            at most N records, 1 to 5000 (100 when not given)
  -SessionCommand S        ReturnLargeSet or ReturnNextPreviewPage, taken so that Microsoft's
                           examples run: the records come newest first either way
  --tenant T               the tenant whose log to read (a tenant's users read their own)
  --cursor C               continue where a previous search stopped (with the same filters)

Parameter names are case-insensitive, as in PowerShell: -startdate, -userids. -SessionId is
refused: rerun with --cursor, as the hint printed after a cut search says.`,
		DisableFlagParsing: true,
		Annotations:        withOutputs("csv"),
		ValidArgsFunction: e.completePowerShell([]psParam{
			{name: "StartDate"},
			{name: "EndDate"},
			{name: "Operations"},
			{name: "UserIds"},
			{name: "ResultSize"},
			{name: "SessionCommand", values: completeFixed("ReturnLargeSet", "ReturnNextPreviewPage")},
			{name: "tenant", values: e.completeTenants},
			{name: "cursor"},
		}),
		RunE: e.runSearchUnifiedAuditLog,
	}
}

func (e *env) runSearchUnifiedAuditLog(cmd *cobra.Command, argv []string) error {
	fs := e.psFlagSet(cmd.Name())
	var start, end, ops, users, session, sessionID, tenant, cursor string
	size := psResultSize
	fs.StringVar(&start, "StartDate", "", "")
	fs.StringVar(&end, "EndDate", "", "")
	fs.StringVar(&ops, "Operations", "", "")
	fs.StringVar(&users, "UserIds", "", "")
	fs.IntVar(&size, "ResultSize", psResultSize, "")
	fs.StringVar(&session, "SessionCommand", "", "")
	fs.StringVar(&sessionID, "SessionId", "", "")
	fs.StringVar(&tenant, "tenant", "", "")
	fs.StringVar(&cursor, "cursor", "", "")
	if err := e.psParse(cmd, fs, argv); err != nil {
		return err
	}
	visit := func(fn func(name, value string)) {
		fs.Visit(func(f *flag.Flag) { fn(f.Name, f.Value.String()) })
	}
	if err := e.notUTF8(visit); err != nil {
		return err
	}
	if err := e.emptyFilter(visit); err != nil {
		return err
	}
	if given(fs, "SessionId") {
		// Microsoft pages by running the same command again with the
		// same session id until it returns nothing; Lockbox would return
		// the same records each time, and such a loop would never end.
		return e.usage("-SessionId is not taken: Lockbox has no search sessions; give a -ResultSize up to %d, and continue a longer search with the --cursor it prints", psMaxResultSize)
	}
	if given(fs, "SessionCommand") && !strings.EqualFold(session, "ReturnLargeSet") && !strings.EqualFold(session, "ReturnNextPreviewPage") {
		return e.usage("-SessionCommand %q must be ReturnLargeSet or ReturnNextPreviewPage", session)
	}
	var missing []string
	for _, p := range []struct{ name, v string }{{"-StartDate", start}, {"-EndDate", end}} {
		if strings.TrimSpace(p.v) == "" {
			missing = append(missing, p.name)
		}
	}
	if len(missing) > 0 {
		return e.usage("missing %s (Search-UnifiedAuditLog needs both dates)", strings.Join(missing, " and "))
	}
	q := client.AuditQuery{Tenant: tenant, Cursor: cursor, HasFrom: true, HasTo: true}
	var err error
	if q.From, err = parsePSDate(start); err != nil {
		return e.usage("-StartDate %q %s", start, err)
	}
	if q.To, err = parsePSDate(end); err != nil {
		return e.usage("-EndDate %q %s", end, err)
	}
	if q.To.Before(q.From) {
		return e.usage("-EndDate must not be before -StartDate")
	}
	if q.Operation, err = oneValue("-Operations", ops, "operation"); err != nil {
		return e.usage("%s", err)
	}
	if q.User, err = oneValue("-UserIds", users, "user"); err != nil {
		return e.usage("%s", err)
	}
	if size < 1 || size > psMaxResultSize {
		return e.usage("-ResultSize %d must be from 1 to %d", size, psMaxResultSize)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	out := e.recordWriter()
	var pg pageCursors
	sent := cursors{q.Cursor: true}
	for left, first := size, true; ; first = false {
		q.Limit = min(left, auditPageMax)
		p, err := c.SearchAudit(e.ctx, q)
		if err != nil {
			return err
		}
		e.tellUnreadableRecords(p.Unreadable)
		if first {
			pg.prev = p.PrevCursor
		}
		if err := out.write(p.Records); err != nil {
			return err
		}
		// A record that can't be read takes a place of the page, as a
		// record does.
		read := len(p.Records) + len(p.Unreadable)
		left -= read
		pg.next = p.NextCursor
		if left <= 0 || pg.next == "" || read == 0 {
			break
		}
		if err := sent.follow(pg.next); err != nil {
			return err
		}
		q.Cursor = pg.next
	}
	if err := out.close(pg); err != nil {
		return err
	}
	if pg.next != "" && !e.g.output.structured() {
		fmt.Fprintf(e.stderr, "More records: add --cursor %s (or a larger -ResultSize, up to %d).\n", clean(shellWord(pg.next)), psMaxResultSize)
	}
	return nil
}

// parsePSDate reads -StartDate or -EndDate as Search-UnifiedAuditLog
// does: an RFC 3339 time, a time without a zone in UTC, or a date at its
// midnight (UTC). The error says what is wrong with the value.
func parsePSDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := parseRFC3339(s); err == nil {
		return t, nil
	}
	for _, layout := range []string{
		time.DateOnly, time.DateTime, "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02T15:04",
	} {
		// time.Parse reads a time without a zone as UTC, as Microsoft
		// documents these parameters.
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if strings.Contains(s, "/") {
		return time.Time{}, errors.New("is in a short date format, whose order (month or day first) is the computer's: give it as 2026-05-01, or an RFC 3339 time")
	}
	return time.Time{}, errors.New(`must be a date such as 2026-05-01, a time such as "2026-05-01 14:30:00z", or an RFC 3339 time`)
}

// oneValue returns the one value of a PowerShell list parameter (values
// separated by commas, as PowerShell writes an array). Lockbox's audit
// search filters on one value, so several are refused rather than some
// dropped.
func oneValue(param, v, what string) (string, error) {
	var vals []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.Trim(strings.TrimSpace(s), `"'`); s != "" {
			vals = append(vals, s)
		}
	}
	switch {
	case len(vals) > 1:
		return "", fmt.Errorf("%s names %d values: Lockbox searches one %s at a time, so run the search once for each", param, len(vals), what)
	case len(vals) == 1:
		return vals[0], nil
	}
	return "", nil
}
