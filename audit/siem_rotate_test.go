package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// rotatingSink is a file sink whose file is rotated by logrotate, with
// compression, in the middle of a batch: renamed, then (once compressed)
// deleted, after the batch's first line was written and before its flush.
type rotatingSink struct {
	*audit.FileSink
	path   string
	rotate bool
	t      *testing.T
}

func (s *rotatingSink) Write(line []byte) error {
	err := s.FileSink.Write(line)
	if s.rotate {
		s.rotate = false
		if err := os.Rename(s.path, s.path+".1"); err != nil {
			s.t.Error(err)
		}
		if err := os.Remove(s.path + ".1"); err != nil {
			s.t.Error(err)
		}
	}
	return err
}

// TestSIEMFileSinkRotatedDuringABatch: the sink follows a rotation when a
// batch begins, but a batch during which the file was rotated went on to
// the file it had begun in, and was acknowledged: once logrotate deleted
// that file (compressed), its records had reached no one, while Redis
// counted them forwarded. A batch whose file the path no longer names
// when it is flushed fails, is cut off that file, and is written again to
// the file the path names.
func TestSIEMFileSinkRotatedDuringABatch(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	path := filepath.Join(t.TempDir(), "siem.jsonl")
	fs, err := audit.NewFileSink(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	sink := &rotatingSink{FileSink: fs, path: path, t: t}
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r1", BatchSize: 10})
	siemAppend(t, rdb, log, 2, "contoso")
	if n, err := fw.Poll(ctx); err != nil || n != 2 {
		t.Fatalf("wrote %d, %v", n, err)
	}
	siemAppend(t, rdb, log, 3, "contoso")
	sink.rotate = true
	// Whether this pass fails or not, what it acknowledges must be in
	// the file the path names, and what it does not is written next.
	_, _ = fw.Poll(ctx)
	if _, err := fw.Poll(ctx); err != nil {
		t.Fatalf("pass after the rotation: %v", err)
	}
	recs := streamRecords(t, rdb, "contoso")["contoso"]
	want := strings.Join(recs[2:], "\n") + "\n"
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("%s after a rotation during a batch: %q, %v; want the 3 records written since:\n%s", path, got, err, want)
	}
	if pending := rdb.XPending(ctx, keys.Audit("contoso"), audit.SIEMGroup).Val(); pending != nil && pending.Count != 0 {
		t.Fatalf("%d records still pending", pending.Count)
	}
}

// TestSIEMFileSinkRotatedDuringALargeBatch: a batch larger than the sink's
// buffer reaches the file before its flush, in part; when the file is
// renamed meanwhile, the flush fails, the part is cut off the renamed file
// (which keeps the lines before the batch, whole), and the batch written
// again goes whole to the file the path names.
func TestSIEMFileSinkRotatedDuringALargeBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "siem.jsonl")
	s, err := audit.NewFileSink(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := `{"Id":"before"}`
	if err := s.Write([]byte(before)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	var batch []string
	for i := range 300 {
		batch = append(batch, fmt.Sprintf(`{"Id":"%03d","Comment":%q}`, i, strings.Repeat("x", 400)))
	}
	write := func(rotateAfter int) {
		t.Helper()
		for i, l := range batch {
			if err := s.Write([]byte(l)); err != nil {
				t.Fatal(err)
			}
			if i == rotateAfter {
				if err := os.Rename(path, path+".1"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	write(250) // past the buffer: some of the batch is in the file
	if err := s.Flush(); err == nil {
		t.Fatal("the flush of a batch whose file was renamed under it succeeded")
	}
	write(-1)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got, want := read(path), strings.Join(batch, "\n")+"\n"; got != want {
		t.Errorf("%s holds %d bytes, want the batch whole (%d bytes)", path, len(got), len(want))
	}
	if got := read(path + ".1"); got != before+"\n" {
		t.Errorf("renamed file holds %d bytes (%.80q…), want only the line before the batch", len(got), got)
	}
}
