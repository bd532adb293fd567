package record

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// decodeSeeds are records in every shape the writers produce.
func decodeSeeds() []Record {
	at := Time{time.Date(2026, 3, 1, 9, 30, 5, 0, time.UTC)}
	approved := Time{at.Add(-time.Hour)}
	return []Record{
		{CreationTime: at, Id: "0196f3a0-7c2e-7000-8000-000000000001", Operation: "Get-Mailbox", OrganizationId: "5b7e1c3a-0000-4000-8000-000000000001",
			RecordType: RecordTypeDataCenterSecurityCmdlet, ResultStatus: ResultSucceeded, UserKey: OperatorUserID, UserType: UserTypeDcAdmin, Version: 1,
			Workload: "exchange", ClientIP: "10.0.0.1", ObjectId: "exchange/tenants/contoso/mailboxes/megan", UserId: OperatorUserID,
			LockboxTenant: "contoso", LockboxRequestId: "0196f3a0-7c2e-7000-8000-00000000000a", LockboxApprover: "adam@contoso.example",
			LockboxApprovalTime: &approved, LockboxMethod: "GET", LockboxPath: "/tenants/contoso/mailboxes/megan",
			LockboxQuery: "search=ceo+salary%24", LockboxQueryLength: 3000,
			LockboxPolicyRevision: "sha256:00ff", ProviderUserId: "alice@provider.example", ProviderApproverId: "mary"},
		{CreationTime: at, Id: "x", Operation: OpSetSettings, RecordType: RecordTypeExchangeAdmin, UserType: UserTypeAdmin, Version: 1,
			Parameters: []Parameter{{"Identity", "contoso"}, {"LockboxEnabled", "true"}}, ApprovalDecision: "Approve", Comment: "Grüße, ok",
			ModifiedProperties: []ModifiedProperty{{"LockboxEnabled", "false", "true"}}, LockboxTenant: "contoso", UserId: "gina"},
		{CreationTime: at, RecordType: RecordTypeExchangeAdmin, Comment: "a <b> & \"c\"\n\x00\t\\/", UserId: "u"}, // escapes
		{CreationTime: at, RecordType: RecordTypeDataCenterSecurityCmdlet, LockboxQuery: "search=ceo+salary&top=10", LockboxQueryLength: 4100},
		{RecordType: RecordTypeExchangeAdmin, UserType: -3, Version: 123456789012345},
	}
}

func TestDecodeRecordAgreesWithEncodingJSON(t *testing.T) {
	fast := 0
	for _, r := range decodeSeeds() {
		b := r.AppendJSON(nil)
		got, err := Unmarshal(string(b))
		var want Record
		if werr := json.Unmarshal(b, &want); err != nil || werr != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got  %+v (%v)\n want %+v (%v)", b, got, err, want, werr)
		}
		if _, ok := decodeRecord(string(b)); ok {
			fast++
		}
	}
	if fast != len(decodeSeeds()) {
		t.Errorf("%d of the seeds took the fast path, want every one (%d): AppendJSON's escapes of ASCII included", fast, len(decodeSeeds()))
	}
	for _, s := range []string{
		`{}`, `{"RecordType":0}`, ` {"RecordType":1}`, `{"RecordType":1} `, `{"RecordType":1,"Method":"GET"}`, `{"recordtype":1}`,
		`{"RecordType":1.0}`, `{"RecordType":01}`, `{"RecordType":1e0}`, `{"RecordType":1,"UserType":"DcAdmin"}`,
		`{"RecordType":1,"CreationTime":"2026-03-01T09:30:05Z"}`, `{"RecordType":1,"CreationTime":null}`,
		`{"RecordType":1,"Comment":"\u00e9"}`, `{"RecordType":1,"Comment":"\u0026\u003C\/\"\b"}`, `{"RecordType":1,"Comment":"\u26"}`,
		`{"RecordType":1,"Comment":"\ud83d\ude00"}`, `{"RecordType":1,"Comment":"\x"}`, `{"RecordType":1,"Comment":"a\`, "{\"RecordType\":1,\"Comment\":\"\\n\xff\"}",
		`{"RecordType":1,"\u0043omment":"a"}`, "{\"RecordType\":1,\"Comment\":\"\xff\"}", `{"RecordType":1,"Parameters":[{"Name":"a","X":"b"}]}`,
		`{"RecordType":1,"Parameters":[]}`, `{"RecordType":1,"Parameters":[{}]}`, `{"RecordType":1,"Id":"a","Id":"b"}`,
	} {
		var want Record
		werr := json.Unmarshal([]byte(s), &want)
		got, err := Unmarshal(s)
		if (err == nil) != (werr == nil) || err == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v (%v), want %+v (%v)", s, got, err, want, werr)
		}
	}
}

// FuzzDecodeRecord: whatever the fast path accepts, encoding/json reads
// the same; and every record AppendJSON writes reads back as it was
// encoded.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range decodeSeeds() {
		f.Add(string(r.AppendJSON(nil)), "", "", int64(0))
	}
	f.Add(`{"RecordType":1,"Parameters":[{"Name":"a","Value":"b"}],"Parameters":[]}`, "é", "\x00", int64(-1))
	f.Fuzz(func(t *testing.T, s, a, b string, n int64) {
		if r, ok := decodeRecord(s); ok {
			var want Record
			if err := json.Unmarshal([]byte(s), &want); err != nil || !reflect.DeepEqual(r, want) {
				t.Fatalf("%q: fast %+v, encoding/json %+v (%v)", s, r, want, err)
			}
		}
		r := decodeSeeds()[0]
		r.Comment, r.ProviderUserId, r.Version = a, b, int(n%1e15)
		r.Parameters = []Parameter{{a, b}}
		r.CreationTime = Time{time.Unix(n%(1<<35), 0).UTC()}
		enc := r.AppendJSON(nil)
		got, err := Unmarshal(string(enc))
		var want Record
		if werr := json.Unmarshal(enc, &want); (err == nil) != (werr == nil) || err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: fast %+v (%v), encoding/json %+v (%v)", enc, got, err, want, werr)
		}
		if strings.ContainsAny(a+b, "\\\"<>&") {
			return
		}
	})
}

// TestUnmarshalStoredTellsNewerRecords: a record holding a field Record
// does not know, at the top or inside a Parameter or ModifiedProperty, is
// a newer Lockbox's; every form this version or an older one writes
// (escapes, a legacy record's Method and Path, the UserType's name) is
// not. Either way the record decodes as Unmarshal decodes it.
func TestUnmarshalStoredTellsNewerRecords(t *testing.T) {
	cases := map[string]bool{
		`{"RecordType":1,"LockboxSessionId":"s"}`:                                                         true,
		`{"RecordType":1,"Parameters":[{"Name":"a","Value":"b","Sensitivity":"x"}]}`:                      true,
		`{"RecordType":1,"ModifiedProperties":[{"Name":"a","OldValue":"b","NewValue":"c","Reason":"d"}]}`: true,
		`{"Id":"a","Method":"GET","Path":"/x","Session":"s"}`:                                             true,
		`{"RecordType":1,"Comment":"\u00e9 \"q\""}`:                                                       false,
		`{"Id":"a","Method":"GET","Path":"/x","UserType":"DcAdmin"}`:                                      false,
		` {"RecordType":1} `: false,
		`{"recordtype":1}`:   false, // encoding/json matches names regardless of case
	}
	for _, r := range decodeSeeds() {
		cases[string(r.AppendJSON(nil))] = false
	}
	for s, wantNewer := range cases {
		got, newer, err := UnmarshalStored(s)
		want, werr := Unmarshal(s)
		if err != nil || werr != nil || newer != wantNewer || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: newer %v (want %v), %+v (%v); Unmarshal %+v (%v)", s, newer, wantNewer, got, err, want, werr)
		}
	}
	for _, s := range []string{`{"RecordType":1} x`, `{"RecordType":1,"X":1`, `[]`} {
		if _, _, err := UnmarshalStored(s); err == nil {
			t.Errorf("%s: no error", s)
		}
	}
}
