package block

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/ledgerlog/ledgerlog/internal/model"
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
	bkt  objstore.BucketReader
	meta Meta
	dir  string
	ix   *index.Index
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
	b := &Block{bkt: bkt, meta: meta, dir: meta.Dir()}
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
