// Command capacity measures what Lockbox costs Redis, for the capacity
// model in docs/operations.md. It starts its own redis-server and runs
// Lockbox in process against it.
//
//	go run ./internal/capacity                       # the load model (make capacity)
//	go run ./internal/capacity -mode idle -tenants 10,10000   # idle cost (make capacity-idle)
//
// The load model onboards tenants, files requests, approves each to a
// grant, makes operator calls through the proxy and stores console
// sessions, and prints Redis's used_memory growth, commands and CPU per
// item. The idle mode prints the Redis commands per second of one replica
// over onboarded tenants with no activity.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	mode := flag.String("mode", "load", "load (the capacity model) or idle (idle cost by tenant count)")
	counts := flag.String("tenants", "", "tenant counts: for idle a comma-separated list (default 10,10000), for load one number (default 100)")
	requests := flag.Int("requests", 1000, "load: requests filed and approved")
	calls := flag.Int("calls", 20000, "load: operator calls through the proxy")
	sessions := flag.Int("sessions", 1000, "load: console sessions")
	window := flag.Duration("window", 20*time.Second, "idle: measurement window")
	warm := flag.Duration("warmup", 15*time.Second, "idle: warm-up")
	scrape := flag.Duration("scrape", 15*time.Second, "idle: metrics scrape interval")
	flag.Parse()
	var err error
	switch *mode {
	case "idle":
		var ns []int
		if ns, err = parseCounts(*counts, "10,10000"); err == nil {
			err = idle(os.Stdout, ns, *window, *warm, *scrape)
		}
	case "load":
		var ns []int
		if ns, err = parseCounts(*counts, "100"); err == nil {
			var m Model
			m, err = measure(context.Background(), Sizes{Tenants: ns[0], Requests: *requests, Calls: *calls, Sessions: *sessions})
			if err == nil {
				m.print(os.Stdout)
			}
		}
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "capacity:", err)
		os.Exit(1)
	}
}

func parseCounts(s, def string) ([]int, error) {
	if s == "" {
		s = def
	}
	var ns []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-tenants: %q is not a positive count", f)
		}
		ns = append(ns, n)
	}
	return ns, nil
}
