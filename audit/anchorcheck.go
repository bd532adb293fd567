package audit

import (
	"fmt"
	"strings"
	"time"
)

// SetRetention tells verification the audit retention it judges the
// chains' anchors by: the shortest trimmed with (LOCKBOX_AUDIT_RETENTION,
// or LOCKBOX_AUDIT_RETENTION_SHORTEST once it was raised; 0 keeps records
// forever). An anchor says retention removed its entry, and
// retention removes only records older than the retention: an anchor
// whose entry is younger was set by someone else, who can write to Redis,
// after deleting the oldest records (and with them, once past a seal the
// auditor kept, what that seal covered, which then read as trimmed rather
// than broken). With retention 0 no anchor is retention's. A negative
// retention is taken as 0.
//
// Call it before serving, where verification is served. Until it is
// called the Log does not know the retention, and takes an anchor at its
// word, as verification did before it judged anchors; the Logs that only
// write records (the request store's, the notifier's) never need it.
func (l *Log) SetRetention(retention time.Duration) {
	l.keepFor, l.keepForSet = max(retention, 0), true
}

// anchorAllowance is how much younger than the retention in force the
// anchor's entry may be and still be retention's. Retention dates a
// record by its CreationTime, stamped by the replica that wrote it, and
// cuts by the clock of the replica that trims; verification can only date
// the anchor's entry, which is gone, by its stream id (Redis's clock) and
// judges it by its own clock. Each of those may be ClockSkew apart, as
// search assumes: the record's stamp from its stream id, and the trimming
// replica's clock from the verifying one's.
const anchorAllowance = 2 * ClockSkew

// anchorProblem returns why retention, as it is set now, can't have left
// the anchor naming entry trimmed (the last record it removed), or "" when
// it can have (or the retention is unknown: SetRetention). It judges by
// l.now, as retention does.
func (l *Log) anchorProblem(trimmed string) string {
	if !l.keepForSet || trimmed == "" {
		return ""
	}
	id, err := parseID(trimmed)
	if err != nil {
		return fmt.Sprintf("the chain's anchor names %q, which is no stream entry: retention sets it to the entry it removed last, so the anchor was set by other means than retention", trimmed)
	}
	written := time.UnixMilli(int64(min(id.ms, uint64(1)<<62))).UTC()
	const causes = "records were deleted by other means than retention and the anchor set; or retention was shorter, or on, when it removed them"
	if l.keepFor == 0 {
		return fmt.Sprintf("the chain's anchor says retention removed the records through entry %s, written %s, but retention is off (LOCKBOX_AUDIT_RETENTION is 0: records are kept forever; set LOCKBOX_AUDIT_RETENTION_SHORTEST if it trimmed before): %s",
			trimmed, written.Format(time.RFC3339), causes)
	}
	cut := l.now().Add(-l.keepFor)
	if !written.After(cut.Add(anchorAllowance)) {
		return ""
	}
	return fmt.Sprintf("the chain's anchor says retention removed the records through entry %s, written %s, but the retention anchors are judged by (%s: LOCKBOX_AUDIT_RETENTION, or LOCKBOX_AUDIT_RETENTION_SHORTEST where set) removes only records written before %s (give or take %s of clock skew): %s",
		trimmed, written.Format(time.RFC3339), shortDuration(l.keepFor), cut.UTC().Format(time.RFC3339), shortDuration(anchorAllowance), causes)
}

// shortDuration is d as a setting would say it: "28h", "1h30m", not
// time.Duration's "28h0m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}
