package cli

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"
)

// outputValue is the -o/--output flag: "table", "json", "yaml", "id" (only
// the ids of the requests a command returns, one a line, for scripts:
// ID=$(lockboxctl create request ... -o id)) or "csv" (audit records).
// Only some commands print id or csv; env.checkOutput refuses them for the
// others.
type outputValue string

// outputs lists the output formats, in the order help names them.
var outputs = []string{"table", "json", "yaml", "id", "csv"}

func (o *outputValue) String() string { return string(*o) }

// Type names the flag's value in help.
func (o *outputValue) Type() string { return "format" }

func (o *outputValue) Set(s string) error {
	if v := strings.ToLower(s); slices.Contains(outputs, v) {
		*o = outputValue(v)
		return nil
	}
	return errors.New(`must be "table", "json", "yaml", "id" or "csv"`)
}

// structured reports whether o prints the API's answer as data (JSON or
// YAML) rather than for people.
func (o outputValue) structured() bool { return o == "json" || o == "yaml" }

// listValue is a repeatable flag that also splits on commas, so
// "--activity A --activity B" and "--activity A,B" mean the same.
type listValue []string

func (l *listValue) String() string { return strings.Join(*l, ",") }

// Type names the flag's value in help.
func (l *listValue) Type() string { return "strings" }

// Set refuses an empty value in a list ("a,,b", ",x", ","), as
// Search-UnifiedAuditLog's lists do: in a script it is a variable that was
// not set, and dropped it would replace a tenant's domains or addresses
// with fewer than meant, without a word. A flag empty as a whole (--notify
// "") still means what each flag says of it, but only as its one use:
// "--domain $D1 --domain $D2" with D2 unset is the same mistake as
// "a,", and was dropped the same way. (Given empty, the list is empty but
// not nil, which is how a later use knows.)
func (l *listValue) Set(s string) error {
	const emptyUse = "given empty beside values: leave it out rather than give it no value"
	if strings.TrimSpace(s) == "" {
		if len(*l) > 0 {
			return errors.New(emptyUse)
		}
		*l = listValue{}
		return nil
	}
	if *l != nil && len(*l) == 0 {
		return errors.New(emptyUse)
	}
	var vals []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v == "" {
			return errors.New("holds an empty value: leave it out rather than give it no value")
		}
		vals = append(vals, v)
	}
	*l = append(*l, vals...)
	return nil
}

// parseTime reads an RFC 3339 time or a date (its start, UTC).
func parseTime(s string) (time.Time, error) {
	if t, err := parseRFC3339(s); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, s)
}

// parseRFC3339 reads an RFC 3339 time in each spelling the RFC allows
// (section 5.6): a "t" or a space between date and time, a "z" for UTC.
// Microsoft documents Get-AccessToCustomerDataRequest -CreatedAfter as
// "2021-05-06 14:30:00z", which admins copy; Go's time.RFC3339 layout
// reads only the "T" and "Z" spelling. A time without a zone is still
// refused: it would be read in whichever zone the command ran in.
func parseRFC3339(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err == nil || len(s) <= len(time.DateOnly) {
		return t, err
	}
	b := []byte(s)
	switch b[len(time.DateOnly)] {
	case ' ', 't':
		b[len(time.DateOnly)] = 'T'
	}
	if b[len(b)-1] == 'z' {
		b[len(b)-1] = 'Z'
	}
	if t2, err2 := time.Parse(time.RFC3339, string(b)); err2 == nil {
		return t2, nil
	}
	return t, err
}

// parseUpperTime reads an inclusive upper bound: an RFC 3339 time, or a
// date meaning the whole of that day (UTC), as the console's date filters
// do, so "--to 2026-11-30" includes the 30th.
func parseUpperTime(s string) (time.Time, error) {
	if t, err := parseRFC3339(s); err == nil {
		return t, nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return d, err
	}
	return d.Add(24*time.Hour - time.Nanosecond), nil
}

// The PowerShell verbs (Get- and Set-AccessToCustomerDataRequest) take
// their parameters as PowerShell does, -ApprovalStatus with one dash and in
// any case, which no POSIX flag parser reads. They parse their own command
// line with the standard library's flag package and the helpers below.

// foldFlagNames rewrites the flag names in args that match a flag of fs
// only without regard to case into that flag's name, so the PowerShell
// verbs take their parameters as PowerShell does: -ApprovalStatus,
// -approvalstatus and -APPROVALSTATUS are one parameter. It also accepts
// PowerShell's -Name:value for -Name=value. Flag values and everything
// after a "--" are left as they are.
func foldFlagNames(fs *flag.FlagSet, args []string) []string {
	out := slices.Clone(args)
	for i := 0; i < len(out); i++ {
		arg := out[i]
		if arg == "--" {
			break
		}
		body, ok := strings.CutPrefix(arg, "-")
		if !ok || body == "" {
			continue
		}
		dashes := "-"
		if b, ok := strings.CutPrefix(body, "-"); ok {
			dashes, body = "--", b
		}
		name, value, sep := body, "", ""
		if j := strings.IndexAny(body, "=:"); j >= 0 {
			name, value, sep = body[:j], body[j+1:], body[j:j+1]
		}
		f := fs.Lookup(name)
		if f == nil {
			fs.VisitAll(func(g *flag.Flag) {
				if f == nil && strings.EqualFold(g.Name, name) {
					f = g
				}
			})
		}
		if f == nil {
			// Not ours: the flag package reports it.
			continue
		}
		if sep != "" {
			out[i] = dashes + f.Name + "=" + value
			continue
		}
		out[i] = dashes + f.Name
		if takesValue(fs, out[i]) {
			i++ // the next argument is this flag's value, whatever it looks like
		}
	}
	return out
}

// parseArgs parses fs from args, allowing flags after positional arguments,
// which the flag package alone stops at. Everything after a "--" is
// positional. It returns the positional arguments.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if endedByDashDash(fs, args[:len(args)-len(rest)]) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// endedByDashDash reports whether parsing stopped at a "--" terminator
// rather than at a "--" given as a flag's value ("--comment --").
func endedByDashDash(fs *flag.FlagSet, parsed []string) bool {
	n := len(parsed)
	if n == 0 || parsed[n-1] != "--" {
		return false
	}
	return n < 2 || !takesValue(fs, parsed[n-2])
}

// takesValue reports whether arg is a flag of fs whose value is the next
// argument.
func takesValue(fs *flag.FlagSet, arg string) bool {
	name, ok := strings.CutPrefix(arg, "-")
	if !ok || name == "" || name == "-" {
		return false
	}
	name = strings.TrimPrefix(name, "-")
	if strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return false
	}
	return true
}

// given reports whether the flag name was set on the command line.
func given(fs *flag.FlagSet, names ...string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains(names, f.Name) {
			found = true
		}
	})
	return found
}

// filterFlags narrow what a command reads, the PowerShell verbs' names
// among them. Given an empty value, as "--tenant $T" gives them when T is
// unset, they were sent as no filter at all: a provider audit reader's
// export then read every tenant's log. An empty one is a usage error.
var filterFlags = []string{
	"tenant", "state", "created-after", "from", "to", "user", "operation", "request-id",
	"approval-status", "ApprovalStatus", "CreatedAfter", "ServiceName", "service-name",
	"StartDate", "EndDate", "Operations", "UserIds", "RecordType", "ObjectIds", "IPAddresses", "FreeText",
}

// notUTF8 returns the usage error for the first flag given a value that is
// not UTF-8, or nil; visit walks the flags as for emptyFilter. Such a
// value (a terminal or script in Latin-1 or another legacy encoding) was
// sent with each byte that is not UTF-8 turned into U+FFFD by the JSON
// encoder, without a word: a request's reason or a decision's comment was
// filed and audited as other text than the one typed.
func (e *env) notUTF8(visit func(fn func(name, value string))) error {
	var err error
	visit(func(name, value string) {
		if err != nil || utf8.ValidString(value) {
			return
		}
		at := 0
		for at < len(value) {
			r, n := utf8.DecodeRuneInString(value[at:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			at += n
		}
		dashes := "--"
		if strings.ToLower(name) != name {
			dashes = "-" // PowerShell's spelling, -Comment
		}
		err = e.usage("%s is not UTF-8 text (byte %d is not): lockboxctl sends UTF-8 only; use a UTF-8 locale, or convert the value (iconv -t UTF-8)", dashes+name, at+1)
	})
	return err
}

// maxCharsAnnotation marks a free-text flag with the most characters the
// API takes in its field (openapi.yaml's maxLength, counted in characters
// as the server counts them).
const maxCharsAnnotation = "lockboxctl/max-chars"

// Limits of the API's free-text fields, as openapi.yaml documents them.
const (
	maxReasonChars         = 2000
	maxServiceRequestChars = 64
	maxCommentChars        = 1000
	maxOffboardReasonChars = 1000
)

// maxDuration and minDuration are the longest and the shortest access
// windows a request may ask for, as openapi.yaml's Duration documents
// them (grants.MaxDuration and grants.MinDuration, which lockboxctl does
// not link).
const (
	maxDuration = 4 * time.Hour
	minDuration = time.Minute
)

// limitChars annotates flag name of fs with its limit in characters.
func limitChars(fs *pflag.FlagSet, name string, most int) {
	_ = fs.SetAnnotation(name, maxCharsAnnotation, []string{strconv.Itoa(most)})
}

// tooLong returns the usage error for the first flag given more
// characters than the API takes in its field, or nil; visit walks the
// flags as for emptyFilter, with each one's limit (0 for none). Sent, a
// value over the field's limit came back as the server's 400, or, past
// the body's size, as 413 "body too large", which names neither the flag
// nor its limit.
func (e *env) tooLong(visit func(fn func(name, value string, most int))) error {
	var err error
	visit(func(name, value string, most int) {
		if err != nil || most == 0 || utf8.RuneCountInString(value) <= most {
			return
		}
		dashes := "--"
		if strings.ToLower(name) != name {
			dashes = "-" // PowerShell's spelling, -Comment
		}
		err = e.usage("%s is longer than %d characters (%d given), the most the API takes", dashes+name, most, utf8.RuneCountInString(value))
	})
	return err
}

// flagLimit is the limit limitChars gave f, or 0.
func flagLimit(f *pflag.Flag) int {
	if v := f.Annotations[maxCharsAnnotation]; len(v) == 1 {
		n, _ := strconv.Atoi(v[0])
		return n
	}
	return 0
}

// emptyFilter returns the usage error for the first filter flag, or
// --token-file, given with an empty value, or nil. visit walks the flags given on the command
// line, calling fn with each one's name and value.
func (e *env) emptyFilter(visit func(fn func(name, value string))) error {
	var err error
	visit(func(name, value string) {
		if err == nil && value == "" && name == "token-file" {
			// Not a filter, but the same mistake: without it the token
			// comes from $LOCKBOX_TOKEN or lockboxctl login, and the
			// command would act as whoever that names.
			err = e.usage("--token-file is empty: name the file holding your token, or leave it out for $%s or lockboxctl login's", EnvToken)
			return
		}
		if err != nil || value != "" || !slices.Contains(filterFlags, name) {
			return
		}
		dashes := "--"
		if strings.ToLower(name) != name {
			dashes = "-" // PowerShell's spelling, -ApprovalStatus
		}
		err = e.usage("%s%s is empty; leave it out rather than give it no value", dashes, name)
	})
	return err
}

// psFlagSet returns a flag set for a PowerShell verb, holding lockboxctl's
// global flags besides the verb's own.
func (e *env) psFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("lockboxctl "+name, flag.ContinueOnError)
	fs.SetOutput(discard{})
	fs.Usage = func() {}
	fs.Var(&e.g.output, "o", "")
	fs.Var(&e.g.output, "output", "")
	fs.StringVar(&e.g.addr, "addr", e.g.addr, "")
	fs.StringVar(&e.g.addr, "server", e.g.addr, "")
	fs.StringVar(&e.g.tokenFile, "token-file", e.g.tokenFile, "")
	fs.BoolVar(&e.g.insecureHTTP, "insecure-http", e.g.insecureHTTP, "")
	return fs
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// posArgs returns a cobra argument check for the positional arguments
// names, as usage errors: "missing ID", "unexpected argument".
func wantArgs(pos []string, names ...string) error {
	switch {
	case len(pos) < len(names):
		return fmt.Errorf("missing %s", strings.Join(names[len(pos):], " and "))
	case len(pos) > len(names):
		return fmt.Errorf("unexpected argument %q", pos[len(names)])
	}
	for i, p := range pos {
		if err := checkName(names[i], p); err != nil {
			return err
		}
	}
	return nil
}

// checkName refuses, before anything is sent, a request id, tenant or
// user that names nothing: an empty one, or "." or "..", which the
// client refuses to put in a path (there it would address another
// resource than the one named). what names it in the message.
func checkName(what, v string) error {
	switch {
	case strings.TrimSpace(v) == "":
		return fmt.Errorf("%s must not be empty", what)
	case v == "." || v == "..":
		return fmt.Errorf("%s must not be %q", what, v)
	}
	return nil
}
