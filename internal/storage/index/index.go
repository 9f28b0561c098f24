// Package index owns the index file of a block: the sorted list of a block's
// streams with their labels and chunk references, the symbol table, and the
// label postings that turn stream matchers into stream IDs. The byte format is
// docs/format/index.md. The package does no I/O: Encode returns bytes and
// Decode parses bytes the caller fetched.
package index

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Format constants.
const (
	// Magic starts every index file ("LLIX").
	Magic uint32 = 0x4C4C4958
	// Version1 is the only index version so far.
	Version1 byte = 1

	headerSize = 8
	tocEntries = 5
	// TOCSize is the size of the table of contents at the end of the file.
	TOCSize = tocEntries*8 + 4
	// sectionOverhead is the framing of a section: length and CRC.
	sectionOverhead = 8
)

// Chunk extension record types (docs/format/index.md, "Chunk extensions").
// Version 1 writers emit none; readers skip types they do not know.
const (
	ExtBloomRef uint64 = 1
	ExtKeyRef   uint64 = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ChunkRef locates one chunk of a stream in the block's segment files and
// summarises it. Times are the closed interval [MinTime, MaxTime] of the
// chunk's first and last entry.
type ChunkRef struct {
	Segment           int   // segment file number, chunks/%06d, from 1
	Offset            int64 // offset of the chunk data in the segment
	Length            int   // length of the chunk data (compressed bytes)
	MinTime, MaxTime  int64 // first and last entry timestamps, inclusive
	Entries           int
	UncompressedBytes int
}

// Overlaps reports whether the chunk has a timestamp in the half-open range r.
func (c ChunkRef) Overlaps(r model.TimeRange) bool { return r.Overlaps(c.MinTime, c.MaxTime) }

// Stream is one stream of a block: its labels, fingerprint and chunks sorted
// by (MinTime, MaxTime).
type Stream struct {
	Labels      model.Labels
	Fingerprint uint64
	Chunks      []ChunkRef
}

// SegmentName is the object name, relative to the block directory, of chunk
// segment n.
func SegmentName(n int) string { return fmt.Sprintf("chunks/%06d", n) }

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func appendSection(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, payload...)
	return binary.BigEndian.AppendUint32(dst, crc(payload))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}
