package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
