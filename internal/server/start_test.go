package server_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/server"
)

// TestStopWhileRedisDoesNotAnswerEndsStartUp: a stop signal while
// start-up waits on a Redis that takes the connection and never answers
// ends New at once, with an error that says the stop ended it
// (context.Canceled), not Redis. go-redis ends a call at its context's
// deadline, not at its cancellation, so the stop waited out
// LOCKBOX_REDIS_TIMEOUT. The deadlines only bound a failure.
func TestStopWhileRedisDoesNotAnswerEndsStartUp(t *testing.T) {
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
	cfg, err := config.LoadFor(map[string]string{
		"LOCKBOX_REDIS_URL":              "redis://" + ln.Addr().String(),
		"LOCKBOX_REDIS_TIMEOUT":          "5s", // the longest allowed; the stop comes long before
		"LOCKBOX_JWT_JWKS_FILE":          jwks,
		"LOCKBOX_PROXY_SIGNING_KEY_FILE": filepath.Join(dir, "grant.pem"),
		"LOCKBOX_UPSTREAMS":              "exchange=http://127.0.0.1:1",
		"LOCKBOX_SIEM_SINK":              "off",
	}, config.ModeServe)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		srv, err := server.New(ctx, cfg, server.Options{})
		if err == nil {
			srv.Redis.Close()
		}
		done <- err
	}()
	select {
	case c := <-accepted:
		accepted <- c // closed at the end
	case err := <-done:
		t.Fatalf("New returned before it asked Redis: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("New did not ask Redis in 30s")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("New after the stop: %v, want an error that is context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("New still waits on Redis 30s after the stop")
	}
}
