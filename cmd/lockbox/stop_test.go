package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDevStopsWithoutShutdownDelay: "lockbox dev" ends promptly on
// Ctrl-C, whatever LOCKBOX_SHUTDOWN_DELAY says; nothing routes to a dev
// server through a load balancer catching up. The deadline only bounds a
// failure: with the delay, dev would serve on for 10 minutes.
func TestDevStopsWithoutShutdownDelay(t *testing.T) {
	env := devEnv(filepath.Join(t.TempDir(), "dev"))
	env["LOCKBOX_SHUTDOWN_DELAY"] = "10m"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- dev(ctx, env, &stdout, &stderr) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), "Stop with Ctrl-C.") {
		select {
		case err := <-done:
			t.Fatalf("dev ended: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no banner after 30s; logs:\n%s", stderr.String())
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dev: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("dev still runs 10s after Ctrl-C, with LOCKBOX_SHUTDOWN_DELAY=10m:\n%s", stderr.String())
	}
}

// TestStopSignals: the first stop signal ends the context the server
// runs under, the second closes the channel that ends the shutdown delay
// (LOCKBOX_SHUTDOWN_DELAY): an operator who stops Lockbox by hand twice
// wants it gone now, with its calls drained.
func TestStopSignals(t *testing.T) {
	// Unbuffered: each send below is taken by the handler, not left in a
	// buffer.
	sigs := make(chan os.Signal)
	ctx, again := stopSignals(sigs)
	select {
	case <-ctx.Done():
		t.Fatal("stopped before any signal")
	case <-again:
		t.Fatal("second stop before any signal")
	default:
	}
	sigs <- syscall.SIGTERM
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM did not end the context")
	}
	select {
	case <-again:
		t.Fatal("one signal ended the shutdown delay too")
	default:
	}
	sigs <- os.Interrupt
	select {
	case <-again:
	case <-time.After(10 * time.Second):
		t.Fatal("a second signal did not end the shutdown delay")
	}
	// Later signals are taken and ignored, as before: the drain still
	// runs its course, within LOCKBOX_SHUTDOWN_TIMEOUT.
	select {
	case sigs <- os.Interrupt:
	case <-time.After(10 * time.Second):
		t.Fatal("a third signal was not taken")
	}
}
