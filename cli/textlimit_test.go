package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestTextFlagsOverTheirLimit: a --reason or --comment longer than the
// API takes was sent, and one past the body's size came back as 413 "body
// too large", which names neither the flag nor its limit. lockboxctl
// refuses it before anything is sent (exit 2), naming the flag and its
// limit in characters; a value at the limit goes through.
func TestTextFlagsOverTheirLimit(t *testing.T) {
	addr, tokens := startLockboxAt(t, t.Cleanup, time.Now)
	ctx := context.Background()
	ctl := func(token string, args ...string) (int, string, string) {
		t.Helper()
		env := map[string]string{EnvAddr: addr, EnvToken: tokens[token], EnvConfigDir: t.TempDir()}
		var stdout, stderr bytes.Buffer
		code := Run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr)
		return code, strings.TrimSpace(stdout.String()), stderr.String()
	}
	// Two bytes in UTF-8, one character: the limits count characters.
	text := func(n int) string { return strings.Repeat("é", n) }
	create := func(sr, reason string) []string {
		return []string{"create", "request", "--tenant", "contoso", "--service", "exchange", "--service-request", sr, "--reason", reason, "--duration", "1h", "-o", "id"}
	}
	code, id, stderr := ctl("operator", create(text(64), text(2000))...)
	if code != exitOK {
		t.Fatalf("create at the limits: exit %d\n%.300s", code, stderr)
	}
	for _, c := range []struct {
		token string
		args  []string
		want  string
	}{
		{"operator", create("SR-1", text(2001)), "--reason is longer than 2000 characters"},
		{"operator", create("SR-1", strings.Repeat("x", 64<<10)), "--reason is longer than 2000 characters"},
		{"operator", create(text(65), "r"), "--service-request is longer than 64 characters"},
		// Offboarding's reason has a limit of its own.
		{"operator", []string{"tenant", "offboard", "contoso", "--reason", text(1001)}, "--reason is longer than 1000 characters"},
		{"manager", []string{"approve", id, "--comment", text(1001)}, "--comment is longer than 1000 characters"},
		{"manager", []string{"deny", id, "--comment", strings.Repeat("x", 64<<10)}, "--comment is longer than 1000 characters"},
		{"manager", []string{"Set-AccessToCustomerDataRequest", "-RequestId", id, "-ApprovalDecision", "Approve", "-Comment", text(1001)}, "comment is longer than 1000 characters"},
	} {
		code, _, stderr := ctl(c.token, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%.60q: exit %d, want %d saying %q\nstderr: %.300s", c.args, code, exitUsage, c.want, stderr)
		}
	}
	if code, _, stderr := ctl("manager", "approve", id, "--comment", text(1000)); code != exitOK {
		t.Fatalf("approve with a comment at the limit: exit %d\n%.300s", code, stderr)
	}
}
