// Package text holds the rules free text typed by people follows before
// Lockbox stores it. Such text reaches tenant approvers in mail and the
// admin center and stays in audit records, where a character that makes
// it read otherwise than it was written would mislead the reader: ESC
// starts a terminal escape, a lone CR rewrites the line, NUL cuts it, and
// a bidirectional override shows "invoice\u202egnp.exe" as
// "invoiceexe.png". notify.HeaderValue blanks the same set in mail headers.
package text

import "strings"

// Misleading reports whether c is such a character: a C0 or C1 control,
// DEL, a Unicode line or paragraph separator, or a bidirectional mark,
// embedding, override or isolate.
func Misleading(c rune) bool {
	switch {
	case c < 0x20, c >= 0x7f && c <= 0x9f: // C0, DEL and C1
		return true
	case c == '\u061c', c == '\u200e', c == '\u200f': // bidirectional marks
		return true
	case c >= '\u2028' && c <= '\u202e': // separators, embeddings, overrides
		return true
	case c >= '\u2066' && c <= '\u2069': // isolates
		return true
	}
	return false
}

// Line reports whether s is one line with no misleading character: no
// line break and no tab either, for a name or a reason shown on one line
// (a page title, a mail subject, a table cell).
func Line(s string) bool { return !strings.ContainsFunc(s, Misleading) }

// Lines reports whether s has no misleading character but line breaks
// (LF, or CRLF as a browser sends a textarea's) and tabs, for text typed
// in a textarea and shown as written.
func Lines(s string) bool {
	for i, c := range s {
		switch {
		case c == '\n' || c == '\t':
		case c == '\r' && strings.HasPrefix(s[i+1:], "\n"):
		case Misleading(c):
			return false
		}
	}
	return true
}
