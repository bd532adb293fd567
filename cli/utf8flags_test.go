package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestFlagValuesMustBeUTF8: a value typed in a terminal or script in
// Latin-1 (or any encoding but UTF-8) was sent with each byte that is not
// UTF-8 turned into U+FFFD by the JSON encoder, without a word: the
// request's reason, or a decision's comment, was filed and audited as
// other text than the one typed. lockboxctl refuses such a value before
// anything is sent (exit 2), naming the flag; UTF-8 text goes through as
// typed.
func TestFlagValuesMustBeUTF8(t *testing.T) {
	addr, tokens := startLockboxAt(t, t.Cleanup, time.Now)
	ctx := context.Background()
	ctl := func(token string, args ...string) (int, string, string) {
		t.Helper()
		env := map[string]string{EnvAddr: addr, EnvToken: tokens[token], EnvConfigDir: t.TempDir()}
		var stdout, stderr bytes.Buffer
		code := Run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr)
		return code, strings.TrimSpace(stdout.String()), stderr.String()
	}
	latin1 := "r\xe9paration urgente" // "réparation" in Latin-1
	for _, c := range []struct {
		token string
		args  []string
		want  string
	}{
		{"operator", []string{"create", "request", "--tenant", "contoso", "--service", "exchange", "--service-request", "SR-1", "--reason", latin1, "--duration", "1h"}, "--reason is not UTF-8 text (byte 2 is not)"},
		{"operator", []string{"request", "create", "--tenant", "contoso", "--service", "exchange", "--service-request", "SR-\xff", "--reason", "r", "--duration", "1h"}, "--service-request is not UTF-8 text (byte 4 is not)"},
		{"admin", []string{"tenant", "settings", "set", "contoso", "--notify", "ops\xe9@contoso.example"}, "--notify is not UTF-8 text (byte 4 is not)"},
	} {
		code, _, stderr := ctl(c.token, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, want %d saying %q\nstderr: %s", c.args, code, exitUsage, c.want, stderr)
		}
		if strings.Count(stderr, "\n") > 2 {
			t.Errorf("%q: more than the message and its hint:\n%s", c.args, stderr)
		}
	}
	op, err := client.New(addr, tokens["operator"])
	if err != nil {
		t.Fatal(err)
	}
	if list, err := op.ListRequests(ctx, client.ListOptions{}); err != nil || len(list) != 0 {
		t.Fatalf("requests filed: %v, %v", list, err)
	}

	// A decision's comment, in the PowerShell verb too.
	code, id, stderr := ctl("operator", "create", "request", "--tenant", "contoso", "--service", "exchange", "--service-request", "SR-1",
		"--reason", "réparation urgente", "--duration", "1h", "-o", "id")
	if code != exitOK {
		t.Fatalf("create: exit %d\n%s", code, stderr)
	}
	for _, args := range [][]string{
		{"approve", id, "--comment", "d\xe9j\xe0 vu"},
		{"Set-AccessToCustomerDataRequest", "-RequestId", id, "-ApprovalDecision", "Approve", "-Comment", "d\xe9j\xe0 vu"},
	} {
		if code, _, stderr := ctl("manager", args...); code != exitUsage || !strings.Contains(stderr, "comment is not UTF-8 text (byte 2 is not)") {
			t.Errorf("%q: exit %d, want %d naming the comment\nstderr: %s", args, code, exitUsage, stderr)
		}
	}
	r, err := op.GetRequest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Reason != "réparation urgente" || r.State != wire.StatePendingManager {
		t.Errorf("request %q in %s, want its reason as typed, pending_manager", r.Reason, r.State)
	}
}
