//go:build unix

package server

import (
	"net"
	"syscall"
)

// bytesWaiting reports whether bytes wait to be read on nc, without
// reading them: one non-blocking MSG_PEEK. EOF, an error, or a connection
// with nothing to peek with count as none.
func bytesWaiting(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// Control, not Read: the server's goroutine may be blocked reading
	// the connection, holding what Read would wait for.
	n := 0
	err = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, _ = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return err == nil && n > 0
}
