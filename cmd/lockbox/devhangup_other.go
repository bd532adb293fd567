//go:build !linux

package main

// watchTerminalHangup watches nothing here: only Linux's poll is used to
// see a terminal hang up (devhangup_linux.go).
func watchTerminalHangup() {}
