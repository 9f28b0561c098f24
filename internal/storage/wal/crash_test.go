package wal

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// crashChildEnv switches the test binary into the child of TestCrashSIGKILL;
// crashSeqEnv gives the first sequence number the child appends.
const (
	crashChildEnv = "LEDGERLOG_WAL_CRASH_CHILD_DIR"
	crashSeqEnv   = "LEDGERLOG_WAL_CRASH_FIRST_SEQ"
)

// crashRecordSize gives record seq a size between 1 KiB and about 300 KiB.
func crashRecordSize(seq uint64) int { return 1<<10 + int(seq%11)*30<<10 }

// crashChild appends from four goroutines and prints "ack N" after Append
// of record N returned, until it is killed.
func crashChild(dir string) int {
	w, err := Open(DefaultOptions(dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := w.Replay(func([]byte) error { return nil }); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var seq atomic.Uint64
	first, err := strconv.ParseUint(os.Getenv(crashSeqEnv), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	seq.Store(first)
	var outMu sync.Mutex
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				s := seq.Add(1)
				if err := w.Append(testRecord(s, crashRecordSize(s))); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				outMu.Lock()
				fmt.Fprintf(os.Stdout, "ack %d\n", s) // os.Stdout is unbuffered
				outMu.Unlock()
			}
		})
	}
	wg.Wait()
	return 0
}

// TestCrashSIGKILL kills a process that appends with SIGKILL and checks that
// every record whose Append had returned is replayed intact.
func TestCrashSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	for round := range 2 { // the second round kills a process that replayed a torn WAL
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s=%d", crashSeqEnv, round*1_000_000))
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())

		acked := map[uint64]bool{}
		sc := bufio.NewScanner(stdout)
		deadline := time.Now().Add(20 * time.Second)
		killed := false
		for sc.Scan() {
			s, ok := strings.CutPrefix(sc.Text(), "ack ")
			require.True(t, ok, sc.Text())
			n, err := strconv.ParseUint(s, 10, 64)
			require.NoError(t, err)
			acked[n] = true
			if !killed && (len(acked) >= 300 || time.Now().After(deadline)) {
				require.NoError(t, cmd.Process.Kill()) // SIGKILL
				killed = true
			}
		}
		require.NoError(t, sc.Err())
		err = cmd.Wait()
		require.True(t, killed, "child exited by itself: %v: %s", err, stderr.String())
		require.NotEmpty(t, acked)

		w := openWAL(t, DefaultOptions(dir))
		seen := map[uint64]bool{}
		require.NoError(t, w.Replay(func(rec []byte) error {
			seq := checkRecord(t, rec)
			require.False(t, seen[seq], "record %d replayed twice", seq)
			require.Equal(t, crashRecordSize(seq), len(rec))
			seen[seq] = true
			return nil
		}))
		for n := range acked {
			require.True(t, seen[n], "round %d: acknowledged record %d lost", round, n)
		}
		t.Logf("round %d: %d acknowledged, %d replayed, torn tails %v", round, len(acked), len(seen), corruptions(t, w, kindTornTail))
		require.NoError(t, w.Close())
	}
}
