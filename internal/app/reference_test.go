package app

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// benchDir is the shared benchmark toolkit (gen, push, query), beside the
// repository; LEDGERLOG_BENCH_DIR overrides it.
func benchDir() string {
	if d := os.Getenv("LEDGERLOG_BENCH_DIR"); d != "" {
		return d
	}
	return "../../../shared/bench"
}

var (
	benchOnce sync.Once
	benchBin  string
	benchErr  error
)

// benchTools builds the toolkit into a temp dir once per test binary.
func benchTools(t *testing.T) string {
	t.Helper()
	benchOnce.Do(func() {
		dir := benchDir()
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
			benchErr = fmt.Errorf("benchmark toolkit not found at %s: %w", dir, err)
			return
		}
		out, err := os.MkdirTemp("", "ledgerlog-benchkit-")
		if err != nil {
			benchErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", out+"/", "./cmd/...")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			benchErr = fmt.Errorf("build benchmark toolkit: %v\n%s", err, out)
			return
		}
		benchBin = out
	})
	if benchErr != nil {
		t.Skipf("SKIPPING reference test: %v", benchErr)
	}
	return benchBin
}

type genLine struct {
	Labels string `json:"labels"`
	TS     int64  `json:"ts"`
	Line   string `json:"line"`
	ls     model.Labels
}

// TestReferenceDataset pushes a generated FinTech dataset with the
// benchmark's push tool and checks log-query answers against a brute-force
// evaluation over the dataset file, from the head and again from blocks.
func TestReferenceDataset(t *testing.T) {
	bin := benchTools(t)
	lines := 40000
	if testing.Short() {
		lines = 10000
	}
	// LEDGERLOG_REFERENCE_LINES=2000000 runs the check on the default
	// benchmark dataset size.
	if n, err := strconv.Atoi(os.Getenv("LEDGERLOG_REFERENCE_LINES")); err == nil && n > 0 {
		lines = n
	}
	data := filepath.Join(t.TempDir(), "fintech.ndjson")
	out, err := exec.Command(bin+"/gen", "-lines", strconv.Itoa(lines), "-out", data).CombinedOutput()
	require.NoError(t, err, string(out))

	var all []genLine
	f, err := os.Open(data)
	require.NoError(t, err)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var g genLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &g))
		g.ls, err = model.ParseLabels(g.Labels)
		require.NoError(t, err)
		all = append(all, g)
	}
	require.NoError(t, f.Close())
	require.Len(t, all, lines)

	headBytes := "1MB" // many small blocks: exercises merging across blocks
	if lines > 100000 {
		headBytes = "16MB"
	}
	limits := []string{"-validation.reject-old-samples=false",
		"-distributor.ingestion-rate-limit-mb", "1024", "-distributor.ingestion-burst-size-mb", "2048",
		"-ingester.per-stream-rate-limit", "256MB", "-ingester.per-stream-rate-limit-burst", "512MB"}
	s := startServer(t, tempDir(t), append(limits, "-ingester.max-head-bytes", headBytes)...)
	out, err = exec.Command(bin+"/push", "-in", data, "-url", s.url, "-format", "proto", "-concurrency", "4").CombinedOutput()
	require.NoError(t, err, string(out))

	start := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).UnixNano()
	end := start + int64(6*time.Hour)
	type q struct {
		query      string
		start, end int64
		limit      int
		dir        string
		match      func(g genLine) bool
	}
	has := func(label, value string) func(genLine) bool {
		return func(g genLine) bool { return g.ls.Get(label) == value }
	}
	and := func(fs ...func(genLine) bool) func(genLine) bool {
		return func(g genLine) bool {
			for _, f := range fs {
				if !f(g) {
					return false
				}
			}
			return true
		}
	}
	contains := func(s string) func(genLine) bool {
		return func(g genLine) bool { return strings.Contains(g.Line, s) }
	}
	declines := regexp.MustCompile("ACQUIRER_TIMEOUT|ISSUER_DECLINED")
	mid := start + int64(2*time.Hour)
	queries := []q{
		{`{service="ledger"}`, start, end, 1000, "backward", has("service", "ledger")},
		{`{service="payment-processor", environment="prod"} |~ "ACQUIRER_TIMEOUT|ISSUER_DECLINED"`, start, end, 100, "backward",
			and(has("service", "payment-processor"), has("environment", "prod"), func(g genLine) bool { return declines.MatchString(g.Line) })},
		{`{service=~".+"} |= "4bf92f3577b34da6a3ce929d0e0e4736"`, start, end, 100, "backward", contains("4bf92f3577b34da6a3ce929d0e0e4736")},
		{`{service=~".+"} |~ "COMPLIANCE_VIOLATION"`, start, end, 100, "forward", contains("COMPLIANCE_VIOLATION")},
		{`{level="error"} != "timeout"`, start, end, 500, "forward", and(has("level", "error"), func(g genLine) bool { return !strings.Contains(g.Line, "timeout") })},
		{`{environment="prod", region=~"eu-.*"} |= "ERROR"`, start, end, 5000, "forward",
			and(has("environment", "prod"), func(g genLine) bool { return strings.HasPrefix(g.ls.Get("region"), "eu-") }, contains("ERROR"))},
		{`{service="auth"}`, mid, mid + int64(30*time.Minute), 5000, "forward", has("service", "auth")},
		{`{service!="auth", level=~"warn|error"}`, mid, end, 200, "backward",
			and(func(g genLine) bool { return g.ls.Get("service") != "auth" }, func(g genLine) bool { l := g.ls.Get("level"); return l == "warn" || l == "error" })},
	}
	expect := func(x q) []string {
		var rows []genLine
		for _, g := range all {
			if g.TS >= x.start && g.TS < x.end && x.match(g) {
				rows = append(rows, g)
			}
		}
		sort.Slice(rows, func(i, j int) bool {
			if x.dir == "forward" {
				return rows[i].TS < rows[j].TS
			}
			return rows[i].TS > rows[j].TS
		})
		if len(rows) > x.limit {
			rows = rows[:x.limit]
		}
		out := make([]string, len(rows))
		for i, g := range rows {
			out[i] = fmt.Sprintf("%s\t%d\t%s", labelString(g.ls.Map()), g.TS, g.Line)
		}
		sort.Strings(out)
		return out
	}
	check := func(phase string) {
		for _, x := range queries {
			got, _ := s.queryRange(x.query, x.start, x.end, x.limit, x.dir)
			sort.Strings(got)
			want := expect(x)
			require.Equal(t, len(want), len(got), "%s: %s", phase, x.query)
			require.Equal(t, want, got, "%s: %s", phase, x.query)
		}
	}
	check("head and blocks")
	require.Equal(t, 204, s.do("POST", "/flush", nil).status)
	check("after flush")
	s.stop()
	s = startServer(t, s.dir, append(limits, "-compactor.compaction-interval", "1s", "-compactor.deletion-delay", "5s")...)
	check("after restart")

	// The compactor merges the blocks flushed during the push; answers do
	// not change.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && metricValue(t, s, "ledgerlog_compactor_compactions_total") == 0 {
		time.Sleep(200 * time.Millisecond)
	}
	require.Greater(t, metricValue(t, s, "ledgerlog_compactor_compactions_total"), 0.0, "compaction ran")
	time.Sleep(1500 * time.Millisecond) // one more run: the block list is reloaded
	check("after compaction")
}

// metricValue sums every series of a metric on /metrics.
func metricValue(t *testing.T, s *testServer, name string) float64 {
	t.Helper()
	r := s.get("/metrics", nil)
	var sum float64
	for _, line := range strings.Split(string(r.body), "\n") {
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		require.NoError(t, err)
		sum += v
	}
	return sum
}
