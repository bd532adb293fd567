package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/audit/siemcheck"
)

// Seals on the SIEM stream. The stored seal (keys.AuditSeal) is within
// reach of whoever can write to Redis: deleted, the next one is made over
// the chain as it then is, rewritten or not. A seal kept outside Redis is
// not, and the SIEM is outside Redis: the script that stores a seal also
// appends it to the tenant's seal stream (keys.AuditSeals, see
// storeSealScript), and the forwarders write each one as a line, through
// the same consumer group as the records, with the same guarantees (at
// least once, acknowledged once the sink took it, taken over from a
// replica that died). The SIEM so holds every seal Lockbox made, and any
// of them, sent back as since_seal, shows whether the chain still holds
// what it sealed.
//
// The seal stream is an outbox, not a history: a seal the sink took is
// acknowledged and deleted in one transaction (ackSeals), so a tenant's
// stream holds only the seals on their way. The SIEM, not Redis, keeps
// the series; keeping it in Redis too would protect nothing, since
// whoever can rewrite the chain can rewrite the stream.

// SealRecordType is the RecordType of a seal's line, a string where every
// record's is a number, so that a SIEM rule tells the two apart at a
// glance.
const SealRecordType = siemcheck.SealRecordType

// SealLine is a seal as the json format writes it: named as the API's
// verify answer names a seal (seal_token, sealed_through, sealed_at,
// seal_key_id), in the records' PascalCase.
type SealLine struct {
	// RecordType is always SealRecordType.
	RecordType string `json:"RecordType"`
	// CreationTime is when the seal was made, as a record's CreationTime
	// is written (UTC, to the second), for a SIEM that dates every line
	// by it.
	CreationTime string `json:"CreationTime"`
	// LockboxTenant is the tenant whose chain is sealed.
	LockboxTenant string `json:"LockboxTenant"`
	// SealedThrough is the stream id of the newest record the seal covers.
	SealedThrough string `json:"SealedThrough"`
	// SealedAt is when the seal was made (RFC 3339, UTC).
	SealedAt string `json:"SealedAt"`
	// SealKeyId is the kid of the key that signed it, as GET /v1/keys
	// names it.
	SealKeyId string `json:"SealKeyId"`
	// SealToken is the seal, the compact JWS as stored: the evidence,
	// which since_seal takes. The fields above are what it states.
	SealToken string `json:"SealToken"`
}

// sealLine renders the seal stream entry m for the sink.
func (fw *Forwarder) sealLine(_ context.Context, tenant string, m redis.XMessage) ([]byte, bool, error) {
	l, ok := sealOf(tenant, m)
	if !ok {
		return nil, false, nil
	}
	var v any = l
	if fw.cfg.Format == FormatOCSF {
		v = ocsfSeal(l)
	}
	b, err := json.Marshal(v)
	return b, true, err
}

// sealOf reads the seal stream entry m (see storeSealScript): false when
// it holds no seal.
func sealOf(tenant string, m redis.XMessage) (SealLine, bool) {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	l := SealLine{RecordType: SealRecordType, LockboxTenant: tenant, SealedThrough: str("through"),
		SealedAt: str("at"), SealKeyId: str("kid"), SealToken: str("seal")}
	if l.SealToken == "" {
		return SealLine{}, false
	}
	if at, err := time.Parse(time.RFC3339, l.SealedAt); err == nil {
		l.CreationTime = at.UTC().Format(record.TimeLayout)
	}
	return l, true
}

// ackSeals acknowledges the seals the sink took and deletes them from
// their stream, in one transaction: the stream holds the seals on their
// way to the SIEM, and one acknowledged but left would count towards its
// bound (sealsKept) for nothing.
func (fw *Forwarder) ackSeals(ctx context.Context, stream string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := fw.cfg.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, stream, SIEMGroup, ids...)
		p.XDel(ctx, stream, ids...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("seals: %w", err)
	}
	return nil
}

// A seal is no API call: as an API Activity event (class 6003) an OCSF
// pipeline would count it as one, made by no one. No OCSF 1.1 class is
// an attestation of a log's integrity either, so the ocsf format writes a
// seal as a Base Event (class 0, category 0 "Uncategorized", the class
// OCSF keeps for events no other fits), activity 99 "Other" named
// "Seal", with the seal's line (SealLine, RecordType and all) under
// unmapped, where the records' fields without an OCSF home are too.
const (
	ocsfClassBase             = 0
	ocsfCategoryUncategorized = 0
	ocsfSealActivity          = "Seal"
)

// OCSFSealEvent is the OCSF Base Event of a seal.
type OCSFSealEvent struct {
	OCSFBase
	Message  string       `json:"message"`
	Metadata OCSFMetadata `json:"metadata"`
	// Unmapped is the seal's json line.
	Unmapped SealLine `json:"unmapped"`
}

// ocsfSeal is the OCSF Base Event of the seal l.
func ocsfSeal(l SealLine) OCSFSealEvent {
	e := OCSFSealEvent{
		OCSFBase: OCSFBase{
			ActivityID:   OCSFActivityOther,
			ActivityName: ocsfSealActivity,
			CategoryUID:  ocsfCategoryUncategorized,
			CategoryName: "Uncategorized",
			ClassUID:     ocsfClassBase,
			ClassName:    "Base Event",
			TypeUID:      ocsfClassBase*100 + OCSFActivityOther,
			TypeName:     "Base Event: Other",
			SeverityID:   1,
			Severity:     "Informational",
		},
		Message:  fmt.Sprintf("Lockbox sealed the audit log of tenant %s through record %s", l.LockboxTenant, l.SealedThrough),
		Metadata: OCSFMetadata{Version: OCSFVersion, Product: OCSFProduct{Name: ocsfProduct, VendorName: ocsfProduct}},
		Unmapped: l,
	}
	if at, err := time.Parse(time.RFC3339, l.SealedAt); err == nil {
		e.Time = at.UnixMilli()
	}
	return e
}
