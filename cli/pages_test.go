package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// pagedID is the id of request n of the paged tenant: a larger n is newer.
func pagedID(n int) string { return fmt.Sprintf("0190a1b2-0000-7000-8000-%012d", n) }

// pagedRequests answers GET /v1/requests?tenant=paged a request a page,
// with a cursor naming the next: requests 3, 2, 1 in any state; with
// state=pending_manager 4, 2 and with pending_customer 3, 1.
func pagedRequests(q url.Values) wire.RequestList {
	ns := []int{3, 2, 1}
	switch q.Get("state") {
	case "pending_manager":
		ns = []int{4, 2}
	case "pending_customer":
		ns = []int{3, 1}
	}
	i := 0
	if c := q.Get("cursor"); c != "" {
		if _, err := fmt.Sscanf(c, "page%d", &i); err != nil {
			return wire.RequestList{}
		}
	}
	r := sampleRequest()
	r.ID, r.Tenant, r.CreatedAt = pagedID(ns[i]), "paged", t0.Add(time.Duration(ns[i])*time.Hour)
	l := wire.RequestList{Requests: []wire.Request{r}}
	if i+1 < len(ns) {
		l.NextCursor = fmt.Sprintf("page%d", i+1)
	}
	return l
}

// gapRequests answers GET /v1/requests?tenant=gap two requests a page:
// pending_manager 5, 4 | 2 and pending_customer 3, 1. The first pages of
// the two pending states leave out 2, which is newer than 1.
func gapRequests(q url.Values) wire.RequestList {
	var pages [][]int
	switch q.Get("state") {
	case "pending_manager":
		pages = [][]int{{5, 4}, {2}}
	case "pending_customer":
		pages = [][]int{{3, 1}}
	default:
		pages = [][]int{{5, 4}, {3, 2}, {1}}
	}
	i := 0
	if c := q.Get("cursor"); c != "" {
		if _, err := fmt.Sscanf(c, "page%d", &i); err != nil || i >= len(pages) {
			return wire.RequestList{}
		}
	}
	l := wire.RequestList{Requests: []wire.Request{}}
	for _, n := range pages[i] {
		r := sampleRequest()
		r.ID, r.Tenant, r.CreatedAt = pagedID(n), "gap", t0.Add(time.Duration(n)*time.Hour)
		l.Requests = append(l.Requests, r)
	}
	if i+1 < len(pages) {
		l.NextCursor = fmt.Sprintf("page%d", i+1)
	}
	return l
}

func TestRequestListPages(t *testing.T) {
	list := func(q string) call { return call{Method: "GET", Path: "/v1/requests", Query: q} }
	ids := func(ns ...int) []string {
		var out []string
		for _, n := range ns {
			out = append(out, pagedID(n))
		}
		return out
	}
	tests := []struct {
		name      string
		args      []string
		wantCalls []call
		wantIDs   []string // in stdout, in this order
		wantErr   string   // in stderr; "" for nothing at all
		check     func(t *testing.T, stdout string)
	}{
		{
			name:      "one page names the next",
			args:      []string{"get", "requests", "--tenant", "paged", "--limit", "1"},
			wantCalls: []call{list("limit=1&tenant=paged")},
			wantIDs:   ids(3),
			wantErr:   "More requests: add --cursor page1 (or use --all).",
		},
		{
			name:      "--cursor continues",
			args:      []string{"request", "list", "--tenant", "paged", "--cursor", "page2"},
			wantCalls: []call{list("cursor=page2&tenant=paged")},
			wantIDs:   ids(1),
		},
		{
			name:      "--all follows every page, as a table",
			args:      []string{"get", "requests", "--tenant", "paged", "--all"},
			wantCalls: []call{list("tenant=paged"), list("cursor=page1&tenant=paged"), list("cursor=page2&tenant=paged")},
			wantIDs:   ids(3, 2, 1),
			check: func(t *testing.T, out string) {
				if n := strings.Count(out, "EXPIRES/DECIDE BY"); n != 1 {
					t.Errorf("%d table headers, want 1:\n%s", n, out)
				}
			},
		},
		{
			name:      "--all as json is the API's page, every request in it",
			args:      []string{"get", "requests", "--tenant", "paged", "--all", "-o", "json"},
			wantCalls: []call{list("tenant=paged"), list("cursor=page1&tenant=paged"), list("cursor=page2&tenant=paged")},
			wantIDs:   ids(3, 2, 1),
			check: func(t *testing.T, out string) {
				var l wire.RequestList
				if err := json.Unmarshal([]byte(out), &l); err != nil || len(l.Requests) != 3 || l.NextCursor != "" {
					t.Fatalf("output %q decoded to %+v, %v", out, l, err)
				}
				// Written a request at a time, the same text as at once.
				var want bytes.Buffer
				if err := writeJSON(&want, l); err != nil || out != want.String() {
					t.Errorf("output\n%s\nwant\n%s", out, want.String())
				}
			},
		},
		{
			name:      "one page as json carries next_cursor, no hint",
			args:      []string{"get", "requests", "--tenant", "paged", "-o", "json"},
			wantCalls: []call{list("tenant=paged")},
			wantIDs:   ids(3),
			check: func(t *testing.T, out string) {
				var l wire.RequestList
				if err := json.Unmarshal([]byte(out), &l); err != nil || l.NextCursor != "page1" {
					t.Fatalf("output %q decoded to %+v, %v", out, l, err)
				}
				var want bytes.Buffer
				if err := writeJSON(&want, l); err != nil || out != want.String() {
					t.Errorf("output\n%s\nwant\n%s", out, want.String())
				}
			},
		},
		{
			// README: both together resume a long read from the cursor.
			name:      "--cursor with --all reads every page from the cursor on",
			args:      []string{"-o", "id", "get", "requests", "--tenant", "paged", "--cursor", "page1", "--all"},
			wantCalls: []call{list("cursor=page1&tenant=paged"), list("cursor=page2&tenant=paged")},
			wantIDs:   ids(2, 1),
			check: func(t *testing.T, out string) {
				if out != strings.Join(ids(2, 1), "\n")+"\n" {
					t.Errorf("output %q", out)
				}
			},
		},
		{
			name:      "--all as ids",
			args:      []string{"-o", "id", "get", "requests", "--tenant", "paged", "--all"},
			wantCalls: []call{list("tenant=paged"), list("cursor=page1&tenant=paged"), list("cursor=page2&tenant=paged")},
			wantIDs:   ids(3, 2, 1),
			check: func(t *testing.T, out string) {
				if out != strings.Join(ids(3, 2, 1), "\n")+"\n" {
					t.Errorf("output %q", out)
				}
			},
		},
		{
			name: "--all with both pending states merges their pages newest first",
			args: []string{"get", "requests", "--tenant", "paged", "--state", "pending", "--all"},
			wantCalls: []call{
				list("state=pending_manager&tenant=paged"), list("state=pending_customer&tenant=paged"),
				list("cursor=page1&state=pending_manager&tenant=paged"), list("cursor=page1&state=pending_customer&tenant=paged"),
			},
			wantIDs: ids(4, 3, 2, 1),
		},
		{
			// A page of one each: 3 is not known to come after 4 (the
			// pending_manager listing went on after it), so a page of one.
			name:      "both pending states without --all: cut, no cursor to give",
			args:      []string{"get", "requests", "--tenant", "paged", "--state", "pending"},
			wantCalls: []call{list("state=pending_manager&tenant=paged"), list("state=pending_customer&tenant=paged")},
			wantIDs:   ids(4),
			wantErr:   "More requests: use --all.",
		},
		{
			// The server's default page: two requests of each state. The
			// pending_manager one was cut after 4, so what follows 4 in
			// the merge is not known to be next (2 is): 3 and 1 were
			// printed as if nothing came between them.
			name:      "both pending states without --all or --limit: only what is known to come first",
			args:      []string{"get", "requests", "--tenant", "gap", "--state", "pending"},
			wantCalls: []call{list("state=pending_manager&tenant=gap"), list("state=pending_customer&tenant=gap")},
			wantIDs:   ids(5, 4),
			wantErr:   "More requests: use --all.",
		},
		{
			name:    "both pending states with --all: every request",
			args:    []string{"get", "requests", "--tenant", "gap", "--state", "pending", "--all"},
			wantIDs: ids(5, 4, 3, 2, 1),
		},
		{
			name:    "PowerShell's verb takes --all",
			args:    []string{"Get-AccessToCustomerDataRequest", "--tenant", "paged", "-ApprovalStatus", "Pending", "-All"},
			wantIDs: ids(4, 3, 2, 1),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, tc.args, nil, nil)
			if res.code != 0 {
				t.Fatalf("exit %d, stderr %s", res.code, res.stderr)
			}
			if tc.wantCalls != nil && !slices.Equal(res.calls, tc.wantCalls) {
				t.Errorf("calls\n%+v\nwant\n%+v", res.calls, tc.wantCalls)
			}
			at := 0
			for _, id := range tc.wantIDs {
				i := strings.Index(res.stdout[at:], id)
				if i < 0 {
					t.Fatalf("stdout lacks %s after offset %d (or has it out of order):\n%s", id, at, res.stdout)
				}
				at += i + len(id)
			}
			if strings.Count(res.stdout, "0190a1b2-") != len(tc.wantIDs) {
				t.Errorf("stdout has other requests:\n%s", res.stdout)
			}
			if tc.wantErr == "" && res.stderr != "" || !strings.Contains(res.stderr, tc.wantErr) {
				t.Errorf("stderr %q, want %q", res.stderr, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t, res.stdout)
			}
		})
	}

	t.Run("--cursor with both pending states is a usage error", func(t *testing.T) {
		res := run(t, []string{"get", "requests", "--state", "pending", "--cursor", "page1"}, nil, nil)
		if res.code != 2 || len(res.calls) != 0 || !strings.Contains(res.stderr, "use --all") {
			t.Errorf("exit %d, calls %v, stderr %s", res.code, res.calls, res.stderr)
		}
	})
	t.Run("an ID can't take --all", func(t *testing.T) {
		res := run(t, []string{"get", "requests", reqID, "--all"}, nil, nil)
		if res.code != 2 || len(res.calls) != 0 {
			t.Errorf("exit %d, calls %v, stderr %s", res.code, res.calls, res.stderr)
		}
	})
}
