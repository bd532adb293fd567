package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit/record"
)

// prevWorld is a filterWorld whose contoso log holds, above its
// onboarding, 2600 operator actions, more than two of the API's largest
// pages: zebra says which of them hold "zebra" in their comment, three
// in five and not evenly, so that a page counted from the wrong end
// holds another number of them.
type prevWorld struct {
	*filterWorld
	// zebras are the ids of the records -FreeText zebra keeps, newest
	// first.
	zebras []string
}

func zebra(i int) bool { return i%5 == 0 || i%5 == 2 || i%5 == 3 }

func newPrevWorld(t *testing.T) *prevWorld {
	t.Helper()
	began := time.Now().UTC()
	srv, addr, tokens := startLockboxServer(t, t.Cleanup, time.Now)
	ctx := context.Background()
	for i := range 2600 {
		r := record.Record{Operation: "Get-Mailbox", LockboxTenant: "contoso", Workload: "exchange",
			RecordType: record.RecordTypeDataCenterSecurityCmdlet, UserType: record.UserTypeDcAdmin,
			UserId: record.OperatorUserID, ProviderUserId: "alice", ClientIP: "198.51.100.7",
			ObjectId: "exchange/tenants/contoso/mailboxes/" + strconv.Itoa(i)}
		if zebra(i) {
			r.Comment = fmt.Sprintf("the zebra mailbox %d", i)
		}
		if _, err := srv.Audit.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	auditor, err := client.New(addr, tokens["auditor"])
	if err != nil {
		t.Fatal(err)
	}
	w := &prevWorld{filterWorld: &filterWorld{t: t, addr: addr, tokens: tokens,
		from: began.Format(time.DateOnly), to: began.AddDate(0, 0, 2).Format(time.DateOnly)}}
	q := client.AuditQuery{Tenant: "contoso", Limit: 1000}
	for {
		p, err := auditor.SearchAudit(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		w.all = append(w.all, p.Records...)
		if p.NextCursor == "" {
			break
		}
		q.Cursor = p.NextCursor
	}
	if len(w.all) < 2600 {
		t.Fatalf("the log holds %d records, want at least 2600", len(w.all))
	}
	w.zebras = w.want(func(r record.Record) bool { return strings.Contains(r.Comment, "zebra") })
	if len(w.zebras) != 1560 {
		t.Fatalf("%d zebras, want 1560", len(w.zebras))
	}
	return w
}

// prevCursor returns the prev_cursor of the page that continues a search
// of args cut after depth records: the cursor of the records newer than
// that page, the first depth of the search.
func (w *prevWorld) prevCursor(args []string, depth int, want []string) string {
	w.t.Helper()
	code, p, errs := w.search(append(slices.Clone(args), "-ResultSize", strconv.Itoa(depth))...)
	if code != exitOK || !slices.Equal(recordIDs(p.Records), want[:depth]) || p.NextCursor == "" {
		w.t.Fatalf("%q -ResultSize %d: exit %d, %d records, next %q: %s", args, depth, code, len(p.Records), p.NextCursor, errs)
	}
	code, p, errs = w.search(append(slices.Clone(args), "-ResultSize", "1", "--cursor", p.NextCursor)...)
	if code != exitOK || !slices.Equal(recordIDs(p.Records), want[depth:depth+1]) || p.PrevCursor == "" {
		w.t.Fatalf("%q continued: exit %d, records %q, prev %q; want %q and a prev cursor: %s", args, code, recordIDs(p.Records), p.PrevCursor, want[depth:depth+1], errs)
	}
	return p.PrevCursor
}

// TestSearchUnifiedAuditLogPrevCursor: the prev_cursor -o json prints,
// passed back as --cursor, shows the -ResultSize records just newer than
// the page it came from, newest first, as the API's page of a prev
// cursor does, with or without the filters lockboxctl applies, however
// many of the API's pages that takes; its next_cursor goes back to the
// page it came from and its prev_cursor on to the records newer still.
// Paging back to the newest record with prev cursors shows every record
// of the range once, in order.
func TestSearchUnifiedAuditLogPrevCursor(t *testing.T) {
	w := newPrevWorld(t)
	ids := recordIDs(w.all)
	for _, c := range []struct {
		name  string
		args  []string
		want  []string // every record the search shows, newest first
		depth int      // how many of them are newer than the cursor
	}{
		{"no filter", nil, ids, 1700},
		{"-FreeText zebra", []string{"-FreeText", "zebra"}, w.zebras, 1300},
	} {
		t.Run(c.name, func(t *testing.T) {
			prev := w.prevCursor(c.args, c.depth, c.want)
			for _, size := range []int{1, 5, 300, 700, 1200, 1500, 5000} {
				if size > c.depth && size != 5000 {
					continue
				}
				start := max(0, c.depth-size)
				args := append(slices.Clone(c.args), "-ResultSize", strconv.Itoa(size))
				code, p, errs := w.search(append(slices.Clone(args), "--cursor", prev)...)
				if code != exitOK {
					t.Errorf("-ResultSize %d --cursor PREV: exit %d: %s", size, code, errs)
					continue
				}
				if got := recordIDs(p.Records); !slices.Equal(got, c.want[start:c.depth]) {
					t.Errorf("-ResultSize %d --cursor PREV: %s", size, diffIDs(got, c.want, start, c.depth))
					continue
				}
				// Its next cursor goes back to the page the prev cursor
				// came from, its prev cursor on to the newer records.
				code, older, errs := w.search(append(slices.Clone(c.args), "-ResultSize", "3", "--cursor", p.NextCursor)...)
				if code != exitOK || !slices.Equal(recordIDs(older.Records), c.want[c.depth:c.depth+3]) {
					t.Errorf("-ResultSize %d --cursor PREV, then its next cursor: exit %d, records %q, want %q: %s",
						size, code, recordIDs(older.Records), c.want[c.depth:c.depth+3], errs)
				}
				if start == 0 {
					if p.PrevCursor != "" {
						t.Errorf("-ResultSize %d --cursor PREV: prev cursor %q after the newest record", size, p.PrevCursor)
					}
					continue
				}
				code, newer, errs := w.search(append(slices.Clone(c.args), "-ResultSize", "3", "--cursor", p.PrevCursor)...)
				if want := c.want[max(0, start-3):start]; code != exitOK || !slices.Equal(recordIDs(newer.Records), want) {
					t.Errorf("-ResultSize %d --cursor PREV, then its prev cursor: exit %d, records %q, want %q: %s",
						size, code, recordIDs(newer.Records), want, errs)
				}
			}

			// Back to the newest record, a page at a time: each record
			// newer than the cursor once.
			var pages [][]string
			for cursor := prev; cursor != ""; {
				if len(pages) > 20 {
					t.Fatalf("still paging after %d pages", len(pages))
				}
				code, p, errs := w.search(append(slices.Clone(c.args), "-ResultSize", "250", "--cursor", cursor)...)
				if code != exitOK {
					t.Fatalf("paging back, page %d: exit %d: %s", len(pages)+1, code, errs)
				}
				pages = append(pages, recordIDs(p.Records))
				cursor = p.PrevCursor
			}
			var got []string
			for _, p := range slices.Backward(pages) {
				got = append(got, p...)
			}
			if !slices.Equal(got, c.want[:c.depth]) {
				t.Errorf("paged back with -ResultSize 250 in %d pages: %s", len(pages), diffIDs(got, c.want, 0, c.depth))
			}
		})
	}
}

// TestAuditSearchPrevCursorAll: "audit search --cursor PREV" shows the
// page just newer than the one the cursor came from, and with --all goes
// on from it to the end of the search: every record from there once,
// in order.
func TestAuditSearchPrevCursorAll(t *testing.T) {
	w := newPrevWorld(t)
	ids := recordIDs(w.all)
	search := func(args ...string) wire.RecordPage {
		t.Helper()
		env := map[string]string{EnvAddr: w.addr, EnvToken: w.tokens["auditor"], EnvConfigDir: t.TempDir()}
		argv := append([]string{"audit", "search", "--tenant", "contoso", "-o", "json"}, args...)
		var stdout, stderr bytes.Buffer
		if code := Run(context.Background(), argv, func(k string) string { return env[k] }, &stdout, &stderr); code != exitOK {
			t.Fatalf("%q: exit %d: %s", args, code, stderr.String())
		}
		var p wire.RecordPage
		if err := json.Unmarshal(stdout.Bytes(), &p); err != nil {
			t.Fatalf("%q: %v\n%s", args, err, stdout.String())
		}
		return p
	}
	p := search("--limit", "500")
	p = search("--limit", "500", "--cursor", p.NextCursor)
	if !slices.Equal(recordIDs(p.Records), ids[500:1000]) || p.PrevCursor == "" {
		t.Fatalf("the second page: records %d to %d of the log, prev %q", 500, 1000, p.PrevCursor)
	}
	prev := p.PrevCursor
	if got := recordIDs(search("--limit", "200", "--cursor", prev).Records); !slices.Equal(got, ids[300:500]) {
		t.Errorf("--cursor PREV --limit 200: %s", diffIDs(got, ids, 300, 500))
	}
	all := search("--limit", "200", "--cursor", prev, "--all")
	if got := recordIDs(all.Records); !slices.Equal(got, ids[300:]) {
		t.Errorf("--cursor PREV --limit 200 --all: %s", diffIDs(got, ids, 300, len(ids)))
	}
	if all.NextCursor != "" {
		t.Errorf("--all: next cursor %q after the end", all.NextCursor)
	}
}

// diffIDs says how got differs from want[from:to]: where they part, and
// which records are missing, extra, or shown more than once.
func diffIDs(got, want []string, from, to int) string {
	w := want[from:to]
	at := 0
	for at < len(got) && at < len(w) && got[at] == w[at] {
		at++
	}
	wantSet := map[string]bool{}
	for _, id := range w {
		wantSet[id] = true
	}
	pos := map[string]int{}
	for i, id := range want {
		pos[id] = i
	}
	seen := map[string]int{}
	var extra, twice []string
	for _, id := range got {
		if seen[id]++; seen[id] == 2 {
			twice = append(twice, id)
		}
		if !wantSet[id] && seen[id] == 1 {
			extra = append(extra, fmt.Sprintf("%s (#%d)", id, pos[id]))
		}
	}
	var missing int
	for _, id := range w {
		if seen[id] == 0 {
			missing++
		}
	}
	first := func(s []string) []string { return s[:min(len(s), 3)] }
	return fmt.Sprintf("%d records, want %d (records #%d to #%d of the search, newest first); the same up to #%d; %d missing, %d extra (first %q), %d shown twice (first %q)",
		len(got), len(w), from, to, from+at, missing, len(extra), first(extra), len(twice), first(twice))
}
