package record

import "time"

// CSVHeader is the header row of a CSV export. The columns are those of the
// unified audit log's export, so spreadsheets and scripts written for it
// read Lockbox's too: the whole record is the JSON in AuditData.
func CSVHeader() []string {
	return []string{"CreationTime", "UserIds", "Operations", "AuditData"}
}

// CSVRow is r as one row under CSVHeader.
func (r Record) CSVRow() ([]string, error) { return r.csvRow(nil) }

// csvRow appends r's row to dst[:0]. AuditData is AppendJSON's encoding,
// which is json.Marshal's byte for byte.
func (r Record) csvRow(dst []string) ([]string, error) {
	return append(dst[:0], r.CreationTime.UTC().Format(time.RFC3339Nano), r.UserId, r.Operation, string(r.AppendJSON(nil))), nil
}
