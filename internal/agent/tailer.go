package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/text/encoding"
)

// fingerprintSize is how many leading bytes of a file its FileID hashes.
const fingerprintSize = 1024

// hardLineLimit bounds the memory one unterminated line may take when no
// larger limits_config.max_line_size is configured; longer lines are cut.
const hardLineLimit = 16 << 20

// lineFunc receives one complete line and the position just after it.
// line is only valid during the call. It blocks for back-pressure and
// returns an error only when ctx is done.
type lineFunc func(ctx context.Context, line string, key string, pos Position) error

// tailOptions are the knobs of one tailer.
type tailOptions struct {
	PollMin, PollMax time.Duration
	MaxLine          int               // hard cap of a buffered line
	Decoder          encoding.Encoding // nil: UTF-8
	Logger           *slog.Logger
	Metrics          *Metrics
}

// maxQueuedFiles bounds the files a tailer holds open ahead of the one it
// reads (files that were at its path while it was behind).
const maxQueuedFiles = 16

// tailer follows one path: it reads complete lines from the file currently
// at that path, survives rename-and-create and copytruncate rotation,
// truncation and deletion, and reports each line with the position after
// it. It never commits positions itself: the caller does that once the line
// is acknowledged downstream.
//
// A watcher goroutine opens every new file that appears at the path as
// soon as it sees it, so that a reader held back by back-pressure for
// several rotations still reads each rotated file, in order, from its
// descriptor.
type tailer struct {
	path  string
	opts  tailOptions
	emit  lineFunc
	wake  chan struct{} // fsnotify events for path; buffered 1
	watch chan struct{} // the same events for the watcher; buffered 1
	fin   chan struct{} // closed by finish
	once  sync.Once

	qmu      sync.Mutex
	queue    []*os.File  // guarded by qmu; files seen at path after f, oldest first
	lastSeen os.FileInfo // guarded by qmu; the newest file known to have been at path
	start    Position    // acknowledged position to resume from
	known    bool        // start is valid

	// reading state, owned by run's goroutine
	f       *os.File
	id      FileID
	offset  int64 // bytes consumed from f (start of pending)
	pending []byte
	head    []byte // first fingerprintSize bytes while id.FPLen < fingerprintSize
	skip    bool   // discarding the rest of an over-long line
	// lineBytes counts raw bytes of the current line consumed so far,
	// including bytes skipped beyond MaxLine and the newline.
	lineBytes int64
	buf       []byte
	fpBuf     []byte
	gone      bool // the path no longer names our file

	published atomic.Int64 // offset as seen by other goroutines
}

func newTailer(path string, start Position, known bool, opts tailOptions, emit lineFunc) *tailer {
	if opts.PollMin <= 0 {
		opts.PollMin = defaultPollFrequency
	}
	if opts.PollMax < opts.PollMin {
		opts.PollMax = opts.PollMin
	}
	if opts.MaxLine <= 0 {
		opts.MaxLine = hardLineLimit
	}
	return &tailer{path: path, opts: opts, emit: emit, wake: make(chan struct{}, 1), watch: make(chan struct{}, 1), fin: make(chan struct{}),
		start: start, known: known, buf: make([]byte, 64<<10)}
}

// finish asks run to read the open descriptor to its end and return. It
// never blocks.
func (t *tailer) finish() { t.once.Do(func() { close(t.fin) }) }

// notify wakes the tailer; it never blocks.
func (t *tailer) notify() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
	select {
	case t.watch <- struct{}{}:
	default:
	}
}

// Offset reports the read offset (for /targets). Safe for concurrent use.
func (t *tailer) Offset() int64 { return t.published.Load() }

// run tails until ctx is done. When the file disappears it reads the open
// descriptor to its end, flushes a held partial line and waits for a new
// file at the path.
func (t *tailer) run(ctx context.Context) error {
	defer t.closeFile()
	defer t.closeQueue()
	if err := t.openInitial(ctx); err != nil {
		return err
	}
	wctx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); t.watchPath(wctx) }()
	defer func() { stopWatch(); <-watchDone }()
	poll := t.opts.PollMin
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for {
		n, err := t.readAvailable(ctx)
		if err != nil {
			return err
		}
		if err := t.checkFile(ctx); err != nil {
			return err
		}
		if n > 0 {
			poll = t.opts.PollMin
		} else if poll < t.opts.PollMax {
			poll = min(poll*2, t.opts.PollMax)
		}
		timer.Reset(poll)
		select {
		case <-ctx.Done():
			return nil
		case <-t.wake:
			if !timer.Stop() {
				<-timer.C
			}
		case <-timer.C:
		case <-t.fin:
			return t.readToEnd(ctx)
		}
	}
}

// readToEnd emits what the open descriptor and the queued files still
// hold. A held partial line is flushed only when the file left its path: a
// file still there may complete it, and the next tailer of the path
// re-reads it.
func (t *tailer) readToEnd(ctx context.Context) error {
	for {
		if _, err := t.readAvailable(ctx); err != nil {
			return err
		}
		next := t.popQueued()
		if next == nil {
			break
		}
		if err := t.flushPending(ctx); err != nil {
			_ = next.Close()
			return err
		}
		if err := t.useFile(next, 0); err != nil {
			return err
		}
	}
	if t.f == nil {
		return nil
	}
	fst, err := t.f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", t.path, err)
	}
	if st, err := os.Stat(t.path); err == nil && os.SameFile(st, fst) {
		return nil
	}
	return t.flushPending(ctx)
}

func (t *tailer) closeFile() {
	if t.f != nil {
		_ = t.f.Close()
		t.f = nil
	}
}

func (t *tailer) closeQueue() {
	t.qmu.Lock()
	defer t.qmu.Unlock()
	for _, f := range t.queue {
		_ = f.Close()
	}
	t.queue = nil
}

// watchPath opens each new file that appears at the path (on fsnotify
// wake-ups and every PollMin) and queues it for the reader.
func (t *tailer) watchPath(ctx context.Context) {
	timer := time.NewTimer(t.opts.PollMin)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.watch:
			if !timer.Stop() {
				<-timer.C
			}
		case <-timer.C:
		}
		t.lookForNewFile()
		timer.Reset(t.opts.PollMin)
	}
}

// lookForNewFile queues the file at the path when it is not the newest
// file already known.
func (t *tailer) lookForNewFile() {
	st, err := os.Stat(t.path)
	if err != nil || !st.Mode().IsRegular() {
		return
	}
	t.qmu.Lock()
	defer t.qmu.Unlock()
	if t.lastSeen == nil || os.SameFile(st, t.lastSeen) || len(t.queue) >= maxQueuedFiles {
		return
	}
	f, err := os.Open(t.path)
	if err != nil {
		return
	}
	fi, err := f.Stat()
	if err != nil || os.SameFile(fi, t.lastSeen) {
		_ = f.Close()
		return
	}
	t.queue = append(t.queue, f)
	t.lastSeen = fi
}

// popQueued returns the oldest queued file, or nil.
func (t *tailer) popQueued() *os.File {
	t.qmu.Lock()
	defer t.qmu.Unlock()
	if len(t.queue) == 0 {
		return nil
	}
	f := t.queue[0]
	t.queue = t.queue[1:]
	return f
}

// openPath opens the file at the path for the reader and records it as
// the newest file seen there. With files queued it returns the oldest
// of them instead. It returns nil when there is no file, or the file at
// the path is cur.
func (t *tailer) openPath(cur os.FileInfo) (*os.File, error) {
	t.qmu.Lock()
	defer t.qmu.Unlock()
	if len(t.queue) > 0 {
		f := t.queue[0]
		t.queue = t.queue[1:]
		return f, nil
	}
	f, err := os.Open(t.path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if cur != nil && os.SameFile(fi, cur) {
		_ = f.Close()
		return nil, nil
	}
	t.lastSeen = fi
	return f, nil
}

// newerFile reports whether a file newer than cur is queued or at the
// path, and whether the path exists.
func (t *tailer) newerFile(cur os.FileInfo) (newer, exists bool) {
	t.qmu.Lock()
	queued := len(t.queue) > 0
	t.qmu.Unlock()
	st, err := os.Stat(t.path)
	exists = err == nil
	return queued || exists && !os.SameFile(st, cur), exists
}

// openInitial opens the file at path and decides where to resume. When the
// saved identity names another file (rotated while the agent was down), that
// file is looked up in the same directory and its unacknowledged tail is
// read first.
func (t *tailer) openInitial(ctx context.Context) error {
	f, err := t.openPath(nil)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			t.gone = true
			if t.known && !t.start.ID.IsZero() {
				// rotated while the agent was down, no new file yet
				return t.drainRotated(ctx)
			}
			return nil
		}
		return fmt.Errorf("open %s: %w", t.path, err)
	}
	id, size, err := identify(f, t.start.ID.FPLen)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("identify %s: %w", t.path, err)
	}
	offset := int64(0)
	switch {
	case !t.known:
	case t.start.ID.IsZero(): // Promtail positions: path + offset only
		if size >= t.start.Offset {
			offset = t.start.Offset
		}
	case id.SameInode(t.start.ID) && id.FP == t.start.ID.FP:
		if size >= t.start.Offset {
			offset = t.start.Offset
		}
	case !id.SameInode(t.start.ID):
		if err := t.drainRotated(ctx); err != nil {
			_ = f.Close()
			return err
		}
	}
	return t.useFile(f, offset)
}

// useFile makes f the followed file, positioned at offset.
func (t *tailer) useFile(f *os.File, offset int64) error {
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		_ = f.Close()
		return fmt.Errorf("seek %s: %w", t.path, err)
	}
	id, _, err := identify(f, fingerprintSize)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("identify %s: %w", t.path, err)
	}
	t.closeFile()
	t.f, t.id, t.offset, t.pending, t.skip, t.gone, t.lineBytes = f, id, offset, t.pending[:0], false, false, 0
	t.head = nil
	t.published.Store(offset)
	if id.FPLen < fingerprintSize {
		t.head = make([]byte, 0, fingerprintSize)
		if offset > 0 {
			// the first bytes were read by an earlier run; re-read them
			t.head = t.head[:min(offset, fingerprintSize)]
			if _, err := f.ReadAt(t.head, 0); err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read %s: %w", t.path, err)
			}
		}
	}
	return nil
}

// drainRotated finds the file the saved position belongs to among the
// siblings of path and emits its lines after the saved offset.
func (t *tailer) drainRotated(ctx context.Context) error {
	dir := filepath.Dir(t.path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil // nothing to drain from
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if p == t.path || !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		id, size, err := identify(f, t.start.ID.FPLen)
		if err != nil || !id.SameInode(t.start.ID) || id.FP != t.start.ID.FP || size < t.start.Offset {
			_ = f.Close()
			continue
		}
		t.opts.Logger.Info("reading rest of rotated file", "path", t.path, "rotated", p, "offset", t.start.Offset)
		if err := t.useFile(f, t.start.Offset); err != nil {
			return err
		}
		t.id = t.start.ID // keep the identity the positions file knows
		if _, err := t.readAvailable(ctx); err != nil {
			return err
		}
		if err := t.flushPending(ctx); err != nil {
			return err
		}
		t.closeFile()
		return nil
	}
	return nil
}

// checkFile detects truncation, rotation and deletion after the open
// descriptor was read to its end.
func (t *tailer) checkFile(ctx context.Context) error {
	if t.f == nil {
		f, err := t.openPath(nil)
		if err != nil || f == nil {
			return nil // still absent
		}
		t.opts.Logger.Debug("file appeared", "path", t.path)
		return t.useFile(f, 0)
	}
	fst, err := t.f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", t.path, err)
	}
	// a file truncated and refilled past our offset between two checks
	// no longer starts with the bytes we fingerprinted
	truncated := fst.Size() < t.offset+t.lineBytes || t.replaced()
	if truncated {
		// copytruncate: the writer starts over at 0. The lines we had not
		// read yet are in the copy the rotator made; read them there.
		t.opts.Logger.Info("file truncated, reading from start", "path", t.path, "size", fst.Size(), "offset", t.offset)
		if t.opts.Metrics != nil {
			t.opts.Metrics.truncations.Inc()
		}
		if err := t.drainCopy(ctx); err != nil {
			return err
		}
		f := t.f
		t.f = nil
		return t.useFile(f, 0)
	}
	newer, exists := t.newerFile(fst)
	if !newer {
		if !exists && !t.gone {
			t.gone = true
			// one more read for bytes written just before the rename
			if _, err := t.readAvailable(ctx); err != nil {
				return err
			}
			if err := t.flushPending(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	// rename-and-create (or delete-and-create): finish the old descriptor,
	// then follow the next file from its start.
	if _, err := t.readAvailable(ctx); err != nil {
		return err
	}
	if err := t.flushPending(ctx); err != nil {
		return err
	}
	f, err := t.openPath(fst)
	if err != nil || f == nil {
		return nil
	}
	if t.opts.Metrics != nil {
		t.opts.Metrics.rotations.Inc()
	}
	t.opts.Logger.Info("file rotated, following new file", "path", t.path)
	return t.useFile(f, 0)
}

// drainCopy looks for the copy a copytruncate rotation left next to the
// path (same leading bytes, another inode, at least as long as what was
// read) and emits its lines after the current offset. Without a copy the
// held partial line is flushed.
func (t *tailer) drainCopy(ctx context.Context) error {
	dir := filepath.Dir(t.path)
	ents, err := os.ReadDir(dir)
	if err != nil || t.id.FPLen == 0 {
		return t.flushPending(ctx)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if p == t.path || !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		id, size, err := identify(f, t.id.FPLen)
		if err != nil || id.SameInode(t.id) || id.FP != t.id.FP || id.FPLen != t.id.FPLen || size < t.offset+t.lineBytes {
			_ = f.Close()
			continue
		}
		t.opts.Logger.Info("reading rest of truncated file from its copy", "path", t.path, "copy", p, "offset", t.offset)
		old := t.f
		t.f = nil
		if err := t.useFile(f, t.offset); err != nil {
			t.f = old
			return err
		}
		if _, err := t.readAvailable(ctx); err != nil {
			_ = old.Close()
			return err
		}
		err = t.flushPending(ctx)
		t.closeFile()
		t.f = old
		return err
	}
	return t.flushPending(ctx)
}

// readAvailable reads the open descriptor to its current end and emits every
// complete line. It returns the number of bytes read.
func (t *tailer) readAvailable(ctx context.Context) (int, error) {
	if t.f == nil {
		return 0, nil
	}
	total := 0
	for {
		if ctx.Err() != nil {
			return total, nil
		}
		n, err := t.f.Read(t.buf)
		if n > 0 && t.replaced() {
			// copytruncate refilled the file past our offset: these bytes
			// may be new content. Put them back; checkFile takes the rest
			// of the old content from the copy and the new from 0.
			if _, err := t.f.Seek(-int64(n), io.SeekCurrent); err != nil {
				return total, fmt.Errorf("seek %s: %w", t.path, err)
			}
			return total, nil
		}
		if n > 0 {
			total += n
			if err := t.consume(ctx, t.buf[:n]); err != nil {
				return total, err
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if t.opts.Metrics != nil && total > 0 {
					if fi, err := t.f.Stat(); err == nil {
						t.opts.Metrics.fileBytes.WithLabelValues(t.path).Set(float64(fi.Size()))
					}
				}
				return total, nil
			}
			return total, fmt.Errorf("read %s: %w", t.path, err)
		}
	}
}

// replaced reports whether the file no longer starts with the bytes we
// fingerprinted (it was truncated and written again).
func (t *tailer) replaced() bool {
	if t.id.FPLen == 0 {
		return false
	}
	if cap(t.fpBuf) < t.id.FPLen {
		t.fpBuf = make([]byte, fingerprintSize)
	}
	head := t.fpBuf[:t.id.FPLen]
	n, err := t.f.ReadAt(head, 0)
	if err != nil && n < len(head) {
		return true // shorter than what we fingerprinted
	}
	return fingerprint(head) != t.id.FP
}

// consume splits data into lines. Bytes of an unterminated line stay in
// pending; a line longer than MaxLine is cut at MaxLine and the rest of it
// is skipped.
func (t *tailer) consume(ctx context.Context, data []byte) error {
	if t.head != nil {
		room := fingerprintSize - len(t.head)
		t.head = append(t.head, data[:min(room, len(data))]...)
		t.id.FPLen = len(t.head)
		t.id.FP = fingerprint(t.head)
		if len(t.head) == fingerprintSize {
			t.head = nil
		}
	}
	if t.opts.Metrics != nil {
		t.opts.Metrics.readBytes.WithLabelValues(t.path).Add(float64(len(data)))
	}
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			t.appendPending(data)
			return nil
		}
		t.appendPending(data[:i])
		t.lineBytes++ // the newline
		data = data[i+1:]
		if err := t.flushPending(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (t *tailer) appendPending(b []byte) {
	t.lineBytes += int64(len(b))
	room := t.opts.MaxLine - len(t.pending)
	if len(b) > room {
		b = b[:max(room, 0)]
		t.skip = true
	}
	t.pending = append(t.pending, b...)
}

// flushPending emits the current line (complete, or held partial when the
// file is left behind) and advances the offset past it.
func (t *tailer) flushPending(ctx context.Context) error {
	if t.lineBytes == 0 {
		return nil
	}
	t.offset += t.lineBytes
	t.published.Store(t.offset)
	t.lineBytes = 0
	line := t.pending
	t.pending = t.pending[:0]
	if t.skip {
		t.skip = false
		if t.opts.Metrics != nil {
			t.opts.Metrics.truncatedLines.Inc()
		}
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	var s string
	if t.opts.Decoder != nil {
		dec, err := t.opts.Decoder.NewDecoder().Bytes(line)
		if err != nil {
			s = string(line)
		} else {
			s = string(dec)
		}
	} else {
		s = string(line)
	}
	if !utf8.ValidString(s) {
		s = toValidUTF8(s)
	}
	if t.opts.Metrics != nil {
		t.opts.Metrics.readLines.WithLabelValues(t.path).Inc()
	}
	return t.emit(ctx, s, t.path, Position{Offset: t.offset, ID: t.id})
}

// toValidUTF8 replaces each invalid byte with U+FFFD so that a server that
// validates protobuf strings accepts the line.
func toValidUTF8(s string) string {
	var b []byte
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}

func fingerprint(b []byte) string {
	return strconv.FormatUint(xxhash.Sum64(b), 16)
}

// identify returns the identity of f with a fingerprint of its first
// min(fpLen, size) bytes, and its size.
func identify(f *os.File, fpLen int) (FileID, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return FileID{}, 0, err
	}
	id := FileID{}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.Dev, id.Ino = uint64(st.Dev), uint64(st.Ino)
	}
	n := min(int64(fpLen), fi.Size())
	head := make([]byte, n)
	if n > 0 {
		if _, err := f.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
			return FileID{}, 0, err
		}
	}
	id.FPLen, id.FP = int(n), fingerprint(head)
	return id, fi.Size(), nil
}
