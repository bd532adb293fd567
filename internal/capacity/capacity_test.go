package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestLoadModelAtATinySize runs the capacity model's generator end to end
// (real redis-server, lockbox serve in process, real proxied calls) at a
// size that takes seconds, so it can't rot; what it measures must be
// plausible: every object costs Redis memory and commands, an audit record
// costs memory near its encoded size, and the table prints every row.
func TestLoadModelAtATinySize(t *testing.T) {
	m, err := measure(context.Background(), Sizes{Tenants: 2, Requests: 4, Calls: 40, Sessions: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Rows) != 5 {
		t.Fatalf("rows: %+v", m.Rows)
	}
	for _, r := range m.Rows {
		if r.Bytes <= 0 || r.Commands < 1 {
			t.Errorf("%s: %.0f B, %.1f commands", r.What, r.Bytes, r.Commands)
		}
	}
	// A proxied call's record is about 1 KB of JSON plus the chain's
	// hashes; its commands are the audit script and little else.
	if call := m.Rows[3]; call.Bytes < 500 || call.Bytes > 20000 || call.Commands > 10 {
		t.Errorf("operator call: %.0f B, %.1f commands", call.Bytes, call.Commands)
	}
	if m.AuditPer1000 != m.Rows[3].Bytes*1000 {
		t.Errorf("audit growth per 1000 calls %.0f, want 1000 × %.0f", m.AuditPer1000, m.Rows[3].Bytes)
	}
	var out bytes.Buffer
	m.print(&out)
	for _, want := range []string{"| onboarded tenant |", "| pending request |", "| approval to a live grant |", "| operator call (audit record) |", "| console session |", "Audit growth per 1000 operator calls"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
}

// TestIdleAtATinySize runs the idle measurement briefly: an idle replica
// over two tenants still costs some commands (the jobs' claims), and the
// table has its row.
func TestIdleAtATinySize(t *testing.T) {
	var out bytes.Buffer
	if err := idle(&out, []int{2}, time.Second, 500*time.Millisecond, time.Second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\n| 2 | ") {
		t.Fatalf("no row for 2 tenants:\n%s", out.String())
	}
}
