package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"
)

// collector records what a tailer emits.
type collector struct {
	mu    sync.Mutex
	lines []string
	pos   []Position
}

func (c *collector) emit(_ context.Context, line, _ string, pos Position) error {
	c.mu.Lock()
	c.lines = append(c.lines, line)
	c.pos = append(c.pos, pos)
	c.mu.Unlock()
	return nil
}

func (c *collector) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

func startTailer(t *testing.T, path string, start Position, known bool, maxLine int) (*collector, *tailer) {
	t.Helper()
	c := &collector{}
	tl := newTailer(path, start, known, tailOptions{PollMin: 10 * time.Millisecond, PollMax: 20 * time.Millisecond, MaxLine: maxLine, Logger: discardLogger(), Metrics: NewMetrics()}, c.emit)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = tl.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c, tl
}

func write(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func waitLines(t *testing.T, c *collector, want ...string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d lines", len(want)), 10*time.Second, func() bool { return len(c.get()) >= len(want) })
	time.Sleep(50 * time.Millisecond)
	require.Equal(t, want, c.get())
}

func TestTailerPartialLineCRLFAndUTF8(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	write(t, path, "one\r\ntw")
	c, _ := startTailer(t, path, Position{}, false, 0)
	waitLines(t, c, "one")
	write(t, path, "o\n\xff\xfebad\n")
	waitLines(t, c, "one", "two", "\ufffd\ufffdbad")
	require.EqualValues(t, len("one\r\ntwo\n\xff\xfebad\n"), c.pos[2].Offset)
}

func TestTailerLongLinesAreCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	write(t, path, strings.Repeat("x", 100)+"\nshort\n")
	c, _ := startTailer(t, path, Position{}, false, 10)
	waitLines(t, c, strings.Repeat("x", 10), "short")
	require.EqualValues(t, 107, c.pos[1].Offset)
}

func TestTailerPartialLineFlushedOnRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	write(t, path, "a\nunterminated")
	c, _ := startTailer(t, path, Position{}, false, 0)
	waitLines(t, c, "a")
	require.NoError(t, os.Rename(path, path+".1"))
	write(t, path, "b\n")
	waitLines(t, c, "a", "unterminated", "b")
}

func TestTailerDeletedWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	write(t, path, "a\n")
	c, tl := startTailer(t, path, Position{}, false, 0)
	waitLines(t, c, "a")
	write(t, path, "b\nc")
	require.NoError(t, os.Remove(path))
	waitLines(t, c, "a", "b", "c")
	write(t, path, "new\n")
	waitLines(t, c, "a", "b", "c", "new")
	_ = tl
}

func TestTailerResume(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	write(t, path, "a\nb\n")
	c, _ := startTailer(t, path, Position{}, false, 0)
	waitLines(t, c, "a", "b")
	saved := c.pos[0] // only "a" acknowledged

	// same file: resume after "a"
	c2, _ := startTailer(t, path, saved, true, 0)
	waitLines(t, c2, "b")

	// Promtail positions (no identity): offset honoured
	c3, _ := startTailer(t, path, Position{Offset: 2}, true, 0)
	waitLines(t, c3, "b")

	// rotated while the agent was down: the rest of the old file first,
	// then the new file from its start
	require.NoError(t, os.Rename(path, path+".1"))
	write(t, path+".1", "c\n")
	write(t, path, "d\n")
	c4, _ := startTailer(t, path, saved, true, 0)
	waitLines(t, c4, "b", "c", "d")

	// replaced by a different file with the same inode number is not
	// skipped: a fingerprint mismatch restarts at 0
	other := saved
	other.ID.FP = "0"
	c5, _ := startTailer(t, path, other, true, 0)
	waitLines(t, c5, "d")
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	ts := time.Unix(1700000000, 123456789)
	in := []*pushStream{{Labels: `{job="a"}`, Entries: []pushEntry{{Timestamp: ts, Line: "x", Metadata: []metaPair{{"trace_id", "t1"}}}, {Timestamp: time.Unix(5, 0), Line: ""}}}}
	out, err := decodePushRequest(appendPushRequest(nil, in))
	require.NoError(t, err)
	require.Len(t, out, 1)
	require.Equal(t, `{job="a"}`, out[0].Labels)
	require.True(t, ts.Equal(out[0].Entries[0].Timestamp))
	require.Equal(t, []metaPair{{"trace_id", "t1"}}, out[0].Entries[0].Metadata)
	require.Equal(t, int64(5), out[0].Entries[1].Timestamp.Unix())
}

func BenchmarkEncodeBatch(b *testing.B) {
	src, err := os.ReadFile("testdata/rust-tracing.log")
	require.NoError(b, err)
	lines := strings.Split(strings.TrimSpace(string(src)), "\n")
	streams := map[string]*pushStream{}
	var order []*pushStream
	size := 0
	for i, l := range lines {
		key := fmt.Sprintf(`{job="rust", level="%d"}`, i%4)
		s := streams[key]
		if s == nil {
			s = &pushStream{Labels: key}
			streams[key] = s
			order = append(order, s)
		}
		s.Entries = append(s.Entries, pushEntry{Timestamp: time.Unix(0, int64(i)), Line: l})
		size += len(l)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var buf, out []byte
	for b.Loop() {
		buf = appendPushRequest(buf[:0], order)
		out = snappy.Encode(out[:cap(out)], buf)
	}
	b.ReportMetric(float64(len(lines))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkTailer measures reading a growing file: each iteration appends
// a block of lines and waits until the tailer emitted them.
func BenchmarkTailer(b *testing.B) {
	src, err := os.ReadFile("testdata/rust-tracing.log")
	require.NoError(b, err)
	nLines := strings.Count(string(src), "\n")
	path := filepath.Join(b.TempDir(), "a.log")
	require.NoError(b, os.WriteFile(path, nil, 0o644))
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	count := 0
	tl := newTailer(path, Position{}, false, tailOptions{PollMin: time.Millisecond, PollMax: time.Millisecond, Logger: discardLogger()},
		func(_ context.Context, line, _ string, _ Position) error {
			mu.Lock()
			count++
			cond.Signal()
			mu.Unlock()
			return nil
		})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = tl.run(ctx); close(done) }()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(b, err)
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	for i := range b.N {
		_, err := f.Write(src)
		require.NoError(b, err)
		tl.notify()
		want := (i + 1) * nLines
		mu.Lock()
		for count < want {
			cond.Wait()
		}
		mu.Unlock()
	}
	b.StopTimer()
	b.ReportMetric(float64(nLines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	_ = f.Close()
	cancel()
	<-done
}

// TestTailerCopyTruncateRefilled truncates a file and writes past the
// tailer's offset between two of its polls: the tailer must not read the
// new content from its old offset (a partial line and duplicates) but
// take the rest of the old content from the copy and the new content from
// its start.
func TestTailerCopyTruncateRefilled(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	var old []string
	for i := range 200 {
		old = append(old, fmt.Sprintf("old-%03d", i))
	}
	write(t, path, strings.Join(old[:100], "\n")+"\n")
	c := &collector{}
	tl := newTailer(path, Position{}, false, tailOptions{PollMin: 400 * time.Millisecond, PollMax: 400 * time.Millisecond, Logger: discardLogger(), Metrics: NewMetrics()}, c.emit)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = tl.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitLines(t, c, old[:100]...)
	// the writer goes on, the rotator copies and truncates, the writer
	// writes more than the tailer had read; all before the next poll
	write(t, path, strings.Join(old[100:], "\n")+"\n")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path+".1", data, 0o644))
	require.NoError(t, os.Truncate(path, 0))
	var fresh []string
	for i := range 300 {
		fresh = append(fresh, fmt.Sprintf("new-%03d", i))
	}
	write(t, path, strings.Join(fresh, "\n")+"\n")
	waitLines(t, c, append(old, fresh...)...)
}

// TestTailerRotationsWhileBlocked rotates a file three times while the
// tailer is held back by back-pressure: every file that was at the path is
// read, in order, once.
func TestTailerRotationsWhileBlocked(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	write(t, path, "f0-a\nf0-b\n")
	gate := make(chan struct{})
	c := &collector{}
	emit := func(ctx context.Context, line, key string, pos Position) error {
		if line == "f0-b" {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return c.emit(ctx, line, key, pos)
	}
	tl := newTailer(path, Position{}, false, tailOptions{PollMin: 10 * time.Millisecond, PollMax: 20 * time.Millisecond, Logger: discardLogger(), Metrics: NewMetrics()}, emit)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = tl.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitLines(t, c, "f0-a")
	want := []string{"f0-a", "f0-b"}
	for r := 1; r <= 3; r++ {
		require.NoError(t, os.Rename(path, fmt.Sprintf("%s.%d", path, r)))
		line := fmt.Sprintf("f%d-a", r)
		write(t, path, line+"\n")
		want = append(want, line)
		// the watcher holds the new file open before the next rotation
		waitFor(t, "queued file", 10*time.Second, func() bool {
			tl.qmu.Lock()
			defer tl.qmu.Unlock()
			return len(tl.queue) == r
		})
	}
	close(gate)
	waitLines(t, c, want...)
}
