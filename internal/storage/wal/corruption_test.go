package wal

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
	"github.com/stretchr/testify/require"
)

// frameOffsets returns the offset of every frame in a segment file.
func frameOffsets(t testing.TB, data []byte) []int64 {
	t.Helper()
	var offs []int64
	r := NewReader(bytesReader(data), int64(len(data)), "00000000")
	last := int64(-1)
	for r.Next() {
		if r.frame != last {
			offs = append(offs, r.frame)
			last = r.frame
		}
	}
	require.NoError(t, r.Err())
	return offs
}

// TestTornTail cuts the last frame at every byte offset and damages every
// byte of it: Open must truncate, replay the complete records, and accept
// appends that a later open replays.
func TestTornTail(t *testing.T) {
	src := t.TempDir()
	opts := DefaultOptions(src)
	w := openWAL(t, opts)
	var want [][]byte
	for i := range 5 {
		size := 100 + i*50
		if i == 4 {
			size = 24 // every byte offset of the last frame is a case
		}
		r := testRecord(uint64(i), size)
		require.NoError(t, w.Append(r))
		want = append(want, r)
	}
	require.NoError(t, w.Close())
	data := readAllFile(t, segmentPath(src, 0))
	offs := frameOffsets(t, data)
	require.Len(t, offs, 5)
	lastStart := offs[len(offs)-1]
	complete := want[:len(want)-1]
	after := testRecord(99, 77)

	check := func(t *testing.T, damaged []byte, wantTorn bool) {
		dir := t.TempDir()
		copyDir(t, src, dir)
		require.NoError(t, os.WriteFile(segmentPath(dir, 0), damaged, 0o644))
		o := DefaultOptions(dir)
		w := openWAL(t, o)
		tornCount := corruptions(t, w, kindTornTail)
		require.Equal(t, complete, replayAll(t, w))
		require.Zero(t, corruptions(t, w, kindSegment), "replay sees no damage after repair")
		require.NoError(t, w.Append(after))
		require.NoError(t, w.Close())
		if wantTorn {
			require.Equal(t, float64(1), tornCount)
			require.Equal(t, lastStart, fileSize(t, segmentPath(dir, 0)), "truncated to the last complete frame")
		}
		got, w2 := reopenReplay(t, o)
		require.Equal(t, append(complete[:len(complete):len(complete)], after), got)
		require.Zero(t, corruptions(t, w2, kindTornTail))
	}
	t.Run("cut", func(t *testing.T) {
		for cut := lastStart; cut < int64(len(data)); cut++ {
			check(t, data[:cut], cut > lastStart)
		}
	})
	t.Run("flip", func(t *testing.T) {
		for i := lastStart; i < int64(len(data)); i++ {
			damaged := append([]byte(nil), data...)
			damaged[i] ^= 0x5a
			check(t, damaged, true)
		}
	})
	t.Run("zero-filled tail", func(t *testing.T) {
		damaged := append(append([]byte(nil), data[:lastStart]...), make([]byte, 4096)...)
		check(t, damaged, true)
	})
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Size()
}

func TestTornSegmentHeader(t *testing.T) {
	for size := range SegmentHeaderSize {
		dir := t.TempDir()
		opts := DefaultOptions(dir)
		w := openWAL(t, opts)
		require.NoError(t, w.Append(testRecord(1, 30)))
		_, err := w.NextSegment()
		require.NoError(t, err)
		require.NoError(t, w.Close())
		require.NoError(t, os.Truncate(segmentPath(dir, 1), int64(size)))

		w = openWAL(t, opts)
		require.Equal(t, float64(1), corruptions(t, w, kindTornTail))
		got := replayAll(t, w)
		require.Len(t, got, 1)
		require.NoError(t, w.Append(testRecord(2, 30)))
		require.NoError(t, w.Close())
		got, _ = reopenReplay(t, opts)
		require.Len(t, got, 2)
	}
}

// TestCorruptionInOlderSegment flips a byte in the middle of segment 0:
// replay delivers what precedes it, skips the rest of that segment, and
// goes on with the next ones.
func TestCorruptionInOlderSegment(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions(dir)
	w := openWAL(t, opts)
	var want [][]byte
	for seg := range 3 {
		for i := range 6 {
			r := testRecord(uint64(seg*100+i), 200)
			require.NoError(t, w.Append(r))
			if seg != 0 || i < 2 {
				want = append(want, r)
			}
		}
		_, err := w.NextSegment()
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())

	path := segmentPath(dir, 0)
	data := readAllFile(t, path)
	offs := frameOffsets(t, data)
	data[offs[2]+FrameHeaderSize+50] ^= 1
	require.NoError(t, os.WriteFile(path, data, 0o644))

	logger, logs := logBuffer()
	opts.Logger = logger
	w = openWAL(t, opts)
	require.Zero(t, corruptions(t, w, kindTornTail), "older segments are not repaired")
	require.Equal(t, want, replayAll(t, w))
	require.Equal(t, float64(1), corruptions(t, w, kindSegment))
	require.NoError(t, w.Close())
	require.Contains(t, logs.String(), "skipping rest of corrupt wal file")
	require.Contains(t, logs.String(), "checksum mismatch")

	// The Reader reports the damage as a typed error at the frame's offset.
	r := NewReader(bytesReader(data), int64(len(data)), path)
	n := 0
	for r.Next() {
		n++
	}
	require.Equal(t, 2, n)
	var ce *CorruptionError
	require.ErrorAs(t, r.Err(), &ce)
	require.Equal(t, 0, ce.Segment)
	require.False(t, ce.Torn)
	var ice *iter.CorruptionError
	require.ErrorAs(t, r.Err(), &ice)
	require.Equal(t, offs[2], ice.Offset)
	require.Equal(t, path, ice.Object)
	require.ErrorIs(t, r.Err(), ErrChecksum)
	require.Equal(t, offs[2], r.Offset())
}

// TestCorruptionInLastSegment damages a frame that valid frames follow in
// the last segment: that is not a torn tail, so Open keeps the bytes and
// replay reports and skips it.
func TestCorruptionInLastSegment(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions(dir)
	w := openWAL(t, opts)
	var want [][]byte
	for i := range 6 {
		r := testRecord(uint64(i), 300)
		require.NoError(t, w.Append(r))
		if i < 3 {
			want = append(want, r)
		}
	}
	require.NoError(t, w.Close())
	path := segmentPath(dir, 0)
	data := readAllFile(t, path)
	offs := frameOffsets(t, data)
	data[offs[3]+FrameHeaderSize+10] ^= 0x80
	require.NoError(t, os.WriteFile(path, data, 0o644))

	w = openWAL(t, opts)
	require.Zero(t, corruptions(t, w, kindTornTail))
	require.Equal(t, int64(len(data)), fileSize(t, path), "not truncated")
	require.Equal(t, want, replayAll(t, w))
	require.Equal(t, float64(1), corruptions(t, w, kindSegment))
	require.NoError(t, w.Close())
}

func TestCorruptSegmentHeader(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions(dir)
	w := openWAL(t, opts)
	require.NoError(t, w.Append(testRecord(1, 30)))
	_, err := w.NextSegment()
	require.NoError(t, err)
	require.NoError(t, w.Append(testRecord(2, 30)))
	require.NoError(t, w.Close())
	data := readAllFile(t, segmentPath(dir, 0))
	data[0] = 'X'
	require.NoError(t, os.WriteFile(segmentPath(dir, 0), data, 0o644))

	w = openWAL(t, opts)
	got := replayAll(t, w)
	require.Len(t, got, 1)
	require.Equal(t, uint64(2), checkRecord(t, got[0]))
	require.Equal(t, float64(1), corruptions(t, w, kindSegment))
	require.NoError(t, w.Close())
}

func TestMissingSegment(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions(dir)
	w := openWAL(t, opts)
	for i := range 3 {
		require.NoError(t, w.Append(testRecord(uint64(i), 30)))
		_, err := w.NextSegment()
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	require.NoError(t, os.Remove(segmentPath(dir, 1)))
	w = openWAL(t, opts)
	require.Len(t, replayAll(t, w), 2)
	require.Equal(t, float64(1), corruptions(t, w, kindMissingSegment))
	require.NoError(t, w.Close())

	// The segment at a checkpoint's boundary is missing.
	w = openWAL(t, opts)
	replayAll(t, w)
	require.NoError(t, w.WriteCheckpoint(2, addAll(nil)))
	require.NoError(t, w.Close())
	require.NoError(t, os.Remove(segmentPath(dir, 2)))
	w = openWAL(t, opts)
	require.Len(t, replayAll(t, w), 0)
	require.Equal(t, float64(1), corruptions(t, w, kindMissingSegment))
	require.NoError(t, w.Close())
}

func TestCorruptionErrorMessage(t *testing.T) {
	err := error(&CorruptionError{Segment: 3, Torn: true, Err: &iter.CorruptionError{Object: "wal/00000003", Offset: 17, Err: ErrChecksum}})
	require.Equal(t, "wal segment 3 torn: corruption in wal/00000003 at offset 17: checksum mismatch", err.Error())
	require.True(t, errors.Is(err, ErrChecksum))
	require.False(t, strings.Contains(err.Error(), "failed"))
}
