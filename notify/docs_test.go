package notify_test

import (
	"encoding/json"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/notify"
)

// TestDocumentedRetrySchedule holds what README.md and the runbook tell
// operators about retries to the worker's defaults: the backoff's first
// and longest wait, the attempts before a dead letter, and the retry
// window, the time from a message's first failed attempt to its last,
// within which a fixed receiver or relay loses nothing. On-call reads the
// window to decide how urgent a LockboxNotificationRefused is.
func TestDocumentedRetrySchedule(t *testing.T) {
	// CheckAndSetDefaults needs a client, not a server: nothing connects.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	cfg := notify.Config{Redis: rdb}
	if err := cfg.CheckAndSetDefaults(); err != nil {
		t.Fatal(err)
	}
	var window, longest time.Duration
	for a := 1; a < cfg.MaxAttempts; a++ { // the last failed attempt is dead-lettered, not retried
		window += cfg.Backoff(a)
		longest = max(longest, cfg.Backoff(a))
	}

	readme := readDoc(t, "../README.md")
	m := regexp.MustCompile(`retried with backoff \((\d+) s doubling to (\d+) min\); after (\d+) attempts`).FindStringSubmatch(readme)
	if m == nil {
		t.Fatal(`README.md no longer says "retried with backoff (N s doubling to N min); after N attempts"`)
	}
	if got, want := atoi(t, m[1]), int(cfg.Backoff(1)/time.Second); got != want {
		t.Errorf("README.md: the first retry waits %d s; it waits %d s", got, want)
	}
	if got, want := atoi(t, m[2]), int(longest/time.Minute); got != want {
		t.Errorf("README.md: the backoff doubles to %d min; it stops at %d min", got, want)
	}
	if got := atoi(t, m[3]); got != cfg.MaxAttempts {
		t.Errorf("README.md: a message is dead-lettered after %d attempts; after %d", got, cfg.MaxAttempts)
	}

	runbook := readDoc(t, "../deploy/RUNBOOK.md")
	m = regexp.MustCompile(`retry window \(about (\w+) hours?\)`).FindStringSubmatch(runbook)
	if m == nil {
		t.Fatal(`deploy/RUNBOOK.md no longer says "the retry window (about N hours)"`)
	}
	words := map[string]int{"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
	got, ok := words[m[1]]
	if !ok {
		t.Fatalf("deploy/RUNBOOK.md: retry window of %q hours", m[1])
	}
	if want := int(math.Round(window.Hours())); got != want {
		t.Errorf("deploy/RUNBOOK.md: the retry window is about %d hours; %d attempts with the default backoff span %s", got, cfg.MaxAttempts, window)
	}
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestREADMEWebhookEvents holds README's description of webhook bodies to
// what Lockbox sends: its table of events names every Kind and nothing
// else, and each field of its example body is a field of WebhookPayload,
// the example's event among the Kinds.
func TestREADMEWebhookEvents(t *testing.T) {
	readme := readDoc(t, "../README.md")
	_, table, ok := strings.Cut(readme, "\n| `event` | when |\n|---|---|\n")
	if !ok {
		t.Fatal("README.md has no table \"| `event` | when |\"")
	}
	row := regexp.MustCompile("^\\| `([a-z_.]+)` \\|")
	var documented []string
	for line := range strings.Lines(table) {
		m := row.FindStringSubmatch(line)
		if m == nil {
			break
		}
		documented = append(documented, m[1])
	}
	var kinds []string
	for _, k := range notify.Kinds {
		kinds = append(kinds, string(k))
	}
	slices.Sort(documented)
	slices.Sort(kinds)
	if !slices.Equal(documented, kinds) {
		t.Errorf("README.md's table of webhook events lists %q; Lockbox sends %q", documented, kinds)
	}

	_, example, ok := strings.Cut(table, "\n```json\n")
	if !ok {
		t.Fatal("README.md's webhook events have no JSON example after them")
	}
	example, _, _ = strings.Cut(example, "\n```")
	var body map[string]any
	if err := json.Unmarshal([]byte(example), &body); err != nil {
		t.Fatalf("README.md's webhook example is no JSON object: %v", err)
	}
	fields := map[string]bool{}
	for f := range reflect.TypeFor[notify.WebhookPayload]().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		fields[name] = true
	}
	for k := range body {
		if !fields[k] {
			t.Errorf("README.md's webhook example has %q, which WebhookPayload does not", k)
		}
	}
	for f := range fields {
		// expires_at: once approved. ended_at: once ended. cause: only on
		// what offboarding ended. The text after the example names each.
		if _, ok := body[f]; !ok && f != "expires_at" && f != "ended_at" && f != "cause" {
			t.Errorf("README.md's webhook example lacks %q", f)
		}
	}
	_, notes, _ := strings.Cut(table, example+"\n```")
	notes, _, _ = strings.Cut(notes, "\nA receiver's answer")
	for _, f := range []string{"expires_at", "ended_at", "cause"} {
		if !strings.Contains(notes, "`"+f+"`") {
			t.Errorf("README.md does not say, after its webhook example, when a body has %q", f)
		}
	}
	if ev, _ := body["event"].(string); !slices.Contains(kinds, ev) {
		t.Errorf("README.md's webhook example is of event %q, which is none", ev)
	}
}
