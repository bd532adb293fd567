// Package redistest gives tests a real Redis: a redis-server started on a free
// loopback port for the test binary (or the server named by
// LOCKBOX_TEST_REDIS_URL), and a fresh logical database per test.
//
// Tests never mock Redis: the atomicity the lifecycle relies on (WATCH/MULTI,
// TTLs, streams) is exactly what a mock would get wrong.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvURL names a Redis that tests use instead of starting their own.
const EnvURL = "LOCKBOX_TEST_REDIS_URL"

var (
	startOnce sync.Once
	baseURL   string
	startErr  error

	dbMu   sync.Mutex
	nextDB = 1
)

// databases is how many logical databases the spawned server offers; each
// test takes one, so tests in one package don't see each other's keys.
const databases = 512

// URL returns the URL of a Redis for t, flushed and private to t. It fails the
// test (never skips it) when no Redis can be had: a missing redis-server is a
// broken set-up, not a reason to pass.
func URL(t testing.TB) string {
	t.Helper()
	startOnce.Do(func() { baseURL, startErr = start() })
	if startErr != nil {
		t.Fatalf("redistest: %v (install redis-server or set %s)", startErr, EnvURL)
	}
	opts, err := redis.ParseURL(baseURL)
	if err != nil {
		t.Fatalf("redistest: parse %s: %v", baseURL, err)
	}
	if os.Getenv(EnvURL) == "" {
		dbMu.Lock()
		opts.DB = nextDB
		nextDB++
		if nextDB >= databases {
			nextDB = 1
		}
		dbMu.Unlock()
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("redistest: flush: %v", err)
	}
	return fmt.Sprintf("redis://%s/%d", opts.Addr, opts.DB)
}

// Client returns a go-redis client for a private database, closed when t ends.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(URL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// Server is a redis-server of one test's own, for tests that stop Redis
// under a running Lockbox.
type Server struct {
	URL  string
	Addr string // host:port
	Port int
	dir  string
	args []string
	proc *process
}

// process is a running redis-server (or sentinel).
type process struct {
	cmd *exec.Cmd
	// exited is closed once the process is gone (reaped).
	exited <-chan struct{}
}

// Stop kills the server (SIGKILL, as kill -9 does): it writes nothing more
// and refuses connections at once. It returns once the process is gone, so
// that its port is free for Restart: a server started while the old one
// still held the port would fail to listen, and the old one, still
// answering PING as it died, would pass for it.
func (s *Server) Stop() {
	if s.proc.cmd.Process == nil {
		return
	}
	_ = s.proc.cmd.Process.Kill()
	select {
	case <-s.proc.exited:
	case <-time.After(10 * time.Second):
	}
}

// Freeze stops the server's process (SIGSTOP) until the returned thaw is
// called (SIGCONT), or t ends: it answers nothing and closes nothing, as a
// hung master does, while its kernel still accepts connections and
// acknowledges what is sent to it, so neither the client nor TCP notices.
func (s *Server) Freeze(t testing.TB) (thaw func()) {
	t.Helper()
	if err := s.proc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("redistest: freeze %s: %v", s.Addr, err)
	}
	var once sync.Once
	thaw = func() { once.Do(func() { _ = s.proc.cmd.Process.Signal(syscall.SIGCONT) }) }
	// Registered after the server's own cleanup, so it runs first: the
	// server is thawed before it is removed (SIGKILL would end a stopped
	// process too, but a thawed one is what remove expects).
	t.Cleanup(thaw)
	return thaw
}

// Restart starts the server again on the same port and in the same
// directory, with the options it was first started with and then args
// (later options win: "--replicaof", host, port makes it a replica).
func (s *Server) Restart(args ...string) error {
	s.Stop()
	_, proc, err := spawnOn(s.Port, s.dir, append(slices.Clone(s.args), args...)...)
	if err != nil {
		return err
	}
	s.proc = proc
	return nil
}

// Remove stops the server for good and deletes its directory: what a
// caller of Start does once done with it (Stop keeps the directory, for
// Restart).
func (s *Server) Remove() {
	s.Stop()
	// A killed server writes nothing more; wait until it is gone so that
	// its port is free for the next test.
	for i := 0; i < 100 && ping(s.Addr); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	_ = os.RemoveAll(s.dir)
}

// StartServer starts a dedicated redis-server for t, stopped when t ends.
// args are more redis-server options, e.g. "--replicaof", host, port.
func StartServer(t testing.TB, args ...string) *Server {
	t.Helper()
	s, err := Start(args...)
	if err != nil {
		t.Fatalf("redistest: %v (install redis-server)", err)
	}
	t.Cleanup(s.Remove)
	return s
}

// Start starts a dedicated redis-server outside a test (benchmark
// programs); the caller removes it (Remove).
func Start(args ...string) (*Server, error) {
	var err error
	// The port is picked free and only then bound: another test binary
	// may pick and bind the same one meanwhile. The server then fails to
	// listen and exits; another port will do.
	for range 5 {
		var s *Server
		if s, err = startOnFreePort(args...); err == nil {
			return s, nil
		}
	}
	return nil, err
}

func startOnFreePort(args ...string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lockbox-redistest-")
	if err != nil {
		return nil, err
	}
	url, proc, err := spawnOn(port, dir, args...)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	opts, _ := redis.ParseURL(url)
	return &Server{URL: url, Addr: opts.Addr, Port: port, dir: dir, args: args, proc: proc}, nil
}

func start() (string, error) {
	if u := os.Getenv(EnvURL); u != "" {
		return u, nil
	}
	s, err := Start()
	if err != nil {
		return "", err
	}
	atExit(s.Remove)
	return s.URL, nil
}

// spawnOn starts a redis-server on port with dir as its working directory
// and waits until it answers.
func spawnOn(port int, dir string, args ...string) (string, *process, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("redis-server not found on PATH")
	}
	cmd := exec.Command(bin,
		"--port", fmt.Sprint(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--databases", fmt.Sprint(databases),
		"--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"),
		// A replica syncs at once, not after the default 5 s wait for
		// more replicas to share the transfer.
		"--repl-diskless-sync-delay", "0",
	)
	cmd.Args = append(cmd.Args, args...)
	return startProcess(cmd, fmt.Sprintf("127.0.0.1:%d", port), filepath.Join(dir, "redis.log"))
}

// startProcess starts cmd, a redis-server (or sentinel) that will listen
// on addr, and waits until it answers as itself: another test binary's
// server may hold addr, and answer PING while this one fails to bind and
// exits.
func startProcess(cmd *exec.Cmd, addr, logfile string) (string, *process, error) {
	// The server must die with the test binary, even when the binary is
	// killed by a timeout: Go runs no exit hooks, so the kernel sends it
	// SIGKILL when we go.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start %s: %w", filepath.Base(cmd.Path), err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // reap it whenever it dies
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			// It could not start (its port taken, a bad option): what
			// answers on addr, if anything, is not it.
			log, _ := os.ReadFile(logfile)
			return "", nil, fmt.Errorf("%s on %s exited at start: %s", filepath.Base(cmd.Path), addr, strings.TrimSpace(string(log)))
		default:
		}
		// PING too: INFO answers while the data set still loads.
		if answersAs(addr, cmd.Process.Pid) && ping(addr) {
			return "redis://" + addr + "/0", &process{cmd: cmd, exited: exited}, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	log, _ := os.ReadFile(logfile)
	return "", nil, fmt.Errorf("%s on %s did not become ready: %s", filepath.Base(cmd.Path), addr, strings.TrimSpace(string(log)))
}

// ping reports whether any server answers PING on addr.
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// answersAs reports whether the server answering on addr is the process
// pid, by the process_id its INFO gives.
func answersAs(addr string, pid int) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("INFO server\r\n")); err != nil {
		return false
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		return false // -LOADING or another error: not ready
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil || n < 0 {
		return false
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return false
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return v == strconv.Itoa(pid)
		}
	}
	return false
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
