package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/audit/siemcheck"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// newerRecords returns the stored JSON of records as a newer Lockbox
// writes them during a rolling upgrade: one with a field this version
// does not know, one whose Parameter has one, and one this version wrote.
// The names are made up; what matters is that Record has no place for
// them.
func newerRecords(log *audit.Log) (newField, newParamField, known string) {
	r := log.Prepare(record.Record{
		Operation: record.OpNewRequest, OrganizationId: orgID("contoso"), LockboxTenant: "contoso",
		Workload: "exchange", RecordType: record.RecordTypeExchangeAdmin, UserType: record.UserTypeDcAdmin,
		UserId: record.OperatorUserID, ProviderUserId: "alice", ClientIP: "192.0.2.10",
		ObjectId: "req-1", LockboxRequestId: "req-1",
		Parameters: []record.Parameter{{Name: "Identity", Value: "req-1"}},
	})
	known = string(r.AppendJSON(nil))
	newField = strings.TrimSuffix(known, "}") + `,"LockboxSessionId":"sess-42"}`
	newParamField = strings.Replace(known, `"Value":"req-1"}`, `"Value":"req-1","Sensitivity":"restricted-7"}`, 1)
	if newParamField == known {
		panic("the record's Parameters are not where the test expects them")
	}
	return newField, newParamField, known
}

// TestSIEMNewerRecordsReachTheSIEMWhole: a record a newer Lockbox wrote
// holds fields this version does not know. The json format forwards the
// stored bytes, so the SIEM gets them; the OCSF event is built from this
// version's Record, which has no place for them, so it carries the stored
// record in raw_data (docs/operations.md, "Rolling upgrades": nothing a
// replica does not understand is silently dropped). A record this version
// knows has no raw_data.
func TestSIEMNewerRecordsReachTheSIEMWhole(t *testing.T) {
	for _, format := range []audit.Format{audit.FormatJSON, audit.FormatOCSF} {
		t.Run(string(format), func(t *testing.T) {
			ctx := context.Background()
			rdb := testRedis(t)
			log := audit.NewLog(rdb, nil)
			onboard(t, rdb, "contoso")
			newField, newParamField, known := newerRecords(log)
			stored := []string{newField, newParamField, known}
			for _, raw := range stored {
				if err := audit.AppendStored(ctx, rdb, "contoso", raw); err != nil {
					t.Fatal(err)
				}
			}
			log.Written(ctx, "contoso")
			sink := &memSink{}
			fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r1", Format: format})
			if n, err := fw.Poll(ctx); err != nil || n != 3 {
				t.Fatalf("wrote %d, %v", n, err)
			}
			lines := sink.got()
			if len(lines) != 3 {
				t.Fatalf("%d lines: %q", len(lines), lines)
			}
			for i, want := range []string{"sess-42", "restricted-7"} {
				if !strings.Contains(lines[i], want) {
					t.Errorf("line %d lost the newer version's %q:\n got %s\n stored %s", i, want, lines[i], stored[i])
				}
			}
			if format == audit.FormatJSON {
				for i, l := range lines {
					if rec, _, _, _, ok := siemcheck.Split([]byte(l)); !ok || string(rec) != stored[i] {
						t.Errorf("line %d is not the stored record with its place:\n got %s\nwant %s", i, l, stored[i])
					}
				}
				return
			}
			for i, l := range lines {
				var e audit.OCSFEvent
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Fatalf("line %d: %v: %s", i, err, l)
				}
				wantRaw := stored[i]
				if i == 2 {
					wantRaw = "" // known: nothing this version can't map
				}
				if e.RawData != wantRaw {
					t.Errorf("line %d: raw_data %q, want %q", i, e.RawData, wantRaw)
				}
				// What this version understands is mapped as ever.
				if e.API.Operation != record.OpNewRequest || e.Actor.User.UID != "alice" || e.Unmapped["LockboxTenant"] != "contoso" || e.StatusID != 1 {
					t.Errorf("line %d: the known fields are not mapped: %s", i, l)
				}
			}
		})
	}
}

// TestSIEMOCSFKnownRecordUnchanged pins the OCSF line of a record this
// version wrote, byte for byte, so that keeping newer records whole
// changes nothing for the others.
func TestSIEMOCSFKnownRecordUnchanged(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, func() time.Time { return time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC) })
	onboard(t, rdb, "contoso")
	r := log.Prepare(record.Record{
		Id: "0190a4b4-1c2d-7e3f-8a9b-0c1d2e3f4a5b", Operation: "Get-Mailbox", OrganizationId: orgID("contoso"), LockboxTenant: "contoso",
		Workload: "exchange", RecordType: record.RecordTypeDataCenterSecurityCmdlet, UserType: record.UserTypeDcAdmin,
		UserId: record.OperatorUserID, ProviderUserId: "alice", ClientIP: "192.0.2.10", LockboxRequestId: "req-1",
		LockboxMethod: "GET", LockboxPath: "/mailboxes/megan",
	})
	if err := audit.AppendStored(ctx, rdb, "contoso", string(r.AppendJSON(nil))); err != nil {
		t.Fatal(err)
	}
	log.Written(ctx, "contoso")
	var buf bytes.Buffer
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: audit.NewWriterSink(&buf), Consumer: "r1", Format: audit.FormatOCSF})
	if n, err := fw.Poll(ctx); err != nil || n != 1 {
		t.Fatalf("wrote %d, %v", n, err)
	}
	want := `{"activity_id":2,"activity_name":"Read","category_uid":6,"category_name":"Application Activity","class_uid":6003,"class_name":"API Activity","type_uid":600302,"type_name":"API Activity: Read","time":1772355600000,"severity_id":1,"severity":"Informational","status_id":1,"status":"Success","metadata":{"version":"1.1.0","product":{"name":"Lockbox","vendor_name":"Lockbox"},"uid":"0190a4b4-1c2d-7e3f-8a9b-0c1d2e3f4a5b"},"actor":{"user":{"name":"Microsoft Operator","uid":"alice"}},"src_endpoint":{"ip":"192.0.2.10"},"api":{"operation":"Get-Mailbox","service":{"name":"exchange"},"request":{"uid":"req-1"}},"http_request":{"http_method":"GET","url":{"path":"/mailboxes/megan"}},"unmapped":{"LockboxMethod":"GET","LockboxPath":"/mailboxes/megan","LockboxTenant":"contoso","OrganizationId":"` + orgID("contoso") + `","RecordType":"10","UserType":"3","Workload":"exchange"}}` + "\n"
	if got := buf.String(); got != want {
		t.Errorf("OCSF line changed:\n got %s\nwant %s", got, want)
	}
}

// TestSIEMLineBreaksInStoredRecordsKeepTheFraming: the SIEM reads one
// record a line. No value breaks a line, since JSON escapes line breaks in
// strings, but a stored record's whitespace may hold them: Lockbox writes
// none, yet the stream takes any bytes (a record written by hand, or by a
// writer that indents). In either format such a record is still one line,
// the records around it keep theirs, and what it held reaches the SIEM.
func TestSIEMLineBreaksInStoredRecordsKeepTheFraming(t *testing.T) {
	for _, format := range []audit.Format{audit.FormatJSON, audit.FormatOCSF} {
		t.Run(string(format), func(t *testing.T) {
			ctx := context.Background()
			rdb := testRedis(t)
			log := audit.NewLog(rdb, nil)
			onboard(t, rdb, "contoso")
			_, _, known := newerRecords(log)
			var r record.Record
			if err := json.Unmarshal([]byte(known), &r); err != nil {
				t.Fatal(err)
			}
			indented, err := json.MarshalIndent(r, "", "\r\n  ")
			if err != nil {
				t.Fatal(err)
			}
			corrupt := "{\"Id\": \"c-1\",\n\"Operation\": \"cut" // undecodable, with a line break
			stored := []string{known, string(indented), corrupt, known}
			for _, raw := range stored {
				if err := audit.AppendStored(ctx, rdb, "contoso", raw); err != nil {
					t.Fatal(err)
				}
			}
			log.Written(ctx, "contoso")
			var buf bytes.Buffer
			fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: audit.NewWriterSink(&buf), Consumer: "r1", Format: format})
			if n, err := fw.Poll(ctx); err != nil || n != 4 {
				t.Fatalf("wrote %d, %v", n, err)
			}
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if len(lines) != 4 {
				t.Fatalf("%d lines for 4 records:\n%s", len(lines), buf.String())
			}
			for i, l := range lines {
				if strings.Contains(l, "\r") || !json.Valid([]byte(l)) {
					t.Errorf("line %d is not one JSON value: %q", i, l)
				}
			}
			if format == audit.FormatJSON {
				// The known records as stored; the indented one as the
				// same JSON, compact; the corrupt one's bytes, quoted.
				var got record.Record
				if err := json.Unmarshal([]byte(lines[1]), &got); err != nil || got.Id != r.Id || got.ProviderUserId != "alice" {
					t.Errorf("indented record: %+v (%v): %s", got, err, lines[1])
				}
				var s string
				if err := json.Unmarshal([]byte(lines[2]), &s); err != nil || s != corrupt {
					t.Errorf("corrupt record: %q (%v), want %q", s, err, corrupt)
				}
				// Only those two are the bytes the chain hashes, and
				// carry their place in it.
				for i, l := range lines {
					rec, _, _, _, ok := siemcheck.Split([]byte(l))
					switch {
					case (i == 0 || i == 3) && (!ok || string(rec) != known):
						t.Errorf("known record %d changed: %s", i, l)
					case (i == 1 || i == 2) && ok:
						t.Errorf("line %d is placed in the chain, but is not the bytes it hashes: %s", i, l)
					}
				}
			}
		})
	}
}

// TestSIEMOCSFLegacyRecordHasTheTenantsGUID: a record stored before the
// common schema holds the tenant's short name as OrganizationId. A search
// reads it with the tenant's GUID, as every later record holds; so does
// its OCSF event, so the SIEM does not see one tenant under two
// organizations. The json format forwards the stored bytes, as stored.
func TestSIEMOCSFLegacyRecordHasTheTenantsGUID(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	onboard(t, rdb, "contoso")
	legacy := `{"Id":"0190a4b4-1c2d-7e3f-8a9b-0c1d2e3f4a5b","CreationTime":"2026-11-23T08:59:59.5Z","Operation":"Get-Mailbox",` +
		`"OrganizationId":"contoso","Workload":"exchange","UserId":"Microsoft Operator","UserType":"DcAdmin","ClientIP":"192.0.2.10",` +
		`"ResultStatus":"Succeeded","LockboxRequestId":"r1","Method":"GET","Path":"/tenants/contoso/mailboxes","ProviderUserId":"alice@provider.example"}`
	if err := audit.AppendStored(ctx, rdb, "contoso", legacy); err != nil {
		t.Fatal(err)
	}
	log.Written(ctx, "contoso")
	sink := &memSink{}
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r1", Format: audit.FormatOCSF})
	if n, err := fw.Poll(ctx); err != nil || n != 1 {
		t.Fatalf("wrote %d, %v", n, err)
	}
	var e audit.OCSFEvent
	if err := json.Unmarshal([]byte(sink.got()[0]), &e); err != nil {
		t.Fatal(err)
	}
	if e.Unmapped["OrganizationId"] != orgID("contoso") || e.Unmapped["LockboxTenant"] != "contoso" || e.ActivityID != audit.OCSFActivityRead {
		t.Errorf("legacy record's event: unmapped %v, activity %d; want OrganizationId %s", e.Unmapped, e.ActivityID, orgID("contoso"))
	}
	if e.RawData != "" {
		t.Errorf("raw_data %q: a legacy record's fields are all known", e.RawData)
	}
}

// failOnce fails, once, the first command match matches, without sending
// it, as a Redis that timed out would.
type failOnce struct {
	match func(redis.Cmder) bool
	done  atomic.Bool
}

func (f *failOnce) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *failOnce) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, c redis.Cmder) error {
		if f.match(c) && f.done.CompareAndSwap(false, true) {
			c.SetErr(errors.New("i/o timeout"))
			return c.Err()
		}
		return next(ctx, c)
	}
}
func (f *failOnce) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestSIEMOCSFLegacyRecordWaitsForItsOrganizationId: when the tenant's
// GUID can't be read for a legacy record's OCSF event (Redis failed), the
// event is not written without it and acknowledged, which would leave the
// SIEM one event of the tenant outside its organization for ever: the
// record stays pending and the next pass writes it whole.
func TestSIEMOCSFLegacyRecordWaitsForItsOrganizationId(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	onboard(t, rdb, "contoso")
	legacy := `{"Id":"0190a4b4-1c2d-7e3f-8a9b-0c1d2e3f4a5b","CreationTime":"2026-11-23T08:59:59.5Z","Operation":"Get-Mailbox",` +
		`"OrganizationId":"contoso","Workload":"exchange","UserId":"Microsoft Operator","UserType":"DcAdmin","ClientIP":"192.0.2.10",` +
		`"ResultStatus":"Succeeded","LockboxRequestId":"r1","Method":"GET","Path":"/tenants/contoso/mailboxes","ProviderUserId":"alice@provider.example"}`
	if err := audit.AppendStored(ctx, rdb, "contoso", legacy); err != nil {
		t.Fatal(err)
	}
	log.Written(ctx, "contoso")
	frdb := redistest.Clone(t, rdb)
	hook := &failOnce{match: redistest.Command("get", keys.Tenant("contoso"))}
	frdb.AddHook(hook)
	sink := &memSink{}
	fw := newForwarder(t, audit.ForwarderConfig{Redis: frdb, Sink: sink, Consumer: "r1", Format: audit.FormatOCSF})
	n, err := fw.Poll(ctx)
	if !hook.done.Load() {
		t.Fatal("the forwarder never read the tenant's registry entry")
	}
	if err == nil || n != 0 || len(sink.got()) != 0 {
		t.Fatalf("with the GUID unreadable: wrote %d (%v), lines %q; want an error and nothing written", n, err, sink.got())
	}
	if p := pending(t, rdb, "contoso"); p != 1 {
		t.Fatalf("%d pending, want the record left to retry", p)
	}
	if n, err := fw.Poll(ctx); err != nil || n != 1 {
		t.Fatalf("retry: wrote %d, %v", n, err)
	}
	var e audit.OCSFEvent
	if err := json.Unmarshal([]byte(sink.got()[0]), &e); err != nil {
		t.Fatal(err)
	}
	if e.Unmapped["OrganizationId"] != orgID("contoso") {
		t.Errorf("retried event: unmapped %v, want OrganizationId %s", e.Unmapped, orgID("contoso"))
	}
	if p := pending(t, rdb, "contoso"); p != 0 {
		t.Errorf("%d pending after the retry", p)
	}
}

// TestSIEMCarriesTheQuery: an operator action's query reaches the SIEM in
// either format: as LockboxQuery in the json line, and in the OCSF event as
// http_request.url.query_string beside the method and path (and unmapped
// LockboxQuery, as LockboxPath is); a query cut to its first 2048 bytes
// says the whole length in unmapped LockboxQueryLength.
func TestSIEMCarriesTheQuery(t *testing.T) {
	long := "search=" + strings.Repeat("b", record.MaxQueryBytes)
	kept, length := record.QueryOf(long)
	for _, format := range []audit.Format{audit.FormatJSON, audit.FormatOCSF} {
		t.Run(string(format), func(t *testing.T) {
			ctx := context.Background()
			rdb := testRedis(t)
			log := audit.NewLog(rdb, func() time.Time { return time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC) })
			onboard(t, rdb, "contoso")
			queries := []struct {
				q      string
				length int
			}{{"search=ceo+salary&top=10", 0}, {kept, length}}
			for _, q := range queries {
				r := operatorRecord("contoso", 1)
				r.LockboxMethod, r.LockboxPath, r.LockboxQuery, r.LockboxQueryLength = "GET", "/tenants/contoso/mailboxes/megan/messages", q.q, q.length
				if _, err := log.Append(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			sink := &memSink{}
			fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r1", Format: format})
			if n, err := fw.Poll(ctx); err != nil || n != 2 {
				t.Fatalf("wrote %d, %v", n, err)
			}
			lines := sink.got()
			if len(lines) != 2 {
				t.Fatalf("%d lines: %q", len(lines), lines)
			}
			for i, l := range lines {
				want := queries[i]
				if format == audit.FormatJSON {
					var r record.Record
					if err := json.Unmarshal([]byte(l), &r); err != nil || r.LockboxQuery != want.q || r.LockboxQueryLength != want.length {
						t.Errorf("line %d: LockboxQuery %q, LockboxQueryLength %d (%v); want %q, %d", i, r.LockboxQuery, r.LockboxQueryLength, err, want.q, want.length)
					}
					continue
				}
				// Read as a SIEM reads it: by the schema's attribute names.
				var e struct {
					HTTPRequest struct {
						HTTPMethod string `json:"http_method"`
						URL        struct {
							Path        string `json:"path"`
							QueryString string `json:"query_string"`
						} `json:"url"`
					} `json:"http_request"`
					Unmapped map[string]any `json:"unmapped"`
				}
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Fatalf("line %d: %v: %s", i, err, l)
				}
				if e.HTTPRequest.URL.QueryString != want.q || e.HTTPRequest.HTTPMethod != "GET" ||
					e.HTTPRequest.URL.Path != "/tenants/contoso/mailboxes/megan/messages" || e.Unmapped["LockboxQuery"] != want.q {
					t.Errorf("line %d: the query is not in http_request.url.query_string: %.300s", i, l)
				}
				wantLength := any(nil)
				if want.length != 0 {
					wantLength = strconv.Itoa(want.length)
				}
				if e.Unmapped["LockboxQueryLength"] != wantLength {
					t.Errorf("line %d: unmapped LockboxQueryLength %v, want %v", i, e.Unmapped["LockboxQueryLength"], wantLength)
				}
			}
		})
	}
}
