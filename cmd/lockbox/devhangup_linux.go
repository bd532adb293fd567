package main

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// watchTerminalHangup sends this process SIGHUP, the stop "lockbox dev"
// takes from a closed terminal, when the terminal on its standard input
// or output hangs up. The kernel sends SIGHUP to the terminal's session
// leader alone, and when that is make ("xterm -e make run", a tmux window,
// "ssh -t host make run" dropped), GNU make passes on only SIGTERM: it
// waited for dev, which went on serving, holding its ports and its
// directory's lock, with no terminal. It polls for the hangup without
// reading, so dev never takes the terminal's input, nor stops for reading
// it in the background (SIGTTIN).
func watchTerminalHangup() {
	fd := -1
	for _, f := range []*os.File{os.Stdin, os.Stdout, os.Stderr} {
		if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			fd = int(f.Fd())
			break
		}
	}
	if fd < 0 {
		return
	}
	go func() {
		fds := []unix.PollFd{{Fd: int32(fd)}} // no events: only a hangup or an error
		for {
			_, err := unix.Poll(fds, -1)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
				_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
				return
			}
		}
	}()
}
