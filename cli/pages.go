package cli

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
)

// newestFirst orders requests as the server lists them: by creation
// millisecond, then by "tenant/id", newest first. (The provider-wide
// listing breaks a tie by tenant/id, a tenant's by id: the same order for
// one tenant's requests.) The tie is broken on the joined string, as the
// index compares it, not on the tenant and then the id: '-' sorts before
// '/', so newest first the index lists contoso's requests of one
// millisecond before contoso-eu's, where comparing the tenants would list
// contoso-eu's first. Merged in another order, --state pending printed
// them in an order no listing has.
func newestFirst(a, b wire.Request) int {
	return cmp.Or(cmp.Compare(b.CreatedAt.UnixMilli(), a.CreatedAt.UnixMilli()),
		strings.Compare(b.Tenant+"/"+b.ID, a.Tenant+"/"+a.ID))
}

// cursors are the cursors a listing read with --all has sent. A server
// that answers one of them again (a bug, or a cache in front of it
// answering the first page) would have --all print the same pages for
// ever, so lockboxctl stops there.
type cursors map[string]bool

// follow records next, the cursor a page answered, before it is sent, and
// refuses one sent before.
func (c cursors) follow(next string) error {
	if c[next] {
		return fmt.Errorf("the server gave the cursor %s again: stopped reading pages, as following it would repeat them without end", next)
	}
	c[next] = true
	return nil
}

// pager reads one listing page by page, a request at a time.
type pager struct {
	c    *client.Client
	opts client.ListOptions
	buf  []wire.Request
	done bool
	// sent are the cursors sent so far, the first page's among them.
	sent cursors
}

// peek returns the listing's next request, reading a page when it has none
// left; false at the end.
func (p *pager) peek(e *env) (wire.Request, bool, error) {
	for len(p.buf) == 0 && !p.done {
		pg, err := p.c.ListRequestsPage(e.ctx, p.opts)
		if err != nil {
			return wire.Request{}, false, err
		}
		e.tellUnreadable(pg.Unreadable)
		p.buf, p.opts.Cursor, p.done = pg.Requests, pg.NextCursor, pg.NextCursor == ""
		if !p.done {
			if err := p.sent.follow(pg.NextCursor); err != nil {
				return wire.Request{}, false, err
			}
		}
	}
	if len(p.buf) == 0 {
		return wire.Request{}, false, nil
	}
	return p.buf[0], true, nil
}

// mergeAll writes every request of the listings, newest first, as their
// pages come: each listing is newest first, so the newest of their next
// requests is the next one. A request that changed state while the
// listings were read can be in two of them (read by one before the
// change, by the other after it): it is written once, the first time it
// comes, so a script acting on each request written acts on it once.
func mergeAll(e *env, ps []*pager, out requestWriter) error {
	batch := make([]wire.Request, 0, tableChunk)
	written := map[string]bool{}
	for {
		var best *pager
		var bestReq wire.Request
		for _, p := range ps {
			r, ok, err := p.peek(e)
			if err != nil {
				return err
			}
			if ok && (best == nil || newestFirst(r, bestReq) < 0) {
				best, bestReq = p, r
			}
		}
		if best == nil {
			return out.write(batch)
		}
		best.buf = best.buf[1:]
		if written[bestReq.ID] {
			continue
		}
		written[bestReq.ID] = true
		if batch = append(batch, bestReq); len(batch) == cap(batch) {
			if err := out.write(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
}

// requestWriter prints pages of requests as they come.
type requestWriter interface {
	write([]wire.Request) error
	// close ends the output, with the cursors of the page after the last
	// and of the page before the first.
	close(pg pageCursors) error
}

func (e *env) requestWriter() requestWriter {
	switch e.g.output {
	case "json":
		return &jsonRequests{e: e}
	case "yaml":
		return &yamlRequests{e: e}
	case "id":
		return &idRequests{w: e.stdout}
	}
	return &tableRequests{w: e.stdout}
}

// tableRequests prints one table per chunk of requests (a table's columns
// depend on every row), so --all holds at most a chunk.
type tableRequests struct {
	w       io.Writer
	reqs    []wire.Request
	printed bool
}

func (t *tableRequests) write(reqs []wire.Request) error {
	t.reqs = append(t.reqs, reqs...)
	if len(t.reqs) >= tableChunk {
		return t.flush()
	}
	return nil
}

func (t *tableRequests) flush() error {
	t.printed = true
	err := printRequests(t.w, t.reqs)
	t.reqs = t.reqs[:0]
	return err
}

func (t *tableRequests) close(pageCursors) error {
	if len(t.reqs) == 0 && t.printed {
		return nil
	}
	return t.flush()
}

// jsonRequests prints the API's page, {"requests":[...],"next_cursor":...,
// "prev_cursor":...,"unreadable":[...]},
// exactly as writeJSON would, encoded a request at a time but written
// whole at close: --all that fails midway (a page the server can't
// answer, a repeated cursor) then prints nothing, as -o yaml and audit
// search do, rather than half a document that a script's jq can't parse.
// It holds the encoded listing, not the requests.
type jsonRequests struct {
	e   *env
	buf bytes.Buffer
	n   int
}

// indented encodes v as writeJSON does, each line after the first
// indented by prefix, without the final newline.
func indented(v any, prefix string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent(prefix, "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func (j *jsonRequests) write(reqs []wire.Request) error {
	for _, r := range reqs {
		if j.n == 0 {
			j.buf.WriteString("{\n  \"requests\": [\n    ")
		} else {
			j.buf.WriteString(",\n    ")
		}
		v, err := indented(r, "    ")
		if err != nil {
			return err
		}
		j.buf.Write(v)
		j.n++
	}
	return nil
}

func (j *jsonRequests) close(pg pageCursors) error {
	bad := j.e.unreadableRequests
	if j.n == 0 {
		return writeJSON(j.e.stdout, wire.RequestList{Requests: []wire.Request{}, NextCursor: pg.next, PrevCursor: pg.prev, Unreadable: bad})
	}
	j.buf.WriteString("\n  ]")
	// In the order of wire.RequestList's fields, as writeJSON writes them,
	// each left out when empty (omitempty).
	for _, f := range []struct {
		name  string
		value any
		empty bool
	}{{"next_cursor", pg.next, pg.next == ""}, {"prev_cursor", pg.prev, pg.prev == ""}, {"unreadable", bad, len(bad) == 0}} {
		if f.empty {
			continue
		}
		v, err := indented(f.value, "  ")
		if err != nil {
			return err
		}
		j.buf.WriteString(",\n  \"" + f.name + "\": " + string(v))
	}
	j.buf.WriteString("\n}\n")
	// As writeJSON: a reason's C1 controls and bidirectional overrides,
	// which encoding/json leaves as they are, are written as escapes.
	_, err := j.e.stdout.Write(escapeUnsafe(j.buf.Bytes(), false))
	return err
}

// yamlRequests prints the API's page as one YAML document, at the end:
// YAML is for reading, and a document written in pieces can't be.
type yamlRequests struct {
	e    *env
	reqs []wire.Request
}

func (y *yamlRequests) write(reqs []wire.Request) error {
	y.reqs = append(y.reqs, reqs...)
	return nil
}

func (y *yamlRequests) close(pg pageCursors) error {
	if y.reqs == nil {
		y.reqs = []wire.Request{}
	}
	return writeYAML(y.e.stdout, wire.RequestList{Requests: y.reqs, NextCursor: pg.next, PrevCursor: pg.prev, Unreadable: y.e.unreadableRequests})
}

// idRequests prints ids, one a line, as they come.
type idRequests struct{ w io.Writer }

func (o *idRequests) write(reqs []wire.Request) error {
	for _, r := range reqs {
		if _, err := fmt.Fprintln(o.w, clean(r.ID)); err != nil {
			return err
		}
	}
	return nil
}

func (o *idRequests) close(pageCursors) error { return nil }

// tellUnreadable reports on stderr each request a page named as unreadable
// (its stored record does not decode), once: the listing goes on with the
// others, and a table keeps its shape. -o json and -o yaml also carry it
// in the listing's "unreadable" list, as the API's page does.
func (e *env) tellUnreadable(us []wire.UnreadableRequest) {
	for _, u := range us {
		if e.told == nil {
			e.told = map[string]bool{}
		}
		if k := "request " + u.Tenant + "/" + u.ID; !e.told[k] {
			e.told[k] = true
			e.unreadableRequests = append(e.unreadableRequests, u)
			fmt.Fprintf(e.stderr, "Request %s of tenant %s %s: its stored record is damaged; the other requests are listed.\n",
				clean(u.ID), clean(u.Tenant), clean(u.Error))
		}
	}
}

// tellUnreadableTenants is tellUnreadable for the tenants a tenant list
// named as unreadable (their registry entry does not decode).
func (e *env) tellUnreadableTenants(us []wire.UnreadableTenant) {
	for _, u := range us {
		fmt.Fprintf(e.stderr, "Tenant %s %s: its stored registry entry is damaged; the other tenants are listed.\n",
			clean(u.ID), clean(u.Error))
	}
}

// tellUnreadableRecords is tellUnreadable for the audit records a search
// page, or a request's activity, named as unreadable.
func (e *env) tellUnreadableRecords(us []wire.UnreadableRecord) {
	for _, u := range us {
		if e.told == nil {
			e.told = map[string]bool{}
		}
		if k := "record " + u.Tenant + "/" + u.StreamID; !e.told[k] {
			e.told[k] = true
			e.unreadableRecords = append(e.unreadableRecords, u)
			fmt.Fprintf(e.stderr, "Audit record %s of tenant %s %s: its stored record is damaged; the other records are shown.\n",
				clean(u.StreamID), clean(u.Tenant), clean(u.Error))
		}
	}
}

// tellCursors says on stderr where each of pg's cursors leads, for a
// listing of what ("records", "requests"), in the words
// Search-UnifiedAuditLog uses (tellPSCursors). Read downwards, the next
// cursor goes on to the older ones and the prev cursor back to the newer
// ones. A page reached by a prev cursor (newer) was read upwards: its prev
// cursor goes on to the ones newer still and its next cursor leads back
// down to the page the user came from, which "More" offered as if it had
// not been seen. --all follows next cursors only, so it is offered beside
// the next cursor, whichever way that one goes.
func (e *env) tellCursors(pg pageCursors, newer bool, what string) {
	if newer {
		if pg.prev != "" {
			fmt.Fprintf(e.stderr, "Newer %s: add --cursor %s.\n", what, clean(shellWord(pg.prev)))
		}
		if pg.next != "" {
			fmt.Fprintf(e.stderr, "Older %s: add --cursor %s (or use --all).\n", what, clean(shellWord(pg.next)))
		}
		return
	}
	if pg.next != "" {
		fmt.Fprintf(e.stderr, "More %s: add --cursor %s (or use --all).\n", what, clean(shellWord(pg.next)))
	}
	if pg.prev != "" {
		fmt.Fprintf(e.stderr, "Newer %s: add --cursor %s.\n", what, clean(shellWord(pg.prev)))
	}
}
