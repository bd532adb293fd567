package config

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEDocumentsEveryVariable keeps README's configuration table in
// step with the variables Lockbox reads: a row for each, with its default
// and the description of its desc tag (README may set words in `code`
// where the tag has "quotes" or nothing).
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{} // variable → its default and description cells
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "| `"+Prefix) || !strings.HasSuffix(line, "|") {
			continue
		}
		cells := strings.Split(line[1:len(line)-1], "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) != 3 {
			t.Errorf("README.md configuration row has %d cells, want 3: %s", len(cells), line)
			continue
		}
		rows[strings.Trim(cells[0], "`")] = cells[1:]
	}
	plain := strings.NewReplacer("`", "", `"`, "").Replace
	for _, v := range Vars() {
		row, ok := rows[v.Name]
		if !ok {
			t.Errorf("README.md has no configuration row for %s", v.Name)
			continue
		}
		def, desc := row[0], row[1]
		if want := "`" + v.Default + "`"; v.Default == "" && def != "" || v.Default != "" && def != want {
			t.Errorf("README.md gives %s the default %q, want %q", v.Name, def, want)
		}
		if got, want := plain(desc), plain(v.Description); got != want {
			t.Errorf("README.md describes %s differently from its desc tag:\nREADME: %s\ndesc:   %s", v.Name, got, want)
		}
	}
}
