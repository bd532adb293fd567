//go:build unix

package h1transport

import (
	"net"
	"syscall"
)

// peekQuiet reports whether nc is open with nothing to read, without
// reading: one non-blocking MSG_PEEK. It answers EAGAIN on a quiet
// connection, 0 at EOF, and more when bytes wait.
func peekQuiet(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		// Nothing to peek with: not known quiet, so not reused.
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	quiet := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		quiet = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && quiet
}
