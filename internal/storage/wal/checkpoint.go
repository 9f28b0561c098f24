package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// checkpointBufferSize is the write buffer of a checkpoint segment.
const checkpointBufferSize = 1 << 20

// WriteCheckpoint writes a checkpoint that replaces all segments below
// boundary and then deletes those segments and older checkpoints. fill is
// called once and adds, through add, every record from those segments that
// is still needed (typically the head's state as of the boundary). After a
// crash at any point the WAL replays completely: either the old segments
// and checkpoint, or the new checkpoint followed by segment boundary and
// later (docs/format/wal.md, "Checkpoint").
//
// boundary must not be above the segment being written; typically it is the
// index NextSegment returned. An error from fill or from add aborts the
// checkpoint and nothing changes.
//
// add copies rec before it returns. It must only be called from the
// goroutine running fill, before fill returns.
//
// WriteCheckpoint may run concurrently with Append and NextSegment (it does
// not block them); concurrent WriteCheckpoint calls run one after another.
func (w *WAL) WriteCheckpoint(boundary int, fill func(add func(rec []byte) error) error) (err error) {
	w.cpMu.Lock()
	defer w.cpMu.Unlock()
	start := time.Now()
	w.metrics.checkpointCreations.Inc()
	defer func() {
		w.metrics.checkpointDuration.Observe(time.Since(start).Seconds())
		if err != nil {
			w.metrics.checkpointCreationsFailed.Inc()
			err = fmt.Errorf("write checkpoint %d: %w", boundary, err)
		}
	}()

	w.mu.Lock()
	current, closed := w.current, w.closed
	w.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if boundary < 0 || boundary > current {
		return fmt.Errorf("boundary outside segments 0 to %d being written", current)
	}
	l, err := listDir(w.dir)
	if err != nil {
		return err
	}
	if latest := l.latestCheckpoint(); latest >= boundary {
		return fmt.Errorf("checkpoint %d already exists", latest)
	}

	final := filepath.Join(w.dir, checkpointName(boundary))
	tmp := final + tmpSuffix
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove old temporary checkpoint: %w", err)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return fmt.Errorf("create temporary checkpoint: %w", err)
	}
	cw := &checkpointWriter{dir: tmp, segmentSize: w.opts.SegmentSize}
	ferr := fill(cw.add)
	cw.finished = true
	if ferr == nil {
		ferr = cw.close()
	} else {
		ferr = errors.Join(ferr, cw.abort())
	}
	if ferr == nil {
		ferr = syncDir(tmp)
	}
	if ferr == nil {
		// The commit point: from here on replay uses the new checkpoint.
		if ferr = os.Rename(tmp, final); ferr == nil {
			ferr = syncDir(w.dir)
		}
	}
	if ferr != nil {
		if rerr := os.RemoveAll(tmp); rerr != nil {
			w.logger.Warn("remove temporary checkpoint", "checkpoint", filepath.Base(tmp), "err", rerr)
		}
		return ferr
	}
	w.metrics.checkpointBytes.Add(float64(cw.written))

	l, err = listDir(w.dir)
	if err != nil {
		// The checkpoint is done; Open or the next checkpoint deletes the rest.
		w.logger.Warn("list wal dir after checkpoint", "err", err)
		return nil
	}
	w.deleteBefore(l, boundary)
	w.logger.Info("wal checkpoint written", "checkpoint", boundary, "records", cw.records,
		"bytes", cw.written, "duration", time.Since(start))
	return nil
}

// deleteBefore deletes the segments below boundary and the checkpoints
// older than boundary. Failures are logged and counted, not returned: the
// checkpoint at boundary already makes them obsolete, and a later
// checkpoint or Open deletes them.
func (w *WAL) deleteBefore(l listing, boundary int) {
	if boundary < 0 {
		return
	}
	remove := func(name string, all bool) {
		path := filepath.Join(w.dir, name)
		var err error
		if all {
			err = os.RemoveAll(path)
		} else {
			err = os.Remove(path)
		}
		if err != nil {
			w.metrics.checkpointDeletionsFailed.Inc()
			w.logger.Warn("delete obsolete wal file", "file", name, "err", err)
			return
		}
		w.metrics.checkpointDeletions.Inc()
	}
	for _, b := range l.checkpoints {
		if b < boundary {
			remove(checkpointName(b), true)
		}
	}
	for _, i := range l.segments {
		if i < boundary {
			remove(segmentName(i), false)
		}
	}
}

// checkpointWriter writes one-record frames into the segments of a
// temporary checkpoint directory. Not safe for concurrent use.
type checkpointWriter struct {
	dir         string
	segmentSize int64

	f        *os.File
	bw       *bufio.Writer
	index    int   // index of the open segment
	size     int64 // bytes in the open segment
	written  int64 // bytes in all segments
	records  int
	finished bool // fill returned: add refuses
}

func (c *checkpointWriter) add(rec []byte) error {
	if c.finished {
		return errors.New("checkpoint add called after fill returned")
	}
	recs := [1][]byte{rec}
	size := payloadSize(recs[:])
	if size > MaxBatchSize {
		return fmt.Errorf("checkpoint record of %d bytes: %w", len(rec), ErrBatchTooLarge)
	}
	n := int64(FrameHeaderSize + size)
	if c.f == nil || (c.size > SegmentHeaderSize && c.size+n > c.segmentSize) {
		if err := c.next(); err != nil {
			return err
		}
	}
	var hdr [FrameHeaderSize + binary.MaxVarintLen64]byte
	h := appendFrame(hdr[:0], recs[:0], size, frameCRC(recs[:], size))
	h = binary.AppendUvarint(h, uint64(len(rec)))
	if _, err := c.bw.Write(h); err != nil {
		return fmt.Errorf("write checkpoint segment %d: %w", c.index, err)
	}
	if _, err := c.bw.Write(rec); err != nil {
		return fmt.Errorf("write checkpoint segment %d: %w", c.index, err)
	}
	c.size += n
	c.written += n
	c.records++
	return nil
}

// next finishes the open segment and starts the next one.
func (c *checkpointWriter) next() error {
	i := 0
	if c.f != nil {
		if err := c.finish(); err != nil {
			return err
		}
		i = c.index + 1
	}
	f, err := os.OpenFile(segmentPath(c.dir, i), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create checkpoint segment %d: %w", i, err)
	}
	c.f, c.index, c.size = f, i, SegmentHeaderSize
	c.written += SegmentHeaderSize
	if c.bw == nil {
		c.bw = bufio.NewWriterSize(f, checkpointBufferSize)
	} else {
		c.bw.Reset(f)
	}
	if _, err := c.bw.Write(appendSegmentHeader(nil)); err != nil {
		return fmt.Errorf("write checkpoint segment %d: %w", i, err)
	}
	return nil
}

// finish flushes, fsyncs and closes the open segment.
func (c *checkpointWriter) finish() error {
	f := c.f
	c.f = nil
	if err := c.bw.Flush(); err != nil {
		return errors.Join(fmt.Errorf("write checkpoint segment %d: %w", c.index, err), f.Close())
	}
	if err := fdatasync(f); err != nil {
		return errors.Join(fmt.Errorf("sync checkpoint segment %d: %w", c.index, err), f.Close())
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close checkpoint segment %d: %w", c.index, err)
	}
	return nil
}

// close finishes the checkpoint's last segment; an empty checkpoint still
// gets one segment holding only its header.
func (c *checkpointWriter) close() error {
	if c.f == nil {
		if err := c.next(); err != nil {
			return err
		}
	}
	return c.finish()
}

// abort closes the open segment without syncing; the directory is removed.
func (c *checkpointWriter) abort() error {
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}
