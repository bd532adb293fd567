package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/lockbox-oss/lockbox/internal/httptimeouts"
)

// Cluster is the three demo services, each on its own loopback port.
type Cluster struct {
	services  map[string]*Service
	upstreams map[string]string
	servers   []*http.Server
	log       *slog.Logger

	stop      chan struct{} // closed by Close
	closeOnce sync.Once
	done      sync.WaitGroup // the Serve goroutines and the ctx watcher
}

const (
	maxHeaderBytes  = 64 << 10
	shutdownTimeout = 5 * time.Second
)

// defaultTimeouts are the demo services'. The proxy is the only intended
// client; the limits are there so a demo left running can't be held open
// by a stray connection. No answer is streamed: each is one JSON document
// marshalled in memory and written at once, so the write timeout needs no
// room for a long download.
var defaultTimeouts = httptimeouts.Timeouts{
	ReadHeader: 5 * time.Second,
	Read:       30 * time.Second,
	Write:      30 * time.Second,
	Idle:       2 * time.Minute,
}

// Start starts every demo service on a free port of 127.0.0.1, each
// configured by cfg (its Name aside). It stops them when ctx ends or Close
// is called, whichever comes first.
func Start(ctx context.Context, cfg ServiceConfig) (*Cluster, error) {
	return start(ctx, cfg, defaultTimeouts)
}

// start is Start with the servers' timeouts t; tests shorten them.
func start(ctx context.Context, cfg ServiceConfig, t httptimeouts.Timeouts) (*Cluster, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{
		services:  make(map[string]*Service),
		upstreams: make(map[string]string),
		log:       logger.With("component", "demo"),
		stop:      make(chan struct{}),
	}
	var lc net.ListenConfig
	var listeners []net.Listener
	for _, name := range Names() {
		sc := cfg
		sc.Name, sc.Logger = name, logger
		svc, err := NewService(sc)
		if err != nil {
			closeAll(listeners)
			return nil, err
		}
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			closeAll(listeners)
			return nil, fmt.Errorf("demo: listen for %s: %w", name, err)
		}
		listeners = append(listeners, ln)
		c.services[name] = svc
		c.upstreams[name] = "http://" + ln.Addr().String()
		srv := t.Server(svc)
		srv.MaxHeaderBytes = maxHeaderBytes
		srv.ErrorLog = slog.NewLogLogger(logger.With("component", "demo", "service", name).Handler(), slog.LevelWarn)
		c.servers = append(c.servers, srv)
	}
	for i, srv := range c.servers {
		c.done.Add(1)
		go func() {
			defer c.done.Done()
			if err := srv.Serve(listeners[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				c.log.Error("demo service stopped", "addr", listeners[i].Addr().String(), "error", err)
			}
		}()
	}
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		select {
		case <-ctx.Done():
		case <-c.stop:
		}
		c.shutdown()
	}()
	for _, name := range Names() {
		c.log.Info("demo service listening", "service", name, "url", c.upstreams[name])
	}
	return c, nil
}

func closeAll(ls []net.Listener) {
	for _, ln := range ls {
		_ = ln.Close()
	}
}

// shutdown lets calls in flight finish for a few seconds, then drops them.
func (c *Cluster) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, srv := range c.servers {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
	}
}

// Upstreams returns each service's base URL, e.g.
// {"exchange": "http://127.0.0.1:40123", ...}, in the form the proxy's
// upstream configuration takes. The map is the caller's.
func (c *Cluster) Upstreams() map[string]string {
	return maps.Clone(c.upstreams)
}

// Service returns the named service, or nil if there is none.
func (c *Cluster) Service(name string) *Service { return c.services[name] }

// Close stops the services and waits until they have stopped. It is safe
// to call more than once, and after ctx ended.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() { close(c.stop) })
	c.done.Wait()
}
