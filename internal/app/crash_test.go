package app

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCrashSafety SIGKILLs a server while several clients push, restarts
// it and checks that every acknowledged line is queryable, many times over
// the same data directory (so replays of replays and checkpoints are
// exercised too).
func TestCrashSafety(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 3
	}
	dir := tempDir(t)
	port := freePort(t)
	extra := []string{"-validation.max-entries-limit", "1000000", "-ingester.max-head-bytes", "256KB"}
	type acked struct {
		round, client int
		lines         map[string]int64
	}
	var all []acked
	base := time.Now().Add(-30 * time.Minute).UnixNano()
	for round := 0; round < rounds; round++ {
		s := startChild(t, dir, port, extra...)
		const clients = 4
		results := make([]acked, clients)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for c := 0; c < clients; c++ {
			results[c] = acked{round: round, client: c, lines: map[string]int64{}}
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				ts := base + int64(round)*int64(time.Second) + int64(c)
				for seq := 0; ; seq++ {
					select {
					case <-stop:
						return
					default:
					}
					var tss []int64
					var lines []string
					for k := 0; k < 20; k++ {
						ts += 10
						tss = append(tss, ts)
						lines = append(lines, fmt.Sprintf("round=%d client=%d seq=%d k=%d payload=%s", round, c, seq, k, strconv.FormatUint(rand.Uint64(), 36)))
					}
					code, err := pushQuiet(s.url, map[string]string{"round": strconv.Itoa(round), "client": strconv.Itoa(c)}, tss, lines)
					if err != nil || code != http.StatusNoContent {
						return // server gone; nothing of this batch was acknowledged
					}
					for i, l := range lines {
						results[c].lines[l] = tss[i]
					}
				}
			}(c)
		}
		time.Sleep(time.Duration(150+rand.IntN(350)) * time.Millisecond)
		s.kill()
		close(stop)
		wg.Wait()
		all = append(all, results...)

		s = startChild(t, dir, port, extra...)
		for _, a := range results {
			checkAcked(t, s, a.round, a.client, a.lines)
		}
		s.kill()
	}
	// Everything acknowledged in every round is still there at the end.
	s := startChild(t, dir, port, extra...)
	defer s.kill()
	total := 0
	for _, a := range all {
		checkAcked(t, s, a.round, a.client, a.lines)
		total += len(a.lines)
	}
	t.Logf("%d rounds, %d acknowledged lines, all present after SIGKILL and restart", rounds, total)
}

func checkAcked(t *testing.T, s *testServer, round, client int, lines map[string]int64) {
	t.Helper()
	q := fmt.Sprintf(`{round="%d", client="%d"}`, round, client)
	rows, _ := s.queryRange(q, time.Now().Add(-2*time.Hour).UnixNano(), time.Now().Add(time.Minute).UnixNano(), 1000000, "forward")
	got := map[string]bool{}
	for _, r := range rows {
		parts := splitRow(r)
		got[parts[2]] = true
	}
	missing := 0
	for l := range lines {
		if !got[l] {
			missing++
		}
	}
	require.Zero(t, missing, "round %d client %d: %d of %d acknowledged lines missing\n%s", round, client, missing, len(lines), s.logs.String())
}

func splitRow(r string) [3]string {
	var out [3]string
	i := 0
	start := 0
	for j := 0; j < len(r) && i < 2; j++ {
		if r[j] == '\t' {
			out[i] = r[start:j]
			i++
			start = j + 1
		}
	}
	out[2] = r[start:]
	return out
}
