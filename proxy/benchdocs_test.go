package proxy

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocumentedBenchmarkCases: the cases of BenchmarkProxyAllow that
// docs/performance.md and README.md cite (`BenchmarkProxyAllow/served`)
// are ones the benchmark runs, so a reader can reproduce a figure with
// go test -bench 'BenchmarkProxyAllow/<case>'. A case renamed without the
// documents makes that command measure nothing, without a word.
func TestDocumentedBenchmarkCases(t *testing.T) {
	src, err := os.ReadFile("bench_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(src), "\nfunc BenchmarkProxyAllow(b *testing.B) {\n")
	if !ok {
		t.Fatal("bench_test.go has no BenchmarkProxyAllow")
	}
	body, _, _ = strings.Cut(body, "\n}\n")
	var cases []string
	for _, m := range regexp.MustCompile(`\{"([^"]+)", func\(`).FindAllStringSubmatch(body, -1) {
		cases = append(cases, m[1])
	}
	if len(cases) < 2 {
		t.Fatalf("found only the cases %q in BenchmarkProxyAllow", cases)
	}
	cited := regexp.MustCompile("`BenchmarkProxyAllow/([^`\\s]+)`")
	found := 0
	for _, doc := range []string{"../docs/performance.md", "../README.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range cited.FindAllStringSubmatch(string(b), -1) {
			found++
			if !slices.Contains(cases, m[1]) {
				t.Errorf("%s cites %s, but BenchmarkProxyAllow runs only %q", doc, m[0], cases)
			}
		}
	}
	if found == 0 {
		t.Fatal("no document cites a case of BenchmarkProxyAllow: update this test")
	}
}
