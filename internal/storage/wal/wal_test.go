package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	goleak.VerifyTestMain(m)
}

// testRecord returns a deterministic record: an 8-byte sequence number
// followed by size-8 bytes derived from it.
func testRecord(seq uint64, size int) []byte {
	size = max(size, 8)
	b := make([]byte, size)
	binary.LittleEndian.PutUint64(b, seq)
	for i := 8; i < size; i++ {
		b[i] = byte(seq*31 + uint64(i)*7)
	}
	return b
}

// checkRecord verifies a record made by testRecord and returns its sequence.
func checkRecord(t testing.TB, rec []byte) uint64 {
	t.Helper()
	require.GreaterOrEqual(t, len(rec), 8)
	seq := binary.LittleEndian.Uint64(rec)
	require.Equal(t, testRecord(seq, len(rec)), rec, "record %d", seq)
	return seq
}

func openWAL(t testing.TB, opts Options) *WAL {
	t.Helper()
	w, err := Open(opts)
	require.NoError(t, err)
	return w
}

func replayAll(t testing.TB, w *WAL) [][]byte {
	t.Helper()
	var out [][]byte
	require.NoError(t, w.Replay(func(rec []byte) error {
		out = append(out, bytes.Clone(rec))
		return nil
	}))
	return out
}

// reopenReplay closes nothing: it opens dir, replays and closes.
func reopenReplay(t testing.TB, opts Options) ([][]byte, *WAL) {
	t.Helper()
	w := openWAL(t, opts)
	recs := replayAll(t, w)
	require.NoError(t, w.Close())
	return recs, w
}

func counterValue(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	m := collectOne(t, c)
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func histogramCount(t testing.TB, h prometheus.Histogram) uint64 {
	t.Helper()
	return collectOne(t, h).Histogram.GetSampleCount()
}

func collectOne(t testing.TB, c prometheus.Collector) *dto.Metric {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	require.NoError(t, (<-ch).Write(&m))
	return &m
}

func corruptions(t testing.TB, w *WAL, kind string) float64 {
	t.Helper()
	return counterValue(t, w.metrics.corruptions.WithLabelValues(kind))
}

func segmentFiles(t testing.TB, dir string) []int {
	t.Helper()
	l, err := listDir(dir)
	require.NoError(t, err)
	return l.segments
}

// logBuffer returns a logger that writes text to a buffer.
func logBuffer() (*slog.Logger, *syncBuffer) {
	b := &syncBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	require.NoError(t, os.CopyFS(dst, os.DirFS(src)))
}

func TestAppendReplayRoundTrip(t *testing.T) {
	for _, sync := range []bool{true, false} {
		t.Run(fmt.Sprintf("sync=%v", sync), func(t *testing.T) {
			dir := t.TempDir()
			opts := DefaultOptions(dir)
			opts.Sync = sync
			opts.SegmentSize = 64 << 10
			w := openWAL(t, opts)
			require.Empty(t, replayAll(t, w))

			// Sizes around and above a 32 KiB page and the 64 KiB segment
			// size, plus empty and one-byte records.
			var want [][]byte
			seq := uint64(0)
			for _, sizes := range [][]int{{8}, {100, 9, 8}, {32 << 10}, {40 << 10, 40 << 10}, {200 << 10}, {8, 70 << 10, 8}, {1000}} {
				var batch [][]byte
				for _, size := range sizes {
					batch = append(batch, testRecord(seq, size))
					seq++
				}
				require.NoError(t, w.Append(batch...))
				want = append(want, batch...)
			}
			require.NoError(t, w.Append([]byte{}), "empty record")
			want = append(want, []byte{})
			require.NoError(t, w.Append(), "empty batch is a no-op")
			require.NoError(t, w.Close())
			require.NoError(t, w.Close(), "Close is idempotent")
			require.ErrorIs(t, w.Append([]byte("x")), ErrClosed)

			require.Greater(t, len(segmentFiles(t, dir)), 3, "records span segments")
			got, _ := reopenReplay(t, opts)
			require.Equal(t, want, got)
			// Every open starts a segment; replay is unchanged.
			got, _ = reopenReplay(t, opts)
			require.Equal(t, want, got)
		})
	}
}

func TestAppendAfterReopen(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions(dir)
	var want [][]byte
	for round := range 3 {
		w := openWAL(t, opts)
		require.Equal(t, want, replayAll(t, w))
		for i := range 5 {
			r := testRecord(uint64(round*10+i), 50+i)
			require.NoError(t, w.Append(r))
			want = append(want, r)
		}
		require.NoError(t, w.Close())
	}
	got, _ := reopenReplay(t, opts)
	require.Equal(t, want, got)
}

func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions(dir)
	opts.SegmentSize = 1 << 20
	w := openWAL(t, opts)
	const writers, perWriter = 8, 40
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				seq := uint64(g*1000 + i*2)
				// Two records per batch: they must stay adjacent.
				require.NoError(t, w.Append(testRecord(seq, 2000+i*100), testRecord(seq+1, 10)))
			}
		})
	}
	wg.Wait()
	appends := counterValue(t, w.metrics.appends)
	commits := counterValue(t, w.metrics.groupCommits)
	fsyncs := histogramCount(t, w.metrics.fsyncDuration)
	require.Equal(t, float64(writers*perWriter), appends)
	require.Equal(t, float64(2*writers*perWriter), counterValue(t, w.metrics.recordsLogged))
	t.Logf("appends=%v group commits=%v fsyncs=%d", appends, commits, fsyncs)
	require.Less(t, commits, appends, "concurrent appends share writes")
	// Segment creations fsync too; still far fewer than appends.
	require.Less(t, float64(fsyncs), appends, "concurrent appends share fsyncs")
	require.NoError(t, w.Close())

	got, _ := reopenReplay(t, opts)
	require.Len(t, got, 2*writers*perWriter)
	last := map[int]int{}
	for i := 0; i < len(got); i += 2 {
		seq := checkRecord(t, got[i])
		require.Equal(t, seq+1, checkRecord(t, got[i+1]), "batch records are contiguous")
		g, n := int(seq/1000), int(seq%1000)
		prev, seen := last[g]
		require.True(t, !seen || n > prev, "writer %d order kept", g)
		last[g] = n
	}
}

func TestNextSegment(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions(dir)
	w := openWAL(t, opts)
	require.NoError(t, w.Append(testRecord(1, 100)))
	idx, err := w.NextSegment()
	require.NoError(t, err)
	require.Equal(t, 1, idx)
	require.Equal(t, float64(1), counterValue(t, w.metrics.segmentCurrent))
	require.NoError(t, w.Append(testRecord(2, 100)))
	idx2, err := w.NextSegment()
	require.NoError(t, err)
	require.Equal(t, 2, idx2)
	require.NoError(t, w.Close())

	// Segment 1 holds exactly the second record.
	f, err := os.Open(segmentPath(dir, 1))
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	r := NewReader(f, st.Size(), f.Name())
	require.True(t, r.Next())
	require.Equal(t, uint64(2), checkRecord(t, r.Record()))
	require.False(t, r.Next())
	require.NoError(t, r.Err())
}

func TestBackgroundSync(t *testing.T) {
	opts := DefaultOptions(t.TempDir())
	opts.Sync = false
	opts.SyncInterval = 5 * 1e6 // 5ms
	w := openWAL(t, opts)
	require.NoError(t, w.Append(testRecord(1, 100)))
	require.Eventually(t, func() bool { return histogramCount(t, w.metrics.fsyncDuration) > 0 }, 10e9, 5e6)
	require.NoError(t, w.Close())
	got, _ := reopenReplay(t, opts)
	require.Len(t, got, 1)
}

func TestOpenLocked(t *testing.T) {
	opts := DefaultOptions(t.TempDir())
	w := openWAL(t, opts)
	_, err := Open(opts)
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, w.Close())
	w = openWAL(t, opts)
	require.NoError(t, w.Close())
}

func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := DefaultOptions(t.TempDir())
	opts.Registerer = reg
	w := openWAL(t, opts)
	require.NoError(t, w.Append([]byte("a")))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, want := range []string{
		"loki_ingester_wal_records_logged_total", "loki_ingester_wal_logged_bytes_total",
		"loki_ingester_wal_fsync_duration_seconds", "loki_ingester_wal_segment_current",
		"ledgerlog_wal_corruptions_total", "loki_ingester_checkpoint_duration_seconds",
		"loki_ingester_checkpoint_creations_total", "ledgerlog_wal_group_commits_total",
	} {
		require.Contains(t, names, want)
	}
	require.NoError(t, w.Close())
	// Close unregisters, so the same registry can be used again.
	w = openWAL(t, opts)
	require.NoError(t, w.Close())
}

func TestReplayCallbackError(t *testing.T) {
	opts := DefaultOptions(t.TempDir())
	w := openWAL(t, opts)
	require.NoError(t, w.Append([]byte("a"), []byte("b")))
	require.NoError(t, w.Close())
	w = openWAL(t, opts)
	stop := fmt.Errorf("stop")
	n := 0
	err := w.Replay(func([]byte) error { n++; return stop })
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, n)
	require.NoError(t, w.Close())
}

func TestUnsupportedFormat(t *testing.T) {
	f := func(name string, data []byte) {
		t.Helper()
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "00000000"), data, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "00000001"), appendSegmentHeader(nil), 0o644))
		w := openWAL(t, DefaultOptions(dir))
		err := w.Replay(func([]byte) error { return nil })
		require.ErrorIs(t, err, ErrUnsupportedFormat, name)
		require.NoError(t, w.Close())
	}
	v2 := appendSegmentHeader(nil)
	v2[4] = 2
	f("version 2", v2)

	f("encrypted frame", encryptedFlagSegment())
}

func TestFlagsString(t *testing.T) {
	f := func(fl FrameFlags, want string) {
		t.Helper()
		require.Equal(t, want, fl.String())
	}
	f(0, "plain")
	f(FlagEncrypted, "encrypted")
	f(0x03, "encrypted|0x02")
	require.Equal(t, "v1", Version1.String())
	require.Equal(t, "unknown(7)", Version(7).String())
}

func TestParseNames(t *testing.T) {
	f := func(name string, want int, ok bool) {
		t.Helper()
		got, gotOK := parseIndex(name)
		require.Equal(t, ok, gotOK, name)
		if ok {
			require.Equal(t, want, got)
		}
	}
	f("00000000", 0, true)
	f("00000012", 12, true)
	f("123456789", 123456789, true)
	f("0000012", 0, false)
	f("0000001a", 0, false)
	f("LOCK", 0, false)
	b, ok := parseCheckpointName("checkpoint.00000012")
	require.True(t, ok)
	require.Equal(t, 12, b)
	_, ok = parseCheckpointName("checkpoint.00000012.tmp")
	require.False(t, ok)
	require.Equal(t, "checkpoint.00000012", checkpointName(12))
}

func crcOf(parts ...[]byte) uint32 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	return crc32.Checksum(all, castagnoli)
}

// readAllFile reads a whole file.
func readAllFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
