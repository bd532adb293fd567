package notify_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/mail"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/notify"
)

// TestDevSinkDatesByItsClock: the Date of an .eml file of `lockbox dev`
// is the worker's clock, as every other time Lockbox writes, not the
// machine's: the file of a message says when it was delivered in the
// same time as the audit log and the request do.
func TestDevSinkDatesByItsClock(t *testing.T) {
	dateOf := func(t *testing.T, f string) time.Time {
		t.Helper()
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		d, err := m.Header.Date()
		if err != nil {
			t.Fatalf("%s: Date: %v", f, err)
		}
		return d
	}
	t.Run("sink", func(t *testing.T) {
		c := clock.NewFake(t0.Add(37*time.Minute + 11*time.Second))
		dir := t.TempDir()
		sink := &notify.DevSink{Dir: dir, From: "lockbox@localhost", Logger: slog.New(slog.DiscardHandler), Now: c.Now}
		if err := sink.Send(context.Background(), "1-0.0123456789abcdef", pendingMessage(t, "repair")); err != nil {
			t.Fatal(err)
		}
		if got := dateOf(t, filepath.Join(dir, "1-0.0123456789abcdef.eml")); !got.Equal(c.Now()) {
			t.Errorf("Date %s, want the clock's %s", got, c.Now())
		}
	})
	t.Run("worker", func(t *testing.T) {
		e := newEnv(t)
		r := e.create(t, operator(0))
		e.act(t, r.ID, grants.ActionApprove, manager)
		e.clock.Advance(3*time.Minute + 5*time.Second)
		dir := filepath.Join(t.TempDir(), "mail")
		drain(t, newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "dev", DevDir: dir}))
		files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
		if len(files) == 0 {
			t.Fatal("no e-mail written")
		}
		for _, f := range files {
			if got := dateOf(t, f); !got.Equal(e.clock.Now()) {
				t.Errorf("%s: Date %s, want the clock's %s", filepath.Base(f), got, e.clock.Now())
			}
		}
	})
}
