package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/segments/v1-golden.seg")

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// goldenRecords are the records of testdata/segments/v1-golden.seg, a
// version 1 segment written by the WAL. Decoding it guards the format.
func goldenRecords() [][]byte {
	return [][]byte{
		[]byte("hello"),
		{}, []byte("a"), bytes.Repeat([]byte("x"), 300),
		bytes.Repeat([]byte{0xff, 0x00}, 100),
	}
}

// Committed segments; they also seed FuzzSegmentDecode.
const (
	goldenPath    = "testdata/segments/v1-golden.seg"
	tornPath      = "testdata/segments/v1-torn-tail.seg"
	encryptedPath = "testdata/segments/v1-encrypted-flag.seg"
)

// encryptedFlagSegment is a segment with one frame that has a correct
// checksum and the reserved encrypted flag.
func encryptedFlagSegment() []byte {
	payload := []byte{3, 'a', 'b', 'c'}
	hdr := make([]byte, FrameHeaderSize)
	binary.LittleEndian.PutUint32(hdr[4:8], uint32(len(payload)))
	hdr[8] = byte(FlagEncrypted)
	binary.LittleEndian.PutUint32(hdr[0:4], crcOf(hdr[4:9], payload))
	return append(append(appendSegmentHeader(nil), hdr...), payload...)
}

func TestDecodeTornAndEncrypted(t *testing.T) {
	data := readAllFile(t, tornPath)
	r := NewReader(bytesReader(data), int64(len(data)), tornPath)
	n := 0
	for r.Next() {
		n++
	}
	require.Equal(t, 4, n, "the last frame is cut")
	var ce *CorruptionError
	require.ErrorAs(t, r.Err(), &ce)
	require.True(t, ce.Torn)
	require.ErrorIs(t, r.Err(), ErrTruncated)

	data = readAllFile(t, encryptedPath)
	require.Equal(t, encryptedFlagSegment(), data)
	r = NewReader(bytesReader(data), int64(len(data)), encryptedPath)
	require.False(t, r.Next())
	require.ErrorIs(t, r.Err(), ErrUnsupportedFormat)
	require.False(t, errors.As(r.Err(), &ce), "not corruption")
}

func TestDecodeGolden(t *testing.T) {
	if *updateGolden {
		dir := t.TempDir()
		w := openWAL(t, DefaultOptions(dir))
		g := goldenRecords()
		require.NoError(t, w.Append(g[0]))
		require.NoError(t, w.Append(g[1:4]...))
		require.NoError(t, w.Append(g[4]))
		require.NoError(t, w.Close())
		require.NoError(t, os.MkdirAll(filepath.Dir(goldenPath), 0o755))
		data := readAllFile(t, segmentPath(dir, 0))
		require.NoError(t, os.WriteFile(goldenPath, data, 0o644))
		require.NoError(t, os.WriteFile(tornPath, data[:len(data)-5], 0o644))
		require.NoError(t, os.WriteFile(encryptedPath, encryptedFlagSegment(), 0o644))
	}
	data := readAllFile(t, goldenPath)
	r := NewReader(bytesReader(data), int64(len(data)), goldenPath)
	var got [][]byte
	for r.Next() {
		got = append(got, bytes.Clone(r.Record()))
	}
	require.NoError(t, r.Err())
	require.Equal(t, goldenRecords(), got)
	require.Equal(t, int64(len(data)), r.Offset())
	require.Equal(t, []byte("LWAL\x01\x00\x00\x00"), data[:SegmentHeaderSize])
}

func TestReaderBadPayload(t *testing.T) {
	// A frame whose checksum is right but whose record length overruns the
	// payload: only a broken writer makes it; it is corruption.
	payload := []byte{5, 'a', 'b'}
	hdr := make([]byte, FrameHeaderSize)
	binary.LittleEndian.PutUint32(hdr[4:8], uint32(len(payload)))
	binary.LittleEndian.PutUint32(hdr[0:4], crcOf(hdr[4:9], payload))
	data := append(append(appendSegmentHeader(nil), hdr...), payload...)
	r := NewReader(bytesReader(data), int64(len(data)), "x")
	require.False(t, r.Next())
	require.ErrorIs(t, r.Err(), ErrBadPayload)
	var ce *CorruptionError
	require.ErrorAs(t, r.Err(), &ce)
	require.Equal(t, -1, ce.Segment)
}

func FuzzSegmentDecode(f *testing.F) {
	entries, err := os.ReadDir("testdata/segments")
	require.NoError(f, err)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("testdata/segments", e.Name()))
		require.NoError(f, err)
		f.Add(data)
		if len(data) > 20 {
			f.Add(data[:len(data)-7])
			damaged := bytes.Clone(data)
			damaged[20] ^= 0x10
			f.Add(damaged)
		}
	}
	f.Add([]byte{})
	f.Add(appendSegmentHeader(nil))
	f.Add(append(appendSegmentHeader(nil), make([]byte, 64)...))

	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytesReader(data), int64(len(data)), "fuzz/00000000")
		for r.Next() {
			// The record's frame must be intact and contain it.
			off := r.frame
			require.LessOrEqual(t, off+FrameHeaderSize, int64(len(data)))
			length := int64(binary.LittleEndian.Uint32(data[off+4 : off+8]))
			end := off + FrameHeaderSize + length
			require.LessOrEqual(t, end, int64(len(data)))
			want := binary.LittleEndian.Uint32(data[off : off+4])
			require.Equal(t, want, crc32.Checksum(data[off+4:end], castagnoli), "record from a frame with a bad crc")
			require.True(t, bytes.Contains(data[off+FrameHeaderSize:end], r.Record()))
		}
		require.LessOrEqual(t, r.Offset(), int64(len(data)))
		if err := r.Err(); err != nil {
			var ce *CorruptionError
			require.True(t, errors.As(err, &ce) || errors.Is(err, ErrUnsupportedFormat), "unexpected error %v", err)
		}
	})
}
