// Package gcdefaults sets the Go garbage collector's defaults for a Lockbox
// process, where Go's own defaults cost the proxy throughput.
//
// The proxy keeps a small live heap (a few MiB) and allocates a few KiB per
// call, so at Go's default GOGC=100 it collects many times a second and
// every collection pays its fixed cost again. GOGC=400 collects a fifth as
// often: it cut the proxy's CPU per call by 3 to 16 % depending on the
// machine, for about 14 MiB more resident memory (docs/performance.md). A larger
// heap goal needs a ceiling, so where the process runs in a cgroup with a
// memory limit (a Kubernetes container, a systemd unit with MemoryMax) the
// soft memory limit is set to 90 % of it: near the limit the collector runs
// as often as it must, whatever GOGC says.
//
// GOGC and GOMEMLIMIT, when set, are Go's to apply and win.
package gcdefaults

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
)

// Percent is the GC percent used when GOGC is not set.
const Percent = 400

// LimitFraction is the share of the cgroup's memory limit given to the Go
// runtime as its soft limit when GOMEMLIMIT is not set; the rest is for
// what the runtime does not count (thread stacks, cgo, the page cache of
// files it writes).
const LimitFraction = 0.9

// unlimited is past any real memory limit: cgroup v1 writes a number near
// 2^63 for "no limit".
const unlimited = 1 << 60

// Settings are what Plan decided; a zero field leaves Go's own setting.
type Settings struct {
	// Percent is the GC percent to set, or 0 to leave GOGC's.
	Percent int
	// MemoryLimit is the soft memory limit in bytes, or 0 to leave
	// GOMEMLIMIT's (or none).
	MemoryLimit int64
}

// Plan decides the settings from the environment (getenv) and the cgroup
// file system rooted at cgroupRoot ("/sys/fs/cgroup"), where selfCgroup
// ("/proc/self/cgroup") names the process's own cgroup.
func Plan(getenv func(string) string, cgroupRoot, selfCgroup string) Settings {
	var s Settings
	if getenv("GOGC") == "" {
		s.Percent = Percent
	}
	if getenv("GOMEMLIMIT") == "" {
		if limit := cgroupLimit(cgroupRoot, selfCgroup); limit > 0 {
			s.MemoryLimit = int64(float64(limit) * LimitFraction)
		}
	}
	return s
}

// Apply applies s to the running process.
func Apply(s Settings) {
	if s.Percent > 0 {
		debug.SetGCPercent(s.Percent)
	}
	if s.MemoryLimit > 0 {
		debug.SetMemoryLimit(s.MemoryLimit)
	}
}

// cgroupLimit returns the memory limit of the process's cgroup in bytes,
// or 0 when there is none or it can't be read: cgroup v2's memory.max
// ("max" when unlimited), else cgroup v1's memory.limit_in_bytes. It looks
// in the process's own cgroup (a systemd unit's, with MemoryMax), then at
// the root, where a container's own cgroup is mounted.
func cgroupLimit(root, selfCgroup string) int64 {
	var v2, v1 string // the process's cgroup paths
	if b, err := os.ReadFile(selfCgroup); err == nil {
		for line := range strings.Lines(string(b)) {
			parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
			switch {
			case len(parts) != 3:
			case parts[0] == "0" && parts[1] == "":
				v2 = parts[2]
			case slices.Contains(strings.Split(parts[1], ","), "memory"):
				v1 = parts[2]
			}
		}
	}
	candidates := []string{
		filepath.Join(root, v2, "memory.max"),
		filepath.Join(root, "memory.max"),
		filepath.Join(root, "memory", v1, "memory.limit_in_bytes"),
		filepath.Join(root, "memory", "memory.limit_in_bytes"),
	}
	for _, f := range candidates {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= unlimited {
			return 0
		}
		return n
	}
	return 0
}

// Current returns the process's GC percent (-1 when off) and soft memory
// limit (-1 when none), whoever set them, for the start-up log.
func Current() (percent int, memoryLimit int64) {
	samples := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(samples)
	percent, memoryLimit = -1, -1
	if samples[0].Value.Kind() == metrics.KindUint64 {
		if v := samples[0].Value.Uint64(); v > 0 {
			percent = int(v)
		}
	}
	if samples[1].Value.Kind() == metrics.KindUint64 {
		if v := samples[1].Value.Uint64(); v < math.MaxInt64 {
			memoryLimit = int64(v)
		}
	}
	return percent, memoryLimit
}
