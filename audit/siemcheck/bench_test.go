package siemcheck

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"

	"github.com/lockbox-oss/lockbox/grantsig"
)

// benchLines returns n of contoso's record lines, chained and placed as the
// forwarder writes them, shaped like an operator action's record (about
// 640 bytes, as in Lockbox's log), with one other tenant's line in ten.
func benchLines(n int) []byte {
	var out bytes.Buffer
	prev := ""
	for i := range n {
		rec := fmt.Sprintf(`{"CreationTime":"2026-12-07T10:%02d:%02d.%06dZ","Id":"%08x-7d3c-4b0e-9a51-%012x","Operation":"Get-MailboxMessage",`+
			`"OrganizationId":"contoso","RecordType":104,"ResultStatus":"Succeeded","UserKey":"Microsoft Operator","UserType":3,"Version":1,`+
			`"Workload":"Exchange","ClientIP":"10.1.2.3","ObjectId":"/mailboxes/adele/messages/%d","UserId":"Microsoft Operator",`+
			`"LockboxTenant":"contoso","LockboxRequestId":"0b9f3c1e-5a8d-4c3f-9e27-6d1a2b3c4d5e","LockboxApprover":"adam@contoso.example",`+
			`"LockboxApprovalTime":"2026-12-07T09:58:12.123456Z","LockboxMethod":"GET","LockboxPath":"/mailboxes/adele/messages/%d",`+
			`"LockboxPolicyRevision":"sha256:4f1c2e","ProviderUserId":"alice@provider.example"}`, i/60%60, i%60, i, i, i, i, i)
		h := Link(prev, []byte(rec))
		out.Write(Place([]byte(rec), fmt.Sprintf("1796637708%03d-%d", i/1000%1000, i), prev, h))
		out.WriteByte('\n')
		if i%10 == 9 {
			out.WriteString(`{"Id":"f","LockboxTenant":"fabrikam","LockboxEntry":"1-0","LockboxPrevHash":"","LockboxHash":"8a3cb7c61f0d20155b3a72ee61c01e84b6c18bf7"}` + "\n")
		}
		prev = h
	}
	return out.Bytes()
}

// BenchmarkCheck reads and checks 100 000 records (about 64 MB of lines):
// the time per record, and the heap a Checker keeps per record read,
// which bounds how large a copy check-siem can check in a given memory.
func BenchmarkCheck(b *testing.B) {
	const n = 100_000
	lines := benchLines(n)
	keys := &grantsig.KeySet{}
	var kept uint64
	b.SetBytes(int64(len(lines)))
	b.ResetTimer()
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := New("contoso", keys, "lockbox")
		if err := c.Read(bytes.NewReader(lines)); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		kept = after.HeapAlloc - before.HeapAlloc
		r, err := c.Check()
		if err != nil || !r.OK || r.Records != n {
			b.Fatalf("Check = %+v, %v; want %d records intact", r, err, n)
		}
		runtime.KeepAlive(c)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/record")
	b.ReportMetric(float64(kept)/n, "heap-B/record")
}
