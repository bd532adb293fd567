package console_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestRequestsPageShowsUnreadableRequests: one stored request that does
// not decode, pending or in the history, took the whole requests page down
// (503); now every other request is listed, and a row in each list names
// the damaged one and says it cannot be read.
func TestRequestsPageShowsUnreadableRequests(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	ctx := context.Background()
	pending := e.fileMany(3, "op", "contoso")
	history := e.fileMany(3, "hist", "contoso")
	e.cancel(history)
	for _, id := range []string{pending[1].ID, history[1].ID} {
		if err := e.rdb.Set(ctx, keys.Request("contoso", id), `{"state":`, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	b := e.signIn(mia)
	for _, path := range []string{"/console/requests", "/console/requests/pending"} {
		r := b.get(path)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %s", path, r)
		}
		if got, want := rows(t, r, "pending"), []string{pending[0].ID, pending[2].ID}; !slices.Equal(got, want) {
			t.Errorf("%s: pending lists %v, want %v", path, got, want)
		}
		if !strings.Contains(r.body, `data-unreadable="`+pending[1].ID+`"`) ||
			!strings.Contains(r.body, "Request <span class=\"mono\">"+pending[1].ID+"</span> of tenant contoso cannot be read") {
			t.Errorf("%s: no row says pending request %s cannot be read: %s", path, pending[1].ID, r)
		}
	}
	r := b.get("/console/requests")
	want := []string{history[2].ID, history[0].ID}
	if got := rows(t, r, "history"); !slices.Equal(got, want) {
		t.Errorf("history lists %v, want %v", got, want)
	}
	if !strings.Contains(r.body, `data-unreadable="`+history[1].ID+`"`) {
		t.Errorf("no row says request %s of the history cannot be read: %s", history[1].ID, r)
	}
}

// TestAuditPageShowsUnreadableRecord: an audit record that does not decode
// failed the whole audit search page; now the others are shown and a row
// names it by its stream id.
func TestAuditPageShowsUnreadableRecord(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	e.file("contoso")
	bad, err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: keys.Audit("contoso"), Values: []string{"r", `{"Id":`}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	r := e.signIn(auditor).get("/console/audit?tenant=contoso")
	if r.status != http.StatusOK {
		t.Fatalf("audit page: %s", r)
	}
	if !strings.Contains(r.body, "New-AccessToCustomerDataRequest") {
		t.Errorf("the readable records are not shown: %s", r)
	}
	if !strings.Contains(r.body, `data-unreadable="`+bad+`"`) || !strings.Contains(r.body, "of tenant contoso cannot be read") {
		t.Errorf("no row says record %s cannot be read: %s", bad, r)
	}
}
