package siemcheck

import (
	"strings"
	"testing"
)

// TestRecordLineDisguisedAsOCSF: a record line of the tenant that no chain
// hash covers makes the records "not intact", however it is spelled
// (TestLinesOnlyOtherReadersSee), a top-level class_uid member included.
// With one (any value, even null) the checker passed the line over as an
// OCSF event, yet no OCSF event Lockbox writes has a top-level
// LockboxTenant or RecordType (they live under "unmapped"), and jq, a SIEM
// rule or an auditor reading the file sees a record of the tenant.
func TestRecordLineDisguisedAsOCSF(t *testing.T) {
	k := newSealKey(t)
	recs, ids, seals := sealedSix(t, k)
	honest, _ := chainOf(recs, ids)
	for _, forged := range []string{
		`{"Id":"rec-x","Operation":"New-InboxRule","LockboxTenant":"contoso","RecordType":52,"class_uid":null}`,
		`{"class_uid":0,"Id":"rec-x","Operation":"Set-Mailbox","LockboxTenant":"contoso"}`,
	} {
		r := mustCheck(t, k.keys, append(append([]string{}, honest...), append(seals, forged)...))
		if r.OK {
			t.Errorf("forged record line %s slipped into the SIEM file: check says intact (%+v)", forged, r)
		} else if !strings.Contains(r.Problem, "rec-x") {
			t.Errorf("not intact, but the problem does not name the slipped line: %+v", r)
		}
	}
}
