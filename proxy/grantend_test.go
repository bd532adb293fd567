package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestGrantEndCutsTheCall: a call forwarded shortly before its grant's
// expires_at stops at that moment, however well it moves and whichever
// side is slow: an upstream that keeps the answer waiting, a client that
// stops taking it, a client whose upload is still coming. The client sees
// the call cut off (the HTTP/1.1 connection closed, the HTTP/2 stream
// reset), the upstream sees the proxy hang up, and the cut is logged, with
// the request and decision ids, and counted.
//
// The grant is judged on the injected clock, which stands still here, so
// the call is permitted. But what cuts it is the deadline of its socket or
// stream, and only real time passes that: the clock is set grantLeft before
// the grant's end, which puts the deadline grantLeft after the call is
// forwarded. grantLeft only has to let the call start (the first bytes
// reach the client, or the upstream), and the client timeout is far
// longer, so that only the grant's end can cut the call within the test's
// patience.
func TestGrantEndCutsTheCall(t *testing.T) {
	const (
		grantLeft = 1500 * time.Millisecond
		timeout   = 30 * time.Second
		patience  = 15 * time.Second
	)
	first := "first\n"
	for _, h2 := range []bool{false, true} {
		for _, tc := range []struct {
			name string
			// upstream answers the call; it reports on hungUp once the
			// proxy hung up on it. It lets go when release is closed, as
			// the test ends. answered is closed once the client's call
			// returned.
			upstream func(hungUp chan<- string, release, answered <-chan struct{}) http.HandlerFunc
			upload   bool
			// endless: the upload never stops coming.
			endless bool
			// slowClient: the client takes nothing of the answer until
			// the upstream was hung up on.
			slowClient bool
		}{
			{name: "download, upstream slow", upstream: func(hungUp chan<- string, release, _ <-chan struct{}) http.HandlerFunc {
				return heldUpstream(first, hungUp, release)
			}},
			{name: "download, client slow", slowClient: true, upstream: func(hungUp chan<- string, _, _ <-chan struct{}) http.HandlerFunc {
				// Never let go: only the proxy hanging up ends it.
				return streamingUpstream(first, 32<<10, hungUp, nil)
			}},
			{name: "upload, client slow", upload: true, upstream: func(hungUp chan<- string, _, _ <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					got, err := io.ReadAll(r.Body)
					hungUp <- fmt.Sprintf("read %q, %v", got, err)
				}
			}},
			{name: "upload, upstream slow", upload: true, endless: true, upstream: func(hungUp chan<- string, release, answered <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					// Takes the upload's start, then nothing more until the
					// client's call returned. (Its server would not notice
					// the proxy hang up before it read the body to its end.)
					b := make([]byte, len(first))
					if _, err := io.ReadFull(r.Body, b); err != nil {
						hungUp <- fmt.Sprintf("read %q, %v", b, err)
						return
					}
					select {
					case <-answered:
					case <-release:
						return
					}
					_, err := io.Copy(io.Discard, r.Body)
					hungUp <- fmt.Sprintf("read %q, %v", b, err)
				}
			}},
		} {
			t.Run(fmt.Sprintf("%s HTTP/2 %v", tc.name, h2), func(t *testing.T) {
				t.Parallel()
				answered := make(chan struct{})
				e, hungUp := cutEnv(t, timeout, func(hungUp chan<- string, release <-chan struct{}) http.HandlerFunc {
					return tc.upstream(hungUp, release, answered)
				})
				req := e.grantFor(alice, "contoso", "exchange", 2*time.Hour, "Get-Mailbox", "New-MailboxRepairRequest")
				e.clk.Set(req.ExpiresAt.Add(-grantLeft))
				addr, roots := e.tlsProxy()
				client := clientFor(t, roots, h2)
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				defer cancel()

				method, target, body := http.MethodGet, mailboxes, io.Reader(nil)
				var upload *io.PipeWriter
				if tc.upload {
					// Streamed to the upstream as it comes; the rest never
					// comes until the test ends.
					var pr *io.PipeReader
					pr, upload = io.Pipe()
					defer upload.Close()
					go func() {
						if _, err := io.WriteString(upload, first); err != nil || !tc.endless {
							return
						}
						chunk := strings.Repeat("x", 32<<10)
						for {
							if _, err := io.WriteString(upload, chunk); err != nil {
								return
							}
						}
					}()
					// Go's client waits for its upload to end before it
					// reports the connection gone: it ends once the
					// upstream was hung up on.
					go func() {
						what := <-hungUp
						upload.CloseWithError(errors.New("the upstream was hung up on"))
						hungUp <- what
					}()
					method, target, body = http.MethodPost, mailboxes+"/alice/repair", pr
				}
				call := authorizedCall(t, ctx, e, alice, method, "https://"+addr+target, body)
				if tc.upload {
					call.Header.Set("Content-Type", "text/plain")
				}
				res, err := client.Do(call)
				close(answered)
				var got []byte
				if err == nil {
					defer res.Body.Close()
					if (res.ProtoMajor == 2) != h2 {
						t.Errorf("spoke %s", res.Proto)
					}
					if tc.slowClient {
						got = make([]byte, len(first))
						if _, err := io.ReadFull(res.Body, got); err != nil {
							t.Fatalf("%s: %v", res.Status, err)
						}
						waitHungUp(t, ctx, e, hungUp, "the upstream")
						hungUp <- "hung up"
					}
					var rest []byte
					rest, err = io.ReadAll(res.Body)
					got = append(got, rest...)
				}
				switch {
				case ctx.Err() != nil:
					t.Fatalf("the call was not cut within the test's patience: %q, %v\n%s", got, err, e.logs)
				case err == nil:
					t.Fatalf("%s %q: the answer ended cleanly, want it cut off", res.Status, got)
				case !tc.upload && !strings.HasPrefix(string(got), first):
					t.Errorf("got %q before the cut, want %q first: the call was cut before it started", got, first)
				}
				if what := waitHungUp(t, ctx, e, hungUp, "the upstream"); tc.upload && (!strings.HasPrefix(what, fmt.Sprintf("read %q", first)) || strings.HasSuffix(what, "<nil>")) {
					t.Errorf("the upstream %s; want the upload's start, then a failure", what)
				}
				waitCounted(t, ctx, e, 1, "the call was never counted")
				if l := cutLine(t, e, "proxy call cut: the grant expired during the call"); l["request_id"] != req.ID || l["decision_id"] == "" || l["reason"] != string(ReasonGrantExpired) || l["level"] != "WARN" {
					t.Errorf("log line %v: want request_id %s, a decision_id, reason %s, at WARN", l, req.ID, ReasonGrantExpired)
				}
				wantCutOnce(t, e, ReasonGrantExpired)
			})
		}
	}
}

// TestGrantEndCutsTheCallJudgedJustBefore: a call judged a nanosecond
// before its grant's end is permitted (audited and forwarded: the window is
// now < expires_at), and cut at that end, which comes before the upstream
// can answer: the client never gets a whole answer.
func TestGrantEndCutsTheCallJudgedJustBefore(t *testing.T) {
	e := newTestEnv(t)
	req := e.grantFor(alice, "contoso", "exchange", 2*time.Hour)
	e.clk.Set(req.ExpiresAt.Add(-time.Nanosecond))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	call := authorizedCall(t, ctx, e, alice, http.MethodGet, e.srv.URL+mailboxes, nil)
	client := &http.Client{Transport: &http.Transport{}}
	res, err := client.Do(call)
	if err == nil {
		var got []byte
		got, err = io.ReadAll(res.Body)
		res.Body.Close()
		if err == nil {
			t.Fatalf("%s %s: a whole answer, want the call cut", res.Status, got)
		}
	}
	// Newest first: the call's record, after the request's own.
	if recs := mustList(t, e, 1); len(recs) != 1 || recs[0].Operation != "Get-Mailbox" || recs[0].LockboxRequestId != req.ID {
		t.Errorf("newest audit record %+v, want the call's: it was permitted", recs)
	}
	waitCounted(t, ctx, e, 1, "the call was never counted")
	if lines := e.logLines("proxy call cut: the grant expired during the call"); len(lines) != 1 || lines[0]["request_id"] != req.ID {
		t.Errorf("log lines of the cut: %v, want one naming request %s:\n%s", lines, req.ID, e.logs)
	}
	if got := cutCount(t, e, "exchange", ReasonGrantExpired); got != 1 {
		t.Errorf("lockbox_proxy_calls_cut_total{exchange,%s} = %v, want 1", ReasonGrantExpired, got)
	}
}
