//go:build !unix

package h1transport

import "net"

// peekQuiet can't look without reading here, so no connection counts as
// quiet and none is reused: a response nobody asked for could otherwise be
// served as the next call's. (Lockbox runs on Linux; elsewhere every call
// dials.)
func peekQuiet(net.Conn) bool { return false }
