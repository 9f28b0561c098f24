package block

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/chunk"
	"github.com/ledgerlog/ledgerlog/internal/storage/index"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

// ErrNotFound is returned by Open when the block has no meta.json (it does
// not exist, is partial, or is being deleted).
var ErrNotFound = errors.New("block not found")

// Block is an opened block: its meta and its parsed index, held in memory.
// A Block is immutable and safe for concurrent use; it holds no open files
// and needs no Close. Slices and labels it returns are shared and must not
// be modified.
type Block struct {
	bkt   objstore.BucketReader
	meta  Meta
	dir   string
	ix    *index.Index
	cache *ChunkCache // for OpenChunk
}

// StreamRef is a stream of a block selected by a query, with the chunks
// that overlap the query's time range.
type StreamRef struct {
	Labels      model.Labels
	Fingerprint uint64
	Chunks      []ChunkRef
}

// Open reads a block's meta.json and index and verifies them (index CRCs
// and structure, chunk references against the segment sizes in meta.json).
// Corrupt data gives a *iter.CorruptionError, after which the caller
// should Quarantine the block; a missing meta.json gives ErrNotFound.
func Open(ctx context.Context, bkt objstore.BucketReader, tenant string, id ulid.ULID) (*Block, error) {
	metaName := objectName(tenant, id, MetaFilename)
	mb, err := getAll(ctx, bkt, metaName)
	if err != nil {
		if bkt.IsObjNotFoundErr(err) {
			return nil, fmt.Errorf("open block %s: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("open block %s: %w", id, err)
	}
	meta, err := parseMeta(mb, tenant, id)
	if err != nil {
		return nil, fmt.Errorf("open block %s: %w", id, &iter.CorruptionError{Object: metaName, Offset: -1, Err: err})
	}
	return openWithMeta(ctx, bkt, meta)
}

// OpenWithMeta opens a block whose meta the caller already has (from
// ListMetas), fetching only the index.
func OpenWithMeta(ctx context.Context, bkt objstore.BucketReader, meta Meta) (*Block, error) {
	return openWithMeta(ctx, bkt, meta)
}

func openWithMeta(ctx context.Context, bkt objstore.BucketReader, meta Meta) (*Block, error) {
	b := &Block{bkt: bkt, meta: meta, dir: meta.Dir(), cache: sharedChunkCache}
	indexName := b.dir + IndexFilename
	data, err := getAll(ctx, bkt, indexName)
	if err != nil {
		if bkt.IsObjNotFoundErr(err) {
			// meta.json exists, so the index must: the block is damaged.
			err = &iter.CorruptionError{Object: indexName, Offset: -1, Err: err}
		}
		return nil, fmt.Errorf("open block %s: %w", meta.ULID, err)
	}
	if size := meta.fileSize(IndexFilename); size >= 0 && size != int64(len(data)) {
		return nil, fmt.Errorf("open block %s: %w", meta.ULID, &iter.CorruptionError{
			Object: indexName, Offset: -1, Err: fmt.Errorf("size %d, meta.json says %d", len(data), size)})
	}
	ix, err := index.Decode(data)
	if err != nil {
		var ce *iter.CorruptionError
		if errors.As(err, &ce) {
			ce.Object = indexName
		}
		return nil, fmt.Errorf("open block %s: %w", meta.ULID, err)
	}
	if err := b.verify(ix); err != nil {
		return nil, fmt.Errorf("open block %s: %w", meta.ULID, &iter.CorruptionError{Object: indexName, Offset: -1, Err: err})
	}
	b.ix = ix
	return b, nil
}

// verify checks the index against meta.json: the stream count and every
// chunk reference against the size of its segment.
func (b *Block) verify(ix *index.Index) error {
	if ix.Len() != b.meta.Stats.Streams {
		return fmt.Errorf("index has %d streams, meta.json says %d", ix.Len(), b.meta.Stats.Streams)
	}
	if len(b.meta.Files) == 0 {
		return nil
	}
	var sizes []int64
	for n := 1; ; n++ {
		size := b.meta.fileSize(SegmentName(n))
		if size < 0 {
			break
		}
		sizes = append(sizes, size)
	}
	for _, s := range ix.Streams() {
		for _, c := range s.Chunks {
			if c.Segment > len(sizes) {
				return fmt.Errorf("stream %s: chunk in missing segment %d", s.Labels, c.Segment)
			}
			if c.Offset <= SegmentHeaderSize || c.Offset > sizes[c.Segment-1]-int64(c.Length)-4 {
				return fmt.Errorf("stream %s: chunk at %d+%d exceeds segment %d of %d bytes",
					s.Labels, c.Offset, c.Length, c.Segment, sizes[c.Segment-1])
			}
		}
	}
	return nil
}

// Meta returns the block's meta.json content.
func (b *Block) Meta() Meta { return b.meta }

// ID returns the block's ULID.
func (b *Block) ID() ulid.ULID { return b.meta.ULID }

// Index returns the parsed index.
func (b *Block) Index() *index.Index { return b.ix }

// Streams returns the streams matching every matcher that have chunks
// overlapping r, sorted by labels, each with only those chunks. Matchers
// follow Prometheus semantics (a missing label equals ""). Safe for
// concurrent use.
func (b *Block) Streams(ms []*model.Matcher, r model.TimeRange) []StreamRef {
	if !r.Overlaps(b.meta.MinTime, b.meta.MaxTime-1) {
		return nil
	}
	// Two passes: count the overlapping chunks, then copy those of
	// partly overlapping streams into one shared slab.
	type sel struct{ id, n int }
	var sels []sel
	partial := 0
	b.ix.SelectFunc(ms, func(id int) {
		n := 0
		chunks := b.ix.Stream(id).Chunks
		for i := range chunks {
			if r.Overlaps(chunks[i].MinTime, chunks[i].MaxTime) {
				n++
			}
		}
		if n > 0 {
			sels = append(sels, sel{id, n})
			if n < len(b.ix.Stream(id).Chunks) {
				partial += n
			}
		}
	})
	if len(sels) == 0 {
		return nil
	}
	out := make([]StreamRef, len(sels))
	slab := make([]ChunkRef, 0, partial)
	for i, sl := range sels {
		s := b.ix.Stream(sl.id)
		chunks := s.Chunks[:len(s.Chunks):len(s.Chunks)]
		if sl.n < len(s.Chunks) {
			start := len(slab)
			for i := range s.Chunks {
				if r.Overlaps(s.Chunks[i].MinTime, s.Chunks[i].MaxTime) {
					slab = append(slab, s.Chunks[i])
				}
			}
			chunks = slab[start:len(slab):len(slab)]
		}
		out[i] = StreamRef{Labels: s.Labels, Fingerprint: s.Fingerprint, Chunks: chunks}
	}
	return out
}

// LabelNames returns the sorted label names of the streams matching ms.
func (b *Block) LabelNames(ms []*model.Matcher) []string { return b.ix.LabelNames(ms) }

// LabelValues returns the sorted values of label name among the streams
// matching ms.
func (b *Block) LabelValues(name string, ms []*model.Matcher) []string {
	return b.ix.LabelValues(name, ms)
}

// ReadChunk fetches one chunk's data with a ranged GET and checks its
// CRC32C; a mismatch or short read is a *iter.CorruptionError. The
// returned slice is owned by the caller. Safe for concurrent use.
func (b *Block) ReadChunk(ctx context.Context, ref ChunkRef) ([]byte, error) {
	name := b.dir + SegmentName(ref.Segment)
	rc, err := b.bkt.GetRange(ctx, name, ref.Offset, int64(ref.Length)+4)
	if err != nil {
		return nil, fmt.Errorf("read chunk %s@%d: %w", name, ref.Offset, err)
	}
	buf := make([]byte, ref.Length+4)
	_, err = io.ReadFull(rc, buf)
	if cerr := rc.Close(); err == nil && cerr != nil {
		return nil, fmt.Errorf("read chunk %s@%d: %w", name, ref.Offset, cerr)
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = &iter.CorruptionError{Object: name, Offset: ref.Offset, Err: fmt.Errorf("short chunk: %w", err)}
		}
		return nil, fmt.Errorf("read chunk %s@%d: %w", name, ref.Offset, err)
	}
	data := buf[:ref.Length:ref.Length]
	if crc32.Checksum(data, castagnoli) != binary.BigEndian.Uint32(buf[ref.Length:]) {
		return nil, &iter.CorruptionError{Object: name, Offset: ref.Offset, Err: errors.New("chunk crc mismatch")}
	}
	return data, nil
}

// WithChunkCache returns a Block that shares b's index and opens chunks
// through cache instead of the shared one (nil: no caching).
func (b *Block) WithChunkCache(cache *ChunkCache) *Block {
	bb := *b
	bb.cache = cache
	return &bb
}

// OpenChunk opens one chunk for a query without fetching its pages. The
// chunk's header, page table and bloom filters come from the block's
// ChunkCache or, on a miss, from two or three small ranged GETs of the
// chunk's start and tail (then cached); pages are fetched with ranged GETs
// only when an iterator reaches them, adjacent pages together, so a needle
// query fetches just the pages its filter cannot rule out. Everything read
// is verified by the chunk's own checksums (header and table by the footer
// CRC, pages and filters by theirs); the segment's whole-chunk CRC, which
// ReadChunk checks, is not, because the chunk is not read whole.
//
// The chunk reads with ctx, so it must not be used after ctx ends; each
// call returns a chunk of its own. Corrupt data gives a
// *iter.CorruptionError naming the segment, with offsets in the segment.
// Safe for concurrent use.
func (b *Block) OpenChunk(ctx context.Context, ref ChunkRef) (*chunk.Chunk, error) {
	r := &segmentReader{ctx: ctx, bkt: b.bkt, dir: b.dir, segment: ref.Segment, base: ref.Offset, size: int64(ref.Length)}
	// The key needs no allocation: a cache hit is the common case.
	key := chunkKey{dir: b.dir, segment: ref.Segment, offset: ref.Offset}
	if b.cache != nil {
		if c := b.cache.get(key); c != nil {
			return c.WithReader(r), nil
		}
	}
	c, err := chunk.OpenAt(r, int64(ref.Length))
	if err != nil {
		name := r.name()
		var ce *iter.CorruptionError
		if errors.As(err, &ce) && ce.Object == "chunk" {
			ce.Object = name
			if ce.Offset >= 0 {
				ce.Offset += ref.Offset
			}
		}
		return nil, fmt.Errorf("open chunk %s@%d: %w", name, ref.Offset, err)
	}
	if b.cache != nil {
		b.cache.add(key, c.WithReader(nil))
	}
	return c, nil
}

// segmentReader reads one chunk's bytes from its segment with ranged GETs.
// A read past what the bucket holds is a *iter.CorruptionError (the index
// promised the bytes).
type segmentReader struct {
	ctx     context.Context
	bkt     objstore.BucketReader
	dir     string
	segment int
	base    int64 // chunk offset in the segment
	size    int64 // chunk length
}

func (r *segmentReader) name() string { return r.dir + SegmentName(r.segment) }

func (r *segmentReader) ReadAt(p []byte, off int64) (int, error) {
	name := r.name()
	if off < 0 || int64(len(p)) > r.size-off || off > math.MaxInt64-r.base {
		return 0, fmt.Errorf("read %s@%d: range %d+%d outside the chunk of %d bytes", name, r.base, off, len(p), r.size)
	}
	rc, err := r.bkt.GetRange(r.ctx, name, r.base+off, int64(len(p)))
	if err != nil {
		return 0, fmt.Errorf("read %s@%d: %w", name, r.base+off, err)
	}
	n, err := io.ReadFull(rc, p)
	if cerr := rc.Close(); err == nil && cerr != nil {
		return n, fmt.Errorf("read %s@%d: %w", name, r.base+off, cerr)
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = &iter.CorruptionError{Object: name, Offset: r.base + off, Err: fmt.Errorf("short read: %w", err)}
		}
		return n, fmt.Errorf("read %s@%d: %w", name, r.base+off, err)
	}
	return n, nil
}
