package demo

import (
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/stalltest"
)

// TestStalledConnectionsAreClosed: every demo service's server drops a
// client that stalls in any phase of a connection, where net/http alone
// would wait for as long as the client liked. Each case shortens only the
// timeout of the phase it stalls in.
func TestStalledConnectionsAreClosed(t *testing.T) {
	const short, long = 200 * time.Millisecond, time.Hour
	const target = "/tenants/contoso/mailboxes"
	k := newKeys(t)
	for _, c := range stalltest.Stalls {
		st := c.Phase.Timeouts(short, long)
		t.Run(c.Name, func(t *testing.T) {
			cl, err := start(t.Context(), ServiceConfig{GrantKeys: k.set, Now: fixedNow}, st)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cl.Close)
			conns := map[string]net.Conn{}
			for name, base := range cl.Upstreams() {
				u, err := url.Parse(base)
				if err != nil {
					t.Fatal(err)
				}
				conns[name] = c.Open(t, u.Host, target)
			}
			for name, conn := range conns {
				stalltest.WaitClosed(t, conn, name+": "+c.Name)
			}
		})
	}
}

// TestDefaultTimeouts: the servers Start builds bound every phase of a
// connection.
func TestDefaultTimeouts(t *testing.T) {
	cl, err := Start(t.Context(), ServiceConfig{GrantKeys: newKeys(t).set})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if len(cl.servers) != len(Names()) {
		t.Fatalf("%d servers", len(cl.servers))
	}
	for _, srv := range cl.servers {
		for name, d := range map[string]time.Duration{
			"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout,
			"WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout,
		} {
			if d <= 0 {
				t.Errorf("%s = %s: unbounded", name, d)
			}
		}
	}
}
