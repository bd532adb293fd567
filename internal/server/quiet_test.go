//go:build unix

package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestCloseQuietKeepsAConnectionWhoseRequestWaits: a connection is quiet
// to the listener until the server reads from it, but the client may have
// sent its whole request already, waiting in the socket for the server's
// goroutine to get to it (a loaded replica). Closing it at a stop drops
// that request unanswered, which net/http's Shutdown would have served; a
// connection that has truly sent nothing is still closed.
func TestCloseQuietKeepsAConnectionWhoseRequestWaits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ql := newQuietListener(ln)
	defer ql.Close()

	const request = "GET /livez HTTP/1.1\r\nHost: lockbox\r\n\r\n"
	sent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer sent.Close()
	if _, err := fmt.Fprint(sent, request); err != nil {
		t.Fatal(err)
	}
	busy, err := ql.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	idle, err := ql.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	// The request is in the server's socket, not yet read.
	waitReadable(t, busy.(*quietConn).Conn)

	ql.closeQuiet()

	_ = busy.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(busy).ReadString('\n')
	if err != nil || line != "GET /livez HTTP/1.1\r\n" {
		t.Errorf("the server read %q, %v from a connection whose request was sent before the stop; want the request", line, err)
	}

	_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := silent.Read(make([]byte, 1))
	if n > 0 || (!errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET)) {
		t.Errorf("a connection that sent nothing read %d bytes, %v after the stop; want it closed", n, err)
	}
}

// waitReadable waits, without reading, until bytes wait in c's socket.
func waitReadable(t *testing.T, c net.Conn) {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		n := 0
		if err := rc.Read(func(fd uintptr) bool {
			var b [1]byte
			n, _, _ = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
	}
	t.Fatal("the request sent never reached the server's socket")
}

// TestCloseQuietClosesAConnectionAcceptedAfterIt: a connection the kernel
// handed to Accept just before the listener closed is registered only
// once Accept returns, which may be after closeQuiet ran. Left open, the
// stop waited for it as net/http does for a new connection, up to 5
// seconds; it is closed at once, as one accepted before.
func TestCloseQuietClosesAConnectionAcceptedAfterIt(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ql := newQuietListener(ln)
	defer ql.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	ql.closeQuiet()
	c, err := ql.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// The deadline only bounds a failure.
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := client.Read(make([]byte, 1))
	if n > 0 || (!errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET)) {
		t.Errorf("a connection accepted after the stop began, having sent nothing, read %d bytes, %v; want it closed", n, err)
	}
}
