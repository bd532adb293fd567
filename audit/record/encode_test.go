package record

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullRecord has every field of Record set.
func fullRecord() Record {
	at := TimeOf(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	return Record{
		CreationTime: TimeOf(time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)), Id: "01a2", Operation: "Get-Mailbox",
		OrganizationId: "e161f300-59a4-4caf-9f8a-07a67c4ea843", RecordType: RecordTypeDataCenterSecurityCmdlet,
		ResultStatus: ResultSucceeded, UserKey: OperatorUserID, UserType: UserTypeDcAdmin, Version: 1, Workload: "exchange",
		ClientIP: "192.0.2.1", ObjectId: "exchange/tenants/contoso/mailboxes", UserId: OperatorUserID,
		Parameters:         []Parameter{{Name: "Identity", Value: "x"}, {Name: "Comment", Value: "y"}},
		ModifiedProperties: []ModifiedProperty{{Name: "LockboxEnabled", OldValue: "false", NewValue: "true"}},
		ApprovalDecision:   ApprovalApprove, Comment: "go ahead", LockboxTenant: "contoso", LockboxRequestId: "r",
		LockboxApprover: "adam@contoso.example", LockboxApprovalTime: &at, LockboxMethod: "GET", LockboxPath: "/tenants/contoso/mailboxes",
		LockboxQuery: "search=ceo+salary&top=10", LockboxQueryLength: 4100, LockboxPolicyRevision: "5997", ProviderUserId: "alice@provider.example", ProviderApproverId: "mary@provider.example",
	}
}

func marshalled(t testing.TB, r Record) string {
	t.Helper()
	want, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(want)
}

// TestAppendJSONCoversEveryField: a Record with every field set, and with
// each field in turn at its zero value, encodes exactly as json.Marshal
// encodes it; a field of Record AppendJSON doesn't know fails here.
func TestAppendJSONCoversEveryField(t *testing.T) {
	full := fullRecord()
	if got, want := string(full.AppendJSON(nil)), marshalled(t, full); got != want {
		t.Fatalf("AppendJSON\n got %s\nwant %s", got, want)
	}
	v := reflect.ValueOf(&full).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		r := fullRecord()
		rv := reflect.ValueOf(&r).Elem().Field(i)
		rv.Set(reflect.Zero(rv.Type()))
		if got, want := string(r.AppendJSON(nil)), marshalled(t, r); got != want {
			t.Errorf("%s at its zero value:\n got %s\nwant %s", f.Name, got, want)
		}
	}
}

// FuzzAppendJSON holds AppendJSON to json.Marshal for any strings, escapes
// and invalid UTF-8 included.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{"", "plain", `"quoted" \back\`, "<script>&amp;</script>", "tab\tnew\nline\r\b\f\x00\x1f\x7f",
		"é ✓ \u2028\u2029", "bad \xff\xfe utf8", strings.Repeat("ü", 40)} {
		f.Add(s, s+"x", int8(3))
	}
	f.Fuzz(func(t *testing.T, a, b string, n int8) {
		r := fullRecord()
		r.Comment, r.UserId, r.LockboxPath, r.LockboxQuery = a, b, a+b, b+a
		r.LockboxQueryLength = int(n)
		r.Parameters = []Parameter{{Name: a, Value: b}}
		r.UserType, r.Version = UserType(n), int(n)
		if got, want := string(r.AppendJSON(nil)), marshalled(t, r); got != want {
			t.Fatalf("AppendJSON\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkEncodeRecord(b *testing.B) {
	r := fullRecord()
	r.Parameters, r.ModifiedProperties, r.ApprovalDecision, r.Comment = nil, nil, "", ""
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(r)
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = r.AppendJSON(buf[:0])
		}
	})
}
