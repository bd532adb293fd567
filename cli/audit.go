package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit/record"
)

func (e *env) auditCommand() *cobra.Command {
	return e.groupOf("audit", "search, export or verify a tenant's audit log, or check the SIEM's copy of it", groupAudit,
		e.auditSearch(), e.auditExport(), e.auditVerify(), e.auditCheckSIEM())
}

// auditFlags are the filters "audit search" and "audit export" share.
type auditFlags struct {
	tenant, from, to, user, operation, requestID string
}

func (e *env) registerAuditFlags(cmd *cobra.Command, a *auditFlags) {
	f := cmd.Flags()
	f.StringVar(&a.tenant, "tenant", "", "tenant whose audit log to read; without it, a tenant's users read their own tenant's, the provider's audit readers every tenant's")
	f.StringVar(&a.from, "from", "", "only records created at or after TIME (RFC 3339, or a date)")
	f.StringVar(&a.to, "to", "", "only records created at or before TIME (RFC 3339, or a date: up to its end, the whole day included)")
	f.StringVar(&a.user, "user", "", `only records of this UserId, e.g. "Microsoft Operator"`)
	f.StringVar(&a.operation, "operation", "", "only records of this operation, e.g. Get-Mailbox")
	f.StringVar(&a.requestID, "request-id", "", "only records tied to this lockbox request")
	_ = cmd.RegisterFlagCompletionFunc("tenant", e.completeTenants)
	_ = cmd.RegisterFlagCompletionFunc("request-id", e.completeRequests(nil))
}

func (e *env) auditQuery(a auditFlags) (client.AuditQuery, error) {
	q := client.AuditQuery{Tenant: a.tenant, User: a.user, Operation: a.operation, RequestID: a.requestID}
	// A bound given is sent, also 0001-01-01T00:00:00Z: Go's zero time,
	// taken for no bound, made --to of it read every record.
	for _, f := range []struct {
		name, v string
		dst     *time.Time
		set     *bool
		parse   func(string) (time.Time, error)
	}{{"--from", a.from, &q.From, &q.HasFrom, parseTime}, {"--to", a.to, &q.To, &q.HasTo, parseUpperTime}} {
		if f.v == "" {
			continue
		}
		t, err := f.parse(f.v)
		if err != nil {
			return q, e.usage("%s %q must be an RFC 3339 time such as 2026-01-02T15:04:05Z, or a date such as 2026-01-02", f.name, f.v)
		}
		*f.dst, *f.set = t, true
	}
	if q.HasFrom && q.HasTo && q.To.Before(q.From) {
		return q, e.usage("--to must not be before --from")
	}
	return q, nil
}

func (e *env) auditSearch() *cobra.Command {
	var (
		af     auditFlags
		limit  int
		cursor string
		all    bool
	)
	cmd := &cobra.Command{
		Use:   "search",
		Short: "search a tenant's audit log, newest first",
		Long: `Search a tenant's audit log, newest first.

A page that more records follow says on stderr "More records: add --cursor C (or use
--all)." and one after the first "Newer records: add --cursor P." for the records just newer
than it. A page reached with such a P holds the records just newer than the page it came
from: there "Newer records" names the cursor on to the records newer still, and "Older
records: add --cursor C (or use --all)." the one back down to the page it came from.

An audit record whose stored record can't be read is named on stderr. With -o json or
-o yaml the document also names it, as the API's page does:
"unreadable": [{"stream_id": "...", "tenant": "...", "error": "cannot be read"}], absent
when there is none, so a script can tell the page is incomplete.`,
		Args:        args(),
		Annotations: withOutputs("csv"),
		RunE: func(*cobra.Command, []string) error {
			q, err := e.auditQuery(af)
			if err != nil {
				return err
			}
			if limit < 0 {
				return e.usage("--limit must not be negative")
			}
			q.Limit, q.Cursor = limit, cursor
			c, err := e.client()
			if err != nil {
				return err
			}
			out := e.recordWriter()
			var pg pageCursors
			sent := cursors{q.Cursor: true}
			for first := true; ; first = false {
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
				pg.next = p.NextCursor
				if !all || pg.next == "" {
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
			if !e.g.output.structured() {
				e.tellCursors(pg, newerCursor(cursor), "records")
			}
			return nil
		},
	}
	e.registerAuditFlags(cmd, &af)
	f := cmd.Flags()
	f.IntVar(&limit, "limit", 0, "at most N records a page (the server's default when 0)")
	f.StringVar(&cursor, "cursor", "", "go on to the older or the newer records, with the cursor a page's hint named for them (the same filters; --limit may change)")
	f.BoolVar(&all, "all", false, "follow the pages to the end of the search")
	return cmd
}

func (e *env) auditExport() *cobra.Command {
	var (
		af              auditFlags
		format, outFile string
	)
	cmd := &cobra.Command{
		Use:         "export [--format csv|jsonl] [--out FILE]",
		Short:       "write every matching audit record, as JSON Lines or as the CSV of the Microsoft 365 audit export",
		Args:        args(),
		Annotations: withOutputs("csv"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := e.auditQuery(af)
			if err != nil {
				return err
			}
			if _, err := record.ParseExportFormat(format); err != nil {
				return e.usage("--%s", err)
			}
			// -o csv is what "audit search" and the help offer for
			// audit records: export takes it, and -o json, as the
			// --format they mean, rather than write JSON Lines whatever
			// -o said.
			var fromOutput string
			switch string(e.g.output) {
			case "csv":
				fromOutput = "csv"
			case "json":
				fromOutput = "jsonl"
			case "yaml":
				return e.usage("-o yaml is not available for %q: it writes JSON Lines (--format jsonl, the default, or -o json) or CSV (--format csv, or -o csv)", commandWords(cmd))
			}
			if fromOutput != "" {
				if cmd.Flags().Changed("format") && format != fromOutput {
					return e.usage("--format %s and -o %s disagree: give one of them", format, e.g.output)
				}
				format = fromOutput
			}
			if outFile == "" && onTerminal(e.stdout) {
				// The export is the raw log for a file, unlike every
				// other output, which is cleaned for a screen: comments
				// and user ids other parties wrote reach the terminal as
				// they are, escape sequences and all, and a whole log
				// scrolls past. curl refuses binary output the same way.
				return e.usage("audit export writes the raw log, not for a terminal: use --out FILE or redirect stdout (> FILE, | less)")
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			if outFile == "" {
				return c.ExportAudit(e.ctx, q, format, e.stdout)
			}
			// Write beside the file and rename once complete, so a cut-off
			// export never looks like a whole one.
			f, err := os.CreateTemp(filepath.Dir(outFile), "."+filepath.Base(outFile)+".*.partial")
			if err != nil {
				return outFileError(outFile, err)
			}
			defer os.Remove(f.Name())
			if err := c.ExportAudit(e.ctx, q, format, f); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return outFileError(outFile, err)
			}
			if err := os.Rename(f.Name(), outFile); err != nil {
				return outFileError(outFile, err)
			}
			return nil
		},
	}
	e.registerAuditFlags(cmd, &af)
	cmd.Flags().StringVar(&format, "format", "jsonl", "jsonl (one record a line; also -o json) or csv (the columns CreationDate, UserIds, Operations and AuditData, as the Microsoft 365 audit export has them; also -o csv)")
	cmd.Flags().StringVar(&outFile, "out", "", "write to FILE (only once the export is complete) instead of stdout, which must not be a terminal")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"jsonl", "csv"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// outFileError is err of writing --out's file through the temporary file
// beside it.
func outFileError(outFile string, err error) error { return flagFileError("--out", outFile, err) }

// flagFileError is err of reading or writing the file given to flag, in
// place or through a temporary file beside it: it names the file the user
// gave, not the temporary one, which the user never heard of and which is
// gone by the time they look.
func flagFileError(flag, path string, err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		err = pe.Err
	} else if le, ok := errors.AsType[*os.LinkError](err); ok {
		err = le.Err
	}
	return fmt.Errorf("%s %s: %w", flag, path, err)
}

// onTerminal reports whether w is a terminal, not a file, a pipe or
// /dev/null (a character device too, which a mode check would take for
// one).
func onTerminal(w io.Writer) bool {
	if s, ok := w.(stdoutWriter); ok {
		w = s.w
	}
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// errChainBroken makes "audit verify" exit 4 (exitChainBroken) when the
// chain is broken, after printing the report.
var errChainBroken = errors.New("the audit chain does not verify")

func (e *env) auditVerify() *cobra.Command {
	var tenant, sealFile string
	cmd := &cobra.Command{
		Use:   "verify [--tenant T] [--seal-file F]",
		Short: "re-compute a tenant's audit hash chain and report the first broken or missing record (exit 4 when broken)",
		Long: `Re-compute a tenant's audit hash chain and report the first broken or missing record.

Exit status: 0 when the chain is intact; 4 when it is broken (a record edited, deleted, moved
from another tenant's log or slipped in), after the report, also when stdout could not take
it (a reader gone, a full disk); 1 when it could not be checked (the API unreachable, a server
error), 3 when the API refused the call (you may not read the log, the tenant is not
onboarded), 2 for a wrong command line: only 4 says the log was tampered with.

The seal stored beside the chain is within reach of whoever can write to Redis: deleted after a
rewrite, the next seal is made over the rewritten chain. With --seal-file F, the chain is also
checked against the seal kept in F (when F exists and is not empty: a seal token, or a seal
line as the SIEM holds it), and once the chain is found
intact its seal replaces F's (written beside F and renamed over it, mode 0600; never an older
one), so a job run on a schedule keeps the latest seal outside Redis. A broken chain leaves F as
it was; F that can't be read or written is exit 1.`,
		Args: args(),
		RunE: func(*cobra.Command, []string) error {
			// Without --tenant the server verifies a tenant user's own
			// tenant, and tells provider callers to name one.
			c, err := e.client()
			if err != nil {
				return err
			}
			kept := ""
			if sealFile != "" {
				if kept, err = readSealFile(sealFile); err != nil {
					return err
				}
			}
			v, err := c.VerifyAuditSince(e.ctx, tenant, kept)
			if err != nil {
				return tenantFlagNeeded(err, tenant)
			}
			if kept != "" && v.SinceSeal == "" {
				// A check asked for and not made must not read as passed.
				return fmt.Errorf("the server did not check the seal kept in %s (it sent no since_seal): it may be older than this lockboxctl", sealFile)
			}
			var keep string
			var saveErr error
			if sealFile != "" {
				if keep = sealToKeep(v, kept); keep != "" {
					saveErr = writeSealFile(sealFile, keep)
				}
			}
			err = e.emit(v, nil, func(w io.Writer) error {
				var err error
				if v.OK {
					_, err = fmt.Fprintf(w, "audit chain of %s: intact, %d records\n", clean(v.Tenant), v.Records)
				} else {
					_, err = fmt.Fprintf(w, "audit chain of %s: BROKEN after %d good records\n  at:      %s (record %s)\n  problem: %s\n",
						clean(v.Tenant), v.Records, cell(v.BrokenAt), cell(v.RecordId), clean(v.Problem))
				}
				if err == nil && v.TrimmedThrough != "" {
					// "intact" speaks for the records since the cut only.
					_, err = fmt.Fprintf(w, "  trimmed: retention removed the records through entry %s%s; the chain is verified from the one after it\n",
						clean(v.TrimmedThrough), appendedAt(v.TrimmedThrough))
				}
				if err == nil && v.TrimmedUnbound {
					_, err = fmt.Fprintf(w, "  anchor:  without the record retention removed last (set before Lockbox kept it, or deleted): dated by its stream id alone, which whoever can write to Redis chooses; retention's next trim sets one with its record\n")
				}
				if err == nil && v.Seal != "" {
					_, err = fmt.Fprintf(w, "  sealed:  %s\n", sealLine(v))
				}
				if err == nil && v.SinceSeal != "" {
					_, err = fmt.Fprintf(w, "  kept:    %s\n", keptLine(v, sealFile))
				}
				if err == nil && keep != "" && saveErr == nil {
					through := ""
					if v.SealedThrough != "" {
						through = " through entry " + clean(v.SealedThrough)
					}
					_, err = fmt.Fprintf(w, "  saved:   the chain's seal%s in %s, for the next verification\n", through, clean(sealFile))
				}
				return err
			})
			if !v.OK {
				// The verdict is known before a word of the report is
				// written: a stdout that can't take it (its reader gone,
				// which otherwise ends a command quietly with 0; a full
				// disk, 1) must not turn tampering found into success or
				// into a check that could not run.
				if _, closed := errors.AsType[*stdoutClosedError](err); err != nil && !closed {
					fmt.Fprintf(e.stderr, "lockboxctl: %s\n", clean(err.Error()))
				}
				return errChainBroken
			}
			if saveErr != nil {
				// The chain checked out: only keeping its seal failed, and
				// the next run checks against the seal kept before.
				return fmt.Errorf("the chain is intact, but its seal could not be kept: %w", saveErr)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "the tenant whose log to verify; a tenant's users may leave it out for their own, the provider's staff must name it")
	cmd.Flags().StringVar(&sealFile, "seal-file", "", "check the chain against the seal kept in FILE too (when it exists and is not empty), and keep the seal of an intact chain there for the next run")
	_ = cmd.RegisterFlagCompletionFunc("tenant", e.completeTenants)
	return cmd
}

// tenantFlagNeeded is err, the API's answer to a call that named no
// tenant, with the flag that names one said when the server asked for a
// tenant: the provider's staff must name it, and "the tenant is required"
// did not say how.
func tenantFlagNeeded(err error, tenant string) error {
	apiErr, ok := errors.AsType[*client.APIError](err)
	if !ok || tenant != "" || apiErr.Status != http.StatusBadRequest || apiErr.Code != "invalid_query" || !strings.Contains(apiErr.Message, "tenant is required") {
		return err
	}
	named := *apiErr
	named.Message += " (name it with --tenant)"
	return &named
}

// appendedAt is " (appended TIME)", TIME being when Redis appended the
// stream entry id (the milliseconds it begins with), in UTC; empty for an
// id that does not begin so.
// sealLine words the state of a verified chain's seal: what the proxy's
// signature covers, and how many records the chain alone does. A server
// from before seals sends no state, and gets no line.
func sealLine(v wire.AuditVerification) string {
	records := "records"
	if v.UnsealedRecords == 1 {
		records = "record"
	}
	after := fmt.Sprintf("%d %s after it covered by the hash chain alone", v.UnsealedRecords, records)
	all := fmt.Sprintf("the %d %s covered by the hash chain alone", v.UnsealedRecords, records)
	switch v.Seal {
	case "verified":
		return fmt.Sprintf("through entry %s, signed at %s by key %s; %s", clean(v.SealedThrough), clean(v.SealedAt), clean(v.SealKeyID), after)
	case "none":
		return "none: " + all
	case "unverifiable":
		return fmt.Sprintf("by key %s, which the server no longer publishes: the seal can't be checked, %s (keep retired public keys in LOCKBOX_PROXY_PUBLISHED_KEY_FILES)", cell(v.SealKeyID), all)
	case "trimmed":
		return "retention removed the sealed record: " + all
	case "forged":
		return "FORGED: the seal is not Lockbox's"
	}
	return clean(v.Seal)
}

func appendedAt(id string) string {
	ms, _, ok := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || n < 0 {
		return ""
	}
	return " (appended " + time.UnixMilli(n).UTC().Format(time.RFC3339) + ")"
}

// printRecords prints a list of audit records: v (their JSON body) for
// json and yaml, the export's CSV for csv, else a table.
func (e *env) printRecords(v any, recs []record.Record) error {
	if e.g.output == "csv" {
		x := csvWriter(e.stdout)
		return x.Finish(x.WriteAll(recs))
	}
	return e.emit(v, nil, func(w io.Writer) error { return printAudit(w, recs) })
}

// recordWriter prints pages of audit records as they come.
type recordWriter interface {
	write([]record.Record) error
	// close ends the output, with the cursors of the page after the last
	// and of the page before the first.
	close(pg pageCursors) error
}

func (e *env) recordWriter() recordWriter {
	switch e.g.output {
	case "json", "yaml":
		return &pageRecords{e: e}
	case "csv":
		return &csvRecords{x: csvWriter(e.stdout)}
	}
	return &tableRecords{w: e.stdout}
}

// tableChunk is how many records a table of "audit search --all" holds
// before it is printed: the API's largest page.
const tableChunk = 1000

// tableRecords prints one table per chunk of records.
type tableRecords struct {
	w       io.Writer
	recs    []record.Record
	printed bool
}

func (t *tableRecords) write(recs []record.Record) error {
	t.recs = append(t.recs, recs...)
	// A table's columns depend on every row: print in chunks so --all
	// holds at most one page.
	if len(t.recs) >= tableChunk {
		return t.flush()
	}
	return nil
}

func (t *tableRecords) flush() error {
	t.printed = true
	err := printAudit(t.w, t.recs)
	t.recs = t.recs[:0]
	return err
}

// close prints what is left, or the header alone when nothing matched;
// nothing when the last chunk took every record: a header of its own
// after them would read as a table without records.
func (t *tableRecords) close(pageCursors) error {
	if len(t.recs) == 0 && t.printed {
		return nil
	}
	return t.flush()
}

// pageRecords prints {"records":[...],"next_cursor":"...","prev_cursor":"...",
// "unreadable":[...]}, the API's page.
type pageRecords struct {
	e    *env
	recs []record.Record
}

func (j *pageRecords) write(recs []record.Record) error {
	j.recs = append(j.recs, recs...)
	return nil
}

func (j *pageRecords) close(pg pageCursors) error {
	if j.recs == nil {
		j.recs = []record.Record{}
	}
	return j.e.emit(wire.RecordPage{Records: j.recs, NextCursor: pg.next, PrevCursor: pg.prev, Unreadable: j.e.unreadableRecords}, nil, nil)
}

// csvRecords prints the columns of the Microsoft 365 audit log export.
type csvRecords struct{ x *record.ExportWriter }

// csvWriter is the export's CSV writer for -o csv, which prints on a
// terminal as the tables do (clean): the UserIds and Operations cells
// show controls and format characters escaped, and AuditData the ones
// JSON leaves as they are (escapeUnsafe), so it still reads back as the
// same record. Another party's comment or user id can't drive the
// terminal of whoever reads the log.
func csvWriter(w io.Writer) *record.ExportWriter {
	x := record.NewExportWriter(w, record.ExportCSV)
	x.Cells = func(row []string) {
		for i, c := range row {
			if i == len(row)-1 { // AuditData, the last column
				row[i] = string(escapeUnsafe([]byte(c), false))
			} else {
				row[i] = clean(c)
			}
		}
	}
	return x
}

func (c *csvRecords) write(recs []record.Record) error { return c.x.WriteAll(recs) }

func (c *csvRecords) close(pageCursors) error { return c.x.Finish(nil) }
