package tenants_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/tenants"
)

// TestTenantListIsPaged: the tenants the provider's staff see are listed a
// page at a time, sorted by id, the cursors leading to each once. The
// whole registry was one answer: any of the provider's staff with a role
// (an operator, say) made one call read and decode every registry entry,
// and build the list in memory, however many tenants the provider serves.
func TestTenantListIsPaged(t *testing.T) {
	rdb := testRedis(t)
	s, _ := newStoreOn(t, rdb)
	ctx := context.Background()
	b, err := rdb.Get(ctx, keys.Tenant("contoso")).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	const many = 2_500
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range many {
			id := fmt.Sprintf("tenant%05d", i)
			p.Set(ctx, keys.Tenant(id), bytes.Replace(b, []byte(`"contoso"`), []byte(`"`+id+`"`), 1), 0)
			p.SAdd(ctx, keys.Tenants(), id)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	total, err := rdb.SCard(ctx, keys.Tenants()).Result()
	if err != nil {
		t.Fatal(err)
	}
	entries := &redistest.Commands{}
	rdb.AddHook(entries)
	first, err := s.ListPage(ctx, operator, tenants.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Tenants) != tenants.DefaultListLimit || first.Next == "" {
		t.Fatalf("first page: %d tenants, next %q; want %d and a cursor", len(first.Tenants), first.Next, tenants.DefaultListLimit)
	}
	if n := len(entries.On(keys.Tenant("tenant02000"))); n != 0 {
		t.Errorf("the first page read the registry entry of tenant02000 %d times", n)
	}
	var ids []string
	pages := 0
	for q := (tenants.ListQuery{Limit: 1000}); ; pages++ {
		l, err := s.ListPage(ctx, operator, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Tenants) > 1000 {
			t.Fatalf("a page of %d", len(l.Tenants))
		}
		for _, tn := range l.Tenants {
			ids = append(ids, tn.ID)
		}
		if l.Next == "" {
			break
		}
		q.Cursor = l.Next
	}
	if len(ids) != int(total) || !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != int(total) || pages != 2 {
		t.Errorf("through %d pages: %d tenants (sorted %v); want each of %d once, sorted, in 3 pages", pages+1, len(ids), slices.IsSorted(ids), total)
	}
	for _, q := range []tenants.ListQuery{{Limit: 1001}, {Limit: -1}, {Cursor: "x"}, {Cursor: "dGVuYW50cy1hZnRlcjo"}} {
		if _, err := s.ListPage(ctx, operator, q); !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("%+v: %v, want invalid", q, err)
		}
	}
}
