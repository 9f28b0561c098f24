package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"

	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

// readBufferSize is the bufio size used to read segments: large enough that
// small frames cost no syscall each, while a large payload is read straight
// into the frame buffer.
const readBufferSize = 256 << 10

// Reader decodes the records of one segment file (a WAL segment or a
// checkpoint segment). It checks every frame's CRC32C before it returns any
// record of that frame, and returns the records of a frame only if the whole
// frame is intact, so a batch is read completely or not at all.
//
// A Reader is not safe for concurrent use. It reads src sequentially and
// never seeks.
type Reader struct {
	br      *bufio.Reader
	name    string
	segment int
	size    int64 // bytes in the file
	off     int64 // bytes consumed from br

	headerDone bool
	payload    []byte // current frame's payload, reused
	rest       []byte // records of the current frame not yet returned
	rec        []byte
	frame      int64 // offset of the current frame
	valid      int64 // end of the last intact frame (or of the header)
	badEnd     int64 // end of the damaged frame per its length field, -1 if unknown
	err        error
	done       bool
}

// NewReader returns a Reader of a segment whose bytes src yields. size is
// the number of bytes src holds (the file size): a frame whose length runs
// past it is reported as torn without being read, so a damaged length never
// makes the Reader allocate more than the file holds. name is used in errors
// (a path; its base name gives CorruptionError.Segment).
func NewReader(src io.Reader, size int64, name string) *Reader {
	r := &Reader{}
	r.reset(src, size, name)
	return r
}

// reset makes r read a new file, keeping its buffers.
func (r *Reader) reset(src io.Reader, size int64, name string) {
	if r.br == nil {
		r.br = bufio.NewReaderSize(src, readBufferSize)
	} else {
		r.br.Reset(src)
	}
	seg, ok := parseIndex(filepath.Base(name))
	if !ok {
		seg = -1
	}
	*r = Reader{br: r.br, name: name, segment: seg, size: size, payload: r.payload[:0], badEnd: -1}
}

// Next advances to the next record and reports whether there is one. It
// returns false at the end of the file or at the first error (see Err).
func (r *Reader) Next() bool {
	for len(r.rest) == 0 {
		if r.done || !r.readFrame() {
			r.rec = nil
			return false
		}
	}
	// readFrame has validated every record length of the frame.
	n, k := binary.Uvarint(r.rest)
	r.rec = r.rest[k : k+int(n)]
	r.rest = r.rest[k+int(n):]
	return true
}

// Record returns the current record. It points into the Reader's buffer and
// is valid only until the next call to Next; copy it to keep it.
func (r *Reader) Record() []byte { return r.rec }

// Err returns the error that ended the iteration, nil at a clean end of
// file. Damage is a *CorruptionError (errors.As also finds its
// *iter.CorruptionError); ErrUnsupportedFormat marks data of a newer release;
// anything else is an I/O error from src.
func (r *Reader) Err() error { return r.err }

// Offset returns the end of the last frame that was read intact (the
// segment header's end before the first frame, 0 if the header is bad): the
// length a torn file is cut back to.
func (r *Reader) Offset() int64 { return r.valid }

func (r *Reader) fail(off int64, torn bool, cause error) bool {
	r.err = &CorruptionError{
		Segment: r.segment,
		Torn:    torn,
		Err:     &iter.CorruptionError{Object: r.name, Offset: off, Err: cause},
	}
	r.done = true
	return false
}

func (r *Reader) readHeader() bool {
	var hdr [SegmentHeaderSize]byte
	n, err := io.ReadFull(r.br, hdr[:])
	r.off += int64(n)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return r.fail(0, true, fmt.Errorf("segment header of %d bytes: %w", n, ErrTruncated))
	case err != nil:
		r.err, r.done = fmt.Errorf("read %s: %w", r.name, err), true
		return false
	}
	if [4]byte(hdr[0:4]) != magic {
		return r.fail(0, false, fmt.Errorf("magic %x: %w", hdr[0:4], ErrBadHeader))
	}
	v := Version(hdr[4])
	if v == 0 {
		return r.fail(0, false, fmt.Errorf("version 0: %w", ErrBadHeader))
	}
	if v > currentVersion {
		r.err = fmt.Errorf("read %s: segment version %s, this release reads up to %s: %w", r.name, v, currentVersion, ErrUnsupportedFormat)
		r.done = true
		return false
	}
	r.headerDone = true
	r.valid = r.off
	return true
}

// readFrame reads and verifies the next frame into r.rest.
func (r *Reader) readFrame() bool {
	if !r.headerDone && !r.readHeader() {
		return false
	}
	start := r.off
	var hdr [FrameHeaderSize]byte
	n, err := io.ReadFull(r.br, hdr[:])
	r.off += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		r.done = true
		return false
	case errors.Is(err, io.ErrUnexpectedEOF):
		return r.fail(start, true, fmt.Errorf("frame header of %d bytes: %w", n, ErrTruncated))
	case err != nil:
		r.err, r.done = fmt.Errorf("read %s: %w", r.name, err), true
		return false
	}
	want := binary.LittleEndian.Uint32(hdr[0:4])
	length := int64(binary.LittleEndian.Uint32(hdr[4:8]))
	flags := FrameFlags(hdr[8])
	end := start + FrameHeaderSize + length
	if length == 0 || length > MaxBatchSize {
		return r.fail(start, false, fmt.Errorf("length %d: %w", length, ErrBadLength))
	}
	r.badEnd = end
	if end > r.size {
		return r.fail(start, true, fmt.Errorf("frame of %d bytes, %d left in file: %w", length, r.size-start-FrameHeaderSize, ErrTruncated))
	}
	if int64(cap(r.payload)) < length {
		r.payload = make([]byte, length)
	}
	p := r.payload[:length]
	n, err = io.ReadFull(r.br, p)
	r.off += int64(n)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// The file shrank under us or size was wrong.
		return r.fail(start, true, fmt.Errorf("frame payload of %d bytes, %d read: %w", length, n, ErrTruncated))
	case err != nil:
		r.err, r.done = fmt.Errorf("read %s: %w", r.name, err), true
		return false
	}
	got := crc32.Update(crc32.Update(0, castagnoli, hdr[4:9]), castagnoli, p)
	if got != want {
		// A bad checksum on the frame that ends the file is a torn write.
		return r.fail(start, end == r.size, fmt.Errorf("crc32c %08x, header says %08x: %w", got, want, ErrChecksum))
	}
	if flags&^knownFlags != 0 {
		r.err = fmt.Errorf("read %s: frame at offset %d has flags %s: %w", r.name, start, flags, ErrUnsupportedFormat)
		r.done = true
		return false
	}
	if err := checkPayload(p); err != nil {
		return r.fail(start, false, err)
	}
	r.rest = p
	r.frame = start
	r.valid = end
	r.badEnd = -1
	return true
}

// checkPayload verifies that p is a sequence of uvarint-prefixed records
// that ends exactly at the end of p.
func checkPayload(p []byte) error {
	for off := 0; off < len(p); {
		n, k := binary.Uvarint(p[off:])
		if k <= 0 {
			return fmt.Errorf("record length at payload offset %d unreadable: %w", off, ErrBadPayload)
		}
		if n > uint64(len(p)-off-k) {
			return fmt.Errorf("record of %d bytes at payload offset %d, %d left: %w", n, off, len(p)-off-k, ErrBadPayload)
		}
		off += k + int(n)
	}
	return nil
}
