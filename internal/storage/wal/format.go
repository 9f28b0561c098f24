package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
)

// Segment header and frame layout; docs/format/wal.md is the specification.
const (
	// SegmentHeaderSize is the size of the header at the start of every
	// segment file: magic (4), version (1), segment flags (1), reserved (2).
	SegmentHeaderSize = 8
	// FrameHeaderSize is the size of a frame header: CRC32C (4), length (4),
	// flags (1).
	FrameHeaderSize = 9
	// MaxBatchSize is the largest encoded payload of one frame, i.e. of the
	// records of one Append call plus one uvarint length per record.
	MaxBatchSize = 1 << 30
)

// magic opens every segment file.
var magic = [4]byte{'L', 'W', 'A', 'L'}

// castagnoli is the CRC32C table; hash/crc32 uses the CPU's CRC instructions
// for it on amd64 and arm64.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Version is the segment format version stored in the segment header.
type Version uint8

// Known format versions.
const (
	// Version1 is the format described in docs/format/wal.md.
	Version1 Version = 1

	// currentVersion is the version this code writes and the highest it reads.
	currentVersion = Version1
)

func (v Version) String() string {
	switch v {
	case Version1:
		return "v1"
	default:
		return fmt.Sprintf("unknown(%d)", uint8(v))
	}
}

// FrameFlags describes how a frame's payload is encoded.
type FrameFlags uint8

const (
	// FlagEncrypted is reserved for payloads that are AES-256-GCM envelopes.
	// Version 1 never sets it and its reader refuses such frames with
	// ErrUnsupportedFormat.
	FlagEncrypted FrameFlags = 0x01

	// knownFlags are the flags this code can decode.
	knownFlags FrameFlags = 0
)

func (f FrameFlags) String() string {
	if f == 0 {
		return "plain"
	}
	var parts []string
	if f&FlagEncrypted != 0 {
		parts = append(parts, "encrypted")
	}
	if rest := f &^ FlagEncrypted; rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%02x", uint8(rest)))
	}
	return strings.Join(parts, "|")
}

// appendSegmentHeader appends the header of a new segment to dst.
func appendSegmentHeader(dst []byte) []byte {
	dst = append(dst, magic[:]...)
	return append(dst, byte(currentVersion), 0, 0, 0)
}

// payloadSize returns the size of the plain payload that holds recs.
func payloadSize(recs [][]byte) int {
	n := 0
	for _, r := range recs {
		n += uvarintLen(uint64(len(r))) + len(r)
	}
	return n
}

// frameCRC computes the CRC32C of a plain frame holding recs without building
// it: it covers length, flags and the payload, as the frame stores them.
func frameCRC(recs [][]byte, size int) uint32 {
	var scratch [binary.MaxVarintLen64]byte
	binary.LittleEndian.PutUint32(scratch[:4], uint32(size))
	scratch[4] = 0 // flags
	crc := crc32.Update(0, castagnoli, scratch[:5])
	for _, r := range recs {
		n := binary.PutUvarint(scratch[:], uint64(len(r)))
		crc = crc32.Update(crc, castagnoli, scratch[:n])
		crc = crc32.Update(crc, castagnoli, r)
	}
	return crc
}

// appendFrame appends a plain frame holding recs to dst. size and crc are
// payloadSize(recs) and frameCRC(recs, size).
func appendFrame(dst []byte, recs [][]byte, size int, crc uint32) []byte {
	var hdr [FrameHeaderSize]byte
	binary.LittleEndian.PutUint32(hdr[0:4], crc)
	binary.LittleEndian.PutUint32(hdr[4:8], uint32(size))
	hdr[8] = 0
	dst = append(dst, hdr[:]...)
	for _, r := range recs {
		dst = binary.AppendUvarint(dst, uint64(len(r)))
		dst = append(dst, r...)
	}
	return dst
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
