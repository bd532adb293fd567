package record

import (
	"encoding/json"
	"time"
)

// CSVHeader is the header row of a CSV export. The columns are those of the
// unified audit log's export, so spreadsheets and scripts written for it
// read Lockbox's too: the whole record is the JSON in AuditData.
func CSVHeader() []string {
	return []string{"CreationTime", "UserIds", "Operations", "AuditData"}
}

// CSVRow is r as one row under CSVHeader.
func (r Record) CSVRow() ([]string, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return []string{r.CreationTime.UTC().Format(time.RFC3339Nano), r.UserId, r.Operation, string(data)}, nil
}
