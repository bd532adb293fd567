package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the master name the sentinels of StartSentinel
// monitor (LOCKBOX_REDIS_SENTINEL_MASTER).
const SentinelMaster = "lockbox"

// Sentinel timings: a master that has not answered for DownAfter is
// failed over; a failover that stalls is retried after about twice
// failoverTimeout. Short, so that a failover test takes seconds.
const (
	DownAfter       = time.Second
	failoverTimeout = 3 * time.Second
)

// Sentinel is one master, one replica and three sentinels (quorum two),
// on loopback ports.
type Sentinel struct {
	// Master and Replica are the servers as started; after a failover
	// their roles are swapped (MasterAddr says which is master).
	Master, Replica *Server
	Sentinels       []*Server
}

// StartSentinel starts a sentinel deployment for t, removed when t ends. It
// returns once every sentinel sees the replica in sync and the other two
// sentinels, so a failover can start at once.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	s, err := startSentinel()
	if err != nil {
		t.Fatalf("redistest: sentinel: %v (install redis-server)", err)
	}
	t.Cleanup(s.Stop)
	return s
}

func startSentinel() (*Sentinel, error) {
	master, err := Start()
	if err != nil {
		return nil, err
	}
	s := &Sentinel{Master: master}
	host, port, _ := strings.Cut(master.Addr, ":")
	if s.Replica, err = Start("--replicaof", host, port); err != nil {
		s.Stop()
		return nil, err
	}
	for range 3 {
		sn, err := startSentinelProcess(master.Addr)
		if err != nil {
			s.Stop()
			return nil, err
		}
		s.Sentinels = append(s.Sentinels, sn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		last := s.unready(ctx)
		if last == "" {
			return s, nil
		}
		select {
		case <-ctx.Done():
			s.Stop()
			return nil, fmt.Errorf("sentinels not ready: %s", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startSentinelProcess starts redis-server in sentinel mode monitoring the
// master at masterAddr. A sentinel rewrites its configuration file, so it
// gets one of its own.
func startSentinelProcess(masterAddr string) (*Server, error) {
	var err error
	// The port is picked free and only then bound (see Start).
	for range 5 {
		var s *Server
		if s, err = startSentinelOnFreePort(masterAddr); err == nil {
			return s, nil
		}
	}
	return nil, err
}

func startSentinelOnFreePort(masterAddr string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found on PATH")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lockbox-sentinel-")
	if err != nil {
		return nil, err
	}
	host, mport, _ := strings.Cut(masterAddr, ":")
	conf := filepath.Join(dir, "sentinel.conf")
	logfile := filepath.Join(dir, "sentinel.log")
	m := SentinelMaster
	text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n", port, dir, logfile) +
		fmt.Sprintf("sentinel monitor %s %s %s 2\n", m, host, mport) +
		fmt.Sprintf("sentinel down-after-milliseconds %s %d\n", m, DownAfter.Milliseconds()) +
		fmt.Sprintf("sentinel failover-timeout %s %d\n", m, failoverTimeout.Milliseconds()) +
		fmt.Sprintf("sentinel parallel-syncs %s 1\n", m)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	url, proc, err := startProcess(exec.Command(bin, conf, "--sentinel"), addr, logfile)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &Server{URL: url, Addr: addr, Port: port, dir: dir, proc: proc}, nil
}

// Addrs lists the sentinels' host:port.
func (s *Sentinel) Addrs() []string {
	out := make([]string, len(s.Sentinels))
	for i, sn := range s.Sentinels {
		out[i] = sn.Addr
	}
	return out
}

// Seeds is Addrs comma-separated, as LOCKBOX_REDIS_SENTINEL_ADDRS takes it.
func (s *Sentinel) Seeds() string { return strings.Join(s.Addrs(), ",") }

// MasterAddr asks the sentinels which server is master now.
func (s *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	var errs []error
	for _, sn := range s.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr})
		addr, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
		c.Close()
		if err == nil && len(addr) == 2 {
			return addr[0] + ":" + addr[1], nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

// Stop kills every process and removes their directories.
func (s *Sentinel) Stop() {
	for _, sn := range s.Sentinels {
		sn.Remove()
	}
	for _, srv := range []*Server{s.Master, s.Replica} {
		if srv != nil {
			srv.Remove()
		}
	}
}

// unready says what keeps a failover from starting at once, or "".
func (s *Sentinel) unready(ctx context.Context) string {
	for _, sn := range s.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr})
		replicas, err := c.Replicas(ctx, SentinelMaster).Result()
		if err == nil && (len(replicas) != 1 || replicas[0]["flags"] != "slave" || replicas[0]["master-link-status"] != "ok") {
			err = fmt.Errorf("sees replicas %v", replicas)
		}
		if err == nil {
			err = c.CkQuorum(ctx, SentinelMaster).Err()
		}
		var others []map[string]string
		if err == nil {
			others, err = c.Sentinels(ctx, SentinelMaster).Result()
			if err == nil && len(others) != 2 {
				err = fmt.Errorf("knows %d other sentinels", len(others))
			}
		}
		c.Close()
		if err != nil {
			return sn.Addr + ": " + err.Error()
		}
	}
	return ""
}
