package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/tenanttest"
	"github.com/lockbox-oss/lockbox/notify"
	"github.com/lockbox-oss/lockbox/tenants"
)

type ran struct {
	code           int
	stdout, stderr string
}

func runLockbox(t *testing.T, env map[string]string, args ...string) ran {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, env, &out, &errb)
	return ran{code, out.String(), errb.String()}
}

// deadLetter adds a letter to the tenant's dead-letter stream as the
// notification worker writes one, and returns its id.
func deadLetter(t *testing.T, rdb *redis.Client, tenant, event, recipients, cause string) string {
	t.Helper()
	id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: notify.DeadKey(tenant), Values: []any{
		"event", event, "entry", "1764000000000-0", "attempts", 16, "error", cause,
		"recipients", recipients, "at", "2026-11-23T09:00:00Z",
	}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

const askEvent = `{"kind":"request.pending_customer","request":{"id":"r-1","tenant":"contoso","state":"pending_customer"},"event":{}}`

// "lockbox notify dead-letters" lists a tenant's dead letters from the
// Redis LOCKBOX_REDIS_URL names, as a table or as JSON, with a letter that
// can't be re-driven said so, and a remote server's words escaped, not
// played to the terminal.
func TestNotifyDeadLettersCommand(t *testing.T) {
	url := redistest.URL(t)
	rdb := redis.NewClient(mustParseURL(t, url))
	defer rdb.Close()
	env := map[string]string{"LOCKBOX_REDIS_URL": url}

	if r := runLockbox(t, env, "notify", "dead-letters", "--tenant", "contoso"); r.code != 0 || r.stdout != "no dead letters for tenant contoso\n" {
		t.Fatalf("empty stream: %+v", r)
	}
	if r := runLockbox(t, env, "notify", "dead-letters", "--tenant", "contoso", "-o", "json"); r.code != 0 || r.stdout != "[]\n" {
		t.Fatalf("empty stream as JSON: %+v", r)
	}
	if r := runLockbox(t, env, "notify", "dead-letters"); r.code != 0 || r.stdout != "no dead letters\n" {
		t.Fatalf("no tenant has dead letters: %+v", r)
	}
	good := deadLetter(t, rdb, "contoso", askEvent, "mail:eve@contoso.example,webhook:1",
		"smtp send: 550 \x1b[31mno such user\u202e\u0085")
	corrupt := deadLetter(t, rdb, "contoso", "{corrupt", "", "corrupt event: invalid character")
	deadLetter(t, rdb, "fabrikam", askEvent, "mail:x@fabrikam.example", "other tenant")

	// Without --tenant: the tenants that have dead letters, found
	// through the tenant set.
	if err := rdb.SAdd(context.Background(), keys.Tenants(), "contoso", "fabrikam", "northwind").Err(); err != nil {
		t.Fatal(err)
	}
	r := runLockbox(t, env, "notify", "dead-letters")
	if words := strings.Join(strings.Fields(r.stdout), " "); r.code != 0 || len(strings.Fields(r.stdout)) != 7 ||
		!strings.HasPrefix(words, "TENANT DEAD LETTERS") || !strings.Contains(words, "contoso 2") || !strings.Contains(words, "fabrikam 1") {
		t.Errorf("tenants with dead letters: %+v", r)
	}
	r = runLockbox(t, env, "notify", "dead-letters", "-o", "json")
	var counts []notify.TenantDeadLetters
	if err := json.Unmarshal([]byte(r.stdout), &counts); r.code != 0 || err != nil || len(counts) != 2 {
		t.Errorf("tenants with dead letters as JSON: %+v (%v)", r, err)
	}

	r = runLockbox(t, env, "notify", "dead-letters", "--tenant", "contoso")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") {
		t.Fatalf("table:\n%s", r.stdout)
	}
	for _, s := range []string{good, "2026-11-23T09:00:00Z", "request.pending_customer", "r-1", "16",
		"mail:eve@contoso.example,webhook:1", `550 \u001b[31mno such user\u202e\u0085`} {
		if !strings.Contains(lines[1], s) {
			t.Errorf("row %q lacks %q", lines[1], s)
		}
	}
	if !strings.Contains(lines[2], corrupt) || !strings.Contains(lines[2], "its event can't be read") {
		t.Errorf("row %q: want the corrupt letter, said so", lines[2])
	}
	if strings.ContainsAny(r.stdout, "\x1b\u202e\u0085") || strings.Contains(r.stdout, "other tenant") {
		t.Errorf("table:\n%q", r.stdout)
	}

	r = runLockbox(t, env, "notify", "dead-letters", "--tenant", "contoso", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if strings.ContainsAny(r.stdout, "\x1b\u202e\u0085") {
		t.Errorf("JSON holds raw controls: %q", r.stdout)
	}
	var got []notify.DeadLetter
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("JSON: %v\n%s", err, r.stdout)
	}
	if len(got) != 2 || got[0].ID != good || got[0].Kind != notify.KindPendingCustomer || got[0].RequestID != "r-1" ||
		!slices.Equal(got[0].Recipients, []string{"mail:eve@contoso.example", "webhook:1"}) ||
		got[0].Error != "smtp send: 550 \x1b[31mno such user\u202e\u0085" || got[0].Problem != "" ||
		got[1].ID != corrupt || got[1].Problem == "" {
		t.Errorf("JSON letters %+v", got)
	}
}

// "lockbox notify redrive" puts the letters named, or all, back in the
// tenant's outbox and marks the tenant due for delivery; one that can't be
// re-driven is reported, left where it is, and makes the exit status 1.
func TestNotifyRedriveCommand(t *testing.T) {
	url := redistest.URL(t)
	rdb := redis.NewClient(mustParseURL(t, url))
	defer rdb.Close()
	ctx := context.Background()
	env := map[string]string{"LOCKBOX_REDIS_URL": url}
	// A re-drive is audited, in the tenant's log: the tenant has a
	// registry entry, as every tenant with requests does.
	tenanttest.Onboard(t, tenants.NewStore(rdb, audit.NewLog(rdb, nil), nil), "contoso")

	if r := runLockbox(t, env, "notify", "redrive", "--tenant", "contoso", "--all"); r.code != 0 || r.stdout != "no dead letters for tenant contoso\n" {
		t.Fatalf("empty stream: %+v", r)
	}
	one := deadLetter(t, rdb, "contoso", askEvent, "mail:eve@contoso.example", "no such user")
	two := deadLetter(t, rdb, "contoso", askEvent, "webhook:0", "status 410")
	corrupt := deadLetter(t, rdb, "contoso", "{corrupt", "", "corrupt event")

	r := runLockbox(t, env, "notify", "redrive", "--tenant", "contoso", "--id", one)
	if r.code != 0 || !strings.Contains(r.stdout, "re-driven "+one+": request.pending_customer of request r-1 to mail:eve@contoso.example") ||
		!strings.Contains(r.stdout, "1 of 1 dead letters of tenant contoso re-driven") {
		t.Fatalf("redrive --id: %+v", r)
	}
	tenants, err := due.New(rdb, due.Notify, nil).Tenants(ctx)
	if err != nil || !slices.Contains(tenants, "contoso") {
		t.Errorf("notification schedule %v, %v: the tenant is not due", tenants, err)
	}
	// Again: gone from the stream, so nothing is queued twice.
	if r := runLockbox(t, env, "notify", "redrive", "--tenant", "contoso", "--id", one); r.code != 1 ||
		!strings.Contains(r.stdout, "not re-driven "+one+": no such dead letter") {
		t.Errorf("second redrive: %+v", r)
	}

	r = runLockbox(t, env, "notify", "redrive", "--tenant", "contoso", "--all")
	if r.code != 1 || !strings.Contains(r.stdout, "re-driven "+two+":") || !strings.Contains(r.stdout, "not re-driven "+corrupt+":") ||
		!strings.Contains(r.stdout, "1 of 2 dead letters of tenant contoso re-driven") || !strings.Contains(r.stderr, "1 dead letters not re-driven") {
		t.Fatalf("redrive --all: %+v", r)
	}
	outbox, err := rdb.XRange(ctx, notify.OutboxKey("contoso"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var recipients []string
	for _, m := range outbox {
		var ev notify.Event
		if err := json.Unmarshal([]byte(m.Values["event"].(string)), &ev); err != nil || ev.Redrive == nil {
			t.Fatalf("outbox entry %v: %v", m.Values, err)
		}
		recipients = append(recipients, ev.Redrive.Recipients...)
	}
	if !slices.Equal(recipients, []string{"mail:eve@contoso.example", "webhook:0"}) {
		t.Errorf("outbox entries for %v", recipients)
	}
	left, err := rdb.XRange(ctx, notify.DeadKey("contoso"), "-", "+").Result()
	if err != nil || len(left) != 1 || left[0].ID != corrupt {
		t.Errorf("dead letters left %v, %v; want the corrupt one", left, err)
	}
}

// A bad tenant id or a bad command line is refused before anything
// connects (exit 2), and so is a missing Redis (exit 1, naming the
// variable).
func TestNotifyCommandRefusals(t *testing.T) {
	env := map[string]string{"LOCKBOX_REDIS_URL": "redis://127.0.0.1:1/0"} // nothing listens
	for _, tc := range []struct {
		args []string
		env  map[string]string
		code int
		says string
	}{
		{[]string{"notify", "dead-letters", "--tenant", "contoso}:x"}, env, 2, "--tenant: invalid identifier"},
		{[]string{"notify", "redrive", "--tenant", "Contoso", "--all"}, env, 2, "--tenant: invalid identifier"},
		{[]string{"notify", "redrive", "--all"}, env, 2, "--tenant is required"},
		{[]string{"notify", "redrive", "--tenant", "contoso"}, env, 2, "give --id or --all"},
		{[]string{"notify", "redrive", "--tenant", "contoso", "--all", "--id", "1-0"}, env, 2, "give --id or --all"},
		{[]string{"notify", "dead-letters", "--tenant", "contoso", "-o", "yaml"}, env, 2, "table or json"},
		{[]string{"notify", "resend"}, env, 2, `notify: unknown command "resend": dead-letters or redrive (lockbox notify --help)`},
		{[]string{"notify"}, env, 2, "notify: missing command: dead-letters or redrive (lockbox notify --help)"},
		{[]string{"notify", "dead-letters", "--tenant", "contoso"}, nil, 1, "LOCKBOX_REDIS_URL: required"},
		{[]string{"notify", "dead-letters", "--tenant", "contoso"}, env, 1, "LOCKBOX_REDIS_URL: "},
	} {
		r := runLockbox(t, tc.env, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.says) || r.stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want %d and %q", tc.args, r.code, r.stderr, r.stdout, tc.code, tc.says)
		}
	}
	if r := runLockbox(t, env, "notify", "--help"); r.code != 0 || !strings.HasPrefix(r.stdout, "usage: lockbox notify dead-letters") {
		t.Errorf("--help: %+v", r)
	}
	if r := runLockbox(t, env, "notify", "redrive", "-h"); r.code != 0 || !strings.HasPrefix(r.stdout, "usage: lockbox notify dead-letters") {
		t.Errorf("redrive -h: %+v", r)
	}
}

func mustParseURL(t *testing.T, url string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return o
}
