package block

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/thanos-io/objstore"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/index"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
)

// Chunk segment format constants (docs/format/block.md).
const (
	// SegmentMagic starts every chunk segment file ("LLCH").
	SegmentMagic uint32 = 0x4C4C4348
	// SegmentVersion1 is the only segment version so far.
	SegmentVersion1 byte = 1
	// SegmentHeaderSize is the size of a segment's header.
	SegmentHeaderSize = 8
	// DefaultMaxSegmentSize bounds a chunk segment file.
	DefaultMaxSegmentSize = 512 << 20
)

// ErrEmpty is returned by Flush when no stream was added.
var ErrEmpty = errors.New("block has no streams")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ChunkMeta describes one encoded chunk; it mirrors chunk.Meta. MinTime and
// MaxTime are the first and last entry timestamps, inclusive.
type ChunkMeta struct {
	MinTime, MaxTime  int64
	Entries           int
	UncompressedBytes int
	CompressedBytes   int
}

// ChunkData is one encoded chunk of a stream: opaque bytes and their summary.
type ChunkData struct {
	Meta ChunkMeta
	Data []byte
}

// ChunkRef locates a chunk of an opened block; see index.ChunkRef.
type ChunkRef = index.ChunkRef

// WriterOptions configure a Writer. The zero value is usable.
type WriterOptions struct {
	// Window is the time window the block is written for. Zero means the
	// DefaultWindow-aligned window containing the earliest chunk.
	Window model.TimeRange
	// Level is the compaction level; 0 means 1 (a block cut by ingestion).
	Level int
	// Sources are the level 1 blocks whose data the block holds. Empty
	// means the block itself (right for level 1 blocks).
	Sources []ulid.ULID
	// Parents are the blocks this block is built from (compaction only).
	Parents []Parent
	// ID is the block's ULID; zero means a new ULID at Now.
	ID ulid.ULID
	// Now gives the time for a new ULID; nil means time.Now.
	Now func() time.Time
	// MaxSegmentSize bounds a chunk segment file; 0 means
	// DefaultMaxSegmentSize.
	MaxSegmentSize int64
	// TempDir, if set, is a directory where chunk segments are spooled
	// while the block is built, so the Writer holds only metadata in
	// memory. Empty means chunk data is buffered in memory.
	TempDir string
	// RetainChunks lets the Writer keep references to ChunkData.Data
	// instead of copying it (memory mode only). The caller promises not to
	// modify the slices until Close; the head's encoded chunks qualify, and
	// flushing them then costs no extra memory.
	RetainChunks bool
}

// Writer builds one block and uploads it with Flush. A Writer is not safe
// for concurrent use. Call Close when done (also after Flush) to remove
// spooled files.
type Writer struct {
	bkt    objstore.Bucket
	tenant string
	opts   WriterOptions
	id     ulid.ULID

	streams  map[uint64][]int // labels hash -> positions in list
	list     []index.Stream
	segments []*segment
	stats    Stats
	minT     int64
	maxT     int64 // inclusive
	flushed  bool
	closed   bool
}

// segment is a chunk segment being written, in memory or in a temp file.
type segment struct {
	n     int
	size  int64
	buf   bytes.Buffer // memory mode
	parts [][]byte     // memory mode with RetainChunks: referenced, not copied
	f     *os.File     // TempDir mode
	keep  bool         // RetainChunks
}

// NewWriter returns a Writer for a new block of tenant in bkt.
func NewWriter(bkt objstore.Bucket, tenantID string, opts WriterOptions) (*Writer, error) {
	if err := tenant.ValidateID(tenantID); err != nil {
		return nil, fmt.Errorf("new block writer: %w", err)
	}
	if opts.MaxSegmentSize <= 0 {
		opts.MaxSegmentSize = DefaultMaxSegmentSize
	}
	if opts.Level <= 0 {
		opts.Level = 1
	}
	id := opts.ID
	if id.IsZero() {
		now := time.Now
		if opts.Now != nil {
			now = opts.Now
		}
		var err error
		if id, err = ulid.New(ulid.Timestamp(now()), rand.Reader); err != nil {
			return nil, fmt.Errorf("new block writer: %w", err)
		}
	}
	return &Writer{
		bkt: bkt, tenant: tenantID, opts: opts, id: id,
		streams: make(map[uint64][]int),
	}, nil
}

// ID is the ULID of the block being written.
func (w *Writer) ID() ulid.ULID { return w.id }

// AddStream adds chunks of the stream ls. Streams may come in any order, and
// a stream may be added more than once (its chunks are combined). Labels
// with an empty value are dropped (a missing label equals ""); a stream must
// keep at least one label. Chunk data is copied before AddStream returns, so
// the caller may reuse it.
func (w *Writer) AddStream(ls model.Labels, chunks []ChunkData) error {
	if w.flushed || w.closed {
		return errors.New("add stream: writer already flushed or closed")
	}
	ls = ls.WithoutEmpty()
	if ls.IsEmpty() {
		return errors.New("add stream: stream has no labels")
	}
	if name, dup := ls.HasDuplicateLabelNames(); dup {
		return fmt.Errorf("add stream %s: duplicate label %q", ls, name)
	}
	for i, c := range chunks {
		if c.Meta.Entries < 1 || c.Meta.MaxTime < c.Meta.MinTime || len(c.Data) == 0 {
			return fmt.Errorf("add stream %s: chunk %d: invalid chunk (entries %d, time [%d, %d], %d bytes)",
				ls, i, c.Meta.Entries, c.Meta.MinTime, c.Meta.MaxTime, len(c.Data))
		}
	}
	if len(chunks) == 0 {
		return nil
	}
	pos := -1
	h := ls.Hash()
	for _, p := range w.streams[h] {
		if labels.Equal(w.list[p].Labels, ls) {
			pos = p
			break
		}
	}
	if pos < 0 {
		pos = len(w.list)
		w.list = append(w.list, index.Stream{Labels: ls})
		w.streams[h] = append(w.streams[h], pos)
		w.stats.Streams++
	}
	for _, c := range chunks {
		ref, err := w.writeChunk(c.Data)
		if err != nil {
			return fmt.Errorf("add stream %s: %w", ls, err)
		}
		ref.MinTime, ref.MaxTime = c.Meta.MinTime, c.Meta.MaxTime
		ref.Entries, ref.UncompressedBytes = c.Meta.Entries, c.Meta.UncompressedBytes
		w.list[pos].Chunks = append(w.list[pos].Chunks, ref)
		if w.stats.Chunks == 0 || c.Meta.MinTime < w.minT {
			w.minT = c.Meta.MinTime
		}
		if w.stats.Chunks == 0 || c.Meta.MaxTime > w.maxT {
			w.maxT = c.Meta.MaxTime
		}
		w.stats.Chunks++
		w.stats.Entries += int64(c.Meta.Entries)
		w.stats.Bytes += int64(c.Meta.UncompressedBytes)
		w.stats.CompressedBytes += int64(len(c.Data))
	}
	return nil
}

// writeChunk appends one chunk to the current segment, starting a new one
// when it would grow past the maximum size.
func (w *Writer) writeChunk(data []byte) (ChunkRef, error) {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(data)))
	need := int64(n + len(data) + 4)
	var s *segment
	if len(w.segments) > 0 {
		s = w.segments[len(w.segments)-1]
		if s.size > SegmentHeaderSize && s.size+need > w.opts.MaxSegmentSize {
			s = nil
		}
	}
	if s == nil {
		var err error
		if s, err = w.newSegment(); err != nil {
			return ChunkRef{}, err
		}
	}
	var trailer [4]byte
	binary.BigEndian.PutUint32(trailer[:], crc32.Checksum(data, castagnoli))
	ref := ChunkRef{Segment: s.n, Offset: s.size + int64(n), Length: len(data)}
	if err := s.write(append([]byte(nil), hdr[:n]...), data, append([]byte(nil), trailer[:]...)); err != nil {
		return ChunkRef{}, fmt.Errorf("write segment %d: %w", s.n, err)
	}
	return ref, nil
}

func (w *Writer) newSegment() (*segment, error) {
	s := &segment{n: len(w.segments) + 1, keep: w.opts.RetainChunks && w.opts.TempDir == ""}
	if w.opts.TempDir != "" {
		f, err := os.CreateTemp(w.opts.TempDir, "block-"+w.id.String()+"-segment-*")
		if err != nil {
			return nil, fmt.Errorf("create segment %d: %w", s.n, err)
		}
		s.f = f
	}
	var hdr [SegmentHeaderSize]byte
	binary.BigEndian.PutUint32(hdr[:], SegmentMagic)
	hdr[4] = SegmentVersion1
	w.segments = append(w.segments, s)
	if err := s.write(hdr[:]); err != nil {
		return nil, fmt.Errorf("write segment %d: %w", s.n, err)
	}
	return s, nil
}

func (s *segment) write(parts ...[]byte) error {
	for _, p := range parts {
		switch {
		case s.f != nil:
			if _, err := s.f.Write(p); err != nil {
				return err
			}
		case s.keep:
			s.parts = append(s.parts, p)
		default:
			s.buf.Write(p)
		}
		s.size += int64(len(p))
	}
	return nil
}

// reader returns the segment's content from the start.
func (s *segment) reader() (io.Reader, error) {
	if s.keep {
		rs := make([]io.Reader, len(s.parts))
		for i, p := range s.parts {
			rs[i] = bytes.NewReader(p)
		}
		return io.MultiReader(rs...), nil
	}
	if s.f == nil {
		return bytes.NewReader(s.buf.Bytes()), nil
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return s.f, nil
}

// Flush uploads the block: every chunk segment, then the index, then
// meta.json last, and returns the meta. With the filesystem bucket of
// internal/storage/objstore each upload is fsynced before the next starts,
// so meta.json never describes missing data. If Flush fails the block stays
// partial (no meta.json) and readers ignore it. Flush may be called once.
func (w *Writer) Flush(ctx context.Context) (Meta, error) {
	if w.flushed || w.closed {
		return Meta{}, errors.New("flush block: writer already flushed or closed")
	}
	w.flushed = true
	defer w.Close()
	if len(w.list) == 0 {
		return Meta{}, ErrEmpty
	}

	ix, err := index.Encode(w.list)
	if err != nil {
		return Meta{}, fmt.Errorf("flush block %s: %w", w.id, err)
	}
	meta := Meta{
		ULID:    w.id,
		Version: MetaVersion1,
		Tenant:  w.tenant,
		MinTime: w.minT,
		MaxTime: w.maxT + 1,
		Stats:   w.stats,
		Compaction: Compaction{
			Level:   w.opts.Level,
			Sources: slices.Clone(w.opts.Sources),
			Parents: slices.Clone(w.opts.Parents),
		},
	}
	if w.maxT == 1<<63-1 {
		meta.MaxTime = w.maxT // cannot represent last+1
	}
	if len(meta.Compaction.Sources) == 0 {
		meta.Compaction.Sources = []ulid.ULID{w.id}
	}
	slices.SortFunc(meta.Compaction.Sources, ulid.ULID.Compare)
	meta.Compaction.Sources = slices.Compact(meta.Compaction.Sources)
	win := w.opts.Window
	if win == (model.TimeRange{}) {
		win = WindowFor(w.minT, DefaultWindow)
	}
	meta.Window = Window{MinTime: win.Min, MaxTime: win.Max}

	dir := Dir(w.tenant, w.id)
	for _, s := range w.segments {
		r, err := s.reader()
		if err != nil {
			return Meta{}, fmt.Errorf("flush block %s: segment %d: %w", w.id, s.n, err)
		}
		name := SegmentName(s.n)
		if err := w.bkt.Upload(ctx, dir+name, r); err != nil {
			return Meta{}, fmt.Errorf("flush block %s: upload %s: %w", w.id, name, err)
		}
		meta.Files = append(meta.Files, File{Path: name, Size: s.size})
	}
	if err := w.bkt.Upload(ctx, dir+IndexFilename, bytes.NewReader(ix)); err != nil {
		return Meta{}, fmt.Errorf("flush block %s: upload %s: %w", w.id, IndexFilename, err)
	}
	meta.Files = append(meta.Files, File{Path: IndexFilename, Size: int64(len(ix))})
	mb, err := json.MarshalIndent(&meta, "", "  ")
	if err != nil {
		return Meta{}, fmt.Errorf("flush block %s: %w", w.id, err)
	}
	if err := w.bkt.Upload(ctx, dir+MetaFilename, bytes.NewReader(mb)); err != nil {
		return Meta{}, fmt.Errorf("flush block %s: upload %s: %w", w.id, MetaFilename, err)
	}
	return meta, nil
}

// Close releases the Writer's memory and spooled files. It does not upload
// anything; a Writer closed before Flush leaves nothing in the bucket.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	var errs []error
	for _, s := range w.segments {
		if s.f != nil {
			errs = append(errs, s.f.Close(), os.Remove(s.f.Name()))
		}
	}
	w.segments = nil
	w.list = nil
	w.streams = nil
	return errors.Join(errs...)
}
