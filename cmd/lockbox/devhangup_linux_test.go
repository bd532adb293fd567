package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns the two sides of a new pseudo-terminal: the master as a
// bare descriptor, which the test reads with poll, so that no read under
// way holds it open when it is closed.
func openPTY(t *testing.T) (master int, slave *os.File) {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestDevStopsWhenItsTerminalHangsUp: "lockbox dev" in a terminal stops,
// gracefully, when the terminal is closed, even when the hangup's SIGHUP
// never reaches it: the kernel sends it to the terminal's session leader
// alone, and when that is make ("xterm -e make run", a tmux window, a
// dropped "ssh -t host make run"), GNU make passes on only SIGTERM. Dev
// went on serving with no terminal, holding its ports and its directory's
// lock. Here its standard streams are a pseudo-terminal whose other side
// the test closes, and no signal is sent.
func TestDevStopsWhenItsTerminalHangsUp(t *testing.T) {
	master, slave := openPTY(t)
	closed := false
	defer func() {
		if !closed {
			unix.Close(master)
		}
	}()
	cmd := devProcess(filepath.Join(t.TempDir(), "dev"))
	logs := &syncBuffer{}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()
	// The banner goes to the terminal; the master side must be read, or
	// its writes block once the pseudo-terminal's buffer fills.
	stopReading, readerDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, 4096)
		fds := []unix.PollFd{{Fd: int32(master), Events: unix.POLLIN}}
		for {
			select {
			case <-stopReading:
				return
			default:
			}
			if n, err := unix.Poll(fds, 50); err == nil && n > 0 {
				if _, err := unix.Read(master, buf); err != nil {
					return
				}
			}
		}
	}()
	listening := regexp.MustCompile(`msg="lockbox listening"`)
	for deadline := time.Now().Add(30 * time.Second); !listening.MatchString(logs.String()); {
		select {
		case err := <-exited:
			t.Fatalf("lockbox dev ended before listening: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("lockbox dev not listening after 30s\n%s", logs.String())
		}
	}
	close(stopReading)
	<-readerDone
	unix.Close(master) // the terminal is closed
	closed = true
	select {
	case err := <-exited:
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			t.Errorf("lockbox dev after its terminal hung up: %v, want exit 0 after a graceful stop\n%s", ee, logs.String())
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("lockbox dev still runs 30s after its terminal hung up\n%s", logs.String())
	}
}
