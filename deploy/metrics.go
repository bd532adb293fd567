package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Reference is one metric a query in deploy/ reads.
type Reference struct {
	Metric string // as written: a histogram's buckets are name_bucket
	File   string // relative to the deploy directory
	Expr   string
}

// Rule is one alerting or recording rule of a rules file.
type Rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// RuleGroup is one group of a rules file (and of a PrometheusRule's spec).
type RuleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval"`
	Rules    []Rule `yaml:"rules"`
}

// References returns every metric read by the queries in the deploy
// directory root: the Grafana dashboards, the Prometheus rules files, and
// the PrometheusRule objects of the Kubernetes manifests and the Helm
// chart. Names that a recording rule there defines are left out: they are
// made by Prometheus, not scraped. An expression it can't read is an
// error, never skipped.
func References(root string) ([]Reference, error) {
	var (
		refs     []Reference
		recorded = map[string]bool{}
	)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		var exprs []string
		switch {
		case strings.HasPrefix(rel, "grafana/") && strings.HasSuffix(rel, ".json"):
			exprs, err = dashboardExprs(p)
		case strings.HasSuffix(rel, ".rules.yml"), strings.HasSuffix(rel, "prometheusrule.yaml"):
			var groups []RuleGroup
			groups, err = ReadRuleGroups(p)
			for _, g := range groups {
				for _, r := range g.Rules {
					exprs = append(exprs, r.Expr)
					if r.Record != "" {
						recorded[r.Record] = true
					}
				}
			}
		default:
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if len(exprs) == 0 {
			return fmt.Errorf("%s: no queries found", rel)
		}
		for _, e := range exprs {
			names, err := ExprMetrics(e)
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			for _, n := range names {
				refs = append(refs, Reference{Metric: n, File: rel, Expr: e})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The Helm chart's template reads the rules from its files/ directory,
	// which the walk covers; templates themselves hold no queries.
	return slices.DeleteFunc(refs, func(r Reference) bool { return recorded[r.Metric] }), nil
}

// ReadRuleGroups reads the groups of a Prometheus rules file, or of a
// PrometheusRule object's spec.
func ReadRuleGroups(path string) ([]RuleGroup, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Groups []RuleGroup `yaml:"groups"`
		Kind   string      `yaml:"kind"`
		Spec   struct {
			Groups []RuleGroup `yaml:"groups"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == "PrometheusRule" {
		return doc.Spec.Groups, nil
	}
	return doc.Groups, nil
}

// dashboardExprs returns the queries of a Grafana dashboard: every panel
// target's expr (rows' nested panels included) and every templating query.
func dashboardExprs(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type panel struct {
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	var exprs []string
	var walk func([]json.RawMessage) error
	walk = func(raws []json.RawMessage) error {
		for _, raw := range raws {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				return err
			}
			for _, t := range p.Targets {
				if t.Expr == "" {
					return errors.New("a panel target without expr")
				}
				exprs = append(exprs, t.Expr)
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			// Older dashboards store the query as a plain string.
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				return nil, err
			}
		}
		exprs = append(exprs, q.Query)
	}
	return exprs, nil
}

// labelValues is Grafana's templating function, not PromQL.
var labelValues = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)

// ExprMetrics returns the metric names a PromQL expression selects, in
// order of appearance. It is a small scanner, not a parser: it skips
// strings, label matchers and ranges, function and aggregation names, and
// the label lists of by, without, on, ignoring, group_left and
// group_right. promtool checks the syntax; this only needs the names.
func ExprMetrics(expr string) ([]string, error) {
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		return ExprMetrics(m[1])
	}
	var names []string
	parens, i := 0, 0
	skipTo := func(end byte) error {
		// Strings may hold the bracket; the matchers hold no nested ones.
		for i++; i < len(expr); i++ {
			switch c := expr[i]; {
			case c == end:
				return nil
			case c == '"' || c == '\'' || c == '`':
				if err := skipString(expr, &i); err != nil {
					return err
				}
			}
		}
		return fmt.Errorf("unclosed %q in %q", end, expr)
	}
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if err := skipString(expr, &i); err != nil {
				return nil, err
			}
			i++
		case c == '{':
			if err := skipTo('}'); err != nil {
				return nil, err
			}
			i++
		case c == '[':
			if err := skipTo(']'); err != nil {
				return nil, err
			}
			i++
		case c == '(':
			parens++
			i++
		case c == ')':
			if parens--; parens < 0 {
				return nil, fmt.Errorf("unbalanced parentheses in %q", expr)
			}
			i++
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case isDigit(c) || (c == '.' && i+1 < len(expr) && isDigit(expr[i+1])):
			// Numbers and durations (5m, 1h30m, 1e3, 0x1f).
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\t' || expr[k] == '\n' || expr[k] == '\r') {
				k++
			}
			next := byte(0)
			if k < len(expr) {
				next = expr[k]
			}
			i = j
			switch {
			case labelLists[word] && next == '(':
				i = k
				if err := skipTo(')'); err != nil {
					return nil, err
				}
				i++
			case labelLists[word], keywords[strings.ToLower(word)]:
			case next == '(':
				// A function or an aggregation.
			default:
				names = append(names, word)
			}
		default:
			i++
		}
	}
	if parens != 0 {
		return nil, fmt.Errorf("unbalanced parentheses in %q", expr)
	}
	return names, nil
}

var labelLists = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// keywords are words in PromQL that are not metrics though "(" need not
// follow them: binary operators, modifiers, literals, and aggregations
// (as in "sum by (le) (...)").
var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "offset": true, "bool": true, "atan2": true, "inf": true, "nan": true,
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
	"count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
}

func skipString(s string, i *int) error {
	q := s[*i]
	for *i++; *i < len(s); *i++ {
		switch s[*i] {
		case '\\':
			if q != '`' {
				*i++
			}
		case q:
			return nil
		}
	}
	return fmt.Errorf("unclosed string in %q", s)
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isIdent(c byte) bool      { return isIdentStart(c) || isDigit(c) }

var (
	// exprString is a PromQL string literal.
	exprString = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	// exprMatchers is a selector's label matchers.
	exprMatchers = regexp.MustCompile(`\{([^}]*)\}`)
	// exprMatcher is one matcher's label name.
	exprMatcher = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	// exprLabelList is a by, without, on, ignoring, group_left or
	// group_right list.
	exprLabelList = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	// labelValuesLabel is the label of a label_values query.
	labelValuesLabel = regexp.MustCompile(`,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)
	// exprRange is a range or subquery: [5m], [$__rate_interval], [1h:5m].
	exprRange = regexp.MustCompile(`\[[^\]]*\]`)
)

// ExprLabels returns the label names a PromQL expression (or Grafana's
// label_values) names: in selectors' matchers, in the label lists of by,
// without, on, ignoring, group_left and group_right, and as label_values'
// label, sorted and without repeats. __name__ is left out: it names the
// metric, not a label it is exported with.
func ExprLabels(expr string) ([]string, error) {
	var names []string
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		names = append(names, labelValuesLabel.FindStringSubmatch(expr)[1])
		expr = m[1]
	}
	// Strings may hold braces, parentheses and commas; ranges hold none
	// the lists need.
	s := exprRange.ReplaceAllString(exprString.ReplaceAllString(expr, `""`), "")
	for _, m := range exprMatchers.FindAllStringSubmatch(s, -1) {
		for _, part := range strings.Split(m[1], ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			n := exprMatcher.FindStringSubmatch(part)
			if n == nil {
				return nil, fmt.Errorf("matcher %q in %q names no label", part, expr)
			}
			names = append(names, n[1])
		}
	}
	for _, m := range exprLabelList.FindAllStringSubmatch(s, -1) {
		for _, part := range strings.Split(m[1], ",") {
			if part = strings.TrimSpace(part); part != "" {
				names = append(names, part)
			}
		}
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n == "__name__" })
	slices.Sort(names)
	return slices.Compact(names), nil
}

// Matcher is one label matcher of a selector in a query.
type Matcher struct {
	Metric string // the selector's metric name; "" for {__name__="..."}
	Label  string
	Op     string // =, !=, =~ or !~
	Value  string // unquoted
}

// exprMatcherAt is one matcher at the start of a selector's remaining
// text: the label, the operator, and a double-quoted or raw string.
var exprMatcherAt = regexp.MustCompile("^\\s*([a-zA-Z_][a-zA-Z0-9_]*)\\s*(=~|!~|!=|=)\\s*(\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`)\\s*(,?)")

// ExprMatchers returns the label matchers of every selector of a PromQL
// expression (or of Grafana's label_values), each with the metric it
// selects, in order of appearance, so that the values can be held to the
// ones the code exports: a matcher naming a value that is never exported
// selects nothing (=, =~) or everything (!=, !~), and promtool can't tell.
// Single-quoted strings are not read: an expression with one is an error,
// never skipped.
func ExprMatchers(expr string) ([]Matcher, error) {
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	var out []Matcher
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; {
		case c == '"' || c == '\'' || c == '`':
			if err := skipString(expr, &i); err != nil {
				return nil, err
			}
		case c == '{':
			// The metric is the name right before the brace, if any.
			j := i
			for j > 0 && (expr[j-1] == ' ' || expr[j-1] == '\t' || expr[j-1] == '\n') {
				j--
			}
			k := j
			for k > 0 && isIdent(expr[k-1]) {
				k--
			}
			metric := expr[k:j]
			rest := expr[i+1:]
			for {
				if t := strings.TrimLeft(rest, " \t\n"); strings.HasPrefix(t, "}") {
					i = len(expr) - len(t)
					break
				}
				m := exprMatcherAt.FindStringSubmatch(rest)
				if m == nil {
					return nil, fmt.Errorf("unreadable label matcher at %q in %q", rest, expr)
				}
				v := m[3][1 : len(m[3])-1]
				if m[3][0] == '"' {
					var err error
					if v, err = strconv.Unquote(m[3]); err != nil {
						return nil, fmt.Errorf("label value %s in %q: %w", m[3], expr, err)
					}
				}
				out = append(out, Matcher{Metric: metric, Label: m[1], Op: m[2], Value: v})
				rest = rest[len(m[0]):]
				if m[4] == "" {
					if t := strings.TrimLeft(rest, " \t\n"); !strings.HasPrefix(t, "}") {
						return nil, fmt.Errorf("unclosed selector in %q", expr)
					}
				}
			}
		}
	}
	return out, nil
}
