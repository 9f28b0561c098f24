package chunk

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

// Builder collects the entries of one stream into pages and encodes them
// as a chunk. It is not safe for concurrent use: one goroutine appends (the
// caller serialises Append, Meta, Snapshot and Encode), while Snapshots taken
// from it may be read concurrently by any number of goroutines.
//
// Entries are kept in an open page in arrival order. When the open page's
// line and metadata bytes reach the page size it is sorted by timestamp
// (stable) and compressed into a sealed page. Sealed page bytes are never
// modified and the open page's backing array is never written below the
// length a Snapshot captured, which is what makes Snapshots safe without
// copying.
type Builder struct {
	enc      Encoding
	level    zstd.EncoderLevel
	pageSize int
	err      error // sticky; reported by Encode

	pages  []pageRef // sealed pages, each in its own exact-size, immutable buffer
	stored int       // bytes of all sealed pages
	blooms int       // bytes of the sealed pages' bloom filters
	meta   Meta      // of the sealed pages (CompressedBytes unused)

	open       []model.Entry // arrival order
	openRaw    int
	openMin    int64
	openMax    int64
	openSorted bool

	newest    model.Entry // newest sealed entry, for duplicate detection
	hasNewest bool
	// dedup indexes the open page by (timestamp, line hash) once appends
	// stop being strictly increasing, so that duplicate checks stay O(1)
	// for out-of-order data and runs of equal timestamps. nil until needed.
	dedup map[dedupKey]int32
}

// Level trades encoding CPU for chunk size. It applies to EncZstd only, is
// not recorded in the chunk and does not change decoding speed.
type Level uint8

// Levels. LevelDefault (zstd SpeedDefault) is the ingestion level: about
// 300 MB/s of raw lines per core (190-350 MB/s measured on a shared
// machine). LevelBest (SpeedBestCompression) costs 5-8 times the CPU for
// 4-8 % less space and suits re-encoding chunks off the ingest path. See
// BenchmarkEncode and docs/format/chunk.md.
const (
	LevelDefault Level = iota
	LevelFastest
	LevelBetter
	LevelBest
)

func (l Level) zstd() zstd.EncoderLevel {
	switch l {
	case LevelFastest:
		return zstd.SpeedFastest
	case LevelBetter:
		return zstd.SpeedBetterCompression
	case LevelBest:
		return zstd.SpeedBestCompression
	}
	return zstdLevel
}

// Options configure a Builder.
type Options struct {
	Encoding Encoding
	// PageSize is the line and metadata volume at which a page is sealed;
	// <= 0 selects DefaultPageSize, larger than MaxPageSize is capped.
	PageSize int
	Level    Level
}

// DefaultOptions returns zstd, 256 KiB pages, LevelDefault.
func DefaultOptions() Options {
	return Options{Encoding: DefaultEncoding, PageSize: DefaultPageSize, Level: LevelDefault}
}

// NewBuilder returns a builder that compresses pages with enc at
// LevelDefault and seals a page when its entries hold pageSize bytes of
// lines and metadata (<= 0 selects DefaultPageSize). An unknown enc makes
// every Append fail and Encode return an error wrapping
// ErrUnsupportedFeature (validate configuration with ParseEncoding).
func NewBuilder(enc Encoding, pageSize int) *Builder {
	return NewBuilderOptions(Options{Encoding: enc, PageSize: pageSize})
}

// NewBuilderOptions returns a builder configured by o (see NewBuilder).
func NewBuilderOptions(o Options) *Builder {
	return newBuilder(o.Encoding, o.PageSize, o.Level.zstd())
}

func newBuilder(enc Encoding, pageSize int, level zstd.EncoderLevel) *Builder {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	pageSize = min(pageSize, MaxPageSize)
	b := &Builder{enc: enc, level: level, pageSize: pageSize, openSorted: true}
	if !enc.valid() {
		b.err = fmt.Errorf("chunk encoding %d: %w", uint8(enc), ErrUnsupportedFeature)
	}
	return b
}

// Append adds an entry. Entries may arrive in any timestamp order. It
// returns false and stores nothing if an entry with the same timestamp and
// line is already in the open page or is the newest sealed entry (exact
// duplicates are dropped silently, as in Loki), or if the builder was
// created with an unknown encoding. Append keeps e.Line and e.Metadata
// (strings are immutable; they must not alias a reused buffer). When the
// open page reaches the page size it is sealed, which sorts and compresses
// it.
func (b *Builder) Append(e model.Entry) bool {
	if b.err != nil {
		return false
	}
	if b.hasNewest && e.Timestamp == b.newest.Timestamp && e.Line == b.newest.Line {
		return false
	}
	if len(b.open) > 0 && e.Timestamp <= b.openMax && b.inOpenPage(e) {
		return false
	}
	if len(b.open) == 0 {
		b.openMin, b.openMax, b.openSorted = e.Timestamp, e.Timestamp, true
	} else {
		if e.Timestamp < b.openMax {
			b.openSorted = false
		}
		b.openMin = min(b.openMin, e.Timestamp)
		b.openMax = max(b.openMax, e.Timestamp)
	}
	if b.dedup != nil {
		k := dedupKey{e.Timestamp, xxhash.Sum64String(e.Line)}
		if _, ok := b.dedup[k]; !ok {
			b.dedup[k] = int32(len(b.open))
		}
	}
	// append never writes below len(b.open), so snapshots stay intact.
	b.open = append(b.open, e)
	b.openRaw += len(e.Line) + metadataBytes(e.Metadata)
	if b.openRaw >= b.pageSize {
		b.seal()
	}
	return true
}

type dedupKey struct {
	ts   int64
	hash uint64
}

// dedupScan is how many entries inOpenPage compares before it builds the
// index.
const dedupScan = 16

// inOpenPage reports whether the open page holds an entry with e's
// timestamp and line. e.Timestamp <= b.openMax.
func (b *Builder) inOpenPage(e model.Entry) bool {
	if b.dedup == nil && b.openSorted {
		// In-order data: equal timestamps sit at the end of the page.
		n := 0
		for i := len(b.open) - 1; i >= 0 && b.open[i].Timestamp == e.Timestamp; i-- {
			if b.open[i].Line == e.Line {
				return true
			}
			if n++; n == dedupScan {
				break
			}
		}
		if n < dedupScan {
			return false
		}
	}
	if b.dedup == nil {
		b.dedup = make(map[dedupKey]int32, 2*len(b.open))
		for i, o := range b.open {
			k := dedupKey{o.Timestamp, xxhash.Sum64String(o.Line)}
			if _, ok := b.dedup[k]; !ok {
				b.dedup[k] = int32(i)
			}
		}
	}
	i, ok := b.dedup[dedupKey{e.Timestamp, xxhash.Sum64String(e.Line)}]
	if !ok {
		return false
	}
	if b.open[i].Line == e.Line {
		return true
	}
	// A 64-bit hash collision: fall back to comparing every entry.
	for _, o := range b.open {
		if o.Timestamp == e.Timestamp && o.Line == e.Line {
			return true
		}
	}
	return false
}

func metadataBytes(ls model.Labels) int {
	if ls.IsEmpty() {
		return 0
	}
	n := 0
	ls.Range(func(l labels.Label) { n += len(l.Name) + len(l.Value) })
	return n
}

// sealScratch is the working memory of one seal.
type sealScratch struct {
	w       pageWriter
	payload []byte // one page payload
	packed  []byte // one compressed page
}

var sealScratchPool = sync.Pool{New: func() any { return new(sealScratch) }}

// seal sorts and compresses the open page and starts a new one.
func (b *Builder) seal() {
	if len(b.open) == 0 || b.err != nil {
		return
	}
	es := b.open
	if !b.openSorted {
		// Sort a copy: snapshots may still read the open page in arrival order.
		es = slices.Clone(es)
		slices.SortStableFunc(es, func(x, y model.Entry) int { return cmp.Compare(x.Timestamp, y.Timestamp) })
	}
	// Scratch space comes from a pool: a server holds a builder per
	// stream, and per-builder buffers of a page's size would add up to
	// hundreds of MiB.
	sc := sealScratchPool.Get().(*sealScratch)
	defer sealScratchPool.Put(sc)
	var raw int
	sc.payload, raw = sc.w.appendPayload(sc.payload[:0], es)
	if len(sc.payload) > maxPayloadSize {
		b.err = fmt.Errorf("seal page %d: payload of %d bytes exceeds %d", len(b.pages), len(sc.payload), maxPayloadSize)
		return
	}
	packed, err := compress(b.enc, b.level, sc.packed[:0], sc.payload)
	if err != nil {
		b.err = fmt.Errorf("seal page %d: %w", len(b.pages), err)
		return
	}
	sc.packed = packed
	// An exact-size copy: no slack kept per page, and the scratch buffers
	// are reused for the next page.
	data := slices.Clone(packed)
	p := pageRef{
		data:        data,
		offset:      int64(headerSize + b.stored),
		length:      len(data),
		minT:        es[0].Timestamp,
		maxT:        es[len(es)-1].Timestamp,
		entries:     len(es),
		payloadSize: len(sc.payload),
		rawBytes:    raw,
		crc:         crc32.Checksum(data, castagnoli),
	}
	if f := buildBloom(es, len(data), p.crc); f != nil {
		p.bloomRaw, p.bloomLen, p.bloomCRC = f, len(f), crc32.Checksum(f, castagnoli)
		p.bloom, _ = parseBloom(f)
		b.blooms += len(f)
	}
	if len(b.pages) == 0 || p.minT < b.meta.MinTime {
		b.meta.MinTime = p.minT
	}
	if len(b.pages) == 0 || p.maxT > b.meta.MaxTime {
		b.meta.MaxTime = p.maxT
	}
	b.meta.Entries += p.entries
	b.meta.UncompressedBytes += p.rawBytes
	b.pages = append(b.pages, p)
	b.stored += len(data)
	if last := es[len(es)-1]; !b.hasNewest || last.Timestamp >= b.newest.Timestamp {
		b.newest, b.hasNewest = last, true
	}
	// A fresh array: the old one may be referenced by snapshots.
	b.open = make([]model.Entry, 0, len(es))
	b.openRaw = 0
	b.openSorted = true
	b.dedup = nil
}

// Meta summarises everything appended so far. CompressedBytes counts the
// sealed pages plus an estimate for the open page (its raw size divided by
// the compression ratio of the sealed pages, or by a typical ratio of the
// encoding before the first page is sealed) and the table.
func (b *Builder) Meta() Meta {
	m := b.meta
	if len(b.open) > 0 {
		if len(b.pages) == 0 || b.openMin < m.MinTime {
			m.MinTime = b.openMin
		}
		if len(b.pages) == 0 || b.openMax > m.MaxTime {
			m.MaxTime = b.openMax
		}
		m.Entries += len(b.open)
		m.UncompressedBytes += b.openRaw
	}
	m.CompressedBytes = headerSize + b.stored + b.openEstimate() + b.blooms + footerSize + 2 + 32*len(b.pages)
	return m
}

func (b *Builder) openEstimate() int {
	if b.openRaw == 0 {
		return 0
	}
	if b.meta.UncompressedBytes > 0 && b.stored > 0 {
		return int(int64(b.openRaw) * int64(b.stored) / int64(b.meta.UncompressedBytes))
	}
	return b.openRaw / typicalRatio[b.enc%Encoding(len(typicalRatio))]
}

// typicalRatio is the compression ratio measured on JSON application logs
// (BenchmarkEncode), used to estimate an open page's compressed size.
var typicalRatio = [...]int{EncNone: 1, EncGZIP: 7, EncSnappy: 4, EncLZ4: 4, EncZstd: 8}

// maxTableEntrySize bounds the encoded size of one page-table entry (seven
// varints, a CRC, an extension length and a bloom extension record), so
// Encode allocates the chunk once at its final size: chunks stay in memory
// until flushed, and a reallocation would double their footprint.
const maxTableEntrySize = 7*binary.MaxVarintLen64 + 4 + binary.MaxVarintLen64 + maxBloomExtSize

// maxBloomExtSize bounds a bloom extension record: tag, length, offset,
// length and CRC.
const maxBloomExtSize = 4*binary.MaxVarintLen64 + 4

// Encode seals the open page and returns the complete chunk, which the
// caller owns, and its Meta. The builder stays usable: later Appends go to
// new pages and a later Encode returns a chunk holding all entries.
func (b *Builder) Encode() ([]byte, Meta, error) {
	b.seal()
	if b.err != nil {
		return nil, Meta{}, b.err
	}
	out := make([]byte, 0, headerSize+b.stored+b.blooms+footerSize+16+maxTableEntrySize*len(b.pages))
	flags := uint16(0)
	if b.blooms > 0 {
		flags |= FlagBloom
	}
	out = appendHeader(out, b.enc, flags)
	for _, p := range b.pages {
		out = append(out, p.data...)
	}
	out = appendBloomsTableAndFooter(out, b.pages)
	m := b.meta
	m.CompressedBytes = len(out)
	return out, m, nil
}

// Snapshot is an immutable view of a Builder's entries at the time it was
// taken. It stays valid and unchanged while the Builder receives more
// entries, and is safe for concurrent use.
type Snapshot struct {
	enc        Encoding
	pages      []pageRef
	open       []model.Entry // arrival order
	openMin    int64
	openMax    int64
	openSorted bool
	meta       Meta
}

// Snapshot captures everything appended so far. It copies no line data:
// sealed pages are shared and the open page is captured by slice header.
func (b *Builder) Snapshot() *Snapshot {
	return &Snapshot{
		enc:        b.enc,
		pages:      b.pages[:len(b.pages):len(b.pages)],
		open:       b.open[:len(b.open):len(b.open)],
		openMin:    b.openMin,
		openMax:    b.openMax,
		openSorted: b.openSorted,
		meta:       b.Meta(),
	}
}

// Meta returns the Builder's Meta at the time of the snapshot.
func (s *Snapshot) Meta() Meta { return s.meta }

// Iterator returns the snapshot's entries with r.Min <= ts < r.Max that pass
// f, in dir order (see Chunk.Iterator). Lines of sealed pages point into
// freshly decompressed buffers; lines of the open page are the appended
// strings.
func (s *Snapshot) Iterator(r model.TimeRange, dir model.Direction, f *iter.Filter) iter.EntryIterator {
	it := newIterator(s.enc, s.pages, nil, r, dir, f)
	if len(s.open) > 0 && r.Overlaps(s.openMin, s.openMax) {
		it.addSource(&source{
			idx:        len(s.pages),
			minT:       s.openMin,
			maxT:       s.openMax,
			open:       s.open,
			openSorted: s.openSorted,
		})
	}
	it.start()
	return it
}
