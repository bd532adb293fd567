package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/audit/siemcheck"
	"github.com/lockbox-oss/lockbox/internal/due"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/streamgroup"
)

// The SIEM stream: every audit record is also written as one line to a
// sink (stdout or a file) that a log shipper forwards to the provider's
// SIEM.
//
// Each replica runs a Forwarder. The forwarders tail every tenant's audit
// stream through one Redis consumer group (SIEMGroup), so Redis hands each
// new entry to exactly one replica. A replica acknowledges (XACK) an entry
// only after its sink wrote it (and, for a file, fsynced it); until then
// the entry stays in the group's pending list. Entries a replica fails to
// write stay pending for it and are retried on its next pass; entries of a
// replica that died, or whose sink kept failing, are taken over by another
// one (XAUTOCLAIM) once they have been idle for ClaimAfter. A replica's
// retries do not restart that idle time (streamgroup's KeepIdle): a live
// replica with a broken sink (stdout's reader gone) would otherwise hold
// the records it read until its restart, however many healthy replicas
// run. That reading loop is internal/streamgroup's, shared with the
// notification worker. Each replica's consumer name is its own: a
// forwarder holds it in Redis while it runs (see holdName).
//
// Nothing is lost, and a record is written once in normal operation. It
// may be written twice when a replica dies (or stalls past ClaimAfter)
// between writing a batch and acknowledging it, or when a failing sink
// took a batch after all while another replica claimed it: the batch is
// then written again by whoever claims it. Records taken over reach the
// SIEM late, after newer records of their tenant that healthy replicas
// forwarded meanwhile. The record's Id is the key a SIEM
// deduplicates on. Records that retention trims before any replica
// forwarded them (only possible after the forwarders were down for the
// whole retention period) are gone: those a replica had read are counted
// here as "skipped", those none had read by the trim itself
// (lockbox_siem_records_trimmed_unread_total, see Log.ReportSIEMTrims).
//
// Each tenant's seals travel the same way, from a stream of their own
// (see siemseal.go).

// SIEMGroup is the consumer group the forwarders share on every tenant's
// audit stream. It is created at id 0, so the first forwarder ever started
// also forwards the records written before it (everything retention kept),
// and a tenant's records written before its group existed are not missed.
const SIEMGroup = "siem"

// ErrConsumerInUse is the error of a pass that forwarded nothing because
// another live process holds the forwarder's consumer name.
var ErrConsumerInUse = errors.New("siem: the consumer name is held by another live replica")

// Sink receives one rendered record per call, without a trailing newline.
type Sink interface {
	Write(line []byte) error
}

// Flusher is implemented by sinks that buffer: Flush makes every line
// written so far durable. The forwarder flushes after each batch and
// acknowledges the batch only when Flush succeeded.
type Flusher interface {
	Flush() error
}

// WriterSink writes newline-terminated lines to an io.Writer, one Write
// call per line, so lines from concurrent callers never interleave. A
// write that takes longer than SinkWriteTimeout (the reader of stdout
// stopped reading) fails with ErrSinkStalled; the line is then written
// once, whole, when the forwarder retries it (see streamWriter).
type WriterSink struct {
	mu  sync.Mutex
	w   *streamWriter
	buf []byte
}

// NewWriterSink returns a sink writing to w (os.Stdout when nil).
func NewWriterSink(w io.Writer) *WriterSink {
	return newWriterSink(w, SinkWriteTimeout)
}

func newWriterSink(w io.Writer, timeout time.Duration) *WriterSink {
	if w == nil {
		w = os.Stdout
	}
	return &WriterSink{w: newStreamWriter(w, timeout)}
}

// Write writes line and a newline.
func (s *WriterSink) Write(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(append(s.buf[:0], line...), '\n')
	return s.w.write(s.buf)
}

// FileSink appends lines to a file (created with mode 0600), buffered, and
// fsyncs it on Flush. A named pipe or a device is written a line at a time
// instead, each write bounded by a timeout (see streamWriter), and a named
// pipe is opened without waiting for a reader (see openStream).
//
// A failed write must not leave the file or the sink broken: a
// bufio.Writer keeps its first error for ever, and a batch cut short (disk
// full, quota, EFBIG) leaves a torn line that the batch, written again, is
// appended to, corrupting a record that Redis then counts as forwarded. So
// the sink remembers where the file's complete, fsynced lines end, and on
// any error cuts the file back to there and starts a fresh buffer: the
// next attempt writes whole lines after whole lines.
//
// A file renamed (logrotate's default rotation) or removed is let go of
// when the next batch begins: the batch goes to the file the path names
// then, created if need be (see follow). One renamed or removed during a
// batch is let go of when the batch is flushed: a batch still all in the
// buffer goes to the file the path names, and one partly written to the
// old file fails the flush and is cut off it (see stillNamed).
type FileSink struct {
	mu sync.Mutex
	f  sinkFile
	bw *bufio.Writer
	// regular is false for a pipe or device, which can't be cut back.
	regular bool
	// written counts the bytes of the current batch (since the last
	// successful Flush) that reached the file. They are the file's last
	// bytes, since it is opened for appending: a failed batch is cut off
	// by cutting that many bytes from the end, wherever the file stood
	// when the batch began, even if logrotate's copytruncate emptied it
	// meanwhile.
	written int64
	// accepted: Write accepted lines since the last successful Flush.
	accepted bool
	// lost is why lines Write accepted were discarded since; the next
	// Flush reports it, so the forwarder acknowledges none of them.
	lost error
	// torn is set while cutting the file back failed: the file may end
	// in a partial line, and nothing is written until a cut succeeds.
	torn error

	// path is the file's name: a regular file is reopened there when
	// it no longer names f (see follow); "" for a file a test opened.
	path string
	log  *slog.Logger

	// For a named pipe or a device (regular false): openStream opens
	// path; stream writes to f once it is open; fifo tells a named pipe,
	// which may have no reader yet.
	fifo    bool
	timeout time.Duration
	stream  *streamWriter
	line    []byte
}

// counter counts the bytes of a batch that reach the file.
type counter struct{ s *FileSink }

func (c counter) Write(b []byte) (int, error) {
	n, err := c.s.f.Write(b)
	c.s.written += int64(n)
	return n, err
}

// sinkFile is what FileSink needs of its file; tests substitute one that
// fails on demand.
type sinkFile interface {
	io.Writer
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Close() error
}

// NewFileSink opens path for appending, creating it (0600) if needed. A
// file that ends in a partial line (a write cut short before a crash or
// restart) is cut back to its last complete line, logged to logger (which
// may be nil): the record it held was never acknowledged, so it is
// forwarded again. A named pipe or a device is only written: it can't be
// read back, cut or fsynced. A named pipe nobody reads yet does not hold
// up start-up: the sink is returned, logged as waiting, and its writes
// fail with ErrSinkStalled until a reader opens the pipe.
func NewFileSink(path string, logger *slog.Logger) (*FileSink, error) {
	return newFileSinkAt(path, logger, SinkWriteTimeout)
}

func newFileSinkAt(path string, logger *slog.Logger, timeout time.Duration) (*FileSink, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		// A pipe or a device: nothing to read back or cut.
		s := &FileSink{path: path, fifo: fi.Mode()&os.ModeNamedPipe != 0, timeout: timeout}
		if err := s.openStream(); errors.Is(err, ErrSinkStalled) {
			logger.Warn("siem sink: the named pipe has no reader yet; audit records wait in Redis and are forwarded once one opens it", "path", path)
		} else if err != nil {
			return nil, err
		}
		return s, nil
	}
	f, err := openRegular(path, logger)
	if err != nil {
		return nil, err
	}
	s := newFileSink(f)
	s.path, s.log = path, logger
	return s, nil
}

// openRegular opens path for appending, creating it (0600) if needed, and
// cuts a partial line off its end.
func openRegular(path string, logger *slog.Logger) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("siem sink: %w", err)
	}
	size, cut, err := completeLines(f)
	if err == nil && cut < size {
		if err = f.Truncate(cut); err == nil {
			logger.Warn("siem sink: removed a partial line at the end of the file", "path", path, "bytes", size-cut)
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("siem sink: %w", err)
	}
	return f, nil
}

// follow reopens the path when it no longer names the open file: logrotate
// renamed it (and may have created a new one), or it was removed. Lines
// appended to the old file reach nobody tailing the path, and nobody at
// all once the old file is deleted, while Redis counts them forwarded.
// Called when a batch begins, so that a batch goes whole to one file.
// (copytruncate needs nothing: the file stays, and appends land at its new
// end.)
func (s *FileSink) follow() error {
	if s.path == "" {
		return nil
	}
	if moved, err := s.moved(); !moved {
		return err
	}
	f, err := openRegular(s.path, s.log)
	if err != nil {
		return err
	}
	old := s.f
	s.f = f
	s.log.Info("siem sink: the file was rotated or removed; writing to the file the path names now", "path", s.path)
	if err := old.Close(); err != nil {
		// Its lines were fsynced when their batch was flushed.
		s.log.Warn("siem sink: closing the rotated file", "path", s.path, "err", err)
	}
	return nil
}

// openStream opens a named pipe or a device for writing. A named pipe is
// opened non-blocking, since open(2) of a FIFO for writing otherwise waits
// for a reader; without one it fails (ENXIO), reported as ErrSinkStalled
// and tried again at the next write. Opened non-blocking, the pipe is
// polled by the Go runtime and takes write deadlines.
func (s *FileSink) openStream() error {
	flags := os.O_WRONLY | os.O_APPEND
	if s.fifo {
		flags |= syscall.O_NONBLOCK
	}
	f, err := os.OpenFile(s.path, flags, 0)
	if s.fifo && errors.Is(err, syscall.ENXIO) {
		return fmt.Errorf("siem sink: the named pipe %s has no reader: %w", s.path, ErrSinkStalled)
	}
	if err != nil {
		return fmt.Errorf("siem sink: %w", err)
	}
	s.f, s.stream = f, newStreamWriter(f, s.timeout)
	return nil
}

func newFileSink(f sinkFile) *FileSink {
	s := &FileSink{f: f, regular: true, log: slog.New(slog.DiscardHandler)}
	s.bw = bufio.NewWriterSize(counter{s}, 64<<10)
	return s
}

// completeLines returns f's size and where its last complete line ends.
func completeLines(f *os.File) (size, end int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size = fi.Size()
	buf := make([]byte, 4096)
	for end = size; end > 0; {
		n := int64(len(buf))
		if n > end {
			n = end
		}
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return size, 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return size, end - n + int64(i) + 1, nil
		}
		end -= n
	}
	return size, 0, nil
}

// rollback discards what was written since the last successful Flush,
// after the write error cause.
func (s *FileSink) rollback(cause error) {
	s.accepted = false
	s.bw.Reset(counter{s})
	s.torn = cause
	_ = s.repair() // else retried before the next write
}

// repair cuts the current batch's bytes off the end of the file, leaving
// its complete, fsynced lines.
func (s *FileSink) repair() error {
	if s.torn == nil {
		return nil
	}
	if !s.regular {
		// A reader of a pipe sees the partial line; nothing can take it
		// back. The batch is written again whole.
		s.torn, s.written = nil, 0
		return nil
	}
	fi, err := s.f.Stat()
	if err == nil {
		// Less than written is left when the file was emptied during
		// the batch: all of it is then the batch's.
		err = s.f.Truncate(max(0, fi.Size()-s.written))
	}
	if err != nil {
		return fmt.Errorf("after %w: cutting the file back to its last complete line: %w", s.torn, err)
	}
	s.torn, s.written = nil, 0
	return nil
}

// Write buffers line and a newline; to a named pipe or a device, it writes
// them.
func (s *FileSink) Write(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.regular {
		if s.stream == nil {
			if err := s.openStream(); err != nil {
				return err
			}
		}
		s.line = append(append(s.line[:0], line...), '\n')
		return s.stream.write(s.line)
	}
	if err := s.repair(); err != nil {
		return err
	}
	if !s.accepted && s.lost == nil {
		// A batch begins, on an empty buffer.
		if err := s.follow(); err != nil {
			return err
		}
	}
	_, err := s.bw.Write(line)
	if err == nil {
		err = s.bw.WriteByte('\n')
	}
	if err != nil {
		if s.accepted {
			s.lost = err // lines Write accepted are discarded
		}
		s.rollback(err)
		return err
	}
	s.accepted = true
	return nil
}

// Flush writes the buffered lines and fsyncs the file. It fails if lines
// accepted since the last Flush were discarded after a write error.
func (s *FileSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.regular {
		return nil // Write wrote each line, and a pipe's reader has it
	}
	if s.lost != nil {
		err := fmt.Errorf("lines were discarded after a write error: %w", s.lost)
		s.lost = nil
		s.rollback(err) // and so is anything accepted after it
		return err
	}
	if err := s.repair(); err != nil {
		return err
	}
	if s.accepted && s.written == 0 {
		// The batch is all in the buffer: a rotation since it began
		// takes it whole to the file the path names now.
		if err := s.follow(); err != nil {
			s.rollback(err)
			return err
		}
	}
	if err := s.bw.Flush(); err != nil {
		s.rollback(err)
		return err
	}
	if !s.regular {
		// Nothing to fsync: a pipe's reader has the lines.
	} else if err := s.f.Sync(); err != nil {
		// What fsync failed to write may or may not be on disk: cut it
		// off, and the batch is written again.
		s.rollback(err)
		return err
	}
	if err := s.stillNamed(); err != nil {
		// Rotated while the batch was written: logrotate may compress
		// and delete that file, and the batch with it, while Redis
		// counts it forwarded. It is cut off that file and written again
		// to the one the path names.
		s.rollback(err)
		return err
	}
	s.accepted, s.written = false, 0
	return nil
}

// stillNamed returns an error when bytes of the current batch went to a
// file the path no longer names (renamed or removed meanwhile).
func (s *FileSink) stillNamed() error {
	if s.path == "" || s.written == 0 {
		return nil
	}
	if moved, err := s.moved(); !moved {
		return err
	}
	return fmt.Errorf("siem sink: %s was rotated or removed while a batch was written to it; the batch is written again", s.path)
}

// moved reports whether the open file is no longer the one the path names:
// renamed (rotated) or removed. An error is for a file or path that can't
// be examined, and reports it not moved.
func (s *FileSink) moved() (bool, error) {
	open, err := s.f.Stat()
	if err != nil {
		return false, fmt.Errorf("siem sink: %w", err)
	}
	named, err := os.Stat(s.path)
	switch {
	case err == nil:
		return !os.SameFile(open, named), nil
	case errors.Is(err, fs.ErrNotExist):
		return true, nil
	}
	return false, fmt.Errorf("siem sink: %w", err)
}

// Close flushes and closes the file.
func (s *FileSink) Close() error {
	err := s.Flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return err // a named pipe never opened
	}
	return errors.Join(err, s.f.Close())
}

// OpenSink builds the sink named by spec: "stdout" (or ""), "file:/path",
// or "off" (nil sink, nil closer: no forwarding). The closer, when not
// nil, flushes and closes the sink at shutdown.
func OpenSink(spec string, stdout io.Writer, logger *slog.Logger) (Sink, io.Closer, error) {
	return openSink(spec, stdout, logger, SinkWriteTimeout)
}

func openSink(spec string, stdout io.Writer, logger *slog.Logger, timeout time.Duration) (Sink, io.Closer, error) {
	switch {
	case spec == "" || spec == "stdout":
		return newWriterSink(stdout, timeout), nil, nil
	case spec == "off":
		return nil, nil, nil
	case strings.HasPrefix(spec, "file:"):
		path := strings.TrimPrefix(spec, "file:")
		if path == "" {
			return nil, nil, fmt.Errorf("siem sink %q: the file path is empty", spec)
		}
		s, err := newFileSinkAt(path, logger, timeout)
		if err != nil {
			return nil, nil, err
		}
		return s, s, nil
	}
	return nil, nil, fmt.Errorf("siem sink %q: want stdout, file:/path or off", spec)
}

// Format is how records are rendered for the SIEM.
type Format string

const (
	// FormatJSON writes the record as stored: the provider's view, with
	// the provider-only fields, byte for byte what the hash chain covers
	// (but for line breaks, which no Lockbox writes: see jsonLine).
	FormatJSON Format = "json"
	// FormatOCSF writes the record's OCSF API Activity event (see OCSF).
	FormatOCSF Format = "ocsf"
)

// ParseFormat checks a format name; "" means json.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case "", FormatJSON:
		return FormatJSON, nil
	case FormatOCSF:
		return FormatOCSF, nil
	}
	return "", fmt.Errorf("siem format %q: want json or ocsf", s)
}

// ForwarderConfig configures a Forwarder.
type ForwarderConfig struct {
	Redis redis.UniversalClient
	Sink  Sink
	// Format defaults to json.
	Format Format
	// Consumer names this replica in the consumer group; it must be
	// unique among live replicas and should be stable across restarts of
	// the same replica (e.g. the pod name), so a restarted replica picks
	// up its own pending records at once. The forwarder holds the name
	// while it runs (see holdName): another live forwarder under the same
	// name forwards nothing, and its passes fail with ErrConsumerInUse.
	Consumer string
	// Logger; discards when nil.
	Logger *slog.Logger
	// Registerer, when set, receives lockbox_siem_records_total,
	// lockbox_siem_seals_total and the backlog gauges (see Poll), which
	// measure records alone.
	Registerer prometheus.Registerer
	// ClaimAfter is how long a record must have been pending at another
	// replica before this one takes it over (default 1m). It must be well
	// above the time a batch takes to write, or a slow replica's records
	// are written twice.
	ClaimAfter time.Duration
	// ForgetAfter is how long a replica's name stays in the consumer group
	// of a tenant's stream once it has nothing pending there and has not
	// read it: streamgroup.DefaultForgetAfter(ClaimAfter) by default.
	ForgetAfter time.Duration
	// Block is how long Run waits before the next pass after a pass that
	// forwarded nothing or failed (default 1s). Reads never block in
	// Redis, so one quiet tenant does not delay the others.
	Block time.Duration
	// BatchSize is how many records are read, written, flushed and
	// acknowledged together (default 100).
	BatchSize int64
	// Now is the clock of the SIEM schedule (internal/due): the one the
	// audit writers mark tenants with. Run also times its failure log by
	// it (failing_for, failed_for, the repeat every minute). time.Now
	// when nil.
	Now func() time.Time
}

// maxBatchesPerTenant bounds one pass's work on one tenant, so a busy
// tenant does not starve the others; Run starts the next pass at once
// when a pass forwarded anything.
const maxBatchesPerTenant = 20

// backlogEvery is how often, by the forwarder's clock, a pass ends by
// measuring the backlog (see measureBacklog): often enough for an alert
// counted in minutes, rarely enough that the reads cost nothing beside
// the passes, which run every second.
const backlogEvery = 15 * time.Second

// Forwarder copies every tenant's audit records to a Sink.
type Forwarder struct {
	cfg     ForwarderConfig
	log     *slog.Logger
	records *prometheus.CounterVec
	seals   *prometheus.CounterVec
	// recordLines and sealLines write a tenant's records and its seals.
	recordLines, sealLines *lineKind
	// backlog and forwardedUntil are the last backlog measured (see
	// measureBacklog), at measured.
	backlog        prometheus.Gauge
	forwardedUntil prometheus.Gauge
	measureMu      sync.Mutex
	measured       time.Time
	group          *streamgroup.Reader
	// holder is this forwarder's value of its hold on the consumer name
	// (keys.SIEMConsumer), unique to it; held is when, by its clock, it
	// last took or renewed the hold, zero while it does not hold it.
	holder string
	holdMu sync.Mutex
	held   time.Time
	// orgs completes legacy records for OCSF events as searches read
	// them (their tenant's GUID, read once per tenant and process).
	orgs *Log
	// reached holds the tenants this forwarder has reached, so that a
	// group missing at a later visit is told as vanished (see reach).
	reachMu sync.Mutex
	reached map[string]bool
}

// NewForwarder checks cfg and returns a Forwarder.
func NewForwarder(cfg ForwarderConfig) (*Forwarder, error) {
	if cfg.Redis == nil || cfg.Sink == nil {
		return nil, errors.New("siem: Redis and Sink are required")
	}
	if cfg.Consumer == "" {
		return nil, errors.New("siem: the consumer (replica) name is required")
	}
	f, err := ParseFormat(string(cfg.Format))
	if err != nil {
		return nil, err
	}
	cfg.Format = f
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ClaimAfter <= 0 {
		cfg.ClaimAfter = time.Minute
	}
	if cfg.ForgetAfter <= 0 {
		cfg.ForgetAfter = streamgroup.DefaultForgetAfter(cfg.ClaimAfter)
	}
	if cfg.Block <= 0 {
		cfg.Block = time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	host, _ := os.Hostname()
	fw := &Forwarder{
		cfg:     cfg,
		log:     cfg.Logger,
		holder:  fmt.Sprintf("pid %d on %s (%s)", os.Getpid(), host, rand.Text()),
		orgs:    NewLog(cfg.Redis, cfg.Now),
		reached: map[string]bool{},
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lockbox_siem_records_total",
			Help: "Audit records handled by the SIEM forwarder, by result: written (and acknowledged), failed (sink write failed, or the OCSF event could not be built; retried later), skipped (read, then trimmed by retention before it could be forwarded, or unreadable).",
		}, []string{"result"}),
		seals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lockbox_siem_seals_total",
			Help: "Seals of tenants' audit chains handled by the SIEM forwarder, by result: written (and acknowledged), failed (sink write failed; retried later), skipped (read, then removed from a full seal stream before it could be forwarded, or unreadable).",
		}, []string{"result"}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lockbox_siem_backlog_records",
			Help: "Audit records not yet written to the SIEM sink: read by a replica and not acknowledged, or not read yet. Measured by the forwarder every 15 s.",
		}),
		forwardedUntil: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lockbox_siem_forwarded_until_timestamp_seconds",
			Help: "Unix time before which every audit record was written to the SIEM sink: the oldest record not yet written, or, when none waits, when the forwarder looked (every 15 s). It stops moving when forwarding stops; 0 until the first measurement.",
		}),
	}
	fw.group, err = streamgroup.New(streamgroup.Config{
		Redis: cfg.Redis, Group: SIEMGroup, Consumer: cfg.Consumer, ClaimAfter: cfg.ClaimAfter,
		Batch: cfg.BatchSize, MaxBatches: maxBatchesPerTenant, ForgetAfter: cfg.ForgetAfter, Logger: cfg.Logger,
		// A replica whose sink keeps failing retries its records every
		// pass; they must still fall idle, for a healthy replica to take
		// them over.
		KeepIdle: true,
	})
	if err != nil {
		return nil, fmt.Errorf("siem: %w", err)
	}
	for _, r := range []string{"written", "failed", "skipped"} {
		fw.records.WithLabelValues(r)
		fw.seals.WithLabelValues(r)
	}
	fw.recordLines = &lineKind{render: fw.recordLine, empty: "siem: audit stream entry carries no record; skipped",
		count: fw.records, ack: fw.group.Ack}
	fw.sealLines = &lineKind{render: fw.sealLine, empty: "siem: seal stream entry carries no seal; skipped",
		count: fw.seals, ack: fw.ackSeals}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{fw.records, fw.seals, fw.backlog, fw.forwardedUntil} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("siem: metrics: %w", err)
			}
		}
	}
	return fw, nil
}

// failureLogEvery is how often Run repeats its warning while forwarding
// keeps failing.
const failureLogEvery = time.Minute

// holdNameScript takes the hold KEYS[1] on a consumer name for holder
// ARGV[1], for ARGV[2] ms, when no one holds it or ARGV[1] does (a
// renewal), and returns who holds it then. One script, so that two
// processes starting under one name can't both take it.
var holdNameScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return cur
`)

// releaseNameScript removes the hold KEYS[1] if holder ARGV[1] has it.
var releaseNameScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`)

// holdName takes the hold on the consumer name, or renews it once a third
// of its term (ClaimAfter) has passed since it last did, and fails with
// ErrConsumerInUse when another process holds it.
//
// Two live processes under one name are one consumer to Redis: each
// reads the records the other has in flight as its own pending ones and
// writes them too, so every record in flight reached the SIEM twice with
// no failure to show for it (two units on one host named by the host
// name; a pod name reused while its pod still runs). The hold makes the
// second one forward nothing and say why. It lapses ClaimAfter after its
// holder last renewed it, so a process that died without stopping holds
// its name that long, as long as its records take to be taken over by
// other replicas anyway; one that stops releases it (Run).
func (fw *Forwarder) holdName(ctx context.Context) error {
	fw.holdMu.Lock()
	defer fw.holdMu.Unlock()
	now := fw.cfg.Now()
	if !fw.held.IsZero() && now.Sub(fw.held) < fw.cfg.ClaimAfter/3 {
		return nil
	}
	cur, err := holdNameScript.Run(ctx, fw.cfg.Redis, []string{keys.SIEMConsumer(fw.cfg.Consumer)},
		fw.holder, max(fw.cfg.ClaimAfter.Milliseconds(), 1)).Text()
	if err != nil {
		return fmt.Errorf("siem: hold the consumer name %q: %w", fw.cfg.Consumer, err)
	}
	if cur != fw.holder {
		fw.held = time.Time{}
		return fmt.Errorf("%w: %q is held by %s, a replica running under the same name, or this replica's previous process if it died without stopping (its hold lapses within %s); give each replica its own name",
			ErrConsumerInUse, fw.cfg.Consumer, cur, fw.cfg.ClaimAfter)
	}
	fw.held = now
	return nil
}

// releaseName gives up the hold on the consumer name, if this forwarder
// has it, so that a restart under the same name forwards at once.
func (fw *Forwarder) releaseName(ctx context.Context) {
	fw.holdMu.Lock()
	defer fw.holdMu.Unlock()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := releaseNameScript.Run(rctx, fw.cfg.Redis, []string{keys.SIEMConsumer(fw.cfg.Consumer)}, fw.holder).Err(); err != nil {
		fw.log.Warn("siem: could not release the consumer name; a restart under it waits until its hold lapses",
			"consumer", fw.cfg.Consumer, "claim_after", fw.cfg.ClaimAfter, "err", err)
	}
	fw.held = time.Time{}
}

// Run forwards records until ctx ends, a pass at a time, and returns nil
// when ctx ends, releasing the consumer name (see holdName).
//
// A failure is logged when it starts, then at most once per
// failureLogEvery while it lasts (a pipe without a reader fails every
// pass, a pass a second), and its end once, with how long it lasted: the
// metric counts every failed record. A consumer name still held by
// another process after ClaimAfter is logged at error: that process is
// alive, and this replica forwards nothing.
func (fw *Forwarder) Run(ctx context.Context) error {
	defer fw.releaseName(ctx)
	var since, warned time.Time // since: when the failing began; zero while forwarding works
	failed := 0                 // failed passes not logged since warned
	for {
		n, err := fw.Poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		// The forwarder's clock, not the wall's: "failing_for" and the
		// once-a-minute repeat must agree with the schedule's times, and
		// tests move it without waiting a minute.
		now := fw.cfg.Now()
		switch {
		case err != nil:
			if since.IsZero() {
				since = now
			}
			if failed++; warned.IsZero() || now.Sub(warned) >= failureLogEvery {
				level := slog.LevelWarn
				if errors.Is(err, ErrConsumerInUse) && now.Sub(since) >= fw.cfg.ClaimAfter {
					level = slog.LevelError
				}
				fw.log.Log(ctx, level, "siem forwarding failed; retrying", "err", err, "forwarded", n, "stalled", errors.Is(err, ErrSinkStalled),
					"failing_for", now.Sub(since).Round(time.Second), "failed_passes", failed)
				warned, failed = now, 0
			}
		case !since.IsZero():
			fw.log.Info("siem forwarding resumed", "forwarded", n, "failed_for", now.Sub(since).Round(time.Second))
			since, warned, failed = time.Time{}, time.Time{}, 0
		}
		if n > 0 && err == nil {
			continue
		}
		t := time.NewTimer(fw.cfg.Block)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Poll does one pass over the tenants the SIEM schedule (internal/due)
// lists as due — those whose streams got records since their last visit,
// or whose records wait at a replica that may have died — and, for each:
// retries this replica's own pending records, takes over records idle at
// other replicas for ClaimAfter, forwards new records, then removes from
// the tenant's group the replicas gone for good (ForgetAfter); then does
// the same for the tenant's seals. An idle deployment's pass costs one
// command however many tenants it serves. Every tenant the pass lists,
// visited or left for the next pass, first gets the SIEM group put on
// its streams where it is missing, whatever the sink does (see reach).
// It returns how many lines (records and seals) it wrote. A failing
// tenant does not stop the pass; the errors are joined, and the tenant is
// due again at the next pass. A stalled sink (ErrSinkStalled) does: every
// tenant would wait out the write timeout in turn, and all are due again
// at the next pass.
//
// A pass under a consumer name another live process holds forwards
// nothing and fails with ErrConsumerInUse (see holdName). Every
// backlogEvery, a pass, failed or not, ends by measuring the backlog (see
// measureBacklog).
func (fw *Forwarder) Poll(ctx context.Context) (int, error) {
	n, err := fw.poll(ctx)
	fw.measureMu.Lock()
	defer fw.measureMu.Unlock()
	if now := fw.cfg.Now(); ctx.Err() == nil && (fw.measured.IsZero() || now.Sub(fw.measured) >= backlogEvery) {
		if merr := fw.measureBacklog(ctx, now); merr != nil {
			// The gauges keep their last values: forwardedUntil falls
			// behind the clock, as it should when nothing can be read.
			// A failed pass has said why already.
			if err == nil {
				fw.log.Warn("siem: could not measure the backlog", "err", merr)
			}
		} else {
			fw.measured = now
		}
	}
	return n, err
}

func (fw *Forwarder) poll(ctx context.Context) (int, error) {
	if err := fw.holdName(ctx); err != nil {
		return 0, err
	}
	total := 0
	stalled := false
	d := due.Drainer{Index: due.New(fw.cfg.Redis, due.SIEM, fw.cfg.Now), Lease: fw.cfg.ClaimAfter, Logger: fw.log}
	_, err := d.Drain(ctx, func(ctx context.Context, t string) (time.Time, error) {
		if keys.ValidTenant(t) != nil {
			return time.Time{}, nil
		}
		stream, sealStream := keys.Audit(t), keys.AuditSeals(t)
		// Before anything that depends on the sink or the name: a
		// tenant left for the next pass is reached all the same.
		rerr := fw.reach(ctx, t, stream, sealStream)
		if stalled {
			// The sink takes no lines for anyone (or the name is no
			// longer this replica's): the other tenants wait for the
			// next pass rather than each waiting out the write timeout.
			return fw.cfg.Now(), nil
		}
		if rerr != nil {
			return time.Time{}, fmt.Errorf("siem: %w", rerr)
		}
		// A long pass renews the hold as it goes.
		if err := fw.holdName(ctx); err != nil {
			stalled = true
			return fw.cfg.Now(), err
		}
		// The records, then the seals: a seal reaches the SIEM after the
		// records it covers, unless some of them wait to be taken over.
		// A busy tenant's records leave its seals their turn each visit.
		n, more, err := fw.forwardTenant(ctx, t, stream, fw.recordLines)
		total += n
		// The seals are visited only when some wait (a seal comes once a
		// sealing interval at most): asking costs one command where a
		// visit costs several, and a visit would create the seal stream
		// of a tenant never sealed (sealing off).
		sealsVisited := false
		if err == nil && unforwarded(fw.cfg.Redis.XInfoGroups(ctx, sealStream)) {
			var sealsMore bool
			sealsVisited = true
			n, sealsMore, err = fw.forwardTenant(ctx, t, sealStream, fw.sealLines)
			total += n
			more = more || sealsMore
		}
		if err != nil {
			stalled = errors.Is(err, ErrSinkStalled)
			return time.Time{}, fmt.Errorf("siem: %w", err)
		}
		if more {
			return fw.cfg.Now(), nil
		}
		// Entries still pending are another replica's (this one
		// acknowledged all it read): in flight, or left by a replica that
		// died, to take over once idle for ClaimAfter.
		// Seals not visited had none pending.
		var records, seals *redis.XPendingCmd
		_, err = fw.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
			records = p.XPending(ctx, stream, SIEMGroup)
			if sealsVisited {
				seals = p.XPending(ctx, sealStream, SIEMGroup)
			}
			return nil
		})
		if err != nil {
			return time.Time{}, fmt.Errorf("siem: %w", err)
		}
		if records.Val().Count > 0 || (seals != nil && seals.Val().Count > 0) {
			return fw.cfg.Now().Add(fw.cfg.ClaimAfter / 2), nil
		}
		return time.Time{}, nil
	})
	return total, err
}

// reachScript puts the group ARGV[1], where it is missing, on the audit
// stream KEYS[1] (creating the stream if need be) and on the seal stream
// KEYS[2] when that exists, each reading from its stream's first entry,
// and returns how many groups it created. A seal stream that does not exist
// yet gets the group from the script that stores its first seal
// (storeSealScript), since the tenant's audit stream has it then:
// creating it here (MKSTREAM) would give every tenant never sealed
// (sealing off) an empty seal stream. One script, since the two streams
// share the tenant's slot: one command per tenant and pass.
var reachScript = redis.NewScript(`
local function has(key)
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    for i = 1, #g, 2 do
      if g[i] == 'name' and g[i + 1] == ARGV[1] then return true end
    end
  end
  return false
end
local made = 0
if redis.call('EXISTS', KEYS[1]) == 0 or not has(KEYS[1]) then
  redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
  made = made + 1
end
if redis.call('EXISTS', KEYS[2]) == 1 and not has(KEYS[2]) then
  redis.call('XGROUP', 'CREATE', KEYS[2], ARGV[1], '0')
  made = made + 1
end
return made
`)

// reach puts the SIEM group on tenant's audit stream and, when the tenant
// has one, on its seal stream, before anything that depends on the sink or
// the consumer name. Without the group on either, the sealer keeps only
// the tenant's newest seal, each new one replacing the one before unread
// and uncounted (storeSealScript): right while forwarding is off, not
// while a forwarder runs and its sink fails, or stalls and leaves the
// other tenants of its passes unvisited. Both groups read from the
// streams' first entries, so the records and the seal waiting already are
// forwarded.
//
// It does so each time a pass lists the tenant, not once per forwarder
// and tenant: a group can vanish under a running forwarder (Redis
// restored from a snapshot taken before forwarding began, a failover to
// a replica that never got the group), and while the sink stalls no
// visit's read would put it back. A group that vanished from a tenant
// this forwarder had reached is logged: the records retention kept are
// forwarded again.
func (fw *Forwarder) reach(ctx context.Context, tenant, stream, sealStream string) error {
	made, err := reachScript.Run(ctx, fw.cfg.Redis, []string{stream, sealStream}, SIEMGroup).Int()
	if err != nil {
		return fmt.Errorf("create group %s on %s and %s: %w", SIEMGroup, stream, sealStream, err)
	}
	fw.reachMu.Lock()
	before := fw.reached[tenant]
	fw.reached[tenant] = true
	fw.reachMu.Unlock()
	if made > 0 && before {
		fw.log.WarnContext(ctx, "siem: the consumer group vanished from the tenant's streams; created it again, and the records and seals they hold are forwarded again",
			"tenant", tenant, "group", SIEMGroup, "streams_regrouped", made)
	}
	return nil
}

// measureBacklog sets the backlog gauges from the tenants the SIEM
// schedule lists: a tenant with records not yet forwarded is on it (a
// mark lost with a replica is restored by the next rescan). For each, the
// records waiting are those the group holds pending (read, not
// acknowledged) and those it has not read (its lag; the stream's length
// when the group does not exist yet, or when Redis can't tell the lag),
// and the oldest waiting record is the first pending one or the first
// after the group's last-delivered id, whichever is older, dated by its
// stream id. It costs two pipelined round trips, however many tenants
// wait, and nothing per record. forwardedUntil is the oldest waiting
// record's time, or now when none waits: a measure that stops being
// taken (every replica's forwarder stopped or can't read Redis) falls
// behind the clock, and the alert on it fires.
func (fw *Forwarder) measureBacklog(ctx context.Context, now time.Time) error {
	tenants, err := due.New(fw.cfg.Redis, due.SIEM, fw.cfg.Now).Tenants(ctx)
	if err != nil {
		return fmt.Errorf("siem backlog: %w", err)
	}
	type probe struct {
		stream  string
		groups  *redis.XInfoGroupsCmd
		pending *redis.XPendingCmd
		length  *redis.IntCmd
		next    *redis.XMessageSliceCmd // the first record the group has not read
	}
	probes := make([]*probe, 0, len(tenants))
	// Pipelined's own error is the first command's that failed: each
	// command's is read below, where NOGROUP and a missing stream are
	// answers, not failures.
	_, _ = fw.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, t := range tenants {
			if keys.ValidTenant(t) != nil {
				continue
			}
			pr := &probe{stream: keys.Audit(t)}
			pr.groups = p.XInfoGroups(ctx, pr.stream)
			pr.pending = p.XPending(ctx, pr.stream, SIEMGroup)
			probes = append(probes, pr)
		}
		return nil
	})
	var backlog int64
	var oldest string
	older := func(id string) {
		if id != "" && (oldest == "" || streamIDLess(id, oldest)) {
			oldest = id
		}
	}
	_, _ = fw.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, pr := range probes {
			groups, err := pr.groups.Result()
			if redis.HasErrorPrefix(err, "no such key") {
				continue // no records
			}
			if err != nil {
				return nil // read below
			}
			i := slices.IndexFunc(groups, func(g redis.XInfoGroup) bool { return g.Name == SIEMGroup })
			if i < 0 {
				// No forwarder has read the stream yet: all of it waits.
				pr.length = p.XLen(ctx, pr.stream)
				pr.next = p.XRangeN(ctx, pr.stream, "-", "+", 1)
				continue
			}
			g := groups[i]
			backlog += g.Pending
			if g.Pending > 0 {
				if ps, err := pr.pending.Result(); err == nil && ps.Count > 0 {
					older(ps.Lower)
				}
			}
			if g.Lag > 0 {
				backlog += g.Lag
			} else if g.Lag < 0 {
				pr.length = p.XLen(ctx, pr.stream)
			}
			pr.next = p.XRangeN(ctx, pr.stream, "("+g.LastDeliveredID, "+", 1)
		}
		return nil
	})
	for _, pr := range probes {
		if err := pr.groups.Err(); err != nil && !redis.HasErrorPrefix(err, "no such key") {
			return fmt.Errorf("siem backlog: %s: %w", pr.stream, err)
		}
		if err := pr.pending.Err(); err != nil && !redis.HasErrorPrefix(err, "NOGROUP") && !redis.HasErrorPrefix(err, "no such key") {
			return fmt.Errorf("siem backlog: %s: %w", pr.stream, err)
		}
		if pr.length != nil {
			n, err := pr.length.Result()
			if err != nil {
				return fmt.Errorf("siem backlog: %s: %w", pr.stream, err)
			}
			backlog += n
		}
		if pr.next != nil {
			msgs, err := pr.next.Result()
			if err != nil {
				return fmt.Errorf("siem backlog: %s: %w", pr.stream, err)
			}
			if len(msgs) > 0 {
				older(msgs[0].ID)
			}
		}
	}
	until := now
	if ms, ok := streamIDMillis(oldest); ok && ms < now.UnixMilli() {
		until = time.UnixMilli(ms)
	}
	fw.backlog.Set(float64(backlog))
	fw.forwardedUntil.Set(float64(until.UnixMilli()) / 1000)
	return nil
}

// streamIDMillis is the Unix millisecond of a stream entry id ("ms-seq").
func streamIDMillis(id string) (int64, bool) {
	ms, _, ok := strings.Cut(id, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	return n, err == nil
}

// streamIDLess reports whether stream entry id a comes before b.
func streamIDLess(a, b string) bool {
	ams, aseq, _ := strings.Cut(a, "-")
	bms, bseq, _ := strings.Cut(b, "-")
	am, _ := strconv.ParseUint(ams, 10, 64)
	bm, _ := strconv.ParseUint(bms, 10, 64)
	if am != bm {
		return am < bm
	}
	as, _ := strconv.ParseUint(aseq, 10, 64)
	bs, _ := strconv.ParseUint(bseq, 10, 64)
	return as < bs
}

// Probe reads whether a tenant's audit stream has records, or its seal
// stream seals, the SIEM group has not forwarded, for due.Rescan.
func (fw *Forwarder) Probe(ctx context.Context, p redis.Pipeliner, tenant string, now time.Time) func() (time.Time, bool) {
	records := p.XInfoGroups(ctx, keys.Audit(tenant))
	seals := p.XInfoGroups(ctx, keys.AuditSeals(tenant))
	return func() (time.Time, bool) {
		return now, unforwarded(records) || unforwarded(seals)
	}
}

// unforwarded reads from c, a stream's XINFO GROUPS, whether it has
// entries the SIEM group has not forwarded.
func unforwarded(c *redis.XInfoGroupsCmd) bool {
	groups, err := c.Result()
	if err != nil {
		// No stream, no entries; anything else, look.
		return !redis.HasErrorPrefix(err, "no such key")
	}
	for _, g := range groups {
		if g.Name == SIEMGroup {
			return g.Pending > 0 || g.Lag != 0
		}
	}
	return true // entries, and no group yet
}

// forwardTenant forwards stream's entries as k renders them and reports
// whether it stopped with more to do (it does at most
// maxBatchesPerTenant batches of each kind, so a busy tenant does not
// starve the others).
func (fw *Forwarder) forwardTenant(ctx context.Context, tenant, stream string, k *lineKind) (int, bool, error) {
	total := 0
	more, err := fw.group.Visit(ctx, stream, func(ctx context.Context, msgs []redis.XMessage) error {
		n, err := fw.deliver(ctx, tenant, stream, msgs, k)
		total += n
		return err
	})
	return total, more, err
}

// lineKind is one of a tenant's streams the forwarder writes to the sink:
// its records, or its seals (see siemseal.go).
type lineKind struct {
	// render returns the line of entry m, or false when m holds nothing
	// to write (trimmed while pending, which leaves no fields, or not
	// Lockbox's).
	render func(ctx context.Context, tenant string, m redis.XMessage) (line []byte, ok bool, err error)
	// empty is logged, at error, for an entry that has fields but holds
	// nothing to write.
	empty string
	// count counts the lines by result: written, failed, skipped.
	count *prometheus.CounterVec
	// ack acknowledges the entries the sink took.
	ack func(ctx context.Context, stream string, ids ...string) error
}

// ackTimeout bounds the acknowledgement of lines the sink took, which
// runs even when the forwarder's context ended meanwhile.
const ackTimeout = 2 * time.Second

// deliver writes msgs to the sink in order, flushes, and acknowledges
// what was written. On a write failure it acknowledges the lines written
// before it (once flushed) and leaves the rest pending. When ctx ends
// (shutdown) it writes no more lines, and still flushes and acknowledges
// those the sink took: left pending, they would be written again by
// whoever forwards next.
//
// Entries that need no line (trimmed while pending, which leaves no
// fields, or holding nothing to write) are counted skipped however the
// batch ends, those after a failure included: a batch of entries taken
// over from another replica ends with the trimmed ones (streamgroup's
// claim), which XAUTOCLAIM has dropped from the pending list already, so
// this batch is the last moment anything knows of them. Those are counted
// at once, whatever the acknowledgement does, and need none: a failed one
// would leave them uncounted for good (streamgroup.Deleted). The others
// are acknowledged, and counted once Redis took the acknowledgement: a
// failed one leaves them pending, and the pass that takes them up again
// counts them. No entry with fields is acknowledged unless the sink took
// (and flushed) its line.
func (fw *Forwarder) deliver(ctx context.Context, tenant, stream string, msgs []redis.XMessage, k *lineKind) (int, error) {
	// took: the entries whose lines the sink took; none: those needing
	// no line, still pending; gone: how many need no line and are off
	// the pending list already (deleted, taken over).
	took := make([]string, 0, len(msgs))
	var none []string
	gone := 0
	skip := func(id string) {
		if streamgroup.Deleted(ctx, stream, id) {
			gone++
		} else {
			none = append(none, id)
		}
	}
	var werr error
	for _, m := range msgs {
		if werr == nil {
			werr = ctx.Err()
		}
		if werr != nil {
			// Stopped: only an entry without fields is still done with.
			if m.Values == nil {
				skip(m.ID)
			}
			continue
		}
		line, ok, err := k.render(ctx, tenant, m)
		if err == nil && !ok {
			// A pending entry trimmed (by retention, or from a full seal
			// stream) comes back without fields; an entry without a
			// record or seal can't be rendered.
			if m.Values != nil {
				fw.log.Error(k.empty, "stream", stream, "id", m.ID)
			}
			skip(m.ID)
			continue
		}
		if err != nil {
			err = fmt.Errorf("render %s: %w", m.ID, err)
		} else if err = fw.cfg.Sink.Write(line); err != nil {
			err = fmt.Errorf("sink write: %w", err)
		}
		if err != nil {
			k.count.WithLabelValues("failed").Inc()
			werr = err
			continue
		}
		took = append(took, m.ID)
	}
	if len(took) > 0 {
		if fl, ok := fw.cfg.Sink.(Flusher); ok {
			if err := fl.Flush(); err != nil {
				// Not durable: written again at the next attempt.
				k.count.WithLabelValues("failed").Add(float64(len(took)))
				werr = errors.Join(werr, fmt.Errorf("sink flush: %w", err))
				took = took[:0]
			}
		}
	}
	written := len(took)
	k.count.WithLabelValues("skipped").Add(float64(gone))
	if ack := append(took, none...); len(ack) > 0 {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
		err := k.ack(actx, stream, ack...)
		cancel()
		if err != nil {
			// Written but not acknowledged: they will be written again.
			return written, errors.Join(werr, fmt.Errorf("ack: %w", err))
		}
	}
	k.count.WithLabelValues("written").Add(float64(written))
	k.count.WithLabelValues("skipped").Add(float64(len(none)))
	return written, werr
}

// recordLine renders the audit stream entry m for the sink.
func (fw *Forwarder) recordLine(ctx context.Context, tenant string, m redis.XMessage) ([]byte, bool, error) {
	raw, ok := m.Values[field].(string)
	if !ok {
		return nil, false, nil
	}
	if fw.cfg.Format == FormatOCSF {
		line, err := ocsfLine(raw, func(r *record.Record) error { return fw.orgs.completeLegacy(ctx, tenant, r) })
		return line, true, err
	}
	// The record's place in the chain goes with it, so that the SIEM's
	// copy can be checked without Redis (siemcheck).
	p, _ := m.Values["p"].(string)
	h, _ := m.Values["h"].(string)
	placed := siemcheck.Place([]byte(raw), m.ID, p, h)
	if len(placed) == len(raw) {
		// Not placed: a record with line breaks, which written compact
		// is no longer the bytes the chain hashes, or a place not as
		// Lockbox writes it.
		return jsonLine(raw), true, nil
	}
	return placed, true, nil
}

// jsonLine is the stored record raw as one line of the json format: its
// bytes as they are. Every record Lockbox writes is compact JSON, and no
// value holds a raw line break (JSON escapes them), but the stream takes
// any bytes: a record whose whitespace holds line breaks (written by hand,
// or by a writer that indents) would reach the SIEM as several lines,
// none of them a record. Such a record is written compact, the same JSON;
// one that is not JSON at all, as a JSON string of its bytes.
func jsonLine(raw string) []byte {
	if !strings.ContainsAny(raw, "\r\n") {
		return []byte(raw)
	}
	var b bytes.Buffer
	if json.Compact(&b, []byte(raw)) == nil {
		return b.Bytes()
	}
	q, _ := json.Marshal(raw) // a string always marshals
	return q
}
