package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
)

// TestREADMEDocumentsEveryVariable keeps README's configuration table in
// step with the variables Lockbox reads: a row for each and for no other,
// with its default and the description of its desc tag (README may set words in `code`
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
	known := map[string]bool{}
	for _, v := range Vars() {
		known[v.Name] = true
	}
	// A row of a variable Lockbox does not read (renamed, or removed)
	// would document a setting that does nothing.
	for name := range rows {
		if !known[name] {
			t.Errorf("README.md has a configuration row for %s, which Lockbox does not read", name)
		}
	}
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

// TestMarkdownLinksResolve keeps the links of the repository's Markdown
// files (README.md above all) from pointing nowhere: each relative link
// names a file or directory that exists, and each #anchor, in the same
// file or in another Markdown file, names one of its headings as GitHub
// renders them. A heading renamed without its links, or a section cited by
// an anchor spelt from memory, fails here instead of sending a reader to
// the top of the page.
func TestMarkdownLinksResolve(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no Markdown files found")
	}
	anchors := map[string]map[string]bool{} // file → its headings' anchors
	anchorsOf := func(path string) (map[string]bool, error) {
		if a, ok := anchors[path]; ok {
			return a, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		a := headingAnchors(string(b))
		anchors[path] = a
		return a, nil
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, file)
		for _, l := range markdownLinks(string(b)) {
			where := fmt.Sprintf("%s:%d: link %q", rel, l.line, l.target)
			path, anchor, _ := strings.Cut(l.target, "#")
			target := file
			if path != "" {
				target = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
				if r, err := filepath.Rel(root, target); err != nil || strings.HasPrefix(r, "..") {
					t.Errorf("%s leaves the repository", where)
					continue
				}
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s names no file: %v", where, err)
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(target, ".md") {
				continue
			}
			a, err := anchorsOf(target)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if !a[anchor] {
				t.Errorf("%s: %s has no heading whose anchor is #%s", where, filepath.Base(target), anchor)
			}
		}
	}
}

type mdLink struct {
	line   int
	target string
}

var (
	// mdLinkRE finds inline links and images, [text](target) or
	// [text](target "title"); reference-style links are not used here.
	mdLinkRE = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	// mdCodeSpanRE finds inline code, whose brackets are no link.
	mdCodeSpanRE = regexp.MustCompile("`[^`]*`")
	// mdHeadingLinkRE finds a link in a heading, whose anchor keeps the
	// link's text only.
	mdHeadingLinkRE = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// markdownLinks returns the relative links of a Markdown text (those with
// no scheme), outside code blocks and code spans.
func markdownLinks(text string) []mdLink {
	var out []mdLink
	fenced := false
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		line = mdCodeSpanRE.ReplaceAllString(line, "")
		for _, m := range mdLinkRE.FindAllStringSubmatch(line, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			out = append(out, mdLink{line: i + 1, target: target})
		}
	}
	return out
}

// headingAnchors returns the anchors GitHub gives the headings of a
// Markdown text: the heading's text in lower case, without punctuation
// (letters, digits, spaces, hyphens and underscores stay), spaces made
// hyphens, and -1, -2, ... after a repeated one.
func headingAnchors(text string) map[string]bool {
	out := map[string]bool{}
	fenced := false
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimLeft(line, "#")
		if title == "" || title[0] != ' ' {
			continue // #hashtag, not a heading
		}
		title = strings.TrimSpace(strings.TrimRight(strings.TrimSpace(title), "#"))
		title = mdHeadingLinkRE.ReplaceAllString(title, "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		anchor := b.String()
		for n := 1; out[anchor]; n++ {
			anchor = fmt.Sprintf("%s-%d", b.String(), n)
		}
		out[anchor] = true
	}
	return out
}

// TestDocumentedVariablesExist: every LOCKBOX_ variable the documentation
// names in its prose (the Markdown files, openapi.yaml, the Makefile), not
// only in README's table, is one Lockbox or lockboxctl reads, and every
// family it names (LOCKBOX_SMTP_*) has a member: a reader who sets a name
// spelt from a sentence would otherwise be ignored, with at most a
// warning. deploy/'s files are held to the same by deploy's
// TestSettingsExist.
func TestDocumentedVariablesExist(t *testing.T) {
	name := regexp.MustCompile(`LOCKBOX_[A-Z0-9_]*`)
	// A name the documentation gives as what not to write: "A LOCKBOX_
	// variable Lockbox does not read (`LOCKBOX_X=1`) is most likely
	// misspelt".
	example := regexp.MustCompile("`(LOCKBOX_[A-Z0-9_]+)=[^`]*`\\) is most likely misspelt")
	examples := 0
	found := 0
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != ".." || d.Name() == "testdata" || p == filepath.Join("..", "tools")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !(strings.HasSuffix(p, ".md") || p == filepath.Join("..", "api", "openapi.yaml") || p == filepath.Join("..", "Makefile")) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		misspelt := map[string]bool{}
		for _, m := range example.FindAllStringSubmatch(strings.Join(strings.Fields(string(b)), " "), -1) {
			examples++
			misspelt[m[1]] = true
			if len(UnknownVars(map[string]string{m[1]: "x"})) == 0 {
				t.Errorf("%s gives %s as a misspelling, but Lockbox reads it now: choose another example", p, m[1])
			}
		}
		for _, v := range name.FindAllString(string(b), -1) {
			found++
			if prefix, ok := strings.CutSuffix(v, "_"); ok {
				// A family: LOCKBOX_SMTP_*, LOCKBOX_*_ADDR, LOCKBOX_TEST_*.
				if !slices.ContainsFunc(Vars(), func(d VarDoc) bool { return strings.HasPrefix(d.Name, prefix) }) &&
					!slices.ContainsFunc(otherPrefixes, func(o string) bool { return strings.HasPrefix(o, v) }) {
					t.Errorf("%s: %s* names no variable", p, v)
				}
				continue
			}
			if misspelt[v] {
				continue
			}
			if u := UnknownVars(map[string]string{v: "x"}); len(u) > 0 {
				t.Errorf("%s names %s, which neither Lockbox nor lockboxctl reads (%s)", p, v, u[0])
			}
		}
		return nil
	})
	if err != nil || found < 100 || examples == 0 {
		t.Fatalf("walk: %v, %d names found, %d given as misspelt", err, found, examples)
	}
}

// TestREADMEIssuersExample: the issuers file README's "Identity providers"
// shows, which readers copy to start theirs, is one "lockbox serve" starts
// with (its files in place): every field known, every entry complete, its
// console sections' secrets found relative to the file, as the example's
// comments say.
func TestREADMEIssuersExample(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n### Identity providers\n")
	if !ok {
		t.Fatal(`README.md has no section "### Identity providers"`)
	}
	section, _, _ = strings.Cut(section, "\n### ")
	_, example, ok := strings.Cut(section, "\n```yaml\n")
	if !ok {
		t.Fatal("README.md's Identity providers section shows no issuers file (```yaml)")
	}
	example, _, _ = strings.Cut(example, "\n```")
	dir := t.TempDir()
	path := filepath.Join(dir, "issuers.yaml")
	if err := os.WriteFile(path, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	// Stand-ins for the files it names, where it says they are.
	files := 0
	for _, m := range regexp.MustCompile(`(?m)\b(jwks_file|hmac_secret_file|client_secret_file): ([^\s,}#]+)`).FindAllStringSubmatch(example, -1) {
		content := "a secret of the example's"
		if m[1] == "jwks_file" {
			content = `{"keys":[]}`
		}
		if err := os.WriteFile(filepath.Join(dir, m[2]), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		files++
	}
	if files == 0 {
		t.Fatal("README.md's issuers file names no file: update this test")
	}
	_, err = LoadFor(map[string]string{
		"LOCKBOX_REDIS_URL":    "redis://127.0.0.1:6379",
		"LOCKBOX_SERVE":        "api,jobs",
		"LOCKBOX_ISSUERS_FILE": path,
		"LOCKBOX_CONSOLE_URL":  "https://lockbox.provider.example",
	}, ModeServe)
	if err != nil {
		t.Fatalf("lockbox serve would not start with README.md's issuers file:\n%v\n--- issuers.yaml\n%s", err, example)
	}
	if issuers, err := LoadIssuers(path); err != nil || len(issuers) < 2 {
		t.Errorf("README.md's issuers file loads %d issuers: %v", len(issuers), err)
	}
}

// TestDescriptionsStateBounds: a duration or a count that Load refuses
// although it is neither negative nor zero, far above its default or just
// above zero, is refused for a bound its variable's description (README's
// table, which TestREADMEDocumentsEveryVariable keeps equal to it) states,
// with its value: "at most 5m", "from 1s to 60s", "at least
// LOCKBOX_AUDIT_READS_PER_CALLER". The error names the variable whose bound
// was crossed, which may be another one (LOCKBOX_JWT_JWKS_MAX_AGE must be
// more than LOCKBOX_JWT_JWKS_REFRESH). A reader who sets a value the table
// allows should not meet a refusal at start-up that nothing warned of.
func TestDescriptionsStateBounds(t *testing.T) {
	bound := regexp.MustCompile(`(?i)\b(?:at least|at most|under|more than|no shorter than) (?:\d|LOCKBOX_)|\bfrom \d\S* to \d`)
	desc := map[string]string{}
	for _, v := range Vars() {
		desc[v.Name] = v.Description
	}
	lineVar := regexp.MustCompile(`^(LOCKBOX_[A-Z0-9_]+): `)
	probed := 0
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		var probes []string
		switch {
		case f.Type == reflect.TypeFor[time.Duration]():
			probes = []string{"1ns", "100000h"}
		case f.Type.Kind() == reflect.Int || f.Type.Kind() == reflect.Int64:
			probes = []string{"1", "1000000"}
		default:
			continue
		}
		name := fieldVar[f.Name]
		for _, v := range probes {
			probed++
			_, err := Load(map[string]string{name: v})
			if err == nil {
				continue
			}
			named := 0
			for line := range strings.Lines(err.Error()) {
				m := lineVar.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				named++
				if !bound.MatchString(desc[m[1]]) {
					t.Errorf("%s=%s is refused (%s), but the description of %s states no bound: %s",
						name, v, strings.TrimSpace(line), m[1], desc[m[1]])
				}
			}
			if named == 0 {
				t.Errorf("%s=%s is refused without naming a variable: %v", name, v, err)
			}
		}
	}
	if probed < 40 {
		t.Fatalf("probed only %d values: did Config's fields change type?", probed)
	}
}

// TestDescriptionsStateLowerBounds: a duration or a count that Load
// refuses at zero is refused for a bound its variable's description states
// ("more than 0", "at least 1", "from 1s to 60s"), as
// TestDescriptionsStateBounds holds the bounds past zero: README's table
// gives each row its range, and a reader who sets 0 for "none" or "off"
// should learn from it that the value is refused.
func TestDescriptionsStateLowerBounds(t *testing.T) {
	bound := regexp.MustCompile(`(?i)\b(?:more than|at least) (?:\d|LOCKBOX_)|\bfrom \d\S* to \d`)
	desc := map[string]string{}
	for _, v := range Vars() {
		desc[v.Name] = v.Description
	}
	lineVar := regexp.MustCompile(`^(LOCKBOX_[A-Z0-9_]+): `)
	refused := 0
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		var zero string
		switch {
		case f.Type == reflect.TypeFor[time.Duration]():
			zero = "0s"
		case f.Type.Kind() == reflect.Int || f.Type.Kind() == reflect.Int64:
			zero = "0"
		default:
			continue
		}
		name := fieldVar[f.Name]
		_, err := Load(map[string]string{name: zero})
		if err == nil {
			continue
		}
		refused++
		for line := range strings.Lines(err.Error()) {
			m := lineVar.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("%s=%s is refused without naming a variable: %s", name, zero, line)
				continue
			}
			if !bound.MatchString(desc[m[1]]) {
				t.Errorf("%s=%s is refused (%s), but the description of %s states no lower bound: %s",
					name, zero, strings.TrimSpace(line), m[1], desc[m[1]])
			}
		}
	}
	if refused < 10 {
		t.Fatalf("only %d variables refuse zero: did Config's fields change type?", refused)
	}
}
