// Package chunk owns the log chunk format: the compressed, checksummed
// container of one stream's entries for a time range. A Builder collects
// entries (in any order) into sorted, independently compressed pages and
// encodes the chunk; Open and Chunk.Iterator read it back, decompressing only
// the pages a query reaches. The byte layout is specified in
// docs/format/chunk.md.
package chunk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"unsafe"

	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

// Format constants; see docs/format/chunk.md.
const (
	// Magic starts and ends every chunk ("LLCK").
	Magic uint32 = 0x4C4C434B
	// Version is the newest format version this package reads and the one
	// it writes.
	Version uint8 = 1

	headerSize = 8
	footerSize = 16

	// DefaultPageSize is the uncompressed line (and metadata) volume at
	// which the builder seals a page.
	DefaultPageSize = 256 << 10
	// MaxPageSize bounds the configurable page size.
	MaxPageSize = 16 << 20

	// maxPayloadSize bounds the uncompressed payload of one page that a
	// reader accepts (and so allocates); it leaves room for one line far
	// larger than any push limit.
	maxPayloadSize = 256 << 20
)

// Flag bits of the chunk header. Bits 0-7 are incompatible features (a
// reader that does not know one refuses the chunk); bits 8-15 are compatible
// (a reader may ignore them). Version 1 writers set none of them.
const (
	FlagEncrypted uint16 = 1 << 0 // pages are AES-256-GCM envelopes (reserved)
	FlagBloom     uint16 = 1 << 8 // pages carry token bloom sections (reserved)
	FlagHashChain uint16 = 1 << 9 // chunk carries a hash-chain link (reserved)

	incompatibleFlags uint16 = 0x00ff
	// knownIncompatible are the incompatible flags this reader implements.
	knownIncompatible uint16 = 0
)

var (
	// ErrUnsupportedVersion reports a well-formed chunk written in a format
	// version newer than this reader. It is not corruption: the chunk must
	// not be quarantined.
	ErrUnsupportedVersion = errors.New("unsupported chunk format version")
	// ErrUnsupportedFeature reports a well-formed chunk that uses an
	// incompatible feature flag or an encoding this reader does not know.
	ErrUnsupportedFeature = errors.New("unsupported chunk feature")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Meta summarises a chunk. MinTime and MaxTime are the smallest and largest
// entry timestamps (both inclusive; zero for an empty chunk).
// UncompressedBytes counts line bytes plus structured-metadata name and value
// bytes; CompressedBytes is the encoded chunk size.
type Meta struct {
	MinTime, MaxTime  int64
	Entries           int
	UncompressedBytes int
	CompressedBytes   int
}

// pageRef locates one stored page and carries its page-table entry.
type pageRef struct {
	data        []byte // stored (compressed) bytes, never modified; nil until read for chunks opened by OpenAt
	offset      int64  // offset of the page in the chunk
	length      int    // stored length
	minT, maxT  int64
	entries     int
	payloadSize int
	rawBytes    int
	crc         uint32

	// The page's bloom filter: its stored record (bloomLen 0: none) at
	// bloomOff (set when read; the builder places records at Encode), and
	// the usable filter (bits nil: none, unknown scheme or damaged).
	bloomRaw []byte
	bloomOff int64
	bloomLen int
	bloomCRC uint32
	bloom    pageBloom
}

// Chunk is an opened, verified chunk. It is immutable and safe for
// concurrent use; each Iterator is independent.
//
// A chunk opened by Open holds all its bytes. A chunk opened by OpenAt holds
// only its page table and bloom filters and reads pages through its
// io.ReaderAt when an iterator reaches them; WithReader gives the same
// parsed chunk another reader, so the parsed part can be cached and shared.
type Chunk struct {
	b        []byte      // the whole chunk, or nil (OpenAt)
	r        io.ReaderAt // page reader when b is nil
	enc      Encoding
	pages    []pageRef
	meta     Meta
	bloomErr error // first damaged bloom filter, a *iter.CorruptionError
	retained int   // bytes held by a chunk opened by OpenAt (bloom filters)
}

func corrupt(offset int64, format string, args ...any) *iter.CorruptionError {
	return &iter.CorruptionError{Object: "chunk", Offset: offset, Err: fmt.Errorf(format, args...)}
}

// Open parses and verifies the header, page table and footer of an encoded
// chunk. Pages are verified when an iterator reaches them. Open keeps b and
// returned entries may point into it: the caller must not modify b
// afterwards. Errors are *iter.CorruptionError for damaged data, or wrap
// ErrUnsupportedVersion / ErrUnsupportedFeature for chunks of a newer format.
// A damaged bloom filter does not fail Open: its page is never skipped and
// BloomErr reports it.
func Open(b []byte) (*Chunk, error) {
	if len(b) < headerSize+footerSize {
		return nil, corrupt(-1, "chunk of %d bytes is shorter than header and footer", len(b))
	}
	tableOff, err := parseFooter(b[:headerSize], b[len(b)-footerSize:], int64(len(b)))
	if err != nil {
		return nil, err
	}
	tableEnd := len(b) - footerSize
	c, err := openParts(b[:headerSize], b[tableOff:tableEnd], b[tableEnd:], int(tableOff))
	if err != nil {
		return nil, err
	}
	c.b = b
	for i := range c.pages {
		p := &c.pages[i]
		p.data = b[p.offset : p.offset+int64(p.length)]
	}
	c.loadBlooms(func(off int64, n int) []byte { return b[off : off+int64(n)] })
	c.meta.CompressedBytes = len(b)
	return c, nil
}

// tailHint is how much of a chunk's end OpenAt reads at first, hoping to
// get the bloom filters, page table and footer in one read: bloom filters
// take about a tenth of a chunk.
func tailHint(size int64) int64 { return 4<<10 + size/6 }

// OpenAt opens a chunk of size bytes that r reads: it reads and verifies
// the header, page table, footer and bloom filters now (usually with two
// reads: the header and the chunk's tail) and keeps only the parsed table
// and the filters; pages are read through r when an iterator reaches them,
// adjacent pages with one read. Errors are those of Open, or read errors
// from r as they are (wrapped). r must be safe for concurrent use if
// iterators of the chunk run concurrently.
func OpenAt(r io.ReaderAt, size int64) (*Chunk, error) {
	if size < headerSize+footerSize {
		return nil, corrupt(-1, "chunk of %d bytes is shorter than header and footer", size)
	}
	tailOff := max(0, size-tailHint(size))
	if tailOff < 2*headerSize {
		tailOff = 0
	}
	tail := make([]byte, size-tailOff)
	if _, err := r.ReadAt(tail, tailOff); err != nil {
		return nil, fmt.Errorf("read chunk tail at %d: %w", tailOff, err)
	}
	head := tail
	if tailOff > 0 {
		head = make([]byte, headerSize)
		if _, err := r.ReadAt(head, 0); err != nil {
			return nil, fmt.Errorf("read chunk header: %w", err)
		}
	}
	foot := tail[len(tail)-footerSize:]
	tableOff, err := parseFooter(head[:headerSize], foot, size)
	if err != nil {
		return nil, err
	}
	// extend reads [off, tailOff) and prepends it to tail.
	extend := func(off int64) error {
		more := make([]byte, size-off)
		if _, err := r.ReadAt(more[:tailOff-off], off); err != nil {
			return fmt.Errorf("read chunk at %d: %w", off, err)
		}
		copy(more[tailOff-off:], tail)
		tail, tailOff = more, off
		return nil
	}
	if tableOff < tailOff {
		if err := extend(tableOff); err != nil {
			return nil, err
		}
	}
	tableEnd := size - footerSize
	c, err := openParts(head[:headerSize], tail[tableOff-tailOff:tableEnd-tailOff], tail[tableEnd-tailOff:], int(tableOff))
	if err != nil {
		return nil, err
	}
	// The bloom filters lie between the last page and the table.
	lo := tableOff
	for _, p := range c.pages {
		if p.bloomLen > 0 {
			lo = min(lo, p.bloomOff)
		}
	}
	if lo < tailOff {
		if err := extend(lo); err != nil {
			return nil, err
		}
	}
	// Keep an exact copy of the filters only, not the whole tail.
	blooms := slices.Clone(tail[lo-tailOff : tableOff-tailOff])
	c.loadBlooms(func(off int64, n int) []byte { return blooms[off-lo : off-lo+int64(n)] })
	c.r = r
	c.retained = len(blooms)
	c.meta.CompressedBytes = int(size)
	return c, nil
}

// WithReader returns a chunk that shares c's parsed table and filters and
// reads pages through r. Only meaningful for chunks opened by OpenAt; a
// chunk opened by Open is returned as is.
func (c *Chunk) WithReader(r io.ReaderAt) *Chunk {
	if c.b != nil {
		return c
	}
	cc := *c
	cc.r = r
	return &cc
}

// MemSize estimates the bytes c keeps in memory beyond the chunk bytes of
// Open: the parsed table and, for OpenAt, the bloom filters.
func (c *Chunk) MemSize() int {
	return 160 + len(c.pages)*int(unsafe.Sizeof(pageRef{})) + c.retained
}

// BloomErr returns a *iter.CorruptionError for the first page whose bloom
// filter failed its CRC, or nil. Such a page is read by every filtered
// query instead of being skipped, so a damaged filter costs speed, never
// results.
func (c *Chunk) BloomErr() error { return c.bloomErr }

// parseFooter checks both magics, the table offset and the CRC of header,
// table and table offset, then the version, encoding and flags. head is
// the 8-byte header, foot the 16-byte footer, size the chunk size. The
// table bytes are read by the caller after this returns the table offset:
// the CRC is verified in openParts.
func parseFooter(head, foot []byte, size int64) (int64, error) {
	if m := binary.BigEndian.Uint32(head); m != Magic {
		return 0, corrupt(0, "bad magic %08x", m)
	}
	if m := binary.BigEndian.Uint32(foot[12:]); m != Magic {
		return 0, corrupt(size-4, "bad footer magic %08x (truncated chunk?)", m)
	}
	tableOff := binary.BigEndian.Uint64(foot)
	tableEnd := uint64(size - footerSize)
	if tableOff < headerSize || tableOff > tableEnd {
		return 0, corrupt(size-footerSize, "table offset %d outside [%d, %d]", tableOff, headerSize, tableEnd)
	}
	return int64(tableOff), nil
}

// openParts verifies the footer CRC over head, table and foot, the format
// version, encoding and flags, and parses the table, whose offset in the
// chunk is tableOff.
func openParts(head, table, foot []byte, tableOff int) (*Chunk, error) {
	crc := crc32.Update(0, castagnoli, head)
	crc = crc32.Update(crc, castagnoli, table)
	crc = crc32.Update(crc, castagnoli, foot[:8])
	if want := binary.BigEndian.Uint32(foot[8:]); crc != want {
		return nil, corrupt(int64(tableOff), "header and table crc32c mismatch: stored %08x, computed %08x", want, crc)
	}
	// The checksum holds: from here on, a surprise is a newer format or a
	// writer bug, not bit rot.
	if v := head[4]; v == 0 || v > Version {
		return nil, fmt.Errorf("chunk format version %d (this build reads 1 to %d): %w", v, Version, ErrUnsupportedVersion)
	}
	enc := Encoding(head[5])
	if !enc.valid() {
		return nil, fmt.Errorf("chunk encoding %d: %w", uint8(enc), ErrUnsupportedFeature)
	}
	flags := binary.BigEndian.Uint16(head[6:])
	if unknown := flags & incompatibleFlags &^ knownIncompatible; unknown != 0 {
		return nil, fmt.Errorf("chunk flags %#04x: %w", unknown, ErrUnsupportedFeature)
	}
	c := &Chunk{enc: enc}
	if err := c.parseTable(table, tableOff, flags&FlagBloom != 0); err != nil {
		return nil, err
	}
	return c, nil
}

// Page extension record tags.
const pageExtBloom = 1

// parseTable decodes the page table; base is its offset in the chunk.
// With blooms, page extension records of tag 1 locate the pages' filters,
// which must lie between the last page and the table; their bytes are
// checked by loadBlooms.
func (c *Chunk) parseTable(t []byte, base int, blooms bool) error {
	d := decoder{b: t}
	extLen := d.uvarint()
	d.skip(extLen) // chunk extensions: none known in version 1
	n := d.uvarint()
	if d.err != nil {
		return corrupt(int64(base+d.pos), "page table: %v", d.err)
	}
	// Each page entry takes at least 11 bytes; reject absurd counts before
	// allocating.
	if n > uint64(len(t))/11 {
		return corrupt(int64(base), "page table: %d pages do not fit in %d bytes", n, len(t))
	}
	c.pages = make([]pageRef, 0, n)
	var meta Meta
	pagesEnd := uint64(headerSize)
	for i := range int(n) {
		entryOff := int64(base + d.pos)
		off := d.uvarint()
		length := d.uvarint()
		minT := d.varint()
		span := d.uvarint()
		entries := d.uvarint()
		payload := d.uvarint()
		raw := d.uvarint()
		crc := d.uint32()
		pext := d.uvarint()
		var ext []byte
		if d.err == nil && pext <= uint64(len(t)-d.pos) {
			ext = t[d.pos : d.pos+int(pext)]
		}
		d.skip(pext)
		if d.err != nil {
			return corrupt(entryOff, "page table entry %d: %v", i, d.err)
		}
		switch {
		case off < headerSize || off > uint64(base) || length > uint64(base)-off:
			return corrupt(entryOff, "page %d: [%d, +%d) outside the page area [%d, %d)", i, off, length, headerSize, base)
		case span > uint64(math.MaxInt64)-uint64(minT): // modular difference = distance to MaxInt64
			return corrupt(entryOff, "page %d: time range overflows", i)
		case payload > maxPayloadSize:
			return corrupt(entryOff, "page %d: payload size %d exceeds %d", i, payload, maxPayloadSize)
		case entries == 0 || entries > payload:
			return corrupt(entryOff, "page %d: %d entries in a payload of %d bytes", i, entries, payload)
		case raw > payload:
			return corrupt(entryOff, "page %d: %d raw bytes in a payload of %d bytes", i, raw, payload)
		}
		pagesEnd = max(pagesEnd, off+length)
		p := pageRef{
			offset:      int64(off),
			length:      int(length),
			minT:        minT,
			maxT:        int64(uint64(minT) + span),
			entries:     int(entries),
			payloadSize: int(payload),
			rawBytes:    int(raw),
			crc:         crc,
		}
		if blooms {
			if err := p.parseExt(ext); err != nil {
				return corrupt(entryOff, "page %d: extension: %v", i, err)
			}
		}
		if i == 0 || p.minT < meta.MinTime {
			meta.MinTime = p.minT
		}
		if i == 0 || p.maxT > meta.MaxTime {
			meta.MaxTime = p.maxT
		}
		meta.Entries += p.entries
		meta.UncompressedBytes += p.rawBytes
		c.pages = append(c.pages, p)
	}
	if d.pos != len(t) {
		return corrupt(int64(base+d.pos), "page table: %d trailing bytes", len(t)-d.pos)
	}
	for i := range c.pages {
		p := &c.pages[i]
		if p.bloomLen == 0 {
			continue
		}
		if off, n := p.bloomOff, int64(p.bloomLen); off < int64(pagesEnd) || n > int64(base)-off {
			return corrupt(int64(base), "page %d: bloom filter [%d, +%d) outside [%d, %d)", i, off, n, pagesEnd, base)
		}
	}
	c.meta = meta
	return nil
}

// parseExt reads a page's extension records. A bloom record (tag 1) is
// offset <uvarint> ‖ length <uvarint> ‖ crc32c <4 bytes>; other tags are
// skipped.
func (p *pageRef) parseExt(ext []byte) error {
	d := decoder{b: ext}
	for d.pos < len(ext) && d.err == nil {
		tag := d.uvarint()
		n := d.uvarint()
		if d.err != nil || n > uint64(len(ext)-d.pos) {
			return errShort
		}
		v := decoder{b: ext[d.pos : d.pos+int(n)]}
		d.skip(n)
		if tag != pageExtBloom {
			continue
		}
		off := v.uvarint()
		length := v.uvarint()
		crc := v.uint32()
		switch {
		case v.err != nil:
			return fmt.Errorf("bloom record: %w", v.err)
		case v.pos != len(v.b):
			return errors.New("bloom record: trailing bytes")
		case off > math.MaxInt64/2 || length == 0 || length > maxPayloadSize:
			return fmt.Errorf("bloom record: impossible location %d+%d", off, length)
		}
		p.bloomOff, p.bloomLen, p.bloomCRC = int64(off), int(length), crc
	}
	return d.err
}

// loadBlooms checks each page's bloom filter, which at(off, n) returns,
// against its CRC and makes the usable ones available to iterators. A
// damaged filter is dropped (its page is never skipped) and recorded in
// bloomErr.
func (c *Chunk) loadBlooms(at func(off int64, n int) []byte) {
	for i := range c.pages {
		p := &c.pages[i]
		if p.bloomLen == 0 {
			continue
		}
		raw := at(p.bloomOff, p.bloomLen)
		if crc := crc32.Checksum(raw, castagnoli); crc != p.bloomCRC {
			if c.bloomErr == nil {
				c.bloomErr = corrupt(p.bloomOff, "page %d: bloom filter crc32c mismatch: stored %08x, computed %08x", i, p.bloomCRC, crc)
			}
			continue
		}
		p.bloomRaw = raw
		p.bloom, _ = parseBloom(raw)
	}
}

// Meta returns the chunk's summary, computed from the page table.
func (c *Chunk) Meta() Meta { return c.meta }

// Encoding returns the chunk's page codec.
func (c *Chunk) Encoding() Encoding { return c.enc }

// Pages returns the number of pages.
func (c *Chunk) Pages() int { return len(c.pages) }

// appendHeader appends the 8-byte chunk header.
func appendHeader(dst []byte, enc Encoding, flags uint16) []byte {
	dst = binary.BigEndian.AppendUint32(dst, Magic)
	dst = append(dst, Version, byte(enc))
	return binary.BigEndian.AppendUint16(dst, flags)
}

// appendBloomsTableAndFooter appends the bloom section, the page table and
// the footer for pages stored in chunk (which holds the header and pages
// written so far).
func appendBloomsTableAndFooter(chunk []byte, pages []pageRef) []byte {
	bloomOffs := make([]int, len(pages))
	for i, p := range pages {
		if p.bloomLen > 0 {
			bloomOffs[i] = len(chunk)
			chunk = append(chunk, p.bloomRaw...)
		}
	}
	tableOff := len(chunk)
	chunk = binary.AppendUvarint(chunk, 0) // chunk extensions
	chunk = binary.AppendUvarint(chunk, uint64(len(pages)))
	var ext []byte
	for i, p := range pages {
		chunk = binary.AppendUvarint(chunk, uint64(p.offset))
		chunk = binary.AppendUvarint(chunk, uint64(p.length))
		chunk = binary.AppendVarint(chunk, p.minT)
		chunk = binary.AppendUvarint(chunk, uint64(p.maxT-p.minT))
		chunk = binary.AppendUvarint(chunk, uint64(p.entries))
		chunk = binary.AppendUvarint(chunk, uint64(p.payloadSize))
		chunk = binary.AppendUvarint(chunk, uint64(p.rawBytes))
		chunk = binary.BigEndian.AppendUint32(chunk, p.crc)
		if p.bloomLen == 0 {
			chunk = binary.AppendUvarint(chunk, 0) // page extensions
			continue
		}
		ext = binary.AppendUvarint(ext[:0], uint64(bloomOffs[i]))
		ext = binary.AppendUvarint(ext, uint64(p.bloomLen))
		ext = binary.BigEndian.AppendUint32(ext, p.bloomCRC)
		rec := binary.AppendUvarint(nil, pageExtBloom)
		rec = binary.AppendUvarint(rec, uint64(len(ext)))
		chunk = binary.AppendUvarint(chunk, uint64(len(rec)+len(ext)))
		chunk = append(chunk, rec...)
		chunk = append(chunk, ext...)
	}
	tableEnd := len(chunk)
	chunk = binary.BigEndian.AppendUint64(chunk, uint64(tableOff))
	crc := crc32.Update(0, castagnoli, chunk[:headerSize])
	crc = crc32.Update(crc, castagnoli, chunk[tableOff:tableEnd])
	crc = crc32.Update(crc, castagnoli, chunk[tableEnd:])
	chunk = binary.BigEndian.AppendUint32(chunk, crc)
	return binary.BigEndian.AppendUint32(chunk, Magic)
}

// decoder reads varints from a buffer with a sticky error and never panics.
type decoder struct {
	b   []byte
	pos int
	err error
}

var errShort = errors.New("unexpected end of data")

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.pos:])
	if n <= 0 {
		if n == 0 {
			d.err = errShort
		} else {
			d.err = errors.New("varint overflows 64 bits")
		}
		return 0
	}
	d.pos += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.pos:])
	if n <= 0 {
		if n == 0 {
			d.err = errShort
		} else {
			d.err = errors.New("varint overflows 64 bits")
		}
		return 0
	}
	d.pos += n
	return v
}

func (d *decoder) uint32() uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.pos < 4 {
		d.err = errShort
		return 0
	}
	v := binary.BigEndian.Uint32(d.b[d.pos:])
	d.pos += 4
	return v
}

func (d *decoder) skip(n uint64) {
	if d.err != nil {
		return
	}
	if n > uint64(len(d.b)-d.pos) {
		d.err = errShort
		return
	}
	d.pos += int(n)
}
