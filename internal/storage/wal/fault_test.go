package wal

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWriteFailure: a failed write (disk full) fails only its group; the
// partial write is undone and later appends work.
func TestWriteFailure(t *testing.T) {
	opts := DefaultOptions(t.TempDir())
	w := openWAL(t, opts)
	require.NoError(t, w.Append(testRecord(1, 100)))
	w.writeAt = func(f *os.File, b []byte, off int64) (int, error) {
		n, _ := f.WriteAt(b[:len(b)/2], off) // half of it reaches the file
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	err := w.Append(testRecord(2, 5000))
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.Equal(t, float64(1), counterValue(t, w.metrics.diskFull))
	w.writeAt = (*os.File).WriteAt
	require.NoError(t, w.Append(testRecord(3, 100)))
	require.NoError(t, w.Close())

	got, w2 := reopenReplay(t, opts)
	require.Len(t, got, 2)
	require.Equal(t, uint64(1), checkRecord(t, got[0]))
	require.Equal(t, uint64(3), checkRecord(t, got[1]))
	require.Zero(t, corruptions(t, w2, kindSegment))
	require.Zero(t, corruptions(t, w2, kindTornTail))
}

// TestSyncFailure: after an fsync error the WAL refuses appends until it is
// reopened.
func TestSyncFailure(t *testing.T) {
	opts := DefaultOptions(t.TempDir())
	w := openWAL(t, opts)
	require.NoError(t, w.Append(testRecord(1, 100)))
	eio := &os.PathError{Op: "fdatasync", Path: "x", Err: syscall.EIO}
	w.syncFile = func(*os.File) error { return eio }
	require.ErrorIs(t, w.Append(testRecord(2, 100)), syscall.EIO)
	w.syncFile = fdatasync
	err := w.Append(testRecord(3, 100))
	require.ErrorIs(t, err, syscall.EIO, "sticky")
	_, err = w.NextSegment()
	require.ErrorIs(t, err, syscall.EIO)
	require.Error(t, w.Close())
	require.False(t, errors.Is(w.Close(), syscall.EIO), "second Close is a no-op")

	got, _ := reopenReplay(t, opts)
	require.GreaterOrEqual(t, len(got), 1)
	require.Equal(t, uint64(1), checkRecord(t, got[0]))
}
