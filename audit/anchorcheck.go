package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/siemcheck"
	"github.com/lockbox-oss/lockbox/internal/keys"
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

// anchorRead is a chain's anchor as one snapshot holds it.
type anchorRead struct {
	// set says the anchor key exists; value is what it holds, "<stream id>
	// <hash>" as retention sets it.
	set   bool
	value string
	// record is the anchor's record (AuditAnchorRecord): the link of the
	// last record retention removed, "\n" and the record; recordSet says
	// the key exists.
	record    string
	recordSet bool
}

// readAnchor queues the reads of tenant's anchor and its record on p; the
// function returned gives them once p ran.
func readAnchor(ctx context.Context, p redis.Cmdable, tenant string) func() anchorRead {
	a := p.Get(ctx, keys.AuditAnchor(tenant))
	r := p.Get(ctx, keys.AuditAnchorRecord(tenant))
	return func() anchorRead {
		return anchorRead{set: a.Err() == nil, value: a.Val(), recordSet: r.Err() == nil, record: r.Val()}
	}
}

// trimmed is the stream id the anchor names: the last entry retention
// removed ("" without an anchor).
func (a anchorRead) trimmed() string {
	id, _, _ := strings.Cut(a.value, " ")
	return id
}

// unbound says the anchor came without its record (AuditAnchorRecord):
// set by a Lockbox from before anchors kept it, or by whoever deleted the
// record. It can only be dated by the stream id it names.
func (a anchorRead) unbound() bool { return a.set && !a.recordSet }

// anchorProblem returns why retention can't have left anchor a, with first
// the id of the chain's first entry ("" for none), or "" when it can have.
// Whatever the retention, an anchor is "<stream id> <hash>" and every
// entry through its id is gone: retention sets it so, in the script that
// trims. Once the retention is known (SetRetention), the anchor is dated by
// the CreationTime of the record it says was removed last, which its
// record holds and its hash binds (the stream id it names is only a
// string, which whoever deleted records could choose), and judged by
// l.now, as retention judges the records it removes. An anchor without
// its record is dated by its stream id, as before anchors kept one (a log
// retention emptied then would otherwise read broken for good, nothing
// trimming it again): Verification.TrimmedUnbound says so.
func (l *Log) anchorProblem(a anchorRead, first string) string {
	if !a.set {
		return ""
	}
	const byOthers = "so the anchor was set by other means than retention"
	trimmed, hash, _ := strings.Cut(a.value, " ")
	id, err := parseID(trimmed)
	if err != nil || !siemcheck.IsHash(hash) {
		return fmt.Sprintf("the chain's anchor %q is not the stream id and hash retention sets it to (of the last record it removed), %s", a.value, byOthers)
	}
	if first != "" && compareIDs(mustParseID(first), id) <= 0 {
		return fmt.Sprintf("the chain's anchor names entry %s, but entry %s, at or before it, is still in the log: retention removes every entry through the one it anchors at, %s", trimmed, first, byOthers)
	}
	if !l.keepForSet {
		return ""
	}
	const causes = "records were deleted by other means than retention and the anchor set; or retention was shorter, or on, when it removed them"
	written, dated := time.UnixMilli(int64(min(id.ms, uint64(1)<<62))).UTC(), "written"
	if !a.unbound() {
		link, rec, ok := strings.Cut(a.record, "\n")
		if !ok || chainHash(link, rec) != hash {
			return fmt.Sprintf("the chain's anchor (entry %s) comes with a record its hash does not match, so nothing dates what it says was removed: %s", trimmed, causes)
		}
		d, _ := entryTime(redis.XMessage{ID: trimmed, Values: map[string]any{field: rec}}, l.now())
		written, dated = d.at.UTC(), "created"
	}
	if l.keepFor == 0 {
		return fmt.Sprintf("the chain's anchor says retention removed the records through entry %s, %s %s, but retention is off (LOCKBOX_AUDIT_RETENTION is 0: records are kept forever; set LOCKBOX_AUDIT_RETENTION_SHORTEST if it trimmed before): %s",
			trimmed, dated, written.Format(time.RFC3339), causes)
	}
	cut := l.now().Add(-l.keepFor)
	if !written.After(cut.Add(anchorAllowance)) {
		return ""
	}
	return fmt.Sprintf("the chain's anchor says retention removed the records through entry %s, %s %s, but the retention anchors are judged by (%s: LOCKBOX_AUDIT_RETENTION, or LOCKBOX_AUDIT_RETENTION_SHORTEST where set) removes only records created before %s (give or take %s of clock skew): %s",
		trimmed, dated, written.Format(time.RFC3339), shortDuration(l.keepFor), cut.UTC().Format(time.RFC3339), shortDuration(anchorAllowance), causes)
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
