package record

import (
	"strings"
	"time"
)

// CSVHeader is the header row of a CSV export. The columns are those of the
// unified audit log's export (and the properties of Search-UnifiedAuditLog's
// results), so spreadsheets and scripts written for it read Lockbox's too:
// the whole record is the JSON in AuditData. The first column is
// CreationDate there, while the record inside AuditData names the same
// time CreationTime, as the unified audit log's JSON does.
func CSVHeader() []string {
	return []string{"CreationDate", "UserIds", "Operations", "AuditData"}
}

// CSVRow is r as one row under CSVHeader.
func (r Record) CSVRow() ([]string, error) { return r.csvRow(nil) }

// csvRow appends r's row to dst[:0]. AuditData is AppendJSON's encoding,
// which is json.Marshal's byte for byte.
func (r Record) csvRow(dst []string) ([]string, error) {
	return append(dst[:0], r.CreationTime.UTC().Format(time.RFC3339Nano), csvCell(r.UserId), csvCell(r.Operation), string(r.AppendJSON(nil))), nil
}

// csvCell neutralises s for spreadsheets: a cell beginning with = + - @, a
// tab or a carriage return is taken for a formula when the export is
// opened (CSV injection), and a tenant's user ids may begin with + or -,
// so such a cell gets a leading apostrophe, which spreadsheets read as
// "text" and do not show. The record's own values are untouched in
// AuditData, which begins with '{'.
func csvCell(s string) string {
	if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
		return "'" + s
	}
	return s
}
