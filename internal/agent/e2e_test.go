package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runAgent starts an agent for the YAML config in-process and returns a
// function that stops it and waits.
func runAgent(t testing.TB, yamlText string, env map[string]string) (*Agent, func()) {
	t.Helper()
	cfg, err := ParseConfig([]byte(ExpandEnv(yamlText, func(k string) (string, bool) { v, ok := env[k]; return v, ok })), false)
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	a, err := New(cfg, Options{Logger: logger})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("agent did not stop")
		}
	}
	t.Cleanup(stop)
	return a, stop
}

const fileAgentYAML = `
server:
  http_listen_port: 0
positions:
  filename: ${DIR}/positions.yaml
  sync_period: 100ms
clients:
  - url: ${URL}
    batchwait: 50ms
    batchsize: 4096
    backoff_config:
      min_period: 20ms
      max_period: 100ms
      max_retries: 0
${EXTRA_CLIENT}
global:
  file_watch_config:
    min_poll_frequency: 20ms
    max_poll_frequency: 50ms
target_config:
  sync_period: 100ms
scrape_configs:
  - job_name: test
    static_configs:
      - targets: [localhost]
        labels:
          job: test
          __path__: ${DIR}/logs/*.log
`

// lineCounts maps "line-N" payloads to how often they arrived.
func lineCounts(entries []receivedEntry) map[int]int {
	m := map[int]int{}
	for _, e := range entries {
		if n, ok := strings.CutPrefix(e.Line, "line-"); ok {
			if i, err := strconv.Atoi(n); err == nil {
				m[i]++
			}
		}
	}
	return m
}

// checkDelivery asserts every line 0..n-1 arrived and returns the number of
// duplicate deliveries.
func checkDelivery(t testing.TB, entries []receivedEntry, n int) int {
	t.Helper()
	counts := lineCounts(entries)
	var missing []int
	dups := 0
	for i := range n {
		switch c := counts[i]; {
		case c == 0:
			missing = append(missing, i)
		case c > 1:
			dups += c - 1
		}
	}
	if len(missing) > 0 {
		var ranges []string
		for i := 0; i < len(missing); {
			j := i
			for j+1 < len(missing) && missing[j+1] == missing[j]+1 {
				j++
			}
			ranges = append(ranges, fmt.Sprintf("%d-%d", missing[i], missing[j]))
			i = j + 1
		}
		t.Logf("missing: %v", ranges)
		t.Fatalf("%d of %d lines lost, first: %v", len(missing), n, missing[:min(10, len(missing))])
	}
	return dups
}

func appendLines(t testing.TB, path string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	w := bufio.NewWriter(f)
	for i := from; i < to; i++ {
		fmt.Fprintf(w, "line-%d\n", i)
	}
	require.NoError(t, w.Flush())
	require.NoError(t, f.Close())
}

func TestSeedRustConfigShipsTracingJSON(t *testing.T) {
	recv := newTestReceiver(t)
	dir := t.TempDir()
	logDir := filepath.Join(dir, "logs")
	require.NoError(t, os.MkdirAll(logDir, 0o755))
	cfgText, err := os.ReadFile("testdata/promtail-rust.yaml")
	require.NoError(t, err)
	env := map[string]string{"POSITIONS_DIR": dir, "LOKI_ADDR": recv.addr, "LOG_DIR": logDir}
	_, stop := runAgent(t, string(cfgText), env)

	src, err := os.ReadFile("testdata/rust-tracing.log")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(src)), "\n")
	require.Len(t, lines, 2000)
	// write in chunks while the agent runs
	f, err := os.Create(filepath.Join(logDir, "fintech.log"))
	require.NoError(t, err)
	for i := 0; i < len(lines); i += 250 {
		_, err := f.WriteString(strings.Join(lines[i:i+250], "\n") + "\n")
		require.NoError(t, err)
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, f.Close())
	waitFor(t, "2000 entries", 30*time.Second, func() bool { return recv.count() >= 2000 })
	stop()

	got := recv.received()
	require.Len(t, got, 2000, "every line arrives once")
	type want struct{ level string }
	byTS := map[int64]want{}
	for _, l := range lines {
		var v struct {
			Timestamp string `json:"timestamp"`
			Level     string `json:"level"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &v))
		ts, err := time.Parse(time.RFC3339Nano, v.Timestamp)
		require.NoError(t, err)
		byTS[ts.UnixNano()] = want{level: v.Level}
	}
	seen := map[int64]bool{}
	for _, e := range got {
		w, ok := byTS[e.TS.UnixNano()]
		require.True(t, ok, "timestamp %s comes from a line", e.TS)
		require.False(t, seen[e.TS.UnixNano()], "duplicate %s", e.TS)
		seen[e.TS.UnixNano()] = true
		require.Contains(t, e.Labels, `level="`+w.level+`"`)
		require.Contains(t, e.Labels, `job="rust-fintech"`)
		require.Contains(t, e.Labels, `environment="production"`)
	}
}

// TestRotationUnderContinuousWrites rotates a file every 500 lines while
// it is written. "rename-gap" leaves the path missing for longer than a
// target's retirement grace, with the writer still appending to the
// renamed file, and the server answers slowly so that acknowledgements lag
// behind: the target is retired and started again, and the new tailer must
// continue where the old one stopped rather than from the acknowledged
// position.
func TestRotationUnderContinuousWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	for _, style := range []string{"rename", "copytruncate", "rename-gap"} {
		t.Run(style, func(t *testing.T) {
			recv := newTestReceiver(t)
			dir := t.TempDir()
			logDir := filepath.Join(dir, "logs")
			require.NoError(t, os.MkdirAll(logDir, 0o755))
			path := filepath.Join(logDir, "app.log")
			appendLines(t, path, 0, 1)
			_, stop := runAgent(t, fileAgentYAML, map[string]string{"DIR": dir, "URL": recv.url()})
			const total, perRotation = 6000, 500
			rotations := 0
			n := 1
			for n < total {
				next := min(n+50, total)
				appendLines(t, path, n, next)
				if next/perRotation != n/perRotation {
					rotations++
					rotated := filepath.Join(logDir, fmt.Sprintf("app.log.%d", next))
					switch {
					case style == "rename" || style == "rename-gap" && rotations%4 != 1:
						require.NoError(t, os.Rename(path, rotated))
						appendLines(t, path, next, next) // create
					case style == "rename-gap":
						// the batch in flight is acknowledged only after the
						// target was retired and started again
						recv.delay.Store(int64(2 * retireGrace))
						require.NoError(t, os.Rename(path, rotated))
						time.Sleep(retireGrace + 300*time.Millisecond)
						appendLines(t, rotated, next, next+20) // the writer's old descriptor
						next += 20
						appendLines(t, path, next, next)
						recv.delay.Store(0)
					case style == "copytruncate":
						// a generation truncated away while the reader is
						// still in an older one cannot be found (its copy
						// looks like any other file): keep the reader at
						// most one generation behind
						waitFor(t, "previous generation", 60*time.Second, func() bool {
							return len(lineCounts(recv.received())) >= next-perRotation
						})
						data, err := os.ReadFile(path)
						require.NoError(t, err)
						require.NoError(t, os.WriteFile(rotated, data, 0o644))
						require.NoError(t, os.Truncate(path, 0))
					}
				}
				n = next
				time.Sleep(2 * time.Millisecond)
			}
			deadline := time.Now().Add(60 * time.Second)
			for len(lineCounts(recv.received())) < total && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			stop()
			dups := checkDelivery(t, recv.received(), total)
			t.Logf("%s: %d lines, %d rotations, %d duplicates", style, total, rotations, dups)
			require.Equal(t, total/perRotation, rotations)
			require.Zero(t, dups)
		})
	}
}

func TestServerDownThenBack(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	recv := newTestReceiver(t)
	dir := t.TempDir()
	logDir := filepath.Join(dir, "logs")
	require.NoError(t, os.MkdirAll(logDir, 0o755))
	path := filepath.Join(logDir, "app.log")
	yml := strings.Replace(fileAgentYAML, "    batchwait: 50ms", "    batchwait: 50ms\n    disk_buffer:\n      dir: ${DIR}/buffer\n      max_size: 64KB", 1)
	a, stop := runAgent(t, yml, map[string]string{"DIR": dir, "URL": recv.url()})
	appendLines(t, path, 0, 500)
	waitFor(t, "first lines", 20*time.Second, func() bool { return recv.count() >= 500 })
	recv.down.Store(true)
	appendLines(t, path, 500, 5000)
	// the disk buffer fills to its limit, then reading pauses
	waitFor(t, "outage retries", 20*time.Second, func() bool { return recv.requests.Load() > 20 })
	pos, _ := a.Positions().Get(path)
	require.LessOrEqual(t, pos.Offset, int64(len("line-000\n")*500+1000), "positions hold acknowledged offsets only")
	recv.down.Store(false)
	waitFor(t, "all lines", 60*time.Second, func() bool { return len(lineCounts(recv.received())) >= 5000 })
	stop()
	dups := checkDelivery(t, recv.received(), 5000)
	t.Logf("server outage: 5000 lines, %d duplicates", dups)
	require.Zero(t, dups)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	p, ok := a.Positions().Get(path)
	require.True(t, ok)
	require.Equal(t, fi.Size(), p.Offset)
}
