package deploy_test

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, COPY...
	args string
}

func readDockerfile(t *testing.T, name string) []instruction {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out  []instruction
		line string
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(s, "#") || (s == "" && line == "") {
			continue
		}
		if rest, ok := strings.CutSuffix(s, `\`); ok {
			line += rest + " "
			continue
		}
		line += s
		cmd, args, _ := strings.Cut(line, " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		line = ""
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// stage is the instructions from one FROM to the next.
type stage struct {
	from, name string
	ins        []instruction
}

func stages(t *testing.T, ins []instruction) (args map[string]string, out []stage) {
	t.Helper()
	args = map[string]string{}
	for _, in := range ins {
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			s := stage{from: expand(f[0], args)}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			out = append(out, s)
		case in.cmd == "ARG" && len(out) == 0:
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case len(out) == 0:
			t.Fatalf("%s before the first FROM", in.cmd)
		default:
			out[len(out)-1].ins = append(out[len(out)-1].ins, in)
		}
	}
	return args, out
}

var argRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

func expand(s string, args map[string]string) string {
	return argRef.ReplaceAllStringFunc(s, func(m string) string {
		name := strings.Trim(m, "${}")
		return args[name]
	})
}

// shellWords splits a RUN command the way sh would for the simple commands
// the Dockerfile uses: blanks separate words, quotes group them.
func shellWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		quote rune
		in    bool
	)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case strings.ContainsRune("|&;<>()`", r):
			return nil, fmt.Errorf("%q: not a simple command", s)
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q: unclosed quote", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// dockerignore matches paths (slash-separated, relative to the context)
// against .dockerignore patterns as Docker does: in order, the last
// pattern that matches a path or one of its parent directories decides,
// and a pattern starting with "!" takes the path back.
type dockerignore []struct {
	re     *regexp.Regexp
	negate bool
}

func readDockerignore(t *testing.T, name string) dockerignore {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var d dockerignore
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		neg := strings.HasPrefix(line, "!")
		line = strings.TrimPrefix(line, "!")
		var re strings.Builder
		re.WriteString("^")
		p := strings.Trim(path.Clean(line), "/")
		for i := 0; i < len(p); i++ {
			switch {
			case strings.HasPrefix(p[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(p[i:], "**"):
				re.WriteString(".*")
				i++
			case p[i] == '*':
				re.WriteString("[^/]*")
			case p[i] == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(p[i : i+1]))
			}
		}
		re.WriteString("$")
		d = append(d, struct {
			re     *regexp.Regexp
			negate bool
		}{regexp.MustCompile(re.String()), neg})
	}
	return d
}

func (d dockerignore) excludes(p string) bool {
	excluded := false
	for _, pat := range d {
		for q := p; q != "." && q != "/" && q != ""; q = path.Dir(q) {
			if pat.re.MatchString(q) {
				excluded = !pat.negate
				break
			}
		}
	}
	return excluded
}

// TestDockerfile checks what deploy/Dockerfile claims without a container
// engine: every file it copies is in the build context, the final image is
// distroless and runs as a non-root user, and its go build command, run on
// exactly the files the context sends, makes static binaries that carry
// the version.
func TestDockerfile(t *testing.T) {
	const root = ".." // the build context: the repository root
	_, st := stages(t, readDockerfile(t, "Dockerfile"))
	ignore := readDockerignore(t, "Dockerfile.dockerignore")
	if len(st) != 2 || st[0].name != "build" {
		t.Fatalf("want a build stage and the image; got %d stages", len(st))
	}
	build, image := st[0], st[1]

	// The builder's Go is the one go.mod asks for.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVersion == nil || !strings.HasPrefix(build.from, "golang:"+string(goVersion[1])+"-") {
		t.Errorf("build stage FROM %s, want golang:%s-... (go.mod)", build.from, goVersion[1])
	}
	if !strings.HasPrefix(image.from, "gcr.io/distroless/static") && image.from != "scratch" {
		t.Errorf("image FROM %s: want distroless static or scratch", image.from)
	}

	// Every file copied from the context exists and is not ignored.
	for _, s := range st {
		for _, in := range s.ins {
			if in.cmd != "COPY" || strings.Contains(in.args, "--from=") {
				continue
			}
			f := strings.Fields(in.args)
			for _, src := range f[:len(f)-1] {
				if strings.HasPrefix(src, "--") {
					continue
				}
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("COPY %s: %v", in.args, err)
				}
				if src != "." && ignore.excludes(path.Clean(src)) {
					t.Errorf("COPY %s: %s is excluded by Dockerfile.dockerignore", in.args, src)
				}
			}
		}
	}

	// The image runs as a non-root user.
	user := ""
	for _, in := range image.ins {
		if in.cmd == "USER" {
			user = in.args
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("image USER %q: want a non-root user", user)
	}

	// The go build command, as the build stage runs it.
	var words []string
	buildArgs := map[string]string{}
	for _, in := range build.ins {
		if in.cmd == "ARG" {
			k, v, _ := strings.Cut(in.args, "=")
			if k == "VERSION" {
				// As docker build --build-arg VERSION=... sets it. The
				// default, "dev", is also what both binaries say when
				// nothing set their version, so it would prove nothing.
				v = "v1.2.3-dockerfile-test"
			}
			buildArgs[k] = v
		}
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			if words, err = shellWords(expand(in.args, buildArgs)); err != nil {
				t.Fatal(err)
			}
		}
	}
	env := []string{}
	for len(words) > 0 && strings.Contains(words[0], "=") {
		env, words = append(env, words[0]), words[1:]
	}
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("go build runs with %v, want CGO_ENABLED=0: the image has no libc", env)
	}
	if len(words) < 3 || words[0] != "go" || words[1] != "build" {
		t.Fatalf("RUN go build: can't read %q", words)
	}
	var (
		flags []string
		out   string
		pkgs  []string
	)
	for i := 2; i < len(words); i++ {
		switch w := words[i]; {
		case w == "-o":
			i++
			out = words[i]
		case w == "-ldflags" || w == "-tags" || w == "-gcflags":
			flags = append(flags, w, words[i+1])
			i++
		case strings.HasPrefix(w, "-"):
			flags = append(flags, w)
		default:
			pkgs = append(pkgs, w)
		}
	}
	if !strings.HasSuffix(out, "/") || len(pkgs) == 0 {
		t.Fatalf("go build -o %q %v: want an output directory and packages", out, pkgs)
	}
	// What the image takes from the build stage is what it built.
	built := map[string]bool{}
	for _, p := range pkgs {
		built[path.Join(out, path.Base(p))] = true
	}
	entrypoint := ""
	for _, in := range image.ins {
		if in.cmd == "ENTRYPOINT" {
			entrypoint = in.args
		}
		if in.cmd != "COPY" || !strings.Contains(in.args, "--from=build") {
			continue
		}
		f := strings.Fields(in.args)
		for _, src := range f[1 : len(f)-1] {
			if !built[src] {
				t.Errorf("COPY %s: the build stage makes no %s", in.args, src)
			}
		}
	}
	if !strings.Contains(entrypoint, "/usr/local/bin/lockbox\"") {
		t.Errorf("ENTRYPOINT %s: want /usr/local/bin/lockbox", entrypoint)
	}

	// Build from a copy of exactly what the context sends.
	if testing.Short() {
		t.Skip("builds the binaries") // the checks above ran
	}
	ctx := filepath.Join(t.TempDir(), "context")
	if err := copyContext(root, ctx, ignore); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "out") + "/"
	cmd := exec.Command("go", slices.Concat([]string{"build"}, flags, []string{"-o", bin}, pkgs)...)
	cmd.Dir = ctx
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s in the build context: %v\n%s", cmd, err, b)
	}
	for _, p := range pkgs {
		name := filepath.Join(bin, path.Base(p))
		if err := static(name); err != nil {
			t.Errorf("%s: %v", path.Base(p), err)
		}
	}
	b, err := exec.Command(filepath.Join(bin, "lockbox"), "version").Output()
	if want := "lockbox " + buildArgs["VERSION"] + " ("; err != nil || !strings.HasPrefix(string(b), want) {
		t.Errorf("lockbox version = %q, %v; want it to start %q (-X main.version)", b, err, want)
	}
	b, err = exec.Command(filepath.Join(bin, "lockboxctl"), "version").Output()
	if want := "lockboxctl " + buildArgs["VERSION"] + " ("; err != nil || !strings.HasPrefix(string(b), want) {
		t.Errorf("lockboxctl version = %q, %v; want it to start %q (-X github.com/lockbox-oss/lockbox/cli.Version)", b, err, want)
	}
}

// static reports why an ELF binary is not statically linked, if it isn't.
func static(name string) error {
	f, err := elf.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("has a program interpreter: dynamically linked")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return fmt.Errorf("needs shared libraries %v", libs)
	}
	return nil
}

// copyContext copies the files under root that ignore keeps to dst.
func copyContext(root, dst string, ignore dockerignore) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel != "." && ignore.excludes(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case !d.Type().IsRegular():
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
