package audit

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// TestAppendBoundedReadsTheGUIDWithinItsBound: AppendBounded returns
// within about twice its Timeout whatever ctx's deadline, and the proxy
// relies on it, handing the audit write a context without one. But the
// tenant's first record on a replica reads the tenant's GUID from its
// registry entry, and that read took the caller's context: against a hung
// Redis it waited out the client's socket timeout (LOCKBOX_REDIS_TIMEOUT,
// up to 5 s), not the audit's.
func TestAppendBoundedReadsTheGUIDWithinItsBound(t *testing.T) {
	srv := redistest.StartServer(t)
	// As lockbox serve opens it, with the longest LOCKBOX_REDIS_TIMEOUT.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true, MaxRetries: -1,
		DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	defer rdb.Close()
	b, _ := json.Marshal(map[string]string{"id": "contoso", "organization_id": uuid.NewString()})
	if err := rdb.Set(context.Background(), keys.Tenant("contoso"), b, 0).Err(); err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond
	g, err := NewGroupCommit(GroupCommitConfig{Log: NewLog(rdb, nil), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	thaw := srv.Freeze(t)
	defer thaw()
	start := time.Now()
	// The proxy's context: context.WithoutCancel(r.Context()), no deadline.
	_, err = g.AppendBounded(context.WithoutCancel(context.Background()), operatorAction("contoso"))
	took := time.Since(start)
	thaw()
	if err == nil {
		t.Fatal("a record was acknowledged by a frozen Redis")
	}
	// Twice the timeout is its bound; the socket's 5 s is what it was.
	if took > 2*time.Second {
		t.Errorf("AppendBounded with a %v timeout returned after %v against a hung Redis: %v", timeout, took, err)
	}
}
