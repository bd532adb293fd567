package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/audit/record"
)

// countedAPI puts a reverse proxy that counts the calls in front of w's
// Lockbox, and returns w searching through it and the count.
func countedAPI(t *testing.T, w *filterWorld) (*filterWorld, *atomic.Int64) {
	t.Helper()
	target, err := url.Parse(w.addr)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		rp.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	counted := *w
	counted.addr = srv.URL
	return &counted, &calls
}

// TestSearchUnifiedAuditLogCursorKeepsItsFilters: the API binds a cursor
// to its own filters and refuses it with others; -RecordType, -ObjectIds,
// -IPAddresses and -FreeText, which lockboxctl applies, were bound to
// nothing, so a search continued without -FreeText, or with another
// -RecordType, went on with other records and said nothing. The cursor
// printed after a search with them now carries them: continued with the
// same ones, in any spelling lockboxctl reads alike, it returns the rest
// of the filtered records and only them; with any of the four dropped or
// changed, or added to a cursor printed without them, it is a usage
// error saying what to do, and nothing is sent. A damaged one is refused
// as the API refuses a cursor it did not return. A search without them
// prints the API's cursor as it is.
func TestSearchUnifiedAuditLogCursorKeepsItsFilters(t *testing.T) {
	w := newFilterWorld(t)
	id0, id2, id4, id6 := w.ids[0], w.ids[2], w.ids[4], w.ids[6]
	zebras := []string{id0, id2, id4, id6}
	all4 := []string{"-RecordType", "ExchangeAdmin", "-ObjectIds", strings.Join(zebras, ","), "-IPAddresses", "127.0.0.1", "-FreeText", "zebra"}
	want := w.want(func(r record.Record) bool {
		return r.RecordType == record.RecordTypeExchangeAdmin && slices.Contains(zebras, r.ObjectId) &&
			r.ClientIP == "127.0.0.1" && strings.Contains(r.Comment, "Zebra")
	})
	if len(want) < 3 {
		t.Fatalf("%d records pass the four filters, want at least 3", len(want))
	}
	with := func(args []string, more ...string) []string { return append(slices.Clone(args), more...) }

	code, p, errs := w.search(with(all4, "-ResultSize", "2")...)
	if code != exitOK || !slices.Equal(recordIDs(p.Records), want[:2]) || p.NextCursor == "" {
		t.Fatalf("-ResultSize 2: exit %d, records %q, next %q; want %q and a cursor: %s", code, recordIDs(p.Records), p.NextCursor, want[:2], errs)
	}
	cursor := p.NextCursor
	if !strings.Contains(cursor, ".") || shellWord(cursor) != cursor {
		t.Errorf("cursor %q: want the API's cursor and a checksum after a \".\", one shell word", cursor)
	}
	// The hint of a table names the same cursor, as one word.
	if code, _, errs := table(w, with(all4, "-ResultSize", "2")...); code != exitOK ||
		!strings.Contains(errs, "More records: add --cursor "+cursor+" (or a larger -ResultSize, up to 5000).") {
		t.Errorf("as a table: exit %d, stderr %q; want the hint to name %s", code, errs, cursor)
	}

	// The same filters, as given or spelled otherwise: the rest, only.
	for _, args := range [][]string{
		all4,
		{"-recordtype", "1", "-ObjectIds", `"` + strings.ToUpper(id6) + `", ` + id4 + "," + strings.ToUpper(id2) + "," + id0 + "," + id2,
			"-ipaddresses", "::ffff:127.0.0.1,127.0.0.1", "-FreeText", "ZeBrA"},
	} {
		code, p, errs := w.search(with(args, "--cursor", cursor)...)
		if code != exitOK || !slices.Equal(recordIDs(p.Records), want[2:]) || p.NextCursor != "" {
			t.Errorf("%q --cursor: exit %d, records %q, next %q; want %q, the rest: %s", args, code, recordIDs(p.Records), p.NextCursor, want[2:], errs)
		}
	}

	// Without the four: the API's own cursor, as the API returns it.
	code, p, errs = w.search("-ResultSize", "2")
	if code != exitOK || p.NextCursor == "" {
		t.Fatalf("without the four: exit %d, next %q: %s", code, p.NextCursor, errs)
	}
	bare := p.NextCursor
	q := client.AuditQuery{Tenant: "contoso", HasFrom: true, HasTo: true, Limit: 2}
	var err error
	if q.From, err = parsePSDate(w.from); err != nil {
		t.Fatal(err)
	}
	if q.To, err = parsePSDate(w.to); err != nil {
		t.Fatal(err)
	}
	api, err := client.New(w.addr, w.tokens["auditor"])
	if err != nil {
		t.Fatal(err)
	}
	if ap, err := api.SearchAudit(context.Background(), q); err != nil || ap.NextCursor != bare {
		t.Errorf("without the four the cursor is %q; the API's is %q (%v)", bare, ap.NextCursor, err)
	}
	if code, _, errs := table(w, "-ResultSize", "2"); code != exitOK || !strings.Contains(errs, "More records: add --cursor "+bare+" (or") {
		t.Errorf("without the four, as a table: exit %d, stderr %q; want the hint to name %s", code, errs, bare)
	}
	if code, p, errs := w.search("-ResultSize", "2", "--cursor", bare); code != exitOK || !slices.Equal(recordIDs(p.Records), recordIDs(w.all[2:4])) {
		t.Errorf("without the four, continued: exit %d, records %q, want %q: %s", code, recordIDs(p.Records), recordIDs(w.all[2:4]), errs)
	}

	const otherFilters = "lockboxctl: the cursor was printed for a search with other filters: pass it with the same -RecordType, -ObjectIds, -IPAddresses and -FreeText as that search, or start again without it\n"
	const notPrinted = "lockboxctl: the cursor is not one Search-UnifiedAuditLog printed: pass it as it was printed, or start again without it\n"
	type refusal struct {
		name   string
		args   []string
		cursor string
		want   string
	}
	cases := []refusal{
		{"-RecordType dropped", all4[2:], cursor, otherFilters},
		{"-RecordType changed", with([]string{"-RecordType", "DataCenterSecurityCmdlet"}, all4[2:]...), cursor, otherFilters},
		{"-ObjectIds dropped", with(all4[:2], all4[4:]...), cursor, otherFilters},
		{"-ObjectIds changed", with(with(all4[:2], "-ObjectIds", strings.Join(zebras[1:], ",")), all4[4:]...), cursor, otherFilters},
		{"-IPAddresses dropped", with(all4[:4], all4[6:]...), cursor, otherFilters},
		{"-IPAddresses changed", with(with(all4[:4], "-IPAddresses", "127.0.0.1,192.0.2.250"), all4[6:]...), cursor, otherFilters},
		{"-FreeText dropped", all4[:6], cursor, otherFilters},
		{"-FreeText changed", with(all4[:6], "-FreeText", "zebr"), cursor, otherFilters},
		{"all four dropped", nil, cursor, otherFilters},
		{"-FreeText added", []string{"-FreeText", "zebra"}, bare, otherFilters},
		{"-RecordType of nothing added", []string{"-RecordType", "SharePoint"}, bare, otherFilters},
	}
	if apiCursor, sum, _ := strings.Cut(cursor, "."); len(sum) == 16 {
		otherSum := []byte(sum)
		if otherSum[0] == '0' {
			otherSum[0] = '1'
		} else {
			otherSum[0] = '0'
		}
		cases = append(cases, []refusal{
			{"checksum changed", all4, apiCursor + "." + string(otherSum), otherFilters},
			{"checksum cut", all4, cursor[:len(cursor)-1], notPrinted},
			{"checksum not hex", all4, apiCursor + ".g" + sum[1:], notPrinted},
			{"checksum lost, its dot kept", all4, apiCursor + ".", notPrinted},
			{"the API's cursor lost", all4, "." + sum, notPrinted},
			{"a dot too many", all4, strings.Replace(cursor, ".", "..", 1), notPrinted},
			{"a line break in it", all4, cursor[:3] + "\n" + cursor[3:], notPrinted},
			{"damaged, without the four", nil, cursor + "0", notPrinted},
		}...)
	}
	counted, calls := countedAPI(t, w)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := calls.Load()
			code, _, errs := counted.search(with(c.args, "--cursor", c.cursor)...)
			if code != exitUsage || !strings.HasPrefix(errs, c.want) {
				t.Errorf("%q --cursor %q: exit %d, stderr %q; want exit %d, %q", c.args, c.cursor, code, errs, exitUsage, c.want)
			}
			if n := calls.Load() - before; n != 0 {
				t.Errorf("%d calls to the API; want none", n)
			}
		})
	}
}
