package wal

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// writeCheckpointFixture appends records 0..29 over three segments, starts
// segment 3 and returns the WAL still open with want = all records.
func writeCheckpointFixture(t *testing.T, opts Options) (*WAL, [][]byte) {
	t.Helper()
	w := openWAL(t, opts)
	var all [][]byte
	for seg := range 3 {
		for i := range 10 {
			r := testRecord(uint64(seg*10+i), 500)
			require.NoError(t, w.Append(r))
			all = append(all, r)
		}
		_, err := w.NextSegment()
		require.NoError(t, err)
	}
	return w, all
}

func addAll(recs [][]byte) func(add func([]byte) error) error {
	return func(add func([]byte) error) error {
		for _, r := range recs {
			if err := add(r); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestCheckpoint(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions(dir)
	opts.SegmentSize = 4 << 10 // several checkpoint segments
	w, all := writeCheckpointFixture(t, opts)
	// The head still needs every second record of the old segments.
	var kept [][]byte
	for i := 0; i < len(all); i += 2 {
		kept = append(kept, all[i])
	}
	boundary, err := w.NextSegment()
	require.NoError(t, err)
	require.NoError(t, w.WriteCheckpoint(boundary, addAll(kept)))
	require.Equal(t, float64(1), counterValue(t, w.metrics.checkpointCreations))
	require.Zero(t, counterValue(t, w.metrics.checkpointCreationsFailed))

	require.Equal(t, []int{boundary}, segmentFiles(t, dir), "older segments deleted")
	cp := filepath.Join(dir, checkpointName(boundary))
	require.Greater(t, len(segmentFiles(t, cp)), 1, "checkpoint spans segments")

	later := testRecord(1000, 300)
	require.NoError(t, w.Append(later))
	require.NoError(t, w.Close())
	got, _ := reopenReplay(t, opts)
	require.Equal(t, append(kept, later), got)

	// A second checkpoint replaces the first.
	w = openWAL(t, opts)
	replayAll(t, w)
	b2, err := w.NextSegment()
	require.NoError(t, err)
	require.NoError(t, w.WriteCheckpoint(b2, addAll([][]byte{later})))
	l, err := listDir(dir)
	require.NoError(t, err)
	require.Equal(t, []int{b2}, l.checkpoints)
	require.NoError(t, w.Close())
	got, _ = reopenReplay(t, opts)
	require.Equal(t, [][]byte{later}, got)
}

func TestCheckpointEmpty(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions(dir)
	w, _ := writeCheckpointFixture(t, opts)
	require.NoError(t, w.WriteCheckpoint(3, func(func([]byte) error) error { return nil }))
	require.NoError(t, w.Close())
	got, _ := reopenReplay(t, opts)
	require.Empty(t, got)
}

func TestCheckpointErrors(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions(dir)
	w, all := writeCheckpointFixture(t, opts)

	require.Error(t, w.WriteCheckpoint(4, addAll(nil)), "boundary above the segment being written")
	require.Error(t, w.WriteCheckpoint(-1, addAll(nil)))

	boom := errors.New("boom")
	err := w.WriteCheckpoint(3, func(add func([]byte) error) error {
		require.NoError(t, add([]byte("partial")))
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.Equal(t, float64(3), counterValue(t, w.metrics.checkpointCreationsFailed), "every refused or failed attempt")
	l, err := listDir(dir)
	require.NoError(t, err)
	require.Empty(t, l.checkpoints)
	require.Empty(t, l.tmp, "temporary directory removed")
	require.Equal(t, []int{0, 1, 2, 3}, l.segments)

	var leaked func([]byte) error
	require.NoError(t, w.WriteCheckpoint(2, func(add func([]byte) error) error { leaked = add; return nil }))
	require.Error(t, leaked([]byte("late")), "add after fill returned")
	require.Error(t, w.WriteCheckpoint(2, addAll(nil)), "checkpoint exists")
	require.Error(t, w.WriteCheckpoint(1, addAll(nil)), "older than the existing checkpoint")
	require.NoError(t, w.Close())
	require.ErrorIs(t, w.WriteCheckpoint(3, addAll(nil)), ErrClosed)

	got, _ := reopenReplay(t, opts)
	require.Equal(t, all[20:], got, "empty checkpoint 2, then segments 2 and 3")
}

// TestCheckpointCrash simulates crashes at each step of WriteCheckpoint.
func TestCheckpointCrash(t *testing.T) {
	t.Run("half-written temporary directory", func(t *testing.T) {
		dir := t.TempDir()
		opts := DefaultOptions(dir)
		w, all := writeCheckpointFixture(t, opts)
		require.NoError(t, w.Close())
		tmp := filepath.Join(dir, checkpointName(3)+tmpSuffix)
		require.NoError(t, os.Mkdir(tmp, 0o755))
		half := append(appendSegmentHeader(nil), 0x12, 0x34, 0x56)
		require.NoError(t, os.WriteFile(segmentPath(tmp, 0), half, 0o644))

		got, w2 := reopenReplay(t, opts)
		require.Equal(t, all, got)
		require.Zero(t, corruptions(t, w2, kindCheckpoint))
		_, err := os.Stat(tmp)
		require.ErrorIs(t, err, os.ErrNotExist, "open removes it")
	})
	t.Run("renamed but old segments not deleted", func(t *testing.T) {
		dir := t.TempDir()
		opts := DefaultOptions(dir)
		w, all := writeCheckpointFixture(t, opts)
		saved := t.TempDir()
		for i := range 3 {
			require.NoError(t, os.Link(segmentPath(dir, i), segmentPath(saved, i)))
		}
		require.NoError(t, w.WriteCheckpoint(3, addAll(all[25:])))
		extra := testRecord(500, 40)
		require.NoError(t, w.Append(extra))
		require.NoError(t, w.Close())
		for i := range 3 {
			require.NoError(t, os.Link(segmentPath(saved, i), segmentPath(dir, i)))
		}
		got, _ := reopenReplay(t, opts)
		require.Equal(t, append(all[25:], extra), got, "segments below the boundary are ignored")
		require.Equal(t, 3, segmentFiles(t, dir)[0], "and deleted by open")
	})
	t.Run("old checkpoint not deleted", func(t *testing.T) {
		dir := t.TempDir()
		opts := DefaultOptions(dir)
		w, all := writeCheckpointFixture(t, opts)
		require.NoError(t, w.WriteCheckpoint(2, addAll(all[:1])))
		saved := t.TempDir()
		copyDir(t, filepath.Join(dir, checkpointName(2)), saved)
		require.NoError(t, w.WriteCheckpoint(3, addAll(all[:2])))
		require.NoError(t, w.Close())
		copyDir(t, saved, filepath.Join(dir, checkpointName(2)))

		got, _ := reopenReplay(t, opts)
		require.Equal(t, all[:2], got)
		l, err := listDir(dir)
		require.NoError(t, err)
		require.Equal(t, []int{3}, l.checkpoints)
	})
	t.Run("corrupt checkpoint", func(t *testing.T) {
		dir := t.TempDir()
		opts := DefaultOptions(dir)
		w, all := writeCheckpointFixture(t, opts)
		require.NoError(t, w.WriteCheckpoint(3, addAll(all[:5])))
		require.NoError(t, w.Close())
		path := segmentPath(filepath.Join(dir, checkpointName(3)), 0)
		data := readAllFile(t, path)
		data[len(data)-3] ^= 0xff
		require.NoError(t, os.WriteFile(path, data, 0o644))

		got, w2 := reopenReplay(t, opts)
		require.Equal(t, all[:4], got)
		require.Equal(t, float64(1), corruptions(t, w2, kindCheckpoint))
	})
}

// TestCheckpointConcurrentAppends writes a checkpoint while appends go on.
func TestCheckpointConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions(dir)
	w, all := writeCheckpointFixture(t, opts)
	var mu sync.Mutex
	var appended [][]byte
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			for i := range 50 {
				r := testRecord(uint64(10000+g*100+i), 1000)
				require.NoError(t, w.Append(r))
				mu.Lock()
				appended = append(appended, r)
				mu.Unlock()
			}
		})
	}
	require.NoError(t, w.WriteCheckpoint(3, addAll(all[:3])))
	wg.Wait()
	require.NoError(t, w.Close())
	got, _ := reopenReplay(t, opts)
	require.Equal(t, all[:3], got[:3])
	require.ElementsMatch(t, appended, got[3:])
}
