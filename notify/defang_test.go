package notify_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/notify"
)

// linkable matches what mail clients make links of, more broadly than
// Defang's own patterns: a URL with "//", a scheme-only URI, a "www."
// name, a host name (a top-level label after any dot IDNA accepts), an
// address, an IPv4 address and a UNC path.
var linkable = []*regexp.Regexp{
	regexp.MustCompile(`(?i)[a-z][a-z0-9+.-]*:/`),
	regexp.MustCompile(`(?i)\b(?:mailto|tel|sms|data|javascript|vbscript|file|callto|sip|sips|facetime|skype|xmpp|news|magnet|webcal|ms-[a-z-]+):\S`),
	regexp.MustCompile(`(?i)https?|www\.`),
	regexp.MustCompile(`[\p{L}\p{N}\p{M}-][.\x{3002}\x{FF0E}\x{FF61}](?:\p{L}[\p{L}\p{M}]+|(?i:xn--)[\p{L}\p{N}\p{M}-]*[\p{L}\p{N}\p{M}])(?:[^\p{L}\p{N}\p{M}-]|$)`),
	regexp.MustCompile(`(?:^|[^\p{L}\p{N}\p{M}.-])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?:[^\p{L}\p{N}\p{M}.-]|$)`),
	// A UNC path: two backslashes and anything a host name may start with.
	regexp.MustCompile(`\\\\[^\\\[\]\s]`),
}

func linkIn(s string) string {
	for _, re := range linkable {
		if m := re.FindString(s); m != "" {
			return m
		}
	}
	return ""
}

func TestDefang(t *testing.T) {
	tests := []struct{ in, want string }{
		// The reviewer's reason.
		{"visit evil.com/login or mailto:x@evil.com or HTTPS://EVIL.COM",
			"visit evil[.]com/login or mailto[:]x@evil[.]com or hxxpS[:]//EVIL[.]COM"},
		{"https://evil.com", "hxxps[:]//evil[.]com"},
		{"ftp://z.example/a", "ftp[:]//z[.]example/a"},
		{"http:/y", "hxxp[:]//y"},
		// Scheme-only URIs, in any case.
		{"MAILTO:x@evil.com", "MAILTO[:]x@evil[.]com"},
		{"call tel:+15551234 or sms:5551234", "call tel[:]+15551234 or sms[:]5551234"},
		{"javascript:alert(1)", "javascript[:]alert(1)"},
		{"data:text/html;base64,PHNjcmlwdD4=", "data[:]text/html;base64,PHNjcmlwdD4="},
		{"data:,hi", "data[:],hi"},
		{"file:C:/x", "file[:]C[:]//x"},
		{"(sip:123@pbx)", "(sip[:]123@pbx)"},
		{"open ms-settings:privacy or zoommtg:join", "open ms-settings[:]privacy or zoommtg[:]join"},
		// Bare host names and addresses, any script, any case.
		{"www.evil.com", "www[.]evil[.]com"},
		{"WWW.x", "WWW[.]x"},
		{"login.evil.co.uk/x?y=1", "login[.]evil[.]co[.]uk/x?y=1"},
		{"write to x@evil.com.", "write to x@evil[.]com."},
		{"EVIL.COM", "EVIL[.]COM"},
		{"bücher.de", "bücher[.]de"},
		{"пример.рф", "пример[.]рф"},
		{"xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd[.]xn--p1ai"},
		{"evil。com and evil．com and evil｡com", "evil[.]com and evil[.]com and evil[.]com"},
		{"ｅｖｉｌ.ｃｏｍ", "ｅｖｉｌ[.]ｃｏｍ"},
		{"see 203.0.113.9/login", "see 203[.]0[.]113[.]9/login"},
		{"the log is at notes.txt", "the log is at notes[.]txt"},
		{"evil.com.x and a.bc.d", "evil[.]com[.]x and a[.]bc[.]d"},
		// Ordinary text stays as it is.
		{"mailbox repair", "mailbox repair"},
		{"note: the inbox rule loops", "note: the inbox rule loops"},
		{"since 10:30, see SR:1234 (ratio 3:2)", "since 10:30, see SR:1234 (ratio 3:2)"},
		{"ended: its access window is over", "ended: its access window is over"},
		{"e.g. the inbox, i.e. all of it, etc.", "e.g. the inbox, i.e. all of it, etc."},
		{"upgrade to v1.2.3 or 10.0.19041.1, 3.5 hours", "upgrade to v1.2.3 or 10.0.19041.1, 3.5 hours"},
		{"2026-11-23 21:00 UTC", "2026-11-23 21:00 UTC"},
		{"Get-Mailbox, Get-InboxRule", "Get-Mailbox, Get-InboxRule"},
		{"SR-7", "SR-7"},
		{"0193a5b0-0000-7000-8000-000000000001", "0193a5b0-0000-7000-8000-000000000001"},
		{"mailto:", "mailto:"},
		// UNC paths, which Outlook links (and Windows opens with NTLM).
		{`see \\fileserver\share\logs`, `see [\\]fileserver\share\logs`},
		{`\\fs.corp.example\c$`, `[\\]fs[.]corp[.]example\c$`},
		{`\\\\x and \\?\UNC\y`, `\\[\\]x and [\\]?\UNC\y`},
		{`C:\Temp\x and a \\ b`, `C:\Temp\x and a \\ b`},
	}
	for _, tc := range tests {
		got := notify.Defang(tc.in)
		if got != tc.want {
			t.Errorf("Defang(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
		if tc.in != tc.want {
			if l := linkIn(got); l != "" {
				t.Errorf("Defang(%q) = %q: %q is still a link", tc.in, got, l)
			}
		}
		if again := notify.Defang(got); again != got {
			t.Errorf("Defang is not idempotent on %q: %q", got, again)
		}
	}
}

// TestRenderDefangsEveryTypedField: the reason, the comment and the
// service request number are typed by people; none reaches an e-mail or a
// webhook summary as a link, while the identities that decided stay
// readable addresses.
func TestRenderDefangsEveryTypedField(t *testing.T) {
	const bad = "visit evil.com/login or mailto:x@evil.com or HTTPS://EVIL.COM"
	at := t0.Add(time.Hour)
	exp := at.Add(time.Hour)
	ev := notify.Event{Kind: notify.KindApproved, Request: grants.Request{
		ID: "0193a5b0-0000-7000-8000-000000000001", Tenant: "contoso", Service: "exchange",
		ServiceRequest: "x@evil.com", Reason: bad, Duration: grants.Duration(time.Hour),
		Requester: "alice@provider.example", State: grants.StateApproved, ExpiresAt: &exp,
	}, Event: grants.Event{Action: grants.ActionApprove, Actor: "adam@contoso.example", ActorKind: grants.KindTenant,
		To: grants.StateApproved, At: at, Comment: "ok, see www.evil.com or tel:+15551234"}}
	for _, tmpl := range notify.Templates {
		m, err := notify.Render(ev, tmpl, "gina@contoso.example")
		if err != nil {
			t.Fatal(err)
		}
		text := m.Subject + "\n" + m.Body
		for _, s := range []string{"adam@contoso.example", "alice@provider.example"} {
			text = strings.ReplaceAll(text, s, "IDENTITY")
		}
		if l := linkIn(text); l != "" {
			t.Errorf("%s has the link %q:\n%s", tmpl, l, text)
		}
		if !strings.Contains(m.Body, "visit evil[.]com/login or mailto[:]x@evil[.]com or hxxpS[:]//EVIL[.]COM") {
			t.Errorf("%s lacks the defanged reason:\n%s", tmpl, m.Body)
		}
	}
	m, err := notify.Render(ev, notify.TemplateRequesterUpdate, "alice@provider.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"By:                      adam@contoso.example\n", "Comment:                 ok, see www[.]evil[.]com or tel[:]+15551234\n",
		"Service request number:  x@evil[.]com\n"} {
		if !strings.Contains(m.Body, s) {
			t.Errorf("requester update lacks %q:\n%s", s, m.Body)
		}
	}
	if s := notify.Summary(ev); linkIn(strings.ReplaceAll(s, "adam@contoso.example", "IDENTITY")) != "" {
		t.Errorf("webhook summary has a link: %q", s)
	}
}

// TestHeaderValue: control characters of any kind, C0 and C1, the line
// separators and the bidirectional controls, become one space.
func TestHeaderValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\r\nBcc: x", "a Bcc: x"},
		{"line one\u0085Request id: 1\u0085", "line one Request id: 1"},
		{"a\u0080\u009fb", "a b"},
		{"\u202egnp.exe", "gnp.exe"},
		{"a\u200e\u200fb\u202a\u202b\u202c\u202dc\u2066\u2067\u2068\u2069d\u061ce", "a b c d e"},
		{"a\u2028b\u2029c", "a b c"},
		// Printable characters near the ranges stay.
		{"é\u00a0ü \u2030 \u2065", "é\u00a0ü \u2030 \u2065"},
		// Bytes that are no UTF-8 are left as they are; a run at an end
		// goes with the space around it.
		{"\x1ba\xffb\xc3\x00c\t", "a\xffb\xc3 c"},
	} {
		if got := notify.HeaderValue(tc.in); got != tc.want {
			t.Errorf("HeaderValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// unsafeRune reports whether r must not reach a message: a control
// character (C0, C1), a line or paragraph separator, or a bidirectional
// control.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == '\u061c' ||
		r == '\u200e' || r == '\u200f' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

// FuzzDefang: whatever the text, nothing linkable is left, and Defang is
// idempotent, so text defanged twice (a comment quoted in a later e-mail)
// reads the same. Text as messages show it (Defang of HeaderValue) has no
// control character either, and Defang's work stays within its linear
// bounds (checkDefangWork).
func FuzzDefang(f *testing.F) {
	for _, s := range []string{"visit evil.com/login or mailto:x@evil.com or HTTPS://EVIL.COM", "note: 10:30",
		"пример.рф", "evil。com", "www.x", "e.g. v1.2.3", "tel:+1", "a.bc.d", "1.2.3.4", "xn--p1ai.xn--p1ai",
		`\\fileserver\share`, `\\\x`, "a\u0085b\u202ec"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := notify.Defang(s)
		if l := linkIn(got); l != "" {
			t.Fatalf("Defang(%q) = %q: %q is still a link", s, got, l)
		}
		if again := notify.Defang(got); again != got {
			t.Fatalf("not idempotent: Defang(%q) = %q, again %q", s, got, again)
		}
		shown := notify.Defang(notify.HeaderValue(s))
		if l := linkIn(shown); l != "" {
			t.Fatalf("Defang(HeaderValue(%q)) = %q: %q is still a link", s, shown, l)
		}
		if i := strings.IndexFunc(shown, unsafeRune); i >= 0 {
			t.Fatalf("Defang(HeaderValue(%q)) = %q has the control character %U", s, shown, []rune(shown[i:])[0])
		}
		if msg := checkDefangWork(s); msg != "" {
			t.Fatalf("Defang(%q): %s", s, msg)
		}
	})
}

// Bounds on Defang's work, whatever the text (checkDefangWork): a fixed
// number of passes, and a fixed number of bytes of scheme names looked up
// for each byte of text, so that its time grows linearly with the text.
// The second follows from the first: the characters of the schemes a pass
// finds are the text's own (no step before writes one), and a scheme of L
// bytes costs at most L plus its suffixes of 1 to min(L-1, 13) bytes, 7.5
// bytes per character (105 for L = 14), so three passes stay under 24.
const (
	maxDefangPasses    = 3
	maxLookedUpPerByte = 24
)

// checkDefangWork reports how Defang's work on s exceeds its bounds, or "".
func checkDefangWork(s string) string {
	passes, lookedUp := notify.DefangWork(s)
	switch {
	case passes > maxDefangPasses:
		return fmt.Sprintf("%d passes, want at most %d", passes, maxDefangPasses)
	case lookedUp > maxLookedUpPerByte*len(s):
		return fmt.Sprintf("%d bytes of schemes looked up for %d bytes of text, want at most %d per byte",
			lookedUp, len(s), maxLookedUpPerByte)
	}
	return ""
}

// TestDefangWorkIsLinear: on the shapes that make each step of Defang
// work hardest (those BenchmarkDefang measures), at the sizes user text
// reaches and beyond, Defang's work stays within its linear bounds. Its
// speed is BenchmarkDefang's to show; this counts instead of timing.
func TestDefangWorkIsLinear(t *testing.T) {
	for _, sh := range defangShapes {
		for _, n := range []int{250, 2000, 16000} {
			if msg := checkDefangWork(defangInput(sh.unit, sh.last, n)); msg != "" {
				t.Errorf("%s, %d bytes: %s", sh.name, n, msg)
			}
		}
	}
}
