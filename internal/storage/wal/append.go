package wal

import (
	"errors"
	"fmt"
	"time"
)

// group is one group commit: the frames that callers put into w.pending
// while the previous leader was writing, plus what non-append callers asked
// for (a sync, a new segment, closing). The goroutine that leads the group
// writes it with one pwrite and at most one fdatasync, then closes done.
type group struct {
	records int  // records in the group's frames
	batches int  // Append calls in the group
	sync    bool // fsync even when Options.Sync is off
	rotate  bool // start a new segment after writing
	close   bool // close the segment after writing

	// elect receives one token when the group must lead itself: the waiter
	// that takes it becomes the leader. Capacity 1.
	elect chan struct{}
	// done is closed when the group is written (and synced); err and index
	// are set before.
	done  chan struct{}
	err   error
	index int // segment index after the group, for NextSegment
}

// Append writes recs as one batch: they are stored in one frame, contiguous
// and in order, and after a crash either all of them are replayed or none.
// With Options.Sync it returns after the batch is fsynced; without, after it
// is written to the kernel.
//
// Append is safe for concurrent use and blocks until its batch is written.
// Concurrent callers share one write and one fdatasync (group commit): the
// batches of callers that arrive while a write is in flight go out together
// in the next one, in the order the callers arrived. Append copies recs
// before it returns and does not keep them. An empty call does nothing.
//
// After an fsync failure every Append fails: the WAL must be closed and
// reopened.
func (w *WAL) Append(recs ...[]byte) error {
	if len(recs) == 0 {
		return nil
	}
	size := payloadSize(recs)
	if size > MaxBatchSize {
		return fmt.Errorf("append %d records of %d bytes: %w", len(recs), size, ErrBatchTooLarge)
	}
	// The checksum is computed before taking the lock, so that concurrent
	// callers checksum in parallel and only copy under it.
	crc := frameCRC(recs, size)

	w.mu.Lock()
	if err := w.usableLocked(); err != nil {
		w.mu.Unlock()
		return err
	}
	w.pending = appendFrame(w.pending, recs, size, crc)
	g := w.joinLocked()
	g.records += len(recs)
	g.batches++
	return w.waitLocked(g)
}

// NextSegment closes the current segment (fsyncing it) and starts a new one,
// and returns the new segment's index. Every record appended after it
// returns goes to a segment at or above that index; records of concurrent
// Appends may land on either side. Concurrent NextSegment calls may share
// one new segment. Safe for concurrent use.
func (w *WAL) NextSegment() (int, error) {
	var g *group
	err := w.commit(func(j *group) { j.rotate = true; g = j })
	if err != nil {
		return 0, err
	}
	return g.index, nil
}

// commit joins the open group, lets set mark what it asks for, and waits for
// the group like Append.
func (w *WAL) commit(set func(*group)) error {
	w.mu.Lock()
	if err := w.usableLocked(); err != nil {
		w.mu.Unlock()
		return err
	}
	g := w.joinLocked()
	set(g)
	return w.waitLocked(g)
}

func (w *WAL) usableLocked() error {
	if w.closed {
		return ErrClosed
	}
	if w.broken != nil {
		return fmt.Errorf("wal unusable after sync failure: %w", w.broken)
	}
	return nil
}

// joinLocked returns the open group, opening one if needed. w.mu is held.
func (w *WAL) joinLocked() *group {
	if w.group == nil {
		w.group = &group{elect: make(chan struct{}, 1), done: make(chan struct{})}
	}
	return w.group
}

// waitLocked waits until g is written, leading it if nobody else does. It is
// called with w.mu held and returns with it released.
func (w *WAL) waitLocked(g *group) error {
	if w.leading {
		w.mu.Unlock()
		select {
		case <-g.done:
			return g.err
		case <-g.elect:
			// The previous leader finished and handed the role to g.
		}
		w.mu.Lock()
	} else {
		w.leading = true
	}
	// We hold the leader role, and g is still the open group: only a leader
	// closes a group, and it hands the role only to the open one.
	buf := w.pending
	w.pending, w.spare = w.spare[:0], nil
	w.group = nil
	w.mu.Unlock()

	err := w.flush(buf, g)
	g.err = err
	close(g.done)

	w.mu.Lock()
	if cap(buf) <= maxRetainedBuffer {
		w.spare = buf[:0]
	}
	if w.fatal != nil && w.broken == nil {
		w.broken = w.fatal
	}
	if w.group != nil {
		w.group.elect <- struct{}{} // capacity 1, sent once per group
	} else {
		w.leading = false
	}
	w.mu.Unlock()
	return err
}

// flush writes buf (the frames of g) and carries out what g asks for. Only
// the leader calls it, without w.mu.
func (w *WAL) flush(buf []byte, g *group) error {
	var err error
	if w.fatal != nil {
		err = fmt.Errorf("wal unusable after sync failure: %w", w.fatal)
	} else {
		err = w.writeGroup(buf, g)
	}
	if g.close && w.seg != nil {
		if err == nil && w.dirty {
			err = w.fsync()
		}
		if cerr := w.seg.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close segment %d: %w", w.segIndex, cerr)
		}
		w.seg = nil
	}
	g.index = w.segIndex
	return err
}

func (w *WAL) writeGroup(buf []byte, g *group) error {
	if w.seg == nil {
		return ErrClosed
	}
	if len(buf) > 0 {
		if w.segSize > SegmentHeaderSize && w.segSize+int64(len(buf)) > w.opts.SegmentSize {
			if err := w.rotate(); err != nil {
				return err
			}
		}
		if _, err := w.writeAt(w.seg, buf, w.segSize); err != nil {
			if isDiskFull(err) {
				w.metrics.diskFull.Inc()
			}
			err = fmt.Errorf("write segment %d: %w", w.segIndex, err)
			// Undo a partial write so that the next group starts on a frame
			// boundary; if that fails too the segment has garbage in it.
			if terr := w.seg.Truncate(w.segSize); terr != nil {
				w.fatal = errors.Join(err, fmt.Errorf("truncate segment %d: %w", w.segIndex, terr))
				return w.fatal
			}
			return err
		}
		w.segSize += int64(len(buf))
		w.dirty = true
		w.metrics.groupCommits.Inc()
		w.metrics.appends.Add(float64(g.batches))
		w.metrics.recordsLogged.Add(float64(g.records))
		w.metrics.bytesLogged.Add(float64(len(buf)))
	}
	if w.dirty && (w.opts.Sync || g.sync) {
		if err := w.fsync(); err != nil {
			return err
		}
	}
	if g.rotate {
		return w.rotate()
	}
	return nil
}

// rotate makes the current segment durable and closes it, and starts the
// next one. If the next segment cannot be created the current one stays.
func (w *WAL) rotate() error {
	next, err := createSegment(w.dir, w.segIndex+1)
	if err != nil {
		return err
	}
	if w.dirty {
		if err := w.fsync(); err != nil {
			return errors.Join(err, next.Close())
		}
	}
	if err := w.seg.Close(); err != nil {
		w.logger.Warn("close wal segment", "segment", w.segIndex, "err", err)
	}
	w.seg, w.segIndex, w.segSize, w.dirty = next, w.segIndex+1, SegmentHeaderSize, false
	w.metrics.segmentCurrent.Set(float64(w.segIndex))
	w.mu.Lock()
	w.current = w.segIndex
	w.mu.Unlock()
	return nil
}

func (w *WAL) fsync() error {
	start := time.Now()
	err := w.syncFile(w.seg)
	w.metrics.fsyncDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		// The kernel may have dropped the dirty pages: what is on disk is
		// unknown until the WAL is reopened and re-read.
		w.fatal = fmt.Errorf("sync segment %d: %w", w.segIndex, err)
		return w.fatal
	}
	w.dirty = false
	return nil
}
