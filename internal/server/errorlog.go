package server

import (
	"context"
	"log"
	"log/slog"
	"strings"
	"unicode/utf8"
)

// maxErrorLogMessage bounds a message net/http logs about a listener's
// connections, but for a panic's stack. Some quote what a client sent: a
// failed TLS handshake's error lists the application protocols a
// ClientHello offered when the server speaks none of them, up to 64 KiB of
// any bytes, which the handlers write as four-byte escapes. Anyone who can
// reach a listener could make each connection a log line of a quarter of a
// megabyte. The start of the message says what happened.
const maxErrorLogMessage = 1 << 10

// panicPrefix starts net/http's message for a handler that panicked: its
// first line, then the goroutine's stack, which is kept whole.
const panicPrefix = "http: panic serving "

// errorLog is the ErrorLog of a listener's http.Server: l at warn, with
// long messages cut (maxErrorLogMessage).
func errorLog(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(cutMessages{l.Handler()}, slog.LevelWarn)
}

// cutMessages cuts the messages it is handed to maxErrorLogMessage bytes;
// a panic's, only its first line.
type cutMessages struct{ slog.Handler }

func (h cutMessages) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, panicPrefix) {
		first, stack, _ := strings.Cut(r.Message, "\n")
		if len(first) > maxErrorLogMessage {
			r.Message = cutString(first, maxErrorLogMessage) + "\n" + stack
		}
	} else if len(r.Message) > maxErrorLogMessage {
		r.Message = cutString(r.Message, maxErrorLogMessage)
	}
	return h.Handler.Handle(ctx, r)
}

func (h cutMessages) WithAttrs(attrs []slog.Attr) slog.Handler {
	return cutMessages{h.Handler.WithAttrs(attrs)}
}

func (h cutMessages) WithGroup(name string) slog.Handler {
	return cutMessages{h.Handler.WithGroup(name)}
}

// cutString is s cut to at most n bytes on a rune boundary, with "…"
// marking the cut.
func cutString(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
