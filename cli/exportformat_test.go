package cli

import (
	"strings"
	"testing"
)

// lockboxctl's help says -o csv is for audit records, and "audit search -o
// csv" prints the Microsoft 365 export's CSV; "audit export -o csv" was
// refused with "use table, json, yaml", none of which changed what export
// wrote: -o yaml printed JSON Lines, and "--format csv -o json" printed CSV.
// export's own flag is --format. -o csv and -o json now choose the format
// --format would (csv, jsonl), -o yaml is refused naming both, and an -o
// that disagrees with --format is refused before any call.
func TestAuditExportHonoursOutputFlag(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		code    int
		query   string // of the one export call; "" for none
		wantErr string // stderr's first line
	}{
		{[]string{"-o", "csv"}, exitOK, "format=csv&tenant=contoso", ""},
		{[]string{"-o", "json"}, exitOK, "format=jsonl&tenant=contoso", ""},
		{nil, exitOK, "format=jsonl&tenant=contoso", ""},
		{[]string{"--format", "csv"}, exitOK, "format=csv&tenant=contoso", ""},
		{[]string{"--format", "csv", "-o", "csv"}, exitOK, "format=csv&tenant=contoso", ""},
		{[]string{"--format", "jsonl", "-o", "json"}, exitOK, "format=jsonl&tenant=contoso", ""},
		{[]string{"-o", "yaml"}, exitUsage, "", `lockboxctl: -o yaml is not available for "audit export": it writes JSON Lines (--format jsonl, the default, or -o json) or CSV (--format csv, or -o csv)`},
		{[]string{"--format", "csv", "-o", "json"}, exitUsage, "", "lockboxctl: --format csv and -o json disagree: give one of them"},
		{[]string{"--format", "jsonl", "-o", "csv"}, exitUsage, "", "lockboxctl: --format jsonl and -o csv disagree: give one of them"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := run(t, append([]string{"audit", "export", "--tenant", "contoso"}, tc.args...), nil, nil)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", r.code, tc.code, r.stderr)
			}
			if tc.query == "" {
				if len(r.calls) != 0 {
					t.Errorf("called the API: %+v", r.calls)
				}
				if first, _, _ := strings.Cut(r.stderr, "\n"); first != tc.wantErr {
					t.Errorf("stderr begins %q, want %q", first, tc.wantErr)
				}
				return
			}
			if len(r.calls) != 1 || r.calls[0].Path != "/v1/audit/export" || r.calls[0].Query != tc.query {
				t.Errorf("calls %+v, want one GET /v1/audit/export?%s", r.calls, tc.query)
			}
		})
	}
}
