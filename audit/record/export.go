package record

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// ExportFormat is the form of an audit export.
type ExportFormat string

// The export formats.
const (
	// ExportCSV is the CSV of the Microsoft 365 audit log export
	// (CSVHeader, CSVRow).
	ExportCSV ExportFormat = "csv"
	// ExportJSONL is JSON Lines: one record a line.
	ExportJSONL ExportFormat = "jsonl"
)

// ParseExportFormat reads "csv" or "jsonl".
func ParseExportFormat(s string) (ExportFormat, error) {
	switch f := ExportFormat(s); f {
	case ExportCSV, ExportJSONL:
		return f, nil
	}
	return "", fmt.Errorf("format %q must be csv or jsonl", s)
}

// ContentType is the media type of an export in f.
func (f ExportFormat) ContentType() string {
	if f == ExportCSV {
		return "text/csv; charset=utf-8"
	}
	return "application/jsonl"
}

// allTenants stands for the tenant in the file name of an export of every
// tenant's records. The '_' is in no tenant id (keys.IsTenant), so no
// tenant's export has its name: "all-tenants" was one, and a tenant of
// that id had its export saved over every tenant's, or the other way round.
const allTenants = "all_tenants"

// FileName is the name of the file of an export in f of tenant's records
// (tenant "" for every tenant's), as the API and the console offer it:
// audit-contoso.csv, or audit-all_tenants.csv.
func (f ExportFormat) FileName(tenant string) string {
	if tenant == "" {
		tenant = allTenants
	}
	return "audit-" + tenant + "." + string(f)
}

// DefaultFlushEvery is how many records an ExportWriter writes between
// flushes, so a reader sees progress and the writer holds little.
const DefaultFlushEvery = 256

// ExportWriter streams records to an io.Writer as CSV or JSON Lines: the
// one writer of the API's and the console's exports and of lockboxctl's
// CSV output.
//
// Nothing is written before the first record, or before Finish for an
// empty export: Begin runs then, once, so an HTTP handler sends its status
// line only when there is something to send, and a failure before that
// (a refused query, Redis down) is still an ordinary error response. The
// CSV header is written once, right after Begin.
type ExportWriter struct {
	// Begin, when set, runs once before the first byte is written.
	Begin func()
	// FlushEvery is how many records are written between flushes;
	// DefaultFlushEvery when 0.
	FlushEvery int
	// Flush, when set, runs after each flush of the writer's buffer, e.g.
	// an http.ResponseController's Flush, so the bytes leave the process.
	Flush func() error
	// Cells, when set, may rewrite each CSV row's cells in place before
	// the row is written: lockboxctl shows on a terminal, escaped, the
	// controls a file keeps as they are.
	Cells func(row []string)

	format  ExportFormat
	bw      *bufio.Writer
	cw      *csv.Writer
	enc     *json.Encoder
	started bool
	n       int
	row     []string
}

// NewExportWriter returns a writer of records to w in format f.
func NewExportWriter(w io.Writer, f ExportFormat) *ExportWriter {
	return &ExportWriter{format: f, bw: bufio.NewWriterSize(w, 32<<10)}
}

// Started reports whether anything was written (or Begin ran).
func (x *ExportWriter) Started() bool { return x.started }

// Records is how many records were written.
func (x *ExportWriter) Records() int { return x.n }

func (x *ExportWriter) start() error {
	x.started = true
	if x.Begin != nil {
		x.Begin()
	}
	switch x.format {
	case ExportCSV:
		x.cw = csv.NewWriter(x.bw)
		return x.cw.Write(CSVHeader())
	case ExportJSONL:
		x.enc = json.NewEncoder(x.bw)
		x.enc.SetEscapeHTML(false)
		return nil
	}
	return fmt.Errorf("record: export format %q must be csv or jsonl", x.format)
}

// Write writes one record; its signature fits audit.Log.Export's callback.
func (x *ExportWriter) Write(r Record) error {
	if !x.started {
		if err := x.start(); err != nil {
			return err
		}
	}
	if x.cw != nil {
		row, err := r.csvRow(x.row[:0])
		if err != nil {
			return err
		}
		x.row = row
		if x.Cells != nil {
			x.Cells(row)
		}
		if err := x.cw.Write(row); err != nil {
			return err
		}
	} else if err := x.enc.Encode(r); err != nil {
		return err
	}
	every := x.FlushEvery
	if every <= 0 {
		every = DefaultFlushEvery
	}
	if x.n++; x.n%every == 0 {
		return x.flush()
	}
	return nil
}

// WriteAll writes records in order.
func (x *ExportWriter) WriteAll(recs []Record) error {
	for _, r := range recs {
		if err := x.Write(r); err != nil {
			return err
		}
	}
	return nil
}

func (x *ExportWriter) flush() error {
	if x.cw != nil {
		x.cw.Flush()
		if err := x.cw.Error(); err != nil {
			return err
		}
	}
	if err := x.bw.Flush(); err != nil {
		return err
	}
	if x.Flush != nil {
		return x.Flush()
	}
	return nil
}

// ErrExportCut wraps the error that ended an export after its first byte
// was written: the output is incomplete, and only cutting the stream (an
// HTTP handler panics with http.ErrAbortHandler, so an HTTP/1.1 response
// lacks its last chunk and an HTTP/2 stream is reset) tells its reader so.
var ErrExportCut = errors.New("audit export cut short")

// Finish ends the export that produced exportErr (nil when it completed).
// A complete export gets what is still buffered flushed, and an empty one
// its Begin and header. An export that failed before anything was written
// returns exportErr as it is, for an ordinary error response. One that
// failed after returns an error matching both ErrExportCut and exportErr,
// with what was written before the failure flushed.
func (x *ExportWriter) Finish(exportErr error) error {
	if exportErr != nil && !x.started {
		return exportErr
	}
	if !x.started {
		if err := x.start(); err != nil {
			return err
		}
	}
	flushErr := x.flush()
	if exportErr != nil {
		return fmt.Errorf("%w after %d records: %w", ErrExportCut, x.n, exportErr)
	}
	if flushErr != nil {
		return fmt.Errorf("%w after %d records: %w", ErrExportCut, x.n, flushErr)
	}
	return nil
}

// callKey holds, in a call's context (CallContext), the context the call
// was served under: without the call's deadline.
type callKey struct{}

// CallContext returns the context of one call served under parent (an
// HTTP request's): parent bounded by timeout, from which ExportContext can
// still tell when parent ends. Once its deadline has passed, a call's
// context is done for good and would no longer tell a client going away.
func CallContext(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	return context.WithValue(ctx, callKey{}, parent), cancel
}

// ExportContext returns the context of a long export served under parent,
// a call's context: it keeps parent's values but not its deadline, which
// bounds single calls and would cut a large export off, and it is still
// canceled when parent is (the client went away). When parent is a
// CallContext, the export ends when the context the call was served under
// is canceled, also after the call's deadline has passed. Call cancel when
// done.
func ExportContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	served := parent
	if c, ok := parent.Value(callKey{}).(context.Context); ok {
		served = c
	}
	stop := context.AfterFunc(served, func() {
		// The deadline passing is not a reason to stop; the client going
		// away is.
		if errors.Is(served.Err(), context.Canceled) {
			cancel()
		}
	})
	return ctx, func() {
		stop()
		cancel()
	}
}
