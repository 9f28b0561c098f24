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
	"math"

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
	data        []byte // stored (compressed) bytes; never modified
	offset      int64  // offset of data in the chunk, for errors
	minT, maxT  int64
	entries     int
	payloadSize int
	rawBytes    int
	crc         uint32
}

// Chunk is an opened, verified chunk. It is immutable and safe for
// concurrent use; each Iterator is independent.
type Chunk struct {
	b     []byte
	enc   Encoding
	pages []pageRef
	meta  Meta
}

func corrupt(offset int64, format string, args ...any) *iter.CorruptionError {
	return &iter.CorruptionError{Object: "chunk", Offset: offset, Err: fmt.Errorf(format, args...)}
}

// Open parses and verifies the header, page table and footer of an encoded
// chunk. Pages are verified when an iterator reaches them. Open keeps b and
// returned entries may point into it: the caller must not modify b
// afterwards. Errors are *iter.CorruptionError for damaged data, or wrap
// ErrUnsupportedVersion / ErrUnsupportedFeature for chunks of a newer format.
func Open(b []byte) (*Chunk, error) {
	if len(b) < headerSize+footerSize {
		return nil, corrupt(-1, "chunk of %d bytes is shorter than header and footer", len(b))
	}
	if m := binary.BigEndian.Uint32(b); m != Magic {
		return nil, corrupt(0, "bad magic %08x", m)
	}
	foot := b[len(b)-footerSize:]
	if m := binary.BigEndian.Uint32(foot[12:]); m != Magic {
		return nil, corrupt(int64(len(b)-4), "bad footer magic %08x (truncated chunk?)", m)
	}
	tableOff64 := binary.BigEndian.Uint64(foot)
	tableEnd := len(b) - footerSize
	if tableOff64 < headerSize || tableOff64 > uint64(tableEnd) {
		return nil, corrupt(int64(len(b)-footerSize), "table offset %d outside [%d, %d]", tableOff64, headerSize, tableEnd)
	}
	tableOff := int(tableOff64)
	crc := crc32.Update(0, castagnoli, b[:headerSize])
	crc = crc32.Update(crc, castagnoli, b[tableOff:tableEnd])
	crc = crc32.Update(crc, castagnoli, foot[:8])
	if want := binary.BigEndian.Uint32(foot[8:]); crc != want {
		return nil, corrupt(int64(tableOff), "header and table crc32c mismatch: stored %08x, computed %08x", want, crc)
	}
	// The checksum holds: from here on, a surprise is a newer format or a
	// writer bug, not bit rot.
	if v := b[4]; v == 0 || v > Version {
		return nil, fmt.Errorf("chunk format version %d (this build reads 1 to %d): %w", v, Version, ErrUnsupportedVersion)
	}
	enc := Encoding(b[5])
	if !enc.valid() {
		return nil, fmt.Errorf("chunk encoding %d: %w", uint8(enc), ErrUnsupportedFeature)
	}
	flags := binary.BigEndian.Uint16(b[6:])
	if unknown := flags & incompatibleFlags &^ knownIncompatible; unknown != 0 {
		return nil, fmt.Errorf("chunk flags %#04x: %w", unknown, ErrUnsupportedFeature)
	}
	c := &Chunk{b: b, enc: enc}
	if err := c.parseTable(b[tableOff:tableEnd], tableOff); err != nil {
		return nil, err
	}
	c.meta.CompressedBytes = len(b)
	return c, nil
}

// parseTable decodes the page table; base is its offset in the chunk.
func (c *Chunk) parseTable(t []byte, base int) error {
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
		d.skip(pext) // page extensions: none known in version 1
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
		p := pageRef{
			data:        c.b[off : off+length],
			offset:      int64(off),
			minT:        minT,
			maxT:        int64(uint64(minT) + span),
			entries:     int(entries),
			payloadSize: int(payload),
			rawBytes:    int(raw),
			crc:         crc,
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
	c.meta = meta
	return nil
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

// appendTableAndFooter appends the page table and footer for pages stored
// in chunk (which holds the header and pages written so far).
func appendTableAndFooter(chunk []byte, pages []pageRef) []byte {
	tableOff := len(chunk)
	chunk = binary.AppendUvarint(chunk, 0) // chunk extensions
	chunk = binary.AppendUvarint(chunk, uint64(len(pages)))
	for _, p := range pages {
		chunk = binary.AppendUvarint(chunk, uint64(p.offset))
		chunk = binary.AppendUvarint(chunk, uint64(len(p.data)))
		chunk = binary.AppendVarint(chunk, p.minT)
		chunk = binary.AppendUvarint(chunk, uint64(p.maxT-p.minT))
		chunk = binary.AppendUvarint(chunk, uint64(p.entries))
		chunk = binary.AppendUvarint(chunk, uint64(p.payloadSize))
		chunk = binary.AppendUvarint(chunk, uint64(p.rawBytes))
		chunk = binary.BigEndian.AppendUint32(chunk, p.crc)
		chunk = binary.AppendUvarint(chunk, 0) // page extensions
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
