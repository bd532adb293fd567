package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/audit/record"
)

// auditFlags are the filters "audit search" and "audit export" share.
type auditFlags struct {
	tenant, from, to, user, operation, requestID string
}

const auditFilterHelp = `--tenant T               tenant whose audit log to read; without it, a tenant's users
                         read their own tenant's, the provider's audit readers every tenant's
--from TIME              only records created at or after TIME (RFC 3339, or a date)
--to TIME                only records created at or before TIME (RFC 3339, or a date: its start)
--user U                 only records of UserId U, e.g. "Microsoft Operator"
--operation OP           only records of this operation, e.g. Get-Mailbox
--request-id ID          only records tied to this lockbox request`

func (a *auditFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.tenant, "tenant", "", "")
	fs.StringVar(&a.from, "from", "", "")
	fs.StringVar(&a.to, "to", "", "")
	fs.StringVar(&a.user, "user", "", "")
	fs.StringVar(&a.operation, "operation", "", "")
	fs.StringVar(&a.requestID, "request-id", "", "")
}

func (a *auditFlags) query(cmd string) (client.AuditQuery, error) {
	q := client.AuditQuery{Tenant: a.tenant, User: a.user, Operation: a.operation, RequestID: a.requestID}
	for _, f := range []struct {
		name, v string
		dst     *time.Time
	}{{"--from", a.from, &q.From}, {"--to", a.to, &q.To}} {
		if f.v == "" {
			continue
		}
		t, err := parseTime(f.v)
		if err != nil {
			return q, &usageError{cmd: cmd, msg: fmt.Sprintf("%s %q must be an RFC 3339 time such as 2026-01-02T15:04:05Z, or a date such as 2026-01-02", f.name, f.v)}
		}
		*f.dst = t
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return q, &usageError{cmd: cmd, msg: "--to must not be before --from"}
	}
	return q, nil
}

func runAuditSearch(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	var af auditFlags
	af.register(fs)
	limit := fs.Int("limit", 0, "")
	cursor := fs.String("cursor", "", "")
	all := fs.Bool("all", false, "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos); err != nil {
		return err
	}
	q, err := af.query(name)
	if err != nil {
		return err
	}
	if *limit < 0 {
		return &usageError{cmd: name, msg: "--limit must not be negative"}
	}
	q.Limit, q.Cursor = *limit, *cursor
	c, err := e.client()
	if err != nil {
		return err
	}
	var out recordWriter
	switch e.g.output {
	case "json":
		out = &jsonRecords{w: e.stdout}
	case "csv":
		out = newCSVRecords(e.stdout)
	default:
		out = &tableRecords{w: e.stdout}
	}
	next := ""
	for {
		p, err := c.SearchAudit(e.ctx, q)
		if err != nil {
			return err
		}
		if err := out.write(p.Records); err != nil {
			return err
		}
		next = p.NextCursor
		if !*all || next == "" {
			break
		}
		q.Cursor = next
	}
	if err := out.close(next); err != nil {
		return err
	}
	if next != "" && e.g.output != "json" {
		fmt.Fprintf(e.stderr, "More records: add --cursor %s (or use --all).\n", next)
	}
	return nil
}

func runAuditExport(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	var af auditFlags
	af.register(fs)
	format := fs.String("format", "jsonl", "")
	outFile := fs.String("out", "", "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos); err != nil {
		return err
	}
	q, err := af.query(name)
	if err != nil {
		return err
	}
	if *format != "csv" && *format != "jsonl" {
		return &usageError{cmd: name, msg: fmt.Sprintf("--format %q must be csv or jsonl", *format)}
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	if *outFile == "" {
		return c.ExportAudit(e.ctx, q, *format, e.stdout)
	}
	// Write beside the file and rename once complete, so a cut-off export
	// never looks like a whole one.
	f, err := os.CreateTemp(filepath.Dir(*outFile), "."+filepath.Base(*outFile)+".*.partial")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := c.ExportAudit(e.ctx, q, *format, f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), *outFile)
}

func runRequestActivity(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos, "ID"); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	recs, err := c.Activity(e.ctx, pos[0])
	if err != nil {
		return err
	}
	switch e.g.output {
	case "json":
		return writeJSON(e.stdout, map[string]any{"records": recs})
	case "csv":
		w := newCSVRecords(e.stdout)
		if err := w.write(recs); err != nil {
			return err
		}
		return w.close("")
	}
	return printAudit(e.stdout, recs)
}

// recordWriter prints pages of audit records as they come.
type recordWriter interface {
	write([]record.Record) error
	// close ends the output; next is the cursor of the page after the last.
	close(next string) error
}

// tableRecords prints one table per page, sharing the header of the first.
type tableRecords struct {
	w    io.Writer
	recs []record.Record
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
	if len(t.recs) == 0 {
		return nil
	}
	err := printAudit(t.w, t.recs)
	t.recs = t.recs[:0]
	return err
}

func (t *tableRecords) close(string) error {
	if len(t.recs) == 0 {
		return printAudit(t.w, nil)
	}
	return t.flush()
}

// jsonRecords prints {"records":[...],"next_cursor":"..."}.
type jsonRecords struct {
	w    io.Writer
	recs []record.Record
}

func (j *jsonRecords) write(recs []record.Record) error {
	j.recs = append(j.recs, recs...)
	return nil
}

func (j *jsonRecords) close(next string) error {
	if j.recs == nil {
		j.recs = []record.Record{}
	}
	return writeJSON(j.w, client.AuditPage{Records: j.recs, NextCursor: next})
}

// csvRecords prints the columns of the Microsoft 365 audit log export.
type csvRecords struct{ x *record.ExportWriter }

func newCSVRecords(w io.Writer) *csvRecords {
	return &csvRecords{x: record.NewExportWriter(w, record.ExportCSV)}
}

func (c *csvRecords) write(recs []record.Record) error { return c.x.WriteAll(recs) }

func (c *csvRecords) close(string) error { return c.x.Finish(nil) }

// extraOutputs lists the commands that print each output format besides
// table and json: csv is audit records, id the ids of the requests a
// command returns.
var extraOutputs = map[outputValue][]string{
	"csv": {"audit search", "request activity"},
	"id": {"request create", "request list", "request show", "request approve", "request deny",
		"request cancel", "request revoke", "get-accesstocustomerdatarequest", "set-accesstocustomerdatarequest"},
}

// checkOutput refuses an output format the command can't print.
func (e *env) checkOutput() error {
	cmds, extra := extraOutputs[e.g.output]
	if !extra || slices.Contains(cmds, e.cmd) {
		return nil
	}
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = displayName(c)
	}
	last := len(names) - 1
	list := strings.Join(names[:last], ", ") + " and " + names[last]
	return &usageError{cmd: e.cmd, msg: fmt.Sprintf("-o %s is only for %s", e.g.output, list)}
}

// errChainBroken makes "audit verify" exit non-zero when the chain is
// broken, after printing the report.
var errChainBroken = errors.New("the audit chain does not verify")

func runAuditVerify(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	tenant := fs.String("tenant", "", "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos); err != nil {
		return err
	}
	// Without --tenant the server verifies a tenant user's own tenant, and
	// tells provider callers to name one.
	c, err := e.client()
	if err != nil {
		return err
	}
	v, err := c.VerifyAudit(e.ctx, *tenant)
	if err != nil {
		return err
	}
	if e.g.output.json() {
		err = writeJSON(e.stdout, v)
	} else if v.OK {
		_, err = fmt.Fprintf(e.stdout, "audit chain of %s: intact, %d records\n", v.Tenant, v.Records)
	} else {
		_, err = fmt.Fprintf(e.stdout, "audit chain of %s: BROKEN after %d good records\n  at:      %s (record %s)\n  problem: %s\n",
			clean(v.Tenant), v.Records, cell(v.BrokenAt), cell(v.RecordId), clean(v.Problem))
	}
	if err != nil {
		return err
	}
	if !v.OK {
		return errChainBroken
	}
	return nil
}

// tableChunk is how many records a table of "audit search --all" holds
// before it is printed: the API's largest page.
const tableChunk = 1000
