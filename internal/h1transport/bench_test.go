package h1transport

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkRoundTrip compares a call through this transport with one
// through net/http's Transport, tuned as the proxy tunes it, against the
// same local upstream answering 1 KiB: the per-call CPU the proxy saves.
// (Both sides of the loopback run in this process, so the figures include
// the upstream's share.)
func BenchmarkRoundTrip(b *testing.B) {
	body := strings.Repeat("x", 1024)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name string
		tr   http.RoundTripper
	}{
		{"h1transport", newTransport()},
		{"net-http", &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute, DisableCompression: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 4096)
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, srv.URL+"/t/tenant/mailbox/messages/1", nil)
					res, err := tc.tr.RoundTrip(req)
					if err != nil {
						b.Fatal(err)
					}
					for {
						if _, err := res.Body.Read(buf); err != nil {
							break
						}
					}
					res.Body.Close()
				}
			})
		})
	}
}
