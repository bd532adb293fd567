package readcache

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/clock"
)

func TestAgeBound(t *testing.T) {
	c := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cache := New[string, int](time.Second, c.Now)
	_, _, ok, st := cache.Get("contoso", "k")
	if ok {
		t.Fatal("hit in an empty cache")
	}
	cache.Put("contoso", "k", 7, nil, st)
	c.Advance(999 * time.Millisecond)
	if v, _, ok, _ := cache.Get("contoso", "k"); !ok || v != 7 {
		t.Fatalf("entry gone before its age: %v %v", v, ok)
	}
	c.Advance(time.Millisecond)
	if _, _, ok, _ := cache.Get("contoso", "k"); ok {
		t.Fatal("an entry a second old was served")
	}
	// A clock set back never makes an entry young again.
	_, _, _, st = cache.Get("contoso", "k")
	cache.Put("contoso", "k", 8, nil, st)
	c.Advance(-time.Minute)
	if _, _, ok, _ := cache.Get("contoso", "k"); ok {
		t.Fatal("an entry from the clock's future was served")
	}
}

func TestMaxAgeCappedAtASecond(t *testing.T) {
	c := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cache := New[string, int](time.Hour, c.Now)
	_, _, _, st := cache.Get("t", "k")
	cache.Put("t", "k", 1, nil, st)
	c.Advance(MaxAgeLimit)
	if _, _, ok, _ := cache.Get("t", "k"); ok {
		t.Fatal("a maxAge over the limit was honoured")
	}
}

func TestInvalidateBeatsReadsInFlight(t *testing.T) {
	c := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cache := New[string, int](time.Second, c.Now)
	notFound := errors.New("not found")
	_, _, _, st := cache.Get("contoso", "grant")
	cache.Put("contoso", "grant", 0, notFound, st)
	if _, err, ok, _ := cache.Get("contoso", "grant"); !ok || err != notFound {
		t.Fatal("an answer that is an error is not cached")
	}
	// A read begins, the tenant changes, the read ends: its (old) result
	// is not kept.
	cache.Invalidate("contoso")
	_, _, _, before := cache.Get("contoso", "grant")
	cache.Invalidate("contoso")
	cache.Put("contoso", "grant", 1, nil, before)
	if _, _, ok, _ := cache.Get("contoso", "grant"); ok {
		t.Fatal("a read older than the invalidation was kept")
	}
	// Other tenants are untouched by contoso's invalidation; Reset clears
	// them all and beats reads in flight too.
	_, _, _, st = cache.Get("fabrikam", "grant")
	cache.Put("fabrikam", "grant", 2, nil, st)
	cache.Invalidate("contoso")
	if _, _, ok, _ := cache.Get("fabrikam", "grant"); !ok {
		t.Fatal("another tenant's entry was dropped")
	}
	_, _, _, before = cache.Get("fabrikam", "other")
	cache.Reset()
	cache.Put("fabrikam", "other", 3, nil, before)
	if cache.Len() != 0 {
		t.Fatalf("%d entries after Reset", cache.Len())
	}
}

func TestBounded(t *testing.T) {
	c := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cache := New[string, int](time.Second, c.Now)
	cache.maxEntries = 10
	for i := range 25 {
		_, _, _, st := cache.Get("t", fmt.Sprint(i))
		cache.Put("t", fmt.Sprint(i), i, nil, st)
		if cache.Len() > 10 {
			t.Fatalf("%d entries, bound 10", cache.Len())
		}
	}
}

func TestOffCachesNothing(t *testing.T) {
	cache := New[string, int](0, nil)
	_, _, _, st := cache.Get("t", "k")
	cache.Put("t", "k", 1, nil, st)
	if _, _, ok, _ := cache.Get("t", "k"); ok {
		t.Fatal("a cache with no age kept an entry")
	}
}

// TestAgeCountsFromTheRead: an entry's age counts from the Get that missed,
// before the read was sent, not from the Put once the reply came. A change
// can commit right after Redis answered; a replica that missed its event
// must stop serving the old answer MaxAge after the read began, however
// late the reply arrived. Errors that are answers are dated the same way.
func TestAgeCountsFromTheRead(t *testing.T) {
	c := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cache := New[string, int](time.Second, c.Now)
	notFound := errors.New("not found")
	began := c.Now()
	_, _, _, st := cache.Get("contoso", "grant")
	_, _, _, stMissing := cache.Get("contoso", "none")
	c.Advance(300 * time.Millisecond) // the replies are late
	cache.Put("contoso", "grant", 1, nil, st)
	cache.Put("contoso", "none", 0, notFound, stMissing)
	c.Advance(699 * time.Millisecond)
	for _, k := range []string{"grant", "none"} {
		_, _, ok, hit := cache.Get("contoso", k)
		if !ok {
			t.Fatalf("%s: gone before a second after its read began", k)
		}
		// A hit is dated by its read too: what callers bound their use
		// of it by (the proxy, a call that waits after its lookup).
		if !hit.At().Equal(began) {
			t.Errorf("%s: served as read at %s, want %s", k, hit.At(), began)
		}
	}
	c.Advance(time.Millisecond)
	for _, k := range []string{"grant", "none"} {
		if _, _, ok, _ := cache.Get("contoso", k); ok {
			t.Fatalf("%s: served a second after its read began (its age counted from the Put)", k)
		}
	}
}
