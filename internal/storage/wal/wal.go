// Package wal owns the write-ahead log: segment files of CRC32C-checked
// frames holding batches of opaque records, group-committed durable appends,
// replay, checkpoints, and repair of torn tails after a crash. The byte
// format is specified in docs/format/wal.md.
//
// Life cycle: Open, Replay (once, before the first Append), then any number
// of concurrent Append, NextSegment and WriteCheckpoint calls, then Close.
package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults used by DefaultOptions and for zero Options fields.
const (
	DefaultSegmentSize  = 128 << 20
	DefaultSyncInterval = time.Second
)

// Options configure a WAL. The zero value of Sync is false (not durable):
// start from DefaultOptions.
type Options struct {
	// Dir is the WAL directory; it is created if missing.
	Dir string
	// SegmentSize is the size at which a new segment is started; 0 means
	// DefaultSegmentSize. A segment is larger only when one group commit is.
	SegmentSize int64
	// Sync makes Append return only after the data is fsynced (fdatasync).
	// When false, Append returns once the data is written to the kernel
	// (it survives a crash of the process, not of the machine) and a
	// background loop fsyncs every SyncInterval.
	Sync bool
	// SyncInterval is the background fsync period when Sync is false; 0
	// means DefaultSyncInterval.
	SyncInterval time.Duration
	// Logger receives warnings about torn tails and corruption; nil
	// discards them.
	Logger *slog.Logger
	// Registerer receives the WAL's metrics; nil registers nothing. Close
	// unregisters them, so a WAL may be reopened with the same Registerer.
	Registerer prometheus.Registerer
}

// DefaultOptions returns durable options for a WAL in dir.
func DefaultOptions(dir string) Options {
	return Options{
		Dir:          dir,
		SegmentSize:  DefaultSegmentSize,
		Sync:         true,
		SyncInterval: DefaultSyncInterval,
	}
}

// maxRetainedBuffer is the largest group buffer kept for reuse; a larger one
// (after a burst of big batches) is left to the garbage collector.
const maxRetainedBuffer = 16 << 20

// WAL is an open write-ahead log. Its methods are safe for concurrent use
// except Replay, which must run before any Append, NextSegment or
// WriteCheckpoint.
type WAL struct {
	// Immutable after Open.
	dir      string
	opts     Options
	logger   *slog.Logger
	metrics  *metrics
	lockFile *os.File
	stop     chan struct{} // closed by Close to end syncLoop
	loopDone chan struct{} // closed when syncLoop returns

	// File operations of the append path; tests replace them to inject
	// faults.
	writeAt  func(f *os.File, b []byte, off int64) (int, error)
	syncFile func(f *os.File) error

	// cpMu serialises WriteCheckpoint calls.
	cpMu sync.Mutex

	// Segment state. Only the goroutine that holds the leader role (mu's
	// leading field) touches these, so they need no lock of their own.
	seg      *os.File
	segIndex int
	segSize  int64
	dirty    bool  // written since the last fsync
	fatal    error // an fsync (or undo of a failed write) failed; mirrored to broken

	// mu guards everything below it.
	mu      sync.Mutex
	pending []byte // frames of the open group, in arrival order
	spare   []byte // the other group buffer, handed back by the last leader
	group   *group // the open group: joined by callers, nil when empty
	leading bool   // some goroutine holds the leader role
	current int    // index of the segment being written (copy of segIndex)
	broken  error  // set after an fsync failure: no more appends
	closed  bool
}

// Open opens (or creates) the WAL in opts.Dir. It removes what an
// interrupted checkpoint left behind, truncates a torn tail of the last
// segment (logged and counted, never an error), and starts a new segment
// for appends. Call Replay next.
func Open(opts Options) (*WAL, error) {
	if opts.Dir == "" {
		return nil, errors.New("open wal: no directory")
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("open wal: %w", err)
	}
	lockFile, err := lockDir(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("open wal: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open wal: %w", err), lockFile.Close())
	}
	w := &WAL{
		dir:      opts.Dir,
		opts:     opts,
		logger:   logger,
		metrics:  m,
		lockFile: lockFile,
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
		writeAt:  (*os.File).WriteAt,
		syncFile: fdatasync,
	}
	if err := w.prepare(); err != nil {
		m.unregister()
		return nil, errors.Join(fmt.Errorf("open wal %s: %w", opts.Dir, err), lockFile.Close())
	}
	if opts.Sync {
		close(w.loopDone)
	} else {
		go w.syncLoop()
	}
	return w, nil
}

// prepare cleans up, repairs the last segment and creates the first segment of
// this process.
func (w *WAL) prepare() error {
	l, err := listDir(w.dir)
	if err != nil {
		return err
	}
	latest := l.latestCheckpoint()
	for _, name := range l.tmp {
		if err := os.RemoveAll(filepath.Join(w.dir, name)); err != nil {
			return fmt.Errorf("remove unfinished checkpoint: %w", err)
		}
		w.logger.Info("removed unfinished wal checkpoint", "checkpoint", name)
	}
	// Left-overs of a crash between a checkpoint's rename and its deletions.
	w.deleteBefore(l, latest)

	next := max(latest, 0)
	var live []int
	for _, i := range l.segments {
		if i >= latest {
			live = append(live, i)
		}
	}
	if len(live) > 0 {
		last := live[len(live)-1]
		next = max(next, last+1)
		removed, err := w.repairTail(last)
		if err != nil {
			return err
		}
		if removed {
			next = max(latest, last, 0)
		}
	}
	f, err := createSegment(w.dir, next)
	if err != nil {
		return err
	}
	w.seg, w.segIndex, w.segSize, w.current = f, next, SegmentHeaderSize, next
	w.metrics.segmentCurrent.Set(float64(next))
	return nil
}

// repairTail scans segment i, the last one, and truncates a torn tail. It
// removes a segment too short to hold its header. Damage that is not a torn
// tail (valid frames follow it) is left for Replay to report.
func (w *WAL) repairTail(i int) (removed bool, err error) {
	path := segmentPath(w.dir, i)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Errorf("open segment %d: %w", i, err)
	}
	defer func() {
		if f != nil {
			err = errors.Join(err, f.Close())
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat segment %d: %w", i, err)
	}
	size := st.Size()
	r := NewReader(f, size, path)
	for r.Next() {
	}
	rerr := r.Err()
	if rerr == nil {
		return false, nil
	}
	var ce *CorruptionError
	if !errors.As(rerr, &ce) {
		return false, fmt.Errorf("scan segment %d: %w", i, rerr)
	}
	if size < SegmentHeaderSize {
		w.logger.Warn("removing wal segment with torn header", "segment", i, "size", size)
		w.metrics.corruptions.WithLabelValues(kindTornTail).Inc()
		cerr := f.Close()
		f = nil
		if err := errors.Join(cerr, os.Remove(path)); err != nil {
			return false, fmt.Errorf("remove segment %d: %w", i, err)
		}
		return true, syncDir(w.dir)
	}
	if r.Offset() == 0 {
		// Bad magic or version 0: not something a crash produces. Replay
		// reports it; appends go to a new segment.
		return false, nil
	}
	if !ce.Torn && validChainFollows(f, r.badEnd, size) {
		return false, nil
	}
	ce.Torn = true
	w.logger.Warn("truncating torn wal tail", "segment", i, "offset", r.Offset(), "dropped_bytes", size-r.Offset(), "err", ce)
	w.metrics.corruptions.WithLabelValues(kindTornTail).Inc()
	if err := f.Truncate(r.Offset()); err != nil {
		return false, fmt.Errorf("truncate segment %d: %w", i, err)
	}
	if err := fdatasync(f); err != nil {
		return false, fmt.Errorf("sync segment %d: %w", i, err)
	}
	return false, nil
}

// validChainFollows reports whether the bytes of f from off to size are one
// or more intact frames that end exactly at size: then the damaged frame
// before off is damage in the middle, not an interrupted write.
func validChainFollows(f *os.File, off, size int64) bool {
	if off < SegmentHeaderSize || off >= size {
		return false
	}
	r := NewReader(io.NewSectionReader(f, off, size-off), size-off, f.Name())
	r.headerDone = true
	records := 0
	for r.Next() {
		records++
	}
	return r.Err() == nil && records > 0 && r.Offset() == size-off
}

// Replay calls fn for every record of the newest checkpoint, then for every
// record of every later segment, in the order they were written. rec is
// valid only during the call; fn must copy what it keeps. An error from fn
// stops the replay and is returned.
//
// A damaged frame is logged as a *CorruptionError and counted in
// ledgerlog_wal_corruptions_total; the rest of that file is skipped and
// replay continues with the next file, so corruption never fails Replay.
// Replay fails on I/O errors and on ErrUnsupportedFormat.
//
// Replay must be called before any Append, NextSegment or WriteCheckpoint
// and not concurrently with them.
func (w *WAL) Replay(fn func(rec []byte) error) error {
	start := time.Now()
	l, err := listDir(w.dir)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	rp := replayer{w: w, fn: fn}
	latest := l.latestCheckpoint()
	if latest >= 0 {
		cpDir := filepath.Join(w.dir, checkpointName(latest))
		cl, err := listDir(cpDir)
		if err != nil {
			return fmt.Errorf("replay checkpoint %d: %w", latest, err)
		}
		for _, i := range cl.segments {
			if err := rp.file(filepath.Join(cpDir, segmentName(i)), i, kindCheckpoint); err != nil {
				return fmt.Errorf("replay checkpoint %d: %w", latest, err)
			}
		}
	}
	prev := latest - 1 // a checkpoint at B is followed by segment B
	for _, i := range l.segments {
		if i < latest {
			continue // covered by the checkpoint; Open deleted what it could
		}
		if prev >= 0 && i != prev+1 {
			w.logger.Error("wal segments missing", "segment", prev+1, "next_segment", i)
			w.metrics.corruptions.WithLabelValues(kindMissingSegment).Inc()
		}
		prev = i
		if err := rp.file(segmentPath(w.dir, i), i, kindSegment); err != nil {
			return fmt.Errorf("replay segment %d: %w", i, err)
		}
	}
	w.logger.Info("wal replay done", "records", rp.records, "bytes", rp.bytes, "checkpoint", latest,
		"corruptions", rp.corruptions, "duration", time.Since(start))
	return nil
}

// replayer carries the reader and counters of one Replay across files.
type replayer struct {
	w           *WAL
	fn          func([]byte) error
	r           Reader
	records     int
	bytes       int64
	corruptions int
}

func (rp *replayer) file(path string, i int, kind string) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	rp.r.reset(f, st.Size(), path)
	for rp.r.Next() {
		rec := rp.r.Record()
		rp.records++
		rp.bytes += int64(len(rec))
		if err := rp.fn(rec); err != nil {
			return err
		}
	}
	rerr := rp.r.Err()
	var ce *CorruptionError
	switch {
	case rerr == nil:
		return nil
	case errors.As(rerr, &ce):
		rp.corruptions++
		rp.w.metrics.corruptions.WithLabelValues(kind).Inc()
		rp.w.logger.Error("skipping rest of corrupt wal file", "segment", i, "kind", kind,
			"skipped_bytes", st.Size()-rp.r.Offset(), "err", ce)
		return nil
	default:
		return rerr
	}
}

// syncLoop fsyncs written data every SyncInterval when Sync is off.
func (w *WAL) syncLoop() {
	defer close(w.loopDone)
	t := time.NewTicker(w.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			if err := w.commit(func(g *group) { g.sync = true }); err != nil && !errors.Is(err, ErrClosed) {
				w.logger.Error("background wal sync", "err", err)
			}
		}
	}
}

// Close writes and fsyncs what is pending, closes the segment, waits for a
// running WriteCheckpoint and releases the directory. Appends that start
// after Close has begun fail with ErrClosed. Close is idempotent.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	g := w.joinLocked()
	g.sync, g.close = true, true
	err := w.waitLocked(g)
	close(w.stop)
	<-w.loopDone
	w.cpMu.Lock() // wait for a running checkpoint
	w.cpMu.Unlock()
	w.metrics.unregister()
	if cerr := w.lockFile.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close lock file: %w", cerr))
	}
	if err != nil {
		return fmt.Errorf("close wal: %w", err)
	}
	return nil
}
