package notify_test

import (
	"context"
	"log/slog"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/notify"
)

// TestMessageIDIsInTheSendersDomain: the right side of a Message-ID is
// the domain of LOCKBOX_SMTP_FROM's address, one the provider controls
// (RFC 5322), not a made-up "lockbox" that spam filters score; its left
// side stays the delivery id, the same across retries and re-drives.
func TestMessageIDIsInTheSendersDomain(t *testing.T) {
	const id = "1-0.0123456789abcdef"
	from := "Lockbox <lockbox@notify.provider.example>"
	want := "<" + id + "@notify.provider.example>"
	t.Run("smtp", func(t *testing.T) {
		if got := sentOverSMTP(t, from, id).MessageID; got != want {
			t.Errorf("Message-ID %q, want %q", got, want)
		}
	})
	t.Run("dev", func(t *testing.T) {
		dir := t.TempDir()
		sink := &notify.DevSink{Dir: dir, From: from, Logger: slog.New(slog.DiscardHandler)}
		if err := sink.Send(context.Background(), id, pendingMessage(t, "repair")); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, id+".eml"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(strings.NewReader(string(raw)))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Header.Get("Message-ID"); got != want {
			t.Errorf("Message-ID %q, want %q", got, want)
		}
	})
}
