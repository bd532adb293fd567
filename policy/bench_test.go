package policy

import (
	"context"
	"testing"
	"time"
)

func benchInput() Input {
	return Input{
		Operator: Operator{ID: "op-1", Roles: []string{"operator"}},
		Call: Call{
			Method: "GET", Path: "/tenants/contoso/mailboxes/alice/messages", Service: "exchange",
			Activity: "Get-MailboxMessage", Access: "read", Tenant: "contoso", ClientIP: "192.0.2.10",
		},
		Grant: &Grant{
			RequestID: "req-1", Tenant: "contoso", Operator: "op-1", Service: "exchange",
			Activities: []string{"Get-Mailbox", "Get-MailboxMessage"}, Approver: "admin@contoso", TenantApproved: true,
			ApprovedAt: "2026-03-01T10:00:00Z", ExpiresAt: "2026-03-01T14:00:00Z",
		},
		Tenant: Tenant{ID: "contoso", LockboxEnabled: true},
		Now:    "2026-03-01T11:00:00.123456789Z",
	}
}

// BenchmarkDecide is one proxied call's decision with the default policy.
// "remembered" is what the proxy pays for all but the first call of a
// second with the same input (the snapshot's memo); "evaluated" runs the
// Rego policy every time (input building, evaluation, strict decoding),
// what the first call pays.
func BenchmarkDecide(b *testing.B) {
	// The production timeout (250ms) is a deadline a loaded machine misses
	// now and then, and the evaluated-parallel run failed on it; its value
	// costs nothing, so a generous one measures the same work.
	e, err := NewEngine(EngineConfig{EvalTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput()
	ctx := context.Background()
	if d, err := e.Decide(ctx, in); err != nil || !d.Allow {
		b.Fatalf("Decide = %+v, %v; want allow", d, err)
	}
	snap := e.Snapshot()
	b.Run("remembered", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := snap.Decide(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("remembered-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := snap.Decide(ctx, in); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("evaluated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			in := in
			if _, err := snap.evaluate(ctx, &in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("evaluated-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				in := in
				if _, err := snap.evaluate(ctx, &in); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkInputBuilder compares building the input's AST value directly
// (what Decide does) with the JSON round trip it replaced.
func BenchmarkInputBuilder(b *testing.B) {
	in := benchInput()
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = inputValue(&in)
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := inputValueJSON(&in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
