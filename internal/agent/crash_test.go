package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

const childConfigEnv = "LEDGERLOG_AGENT_CHILD_CONFIG"

// TestMain doubles as the agent process of crash tests: with
// LEDGERLOG_AGENT_CHILD_CONFIG set, the test binary runs an agent on that
// config until it is killed.
func TestMain(m *testing.M) {
	if path := os.Getenv(childConfigEnv); path != "" {
		os.Exit(runChild(path))
	}
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

func runChild(path string) int {
	cfg, err := LoadConfig(path, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	a, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startChild(t *testing.T, cfgPath string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childConfigEnv+"="+cfgPath)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	return cmd
}

func TestAgentKilledMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	recv := newTestReceiver(t)
	recv.delay.Store(int64(10 * time.Millisecond)) // batches spend time in flight
	dir := t.TempDir()
	logDir := filepath.Join(dir, "logs")
	require.NoError(t, os.MkdirAll(logDir, 0o755))
	path := filepath.Join(logDir, "app.log")
	cfgPath := filepath.Join(dir, "agent.yaml")
	cfg := ExpandEnv(fileAgentYAML, func(k string) (string, bool) {
		switch k {
		case "DIR":
			return dir, true
		case "URL":
			return recv.url(), true
		}
		return "", false
	})
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))

	const total, kills = 8000, 4
	const batchLines = 4096/len("line-0000") + 1 // batchsize counts line bytes
	child := startChild(t, cfgPath)
	n, prevDups := 0, 0
	var perKill []int
	for k := range kills {
		// write while the agent runs, then kill it without warning
		target := (k + 1) * total / (kills + 1)
		for n < target {
			next := min(n+100, target)
			appendLines(t, path, n, next)
			n = next
			time.Sleep(5 * time.Millisecond)
		}
		// kill while the agent is sending: some of the lines are
		// received, more are read and in flight
		waitFor(t, "sending", 60*time.Second, func() bool { return len(lineCounts(recv.received())) >= target-1200+k*300 })
		require.NoError(t, child.Process.Signal(syscall.SIGKILL))
		_ = child.Wait()
		// lines written while the agent is down
		appendLines(t, path, n, n+200)
		n += 200
		child = startChild(t, cfgPath)
		// what this kill re-sent: duplicates once everything written so far
		// arrived again
		waitFor(t, "lines after restart", 60*time.Second, func() bool { return len(lineCounts(recv.received())) >= n })
		dups := checkDelivery(t, recv.received(), n)
		perKill = append(perKill, dups-prevDups)
		prevDups = dups
	}
	appendLines(t, path, n, total)
	waitFor(t, "all lines", 60*time.Second, func() bool { return len(lineCounts(recv.received())) >= total })
	require.NoError(t, child.Process.Signal(syscall.SIGTERM))
	_ = child.Wait()
	dups := checkDelivery(t, recv.received(), total)
	t.Logf("%d kills: %d lines, %d duplicates, per kill %v (a batch is ~%d lines)", kills, total, dups, perKill, batchLines)
	// each kill re-sends at most what the agent had read but not yet
	// acknowledged (the batch being sent, the one queued behind it, the
	// one being filled, the entries in the channels between the tailer
	// and the batcher: job input 128, client input 256, one in each
	// goroutine) and the acknowledged batch whose positions were being
	// written: the next batch is sent only once they are on disk
	for _, d := range perKill {
		require.LessOrEqual(t, d, 4*batchLines+128+256+2)
	}
	require.Equal(t, dups, prevDups, "no duplicates after the last restart")
}
