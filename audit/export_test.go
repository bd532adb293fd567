package audit

import (
	"context"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
)

// FullDisk is a SIEM sink file whose disk fills up on demand: Room bytes
// more fit (any number when negative); a write past them writes what fits
// and fails, as write(2) does on a full disk.
type FullDisk struct {
	*os.File
	Room int64
}

func (d *FullDisk) Write(b []byte) (int, error) {
	if d.Room < 0 || int64(len(b)) <= d.Room {
		if d.Room >= 0 {
			d.Room -= int64(len(b))
		}
		return d.File.Write(b)
	}
	n, _ := d.File.Write(b[:d.Room])
	d.Room -= int64(n)
	return n, &os.PathError{Op: "write", Path: d.Name(), Err: errNoSpace}
}

// NewFileSinkOn is NewFileSink on an open file.
func NewFileSinkOn(f *FullDisk) *FileSink { return newFileSink(f) }

var errNoSpace = syscall.ENOSPC

// NewWriterSinkTimeout is NewWriterSink whose writes give up after d.
func NewWriterSinkTimeout(w io.Writer, d time.Duration) *WriterSink { return newWriterSink(w, d) }

// OpenSinkTimeout is OpenSink whose stream writes give up after d.
func OpenSinkTimeout(spec string, d time.Duration) (Sink, io.Closer, error) {
	return openSink(spec, nil, nil, d)
}

// AppendStored appends raw, a record's stored JSON, to tenant's stream
// with the script Log.Append runs: the entry a Lockbox of another version,
// whose records this one may not fully know, writes.
func AppendStored(ctx context.Context, rdb redis.UniversalClient, tenant, raw string) error {
	return appendScript.Run(ctx, rdb, []string{keys.Audit(tenant), keys.AuditHead(tenant)}, raw).Err()
}

// FailureLogEvery is how often Run repeats its warning while forwarding
// keeps failing.
const FailureLogEvery = failureLogEvery

// SetSealsKept bounds s's seal streams at n seals instead of sealsKept.
func SetSealsKept(s *Sealer, n int) { s.kept = n }

// ChainHash is the chain's hash of record after prev.
var ChainHash = chainHash
