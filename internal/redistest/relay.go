package redistest

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Relay is a TCP relay in front of a Redis, for tests that lose a reply:
// a command reaches Redis and runs there, and its answer never reaches the
// client, whose connection breaks instead, as when a failover, a restart
// or a network cut falls between the two. Everything else passes as it is.
type Relay struct {
	// URL is the relay's URL for the database of the Redis it fronts.
	URL    string
	target string
	ln     net.Listener
	// match, when set, picks the command whose reply is lost, once.
	match atomic.Pointer[func([]byte) bool]
	lost  atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
}

// StartRelay starts a relay for t in front of the Redis at url (as URL
// returns it), stopped when t ends.
func StartRelay(t testing.TB, url string) *Relay {
	t.Helper()
	rest, ok := strings.CutPrefix(url, "redis://")
	if !ok {
		t.Fatalf("redistest: relay: %q is not a redis:// URL", url)
	}
	target, db, _ := strings.Cut(rest, "/")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: relay: %v", err)
	}
	r := &Relay{URL: "redis://" + ln.Addr().String() + "/" + db, target: target, ln: ln}
	go r.accept()
	t.Cleanup(r.close)
	return r
}

// LoseReplyTo arms the relay: the first round trip whose command bytes
// (everything a client sent since its last answer: one command, or a
// whole pipeline) match has its reply dropped and both sides of its
// connection closed, after Redis ran it. Later ones pass.
func (r *Relay) LoseReplyTo(match func(sent []byte) bool) { r.match.Store(&match) }

// Lost reports whether the armed reply was lost.
func (r *Relay) Lost() bool { return r.lost.Load() }

func (r *Relay) close() {
	r.ln.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
}

func (r *Relay) track(c net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns = append(r.conns, c)
}

func (r *Relay) accept() {
	for {
		client, err := r.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", r.target)
		if err != nil {
			client.Close()
			continue
		}
		r.track(client)
		r.track(server)
		go r.relay(client, server)
	}
}

// relay copies one connection's bytes both ways.
func (r *Relay) relay(client, server net.Conn) {
	var (
		mu   sync.Mutex
		sent bytes.Buffer // what the client sent since its last answer
		cut  bool         // this round trip's answer is to be lost
	)
	go func() {
		defer server.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				mu.Lock()
				sent.Write(buf[:n])
				if m := r.match.Load(); m != nil && !cut && (*m)(sent.Bytes()) && r.match.CompareAndSwap(m, nil) {
					// Decided before Redis sees the command, so before
					// its answer can come back.
					cut = true
				}
				mu.Unlock()
				if _, err := server.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer client.Close()
	defer server.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			mu.Lock()
			lose := cut
			sent.Reset()
			mu.Unlock()
			if lose {
				r.lost.Store(true)
				return
			}
			if _, err := client.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
