package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
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

// TestStopDuringStartUpIsAStop: a stop signal while "lockbox serve" waits
// on Redis at start-up (a pod stopped as it starts, Ctrl-C) ends it as a
// stop after start-up does: exit 0, with no error line. It ended with exit
// 1 and "LOCKBOX_REDIS_URL: the Redis at ... does not answer: context
// canceled", blaming a setting and a Redis that were not at fault.
func TestStopDuringStartUpIsAStop(t *testing.T) {
	// A Redis that takes connections and never answers: start-up waits
	// on it (for LOCKBOX_REDIS_TIMEOUT, the longest allowed, which the
	// stop comes long before) until the stop.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// A connection is sent on accepted once its first command has come
	// (go-redis's HELLO): the client then waits for the answer.
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				if _, err := c.Read(make([]byte, 1)); err == nil {
					accepted <- c
				} else {
					c.Close()
				}
			}()
		}
	}()
	defer func() {
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	}()
	env := serveEnv(t, "redis://"+ln.Addr().String())
	env["LOCKBOX_REDIS_TIMEOUT"] = "5s"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve"}, env, &stdout, &stderr) }()
	select {
	case c := <-accepted:
		accepted <- c // closed at the end
	case code := <-done:
		t.Fatalf("serve ended (exit %d) before it asked Redis:\n%s", code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not ask Redis in 30s:\n%s", stderr.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("stopped during start-up: exit %d, want 0\n%s", code, stderr.String())
		}
		for line := range strings.Lines(stderr.String()) {
			if strings.HasPrefix(line, "lockbox: ") {
				t.Errorf("error line for a stop: %q", line)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve still runs 30s after the stop:\n%s", stderr.String())
	}
}

// TestDevStoppedBeforeItStartedIsAStop: Ctrl-C before "lockbox dev" has
// started (here, before it begins) ends it as a stop: exit 0, with no
// error line.
func TestDevStoppedBeforeItStartedIsAStop(t *testing.T) {
	env := devEnv(filepath.Join(t.TempDir(), "dev"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"dev"}, env, &stdout, &stderr)
	if code != 0 {
		t.Errorf("dev stopped before it started: exit %d, want 0\n%s", code, stderr.String())
	}
	for line := range strings.Lines(stderr.String()) {
		if strings.HasPrefix(line, "lockbox: ") {
			t.Errorf("error line for a stop: %q", line)
		}
	}
}

// TestStopBeforeStartUpKeepsConfigurationErrors: a stop does not hide a
// bad setting: start-up that fails on its configuration is exit 78
// (exitConfig), naming the variable, whether or not a stop came.
func TestStopBeforeStartUpKeepsConfigurationErrors(t *testing.T) {
	env := serveEnv(t, "redis://127.0.0.1:1")
	env["LOCKBOX_UPSTREAMS"] = "exchange=ftp://127.0.0.1:1"
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"serve"}, env, &stdout, &stderr); code != exitConfig || !strings.Contains(stderr.String(), "lockbox: LOCKBOX_UPSTREAMS: ") {
		t.Errorf("exit %d, want %d naming LOCKBOX_UPSTREAMS:\n%s", code, exitConfig, stderr.String())
	}
}

// serveEnv is the environment of an in-process "lockbox serve" on free
// loopback ports with the Redis at redisURL, its keys in a temporary
// directory.
func serveEnv(t *testing.T, redisURL string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	key, err := identity.GenerateDevKey()
	if err != nil {
		t.Fatal(err)
	}
	_, jwks, err := identity.WriteDevKeys(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := grantsig.EnsureKeyFiles(filepath.Join(dir, "grant.pem"), filepath.Join(dir, "grant.pub.pem")); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"LOCKBOX_REDIS_URL":              redisURL,
		"LOCKBOX_JWT_JWKS_FILE":          jwks,
		"LOCKBOX_PROXY_SIGNING_KEY_FILE": filepath.Join(dir, "grant.pem"),
		"LOCKBOX_UPSTREAMS":              "exchange=http://127.0.0.1:1",
		"LOCKBOX_API_ADDR":               "127.0.0.1:0",
		"LOCKBOX_PROXY_ADDR":             "127.0.0.1:0",
		"LOCKBOX_METRICS_ADDR":           "127.0.0.1:0",
		"LOCKBOX_SIEM_SINK":              "off",
	}
}
