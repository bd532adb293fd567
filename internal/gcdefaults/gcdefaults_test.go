package gcdefaults

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// TestApply applies settings to this process, reads them back as the
// start-up log does, and puts Go's back.
func TestApply(t *testing.T) {
	prevPercent := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	})
	if p, l := Current(); p != 100 || l != -1 {
		t.Fatalf("before: Current = %d, %d; want 100, -1", p, l)
	}
	Apply(Settings{})
	if p, l := Current(); p != 100 || l != -1 {
		t.Fatalf("zero Settings changed something: Current = %d, %d", p, l)
	}
	Apply(Settings{Percent: Percent, MemoryLimit: 1 << 30})
	if p, l := Current(); p != Percent || l != 1<<30 {
		t.Fatalf("Current = %d, %d; want %d, %d", p, l, Percent, 1<<30)
	}
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		self  string            // /proc/self/cgroup
		files map[string]string // cgroup files
		want  Settings
	}{
		{name: "nothing set, no cgroup", want: Settings{Percent: Percent}},
		{name: "GOGC set", env: map[string]string{"GOGC": "100"}},
		{name: "GOGC=off is Go's", env: map[string]string{"GOGC": "off"}},
		{
			name:  "cgroup v2 limit",
			files: map[string]string{"memory.max": "536870912\n"},
			want:  Settings{Percent: Percent, MemoryLimit: 483183820},
		},
		{
			name:  "cgroup v2 unlimited",
			files: map[string]string{"memory.max": "max\n"},
			want:  Settings{Percent: Percent},
		},
		{
			name:  "cgroup v1 limit",
			files: map[string]string{"memory/memory.limit_in_bytes": "268435456\n"},
			want:  Settings{Percent: Percent, MemoryLimit: 241591910},
		},
		{
			name:  "cgroup v1 unlimited",
			files: map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"},
			want:  Settings{Percent: Percent},
		},
		{
			name:  "unreadable limit",
			files: map[string]string{"memory.max": "lots\n"},
			want:  Settings{Percent: Percent},
		},
		{
			name:  "cgroup v2, a systemd unit with MemoryMax",
			self:  "0::/system.slice/lockbox.service\n",
			files: map[string]string{"system.slice/lockbox.service/memory.max": "1073741824\n"},
			want:  Settings{Percent: Percent, MemoryLimit: 966367641},
		},
		{
			name:  "cgroup v2, a unit without MemoryMax",
			self:  "0::/system.slice/lockbox.service\n",
			files: map[string]string{"system.slice/lockbox.service/memory.max": "max\n"},
			want:  Settings{Percent: Percent},
		},
		{
			name:  "cgroup v1, own cgroup",
			self:  "12:pids:/x\n4:cpu,memory:/docker/abc\n",
			files: map[string]string{"memory/docker/abc/memory.limit_in_bytes": "268435456\n"},
			want:  Settings{Percent: Percent, MemoryLimit: 241591910},
		},
		{
			name:  "GOMEMLIMIT set",
			env:   map[string]string{"GOMEMLIMIT": "100MiB"},
			files: map[string]string{"memory.max": "536870912\n"},
			want:  Settings{Percent: Percent},
		},
		{
			name:  "both set",
			env:   map[string]string{"GOGC": "50", "GOMEMLIMIT": "100MiB"},
			files: map[string]string{"memory.max": "536870912\n"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for name, body := range tc.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			self := filepath.Join(t.TempDir(), "cgroup")
			if err := os.WriteFile(self, []byte(tc.self), 0o644); err != nil {
				t.Fatal(err)
			}
			got := Plan(func(k string) string { return tc.env[k] }, root, self)
			if got != tc.want {
				t.Errorf("Plan = %+v, want %+v", got, tc.want)
			}
		})
	}
}
