package console_test

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
)

// TestTenantsPageIsPaged: the tenants page lists 200 tenants at a time,
// with a link to the next ones. It listed every tenant the provider
// serves in one page, each registry entry read for it.
func TestTenantsPageIsPaged(t *testing.T) {
	parallel(t)
	e := newEnv(t)
	ctx := context.Background()
	b, err := e.rdb.Get(ctx, keys.Tenant("contoso")).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	const many = 450
	if _, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range many {
			id := fmt.Sprintf("tenant%04d", i)
			p.Set(ctx, keys.Tenant(id), bytes.Replace(b, []byte(`"contoso"`), []byte(`"`+id+`"`), 1), 0)
			p.SAdd(ctx, keys.Tenants(), id)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	total, err := e.rdb.SCard(ctx, keys.Tenants()).Result()
	if err != nil {
		t.Fatal(err)
	}
	rows := func(body string) int {
		return strings.Count(body, `<td data-label="Tenant"><a href="/console/tenants/`)
	}
	more := regexp.MustCompile(`<a class="button secondary" href="([^"]+)" rel="next">More tenants</a>`)
	br := e.signIn(lara)
	seen, pages := 0, 0
	for path := "/console/tenants"; path != ""; pages++ {
		r := br.get(path)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %s", path, r)
		}
		n := rows(r.body)
		if n > 200 {
			t.Fatalf("%s lists %d tenants, want at most 200", path, n)
		}
		seen += n
		path = ""
		if m := more.FindStringSubmatch(r.body); m != nil {
			path = html.UnescapeString(m[1])
		}
	}
	if seen != int(total) || pages != 3 {
		t.Errorf("%d pages listed %d tenants, want %d in 3", pages, seen, total)
	}
}
