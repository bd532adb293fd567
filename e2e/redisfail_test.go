package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// startBehindRelay is start with Lockbox reaching its Redis through a
// relay that can lose a reply; url is the Redis itself.
func startBehindRelay(t *testing.T, extra ...string) (w *world, relay *redistest.Relay, url string) {
	t.Helper()
	url = redistest.URL(t)
	relay = redistest.StartRelay(t, url)
	return startOn(t, map[string]string{"LOCKBOX_REDIS_URL": relay.URL}, nil, extra...), relay, url
}

// recordsOf reads tenant's audit stream straight from the Redis at url
// and returns the ids of its records of operation ("": of every
// operation), in order, duplicates included.
func recordsOf(t *testing.T, url, tenant, operation string) []string {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	msgs, err := c.XRange(context.Background(), keys.Audit(tenant), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		var rec record.Record
		if s, _ := m.Values["r"].(string); json.Unmarshal([]byte(s), &rec) == nil && (operation == "" || rec.Operation == operation) {
			ids = append(ids, rec.Id)
		}
	}
	return ids
}

// TestOperatorCallAuditedOnceWhenTheReplyIsLost: the connection to Redis
// breaks after Redis wrote a proxied call's audit record and before its
// answer came back (a failover, a restart, a network cut). The record is
// in the log once: Lockbox does not send the write again, which would
// append it a second time; it refuses the call (503 audit_unavailable),
// the safe side of not knowing whether the record was written.
func TestOperatorCallAuditedOnceWhenTheReplyIsLost(t *testing.T) {
	w, relay, url := startBehindRelay(t)
	r := w.create("operator")
	w.ok("manager", nil, "request", "approve", r.ID)
	w.ok("admin", nil, "request", "approve", r.ID)
	const path = "/exchange/tenants/contoso/mailboxes"
	// The first call loads the audit script: the lost reply below is the
	// one of a write that ran.
	if status, code := w.get("operator", path); status != 200 {
		t.Fatalf("first call: %d %s", status, code)
	}
	relay.LoseReplyTo(func(sent []byte) bool {
		return bytes.Contains(sent, []byte("evalsha")) && bytes.Contains(sent, []byte(`"Operation":"Get-Mailbox"`))
	})
	status, code := w.get("operator", path)
	if !relay.Lost() {
		t.Fatal("the relay lost no reply: the test no longer exercises a lost answer")
	}
	if status != 503 || code != "audit_unavailable" {
		t.Errorf("call whose audit answer was lost: %d %s, want 503 audit_unavailable", status, code)
	}
	ids := recordsOf(t, url, "contoso", "Get-Mailbox")
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Fatalf("records of the two calls: %q, want one each", ids)
	}
}

// TestOnRedisClusterOperatorCallAuditedOnceWhenTheReplyIsLost is
// TestOperatorCallAuditedOnceWhenTheReplyIsLost with Lockbox on a Redis
// Cluster, whose client would send the audit batch's script again after
// the lost answer and call it written. Lockbox reaches the master that
// holds contoso's audit chain through the relay (the master announces the
// relay's port).
func TestOnRedisClusterOperatorCallAuditedOnceWhenTheReplyIsLost(t *testing.T) {
	c := onCluster(t)
	ctx := context.Background()
	slot, err := redistest.Slot(ctx, c.Client(t), keys.Audit("contoso"))
	if err != nil {
		t.Fatal(err)
	}
	master, err := c.MasterOf(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	relay := redistest.StartRelay(t, "redis://"+master+"/0")
	_, port, _ := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(relay.URL, "redis://"), "/0"))
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	c.Announce(t, master, n)
	w := start(t)
	r := w.create("operator")
	w.ok("manager", nil, "request", "approve", r.ID)
	w.ok("admin", nil, "request", "approve", r.ID)
	const path = "/exchange/tenants/contoso/mailboxes"
	if status, code := w.get("operator", path); status != 200 {
		t.Fatalf("first call: %d %s", status, code)
	}
	relay.LoseReplyTo(func(sent []byte) bool {
		return bytes.Contains(sent, []byte("evalsha")) && bytes.Contains(sent, []byte(`"Operation":"Get-Mailbox"`))
	})
	status, code := w.get("operator", path)
	if !relay.Lost() {
		t.Fatal("the relay lost no reply: the test no longer exercises a lost answer")
	}
	if status != 503 || code != "audit_unavailable" {
		t.Errorf("call whose audit answer was lost: %d %s, want 503 audit_unavailable", status, code)
	}
	ids := recordsOf(t, "redis://"+master+"/0", "contoso", "Get-Mailbox")
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Fatalf("records of the two calls: %q, want one each", ids)
	}
}
