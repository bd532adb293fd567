//go:build unix

package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDevStopsGracefullyOnHangup: "lockbox dev" runs in a terminal, and
// closing the terminal sends it SIGHUP. That killed it on the spot (the Go
// runtime's default), where Ctrl-C stops it gracefully: a call it was
// serving was cut off without an answer. Now SIGHUP is a stop like
// Ctrl-C: the call in flight gets its answer, and dev exits 0.
//
// The call is a request filing whose body the test holds back: the
// handler has begun reading it (the server sent 100 Continue) when the
// signal comes, and the rest goes once the API no longer takes new
// connections, which it stops doing on the stop (or on dying). The
// deadlines only bound a failure.
func TestDevStopsGracefullyOnHangup(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	cmd := devProcess(dir)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = &syncBuffer{}, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	listening := regexp.MustCompile(`msg="lockbox listening" .*api=(\S+) `)
	var api string
	for deadline := time.Now().Add(30 * time.Second); ; {
		if m := listening.FindStringSubmatch(logs.String()); m != nil {
			api = m[1]
			break
		}
		select {
		case <-exited:
			t.Fatalf("lockbox dev ended before listening: %v\n%s", waitErr, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("lockbox dev not listening after 30s\n%s", logs.String())
		}
	}
	token, err := os.ReadFile(filepath.Join(dir, "operator.jwt"))
	if err != nil {
		t.Fatal(err)
	}

	body := `{"tenant":"contoso","service":"exchange","service_request":"SR-1","reason":"mailbox will not open","duration":"1h"}`
	conn, err := net.Dial("tcp", api)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/requests HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		api, strings.TrimSpace(string(token)), len(body))
	br := bufio.NewReader(conn)
	cont, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cont.StatusCode != http.StatusContinue {
		t.Fatalf("POST /v1/requests with Expect: 100-continue: %s, want 100 Continue", cont.Status)
	}

	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The API takes no new connection once the stop began (or the
	// process is gone).
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.DialTimeout("tcp", api, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the API still takes connections 30s after SIGHUP\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var answer string
	if _, err := conn.Write([]byte(body)); err != nil {
		answer = "the rest of the body could not be sent: " + err.Error()
	} else if resp, err := http.ReadResponse(br, nil); err != nil {
		answer = "no answer: " + err.Error()
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			answer = resp.Status
		}
	}
	if answer != "" {
		t.Errorf("the request filed as SIGHUP came: %s, want 201 Created", answer)
	}

	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("lockbox dev still runs 30s after SIGHUP\n%s", logs.String())
	}
	if ee, ok := errors.AsType[*exec.ExitError](waitErr); ok {
		t.Errorf("lockbox dev after SIGHUP: %v, want exit 0 after a graceful stop\n%s", ee, logs.String())
	} else if waitErr != nil {
		t.Fatal(waitErr)
	}
	// The log says the stop was clean, and that it waited for the call.
	if !regexp.MustCompile(`msg="lockbox stopped" drain=\S+ drained_calls=1\n`).MatchString(logs.String()) {
		t.Errorf("no line saying lockbox stopped after draining one call:\n%s", logs.String())
	}
}

// devProcess is "lockbox dev" in a process of its own, running main, with
// dir as its LOCKBOX_DEV_DIR and every listener on a free port.
func devProcess(dir string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "dev")
	cmd.Env = append(scrubbedEnv(), runMainEnv+"=1",
		"LOCKBOX_DEV_DIR="+dir,
		"LOCKBOX_API_ADDR=127.0.0.1:0", "LOCKBOX_PROXY_ADDR=127.0.0.1:0", "LOCKBOX_METRICS_ADDR=127.0.0.1:0",
	)
	return cmd
}
