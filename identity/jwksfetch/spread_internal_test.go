package jwksfetch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestBackgroundFetchesSpread: URLs registered together (every tenant's
// identity provider, at start-up) do not all fall due for their background
// fetch in the same second, every Refresh, as hundreds of fetches at once
// from one process; and none waits longer than Refresh, the documented
// bound on a retired key. The schedule is read from httprc, which runs it.
func TestBackgroundFetchesSpread(t *testing.T) {
	const urls, refresh = 64, 5 * time.Minute
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"keys":[]}`)) }))
	t.Cleanup(srv.Close)
	f, err := New(Config{Refresh: refresh, Workers: urls})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	ctx := context.Background()
	before := time.Now()
	for i := range urls {
		if err := f.Register(ctx, fmt.Sprintf("%s/tenant-%d/jwks", srv.URL, i), func([]byte) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	after := time.Now()
	due := map[int64]int{} // second → background fetches due then
	most := 0
	for i := range urls {
		r, err := f.ctrl.Lookup(ctx, fmt.Sprintf("%s/tenant-%d/jwks", srv.URL, i))
		if err != nil {
			t.Fatal(err)
		}
		next := r.Next()
		if next.Before(before) || next.After(after.Add(refresh)) {
			t.Errorf("URL %d is fetched again at %s, not within Refresh (%s) of its fetch at %s..%s", i, next, refresh, before, after)
		}
		if r.ConstantInterval() > refresh {
			t.Errorf("URL %d is fetched every %s, longer than Refresh (%s)", i, r.ConstantInterval(), refresh)
		}
		s := next.Unix()
		due[s]++
		most = max(most, due[s])
	}
	if most > 8 {
		t.Errorf("%d of %d URLs registered together fall due for a background fetch in the same second (%d distinct seconds)", most, urls, len(due))
	}
}
