//go:build !unix

package server

import "net"

// bytesWaiting can't look without reading here: a connection the server
// has read nothing from counts as having sent nothing. (Lockbox runs on
// Linux.)
func bytesWaiting(net.Conn) bool { return false }
