package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// soakWorkers is the generator's fixed pool: its goroutines don't change
// in number, so the process's goroutine count moves only with Lockbox's.
const soakWorkers = 128

// soak drives Lockbox's proxy at rate calls per second (open loop: a call
// is sent when it is due, whatever the ones before it are doing) for dur,
// and every sample reports the process's resident memory, live heap and
// goroutines, with the calls of the interval. The generator shares the
// process, but its footprint is fixed, so drift is Lockbox's.
func soak(dur time.Duration, rate int, sample time.Duration, out io.Writer) error {
	if rate < 1 {
		return fmt.Errorf("-rate %d: want at least 1", rate)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up, err := listen(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	if err != nil {
		return err
	}
	lb, tok, stop, err := startLockbox(ctx, "http://"+up)
	if err != nil {
		return err
	}
	defer stop()

	tr := &http.Transport{MaxIdleConnsPerHost: soakWorkers, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	due := make(chan time.Time, 4*soakWorkers)
	var (
		mu      sync.Mutex
		lat     []time.Duration
		errs    atomic.Int64
		dropped atomic.Int64
		wg      sync.WaitGroup
	)
	for range soakWorkers {
		wg.Go(func() {
			for at := range due {
				req, _ := http.NewRequest(http.MethodGet, "http://"+lb+path, nil)
				req.Header.Set("Authorization", tok)
				res, err := c.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						err = errors.New(res.Status)
					}
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				// Latency from when the call was due, not when it was sent.
				d := time.Since(at)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		})
	}

	fmt.Fprintf(out, "loadbench soak: GET %s at %d calls/s for %s, sampled every %s\n\n", path, rate, dur, sample)
	fmt.Fprintln(out, "| at | calls | errors | late | p50 ms | p99 ms | RSS MiB | heap in use MiB | goroutines |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|")
	type point struct{ rss, heap, gor float64 }
	var points []point
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	nextSample := start.Add(sample)
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if at.Sub(start) >= dur {
			break
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		select {
		case due <- at:
		default:
			dropped.Add(1) // every worker busy and the queue full: Lockbox fell behind
		}
		if now := time.Now(); !now.Before(nextSample) {
			nextSample = nextSample.Add(sample)
			mu.Lock()
			got := lat
			lat = nil
			mu.Unlock()
			slices.Sort(got)
			var p50, p99 time.Duration
			if len(got) > 0 {
				p50, p99 = got[len(got)/2], got[len(got)*99/100]
			}
			runtime.GC() // live heap, not garbage waiting for the next cycle
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			p := point{rss: rssMiB(), heap: float64(ms.HeapInuse) / (1 << 20), gor: float64(runtime.NumGoroutine())}
			points = append(points, p)
			fmt.Fprintf(out, "| %s | %d | %d | %d | %.2f | %.2f | %.1f | %.1f | %.0f |\n", now.Sub(start).Round(time.Second),
				len(got), errs.Swap(0), dropped.Swap(0), ms2(p50), ms2(p99), p.rss, p.heap, p.gor)
		}
	}
	close(due)
	wg.Wait()
	if len(points) >= 3 {
		// The first sample includes warm-up (pools, caches, connections);
		// compare the second with the last.
		a, z := points[1], points[len(points)-1]
		fmt.Fprintf(out, "\nfrom the second sample to the last: RSS %+.1f MiB, heap in use %+.1f MiB, goroutines %+.0f\n", z.rss-a.rss, z.heap-a.heap, z.gor-a.gor)
	}
	return nil
}

func ms2(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// rssMiB is the process's resident set (VmRSS), in MiB; 0 where /proc is
// missing.
func rssMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
