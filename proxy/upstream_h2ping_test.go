package proxy

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/tlsfiles"
	"github.com/lockbox-oss/lockbox/internal/tlstest"
)

// silentRelay stands between the proxy and an upstream, relaying bytes
// both ways over TCP, until told to go silent: then every connection it
// holds swallows what either side sends and delivers nothing, without
// closing, as a hung pod behind a load balancer does, or a connection left
// half-open by a network partition. Connections opened afterwards relay
// again.
type silentRelay struct {
	t      testing.TB
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []*relayConn
}

// relayConn is one relayed connection. closed is closed when the proxy's
// side of it ends: the proxy closed the connection.
type relayConn struct {
	client, upstream net.Conn
	silent           atomic.Bool
	closed           chan struct{}
}

func newSilentRelay(t testing.TB, target string) *silentRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &silentRelay{t: t, ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, c := range r.conns {
			c.client.Close()
			c.upstream.Close()
		}
	})
	go r.accept()
	return r
}

func (r *silentRelay) accept() {
	for {
		client, err := r.ln.Accept()
		if err != nil {
			return
		}
		upstream, err := net.Dial("tcp", r.target)
		if err != nil {
			client.Close()
			continue
		}
		c := &relayConn{client: client, upstream: upstream, closed: make(chan struct{})}
		r.mu.Lock()
		r.conns = append(r.conns, c)
		r.mu.Unlock()
		go func() {
			c.pipe(client, upstream)
			close(c.closed)
			upstream.Close()
		}()
		go func() {
			c.pipe(upstream, client)
			if !c.silent.Load() {
				client.Close()
			}
		}()
	}
}

// pipe copies src to dst until src ends, dropping what it reads once c is
// silent.
func (c *relayConn) pipe(src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !c.silent.Load() {
			_, _ = dst.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// silence makes every connection open now go silent, and returns them.
func (r *silentRelay) silence() []*relayConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.silent.Store(true)
	}
	return append([]*relayConn(nil), r.conns...)
}

func (r *silentRelay) accepted() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// TestUpstreamH2SilentConnection: an upstream HTTP/2 connection that goes
// silent without closing (the peer answers nothing, not even a ping) is
// found dead by the transport's health-check pings and closed, so the next
// call is carried on a fresh connection instead of waiting on the dead one
// until its own timeout. The pings are shortened here; NewTransport's are
// seconds.
func TestUpstreamH2SilentConnection(t *testing.T) {
	ca := tlstest.NewCA(t, "upstream CA")
	up := newTLSUpstream(t, &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "exchange.internal").TLS}})
	relay := newSilentRelay(t, up.srv.Listener.Addr().String())
	e := newTestEnv(t, func(e *testEnv, c *Config) {
		u, err := url.Parse("https://" + relay.ln.Addr().String() + "/api/exchange")
		if err != nil {
			t.Fatal(err)
		}
		c.Upstreams["exchange"] = u
		c.Transport = newTransport(true, tlsfiles.ClientConfig(ca.Pool(), nil), DefaultClientTimeout,
			// Short enough to be seen within the test's patience, long
			// enough that a loaded machine's pauses don't make a live
			// connection look dead.
			h2Pings{after: 500 * time.Millisecond, timeout: 2 * time.Second})
	})
	e.grantFor(alice, "contoso", "exchange", time.Hour)

	if res := e.send(as(alice, "GET", mailboxes)(e)); res.status != http.StatusOK {
		t.Fatalf("first call: %d %s", res.status, res.body)
	}
	if n := relay.accepted(); n != 1 {
		t.Fatalf("the proxy opened %d connections to the upstream for one call, want 1", n)
	}
	if s := up.seen(); len(s) != 1 || s[0].proto != "HTTP/2.0" {
		t.Fatalf("the upstream saw %+v, want one HTTP/2 call", s)
	}

	silent := relay.silence()
	// Patience only bounds the failure: the pings above find the
	// connection dead within 2.5 s of its last frame.
	const patience = 10 * time.Second
	select {
	case <-silent[0].closed:
	case <-time.After(patience):
		t.Errorf("the proxy kept its silent HTTP/2 connection to the upstream open for %s", patience)
	}

	// e.send gives up after 10 s: a call sent down the silent connection
	// would wait there for the transport's 30 s response-header timeout.
	res := e.send(as(alice, "GET", mailboxes)(e))
	if res.status != http.StatusOK {
		t.Fatalf("call after the connection went silent: %d %s", res.status, res.body)
	}
	if n := relay.accepted(); n != 2 {
		t.Errorf("the proxy opened %d connections to the upstream, want 2 (a fresh one for the second call)", n)
	}
	if s := up.seen(); len(s) != 2 {
		t.Errorf("the upstream saw %d calls, want 2", len(s))
	}
}
