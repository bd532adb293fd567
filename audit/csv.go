package audit

import (
	"time"
)

// CSVHeader is the header row of a CSV export. The columns are those of the
// unified audit log's export, so spreadsheets and scripts written for it
// read Lockbox's too: the whole record is the JSON in AuditData.
func CSVHeader() []string {
	return []string{"CreationTime", "UserIds", "Operations", "AuditData"}
}

// CSVRow is r as one row under CSVHeader. AuditData is json.Marshal's
// encoding of r, written by AppendJSON without reflection: an export of a
// large log encodes every record.
func (r Record) CSVRow() ([]string, error) {
	return []string{r.CreationTime.UTC().Format(time.RFC3339Nano), r.UserId, r.Operation, string(r.AppendJSON(nil))}, nil
}
