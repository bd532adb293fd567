package cli

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/audit/record"
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
// -RecordType, -ObjectIds, -IPAddresses and -FreeText have no filter in
// the API: lockboxctl applies them to the pages it reads (psFilter).

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
		Use:     "Search-UnifiedAuditLog -StartDate TIME -EndDate TIME [-Operations OP] [-UserIds USER] [-RecordType TYPE] [-ObjectIds IDS] [-IPAddresses IPS] [-FreeText TEXT] [-ResultSize N] [--tenant T] [--cursor C]",
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
  -RecordType TYPE         only records of this type, named or numbered as Microsoft 365's
                           AuditRecordType: Lockbox writes ExchangeAdmin (1, the Customer Lockbox
                           cmdlets) and DataCenterSecurityCmdlet (10, operator actions); another
                           of Microsoft's types finds nothing, and a value that is none is refused
  -ObjectIds IDS           only records whose ObjectId is one of IDS, separated by commas, in any
                           case: a request id, a tenant, an approver, or an operator action's
                           service and path; * stands for any text (exchange/tenants/contoso/*)
  -IPAddresses IPS         only records whose ClientIP is one of IPS, separated by commas
                           (IPv4 or IPv6 addresses)
  -FreeText TEXT           only records holding TEXT, in any case, in one of their values
                           (a comment, a reason, a path, a parameter)
  -ResultSize N            at most N records, 1 to 5000 (100 when not given)
  -SessionCommand S        ReturnLargeSet or ReturnNextPreviewPage, taken so that Microsoft's
                           examples run: the records come newest first either way
  --tenant T               the tenant whose log to read (a tenant's users read their own)
  --cursor C               continue where a previous search stopped, with the same parameters
                           (only -ResultSize may change): the cursor of the "More records" hint
                           printed after a cut table, or the next_cursor of -o json or yaml.
                           The cursor of the "Newer records" hint of a search continued so,
                           or its prev_cursor, shows the -ResultSize records just newer than
                           its page instead, newest first; after such a search the hints say
                           "Newer records", going on upwards, and "Older records", back to
                           the page it came from

-RecordType, -ObjectIds, -IPAddresses and -FreeText are applied by lockboxctl to the records
of the range it reads, a page at a time, until it has -ResultSize of them or the range ends: a
long range with few matches takes longer than one the API filters. All the parameters given
must match; a list matches when one of its values does. A list holding an empty value (a,,b,
or "," from a variable that was not set) is refused rather than searched without it.

The cursor printed after a search with any of these four carries them, as the API's carries
--tenant, the dates, -Operations and -UserIds: given with other ones, or without them, it is
refused and nothing is sent. The same values spelled otherwise are the same: -RecordType 1
for ExchangeAdmin, -FreeText or -ObjectIds in another case, a list in another order.

Parameter names are case-insensitive, as in PowerShell: -startdate, -userids. -SessionId is
refused: rerun with --cursor, as the hint printed after a cut search says.`,
		DisableFlagParsing: true,
		Annotations:        withOutputs("csv"),
		ValidArgsFunction: e.completePowerShell([]psParam{
			{name: "StartDate"},
			{name: "EndDate"},
			{name: "Operations"},
			{name: "UserIds"},
			{name: "RecordType", values: completeFixed(recordTypeName(record.RecordTypeExchangeAdmin), recordTypeName(record.RecordTypeDataCenterSecurityCmdlet))},
			{name: "ObjectIds"},
			{name: "IPAddresses"},
			{name: "FreeText"},
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
	var recordType, objectIDs, ips, freeText string
	size := psResultSize
	fs.StringVar(&start, "StartDate", "", "")
	fs.StringVar(&end, "EndDate", "", "")
	fs.StringVar(&ops, "Operations", "", "")
	fs.StringVar(&users, "UserIds", "", "")
	fs.StringVar(&recordType, "RecordType", "", "")
	fs.StringVar(&objectIDs, "ObjectIds", "", "")
	fs.StringVar(&ips, "IPAddresses", "", "")
	fs.StringVar(&freeText, "FreeText", "", "")
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
	q := client.AuditQuery{Tenant: tenant, HasFrom: true, HasTo: true}
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
	var f psFilter
	var typeName string
	if given(fs, "RecordType") {
		if f.recordType, typeName, err = parseRecordType(recordType); err != nil {
			return e.usage("%s", err)
		}
		f.hasRecordType = true
	}
	if f.objectIDs, err = listValues(objectIDs); err != nil {
		return e.usage("-ObjectIds %s", err)
	}
	ipList, err := listValues(ips)
	if err != nil {
		return e.usage("-IPAddresses %s", err)
	}
	for _, s := range ipList {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return e.usage("-IPAddresses %q is not an IP address: give IPv4 or IPv6 addresses, separated by commas", s)
		}
		f.ips = append(f.ips, plainAddr(a))
	}
	f.freeText = strings.ToLower(freeText)
	// Before anything is sent: a cursor of other filters is refused as
	// the API refuses one of other filters of its own.
	if q.Cursor, err = unwrapPSCursor(cursor, f); err != nil {
		return e.usage("%s", err)
	}
	if f.hasRecordType && !f.recordType.Known() {
		// Microsoft's answer to a type no record of the range has:
		// nothing. The one record asked for lets the server refuse what
		// it would refuse otherwise (the caller's rights, the tenant, the
		// cursor) instead of reading the whole range for it.
		return e.noRecordsOfType(q, typeName)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	out := e.recordWriter()
	var pg pageCursors
	sent := cursors{q.Cursor: true}
	// A prev cursor's page holds the records just newer than its place,
	// counted from there (upwards), and its next cursor leads back down
	// to the page the cursor came from: -ResultSize records from it are
	// read page by page upwards, following each page's prev cursor, and
	// printed newest first once all are read.
	newer := newerCursor(q.Cursor)
	var held []client.AuditPage
	for left, first := size, true; ; first = false {
		p, err := e.searchPage(c, q, left, f, newer)
		if err != nil {
			return err
		}
		// A record that can't be read takes a place of the page, as a
		// record does; its fields being unknown, it passes every filter,
		// as it does the API's.
		left -= len(p.Records) + len(p.Unreadable)
		// A page may hold nothing while a cursor says the range goes
		// on: the API's scan budget of one call ran out before a match
		// (a decision among a window's many operator actions). Stopping
		// there printed no record, exit 0, while the log held them.
		// Each cursor moves on through the range, and follow refuses
		// one handed out twice, so the reading ends.
		var on string
		if newer {
			if first {
				pg.next = p.NextCursor
			}
			held = append(held, p)
			pg.prev, on = p.PrevCursor, p.PrevCursor
		} else {
			e.tellUnreadableRecords(p.Unreadable)
			if first {
				pg.prev = p.PrevCursor
			}
			if err := out.write(p.Records); err != nil {
				return err
			}
			pg.next, on = p.NextCursor, p.NextCursor
		}
		if left <= 0 || on == "" {
			break
		}
		if err := sent.follow(on); err != nil {
			return err
		}
		q.Cursor = on
	}
	for _, p := range slices.Backward(held) {
		e.tellUnreadableRecords(p.Unreadable)
		if err := out.write(p.Records); err != nil {
			return err
		}
	}
	// Printed, in the hint or the page's document, they carry f.
	pg.next, pg.prev = wrapPSCursor(pg.next, f), wrapPSCursor(pg.prev, f)
	if err := out.close(pg); err != nil {
		return err
	}
	if !e.g.output.structured() {
		e.tellPSCursors(pg, newer, size)
	}
	return nil
}

// tellPSCursors says on stderr where each of pg's cursors leads, as
// "audit search" does. Read downwards, the next cursor goes on to the
// records older than those shown and the prev cursor back to the newer
// ones. Read upwards from a prev cursor, it is the prev cursor that goes
// on, to the records newer still, and the next cursor leads back down to
// the page the search came from: "More records" naming it would have
// sent the user back to records seen before, so each hint then says
// which way it goes. A larger -ResultSize is offered beside the cursor
// that goes on only while size, the search's, leaves room for one.
func (e *env) tellPSCursors(pg pageCursors, newer bool, size int) {
	var larger string
	if size < psMaxResultSize {
		larger = fmt.Sprintf(" (or a larger -ResultSize, up to %d)", psMaxResultSize)
	}
	if newer {
		if pg.prev != "" {
			fmt.Fprintf(e.stderr, "Newer records: add --cursor %s%s.\n", clean(shellWord(pg.prev)), larger)
		}
		if pg.next != "" {
			fmt.Fprintf(e.stderr, "Older records: add --cursor %s.\n", clean(shellWord(pg.next)))
		}
		return
	}
	if pg.next != "" {
		fmt.Fprintf(e.stderr, "More records: add --cursor %s%s.\n", clean(shellWord(pg.next)), larger)
	}
	if pg.prev != "" {
		fmt.Fprintf(e.stderr, "Newer records: add --cursor %s.\n", clean(shellWord(pg.prev)))
	}
}

// searchPage reads the page of q.Cursor and returns it with the records f
// keeps, at most left of them (an unreadable record taking a place too).
// Without a filter of f's, the API filters, and a page of left entries is
// read. With one, a page of auditPageMax entries is read, whatever left is, as a
// selective filter would otherwise take a round trip for every few
// records; when more than left of them pass, the page is read again,
// ending at the left-th, so that its cursor continues right after the
// last record shown: none is skipped and none comes twice. Each such read
// is shorter than the one before and ends at the latest at left entries,
// which hold at most left records.
//
// The API counts a page's entries from its cursor's place: for a next
// cursor from the page's newest record down, for a prev cursor (newer)
// from its oldest up, so the left records kept are then the oldest that
// pass, the ones nearest the cursor.
func (e *env) searchPage(c *client.Client, q client.AuditQuery, left int, f psFilter, newer bool) (client.AuditPage, error) {
	q.Limit = min(left, auditPageMax)
	if !f.active() {
		return c.SearchAudit(e.ctx, q)
	}
	q.Limit = auditPageMax
	for {
		p, err := c.SearchAudit(e.ctx, q)
		if err != nil {
			return client.AuditPage{}, err
		}
		var kept []int
		for i, r := range p.Records {
			if f.match(r) {
				kept = append(kept, i)
			}
		}
		switch {
		case len(kept)+len(p.Unreadable) <= left:
			recs := make([]record.Record, 0, len(kept))
			for _, i := range kept {
				recs = append(recs, p.Records[i])
			}
			p.Records = recs
			return p, nil
		case len(kept) > left && newer:
			// The page's records are newest first: the left-th kept
			// counted from the oldest, and the records older than it.
			q.Limit = len(p.Records) - kept[len(kept)-left]
		case len(kept) > left:
			q.Limit = kept[left-1] + 1
		default:
			// Too many places only with the unreadable records, whose
			// place among the page's records the page does not tell.
			q.Limit = left
		}
	}
}

// newerCursor reports whether c, a cursor of the API's audit search, is
// a page's prev_cursor, which leads to the records newer than its place
// rather than older. The API's page does not say which way its cursor
// went, and its cursors are opaque to scripts; lockboxctl, released with
// the API, reads how audit/search.go writes them: base64url text starting
// "n:" (newerPrefix). A cursor it can't read is taken as a next cursor,
// as every cursor was before prev cursors.
func newerCursor(c string) bool {
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && strings.HasPrefix(string(b), "n:")
}

// noRecordsOfType answers a search for a record type Lockbox never
// writes: no records, once the API has taken the search's other
// parameters.
func (e *env) noRecordsOfType(q client.AuditQuery, name string) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	q.Limit = 1
	if _, err := c.SearchAudit(e.ctx, q); err != nil {
		return err
	}
	out := e.recordWriter()
	if err := out.close(pageCursors{}); err != nil {
		return err
	}
	if !e.g.output.structured() {
		fmt.Fprintf(e.stderr, "No records: Lockbox writes no records of type %s.\n", name)
	}
	return nil
}

// psFilter is what -RecordType, -ObjectIds, -IPAddresses and -FreeText
// ask of a record, none of which the API filters on. Each given must
// match; a list matches when one of its values does.
type psFilter struct {
	recordType    record.RecordType
	hasRecordType bool
	// objectIDs are patterns of ObjectId, compared without regard to
	// case, "*" standing for any text.
	objectIDs []string
	ips       []netip.Addr
	// freeText is -FreeText in lower case.
	freeText string
}

// active reports whether f filters at all.
func (f psFilter) active() bool {
	return f.hasRecordType || len(f.objectIDs) > 0 || len(f.ips) > 0 || f.freeText != ""
}

// match reports whether r passes f. It sees the record as the caller
// received it (a tenant's users get the tenant view), so it can't tell
// anything about fields the caller may not read.
func (f psFilter) match(r record.Record) bool {
	if f.hasRecordType && r.RecordType != f.recordType {
		return false
	}
	if len(f.objectIDs) > 0 && !anyLike(f.objectIDs, r.ObjectId) {
		return false
	}
	if len(f.ips) > 0 {
		a, err := netip.ParseAddr(r.ClientIP)
		if err != nil || !slices.Contains(f.ips, plainAddr(a)) {
			return false
		}
	}
	return f.freeText == "" || holdsText(r, f.freeText)
}

// plainAddr is a with an IPv4-mapped address unmapped and no zone, as
// Lockbox writes ClientIP: -IPAddresses ::ffff:192.0.2.7 is 192.0.2.7.
func plainAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// anyLike reports whether s matches one of patterns, as likeFold does.
func anyLike(patterns []string, s string) bool {
	for _, p := range patterns {
		if likeFold(p, s) {
			return true
		}
	}
	return false
}

// likeFold reports whether s matches pattern without regard to case, a
// "*" of pattern standing for any text, the wildcard Microsoft documents
// for -ObjectIds ("https://contoso.sharepoint.com/sites/test/*"). No
// other character is special: an ObjectId may hold "?" or "[".
func likeFold(pattern, s string) bool {
	pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// holdsText reports whether one of r's values, as the caller received
// the record, holds text (in lower case) without regard to case. Values
// only: a field's name is in every record, and numbers are codes
// (RecordType, UserType), not text a search is after.
func holdsText(r record.Record, text string) bool {
	b, err := json.Marshal(r)
	if err != nil {
		return false
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return false
	}
	return valueHolds(v, text)
}

func valueHolds(v any, text string) bool {
	switch v := v.(type) {
	case string:
		return strings.Contains(strings.ToLower(v), text)
	case []any:
		for _, x := range v {
			if valueHolds(x, text) {
				return true
			}
		}
	case map[string]any:
		for _, x := range v {
			if valueHolds(x, text) {
				return true
			}
		}
	}
	return false
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

// listValues returns the values of a PowerShell list parameter, separated
// by commas as PowerShell writes an array ("Value1","Value2"), each
// without its quotes. An empty one ("a,,b") is refused: in a script it is
// a variable that was not set, and dropped it would widen the search.
func listValues(v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	var vals []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.Trim(strings.TrimSpace(s), `"'`); s == "" {
			return nil, fmt.Errorf("%q holds an empty value: leave it out rather than give it no value", v)
		}
		vals = append(vals, s)
	}
	return vals, nil
}

// oneValue returns the one value of a PowerShell list parameter (values
// separated by commas, as PowerShell writes an array). Lockbox's audit
// search filters on one value, so several are refused rather than some
// dropped; an empty one is refused as listValues refuses it, since "," or
// "$unset,x" dropped to nothing would search every operation or user.
func oneValue(param, v, what string) (string, error) {
	vals, err := listValues(v)
	if err != nil {
		return "", fmt.Errorf("%s %w", param, err)
	}
	switch {
	case len(vals) > 1:
		return "", fmt.Errorf("%s names %d values: Lockbox searches one %s at a time, so run the search once for each", param, len(vals), what)
	case len(vals) == 1:
		return vals[0], nil
	}
	return "", nil
}
