package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/storage"
)

const benchStreams, benchPerStream = 8, 20000

var (
	benchOnce sync.Once
	benchDB   *storage.DB
)

// benchData is shared by the benchmarks of a run: 160k JSON lines.
func benchData(b *testing.B) *storage.DB {
	benchOnce.Do(func() { benchDB = genData(b, benchStreams, benchPerStream) })
	return benchDB
}

func runBench(b *testing.B, query string, step time.Duration) {
	db := benchData(b)
	e := newEngine(db, nil)
	end := base + int64(benchPerStream)*int64(time.Second)
	p := rangeParams(query, base, end, step)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := e.EntriesScanned()
	for b.Loop() {
		if _, err := e.Exec(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	lines := float64(e.EntriesScanned() - start)
	b.ReportMetric(lines/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkRangeAggregation(b *testing.B) {
	for _, c := range []struct{ fn, query string }{
		{"count_over_time", `sum by (level) (count_over_time({app="bench"}[5m]))`},
		{"rate", `sum by (level) (rate({app="bench"}[5m]))`},
		{"bytes_over_time", `sum by (level) (bytes_over_time({app="bench"}[5m]))`},
		{"bytes_rate", `sum by (level) (bytes_rate({app="bench"}[5m]))`},
		{"absent_over_time", `absent_over_time({app="bench"}[5m])`},
		{"count_over_time_json", `sum by (level) (count_over_time({app="bench"} | json [5m]))`},
		{"count_over_time_filter", `sum(count_over_time({app="bench"} |= "error" [5m]))`},
		{"sum_over_time", `sum by (level) (sum_over_time({app="bench"} | json | unwrap amount [5m]))`},
		{"avg_over_time", `avg_over_time({app="bench"} | json amount | unwrap amount [5m]) by (level)`},
		{"min_over_time", `min_over_time({app="bench"} | json amount | unwrap amount [5m]) by (level)`},
		{"max_over_time", `max_over_time({app="bench"} | json amount | unwrap amount [5m]) by (level)`},
		{"stddev_over_time", `stddev_over_time({app="bench"} | json amount | unwrap amount [5m]) by (level)`},
		{"stdvar_over_time", `stdvar_over_time({app="bench"} | json amount | unwrap amount [5m]) by (level)`},
		{"quantile_over_time", `quantile_over_time(0.99, {app="bench"} | json amount | unwrap amount [5m]) by (level)`},
		{"first_over_time", `first_over_time({app="bench"} | json amount | unwrap amount [5m]) by (level)`},
		{"last_over_time", `last_over_time({app="bench"} | json amount | unwrap amount [5m]) by (level)`},
		{"rate_counter", `rate_counter({app="bench"} | json amount | unwrap amount [5m]) by (level)`},
		{"unwrap_duration", `sum by (level) (sum_over_time({app="bench"} | json latency | unwrap duration(latency) [5m]))`},
	} {
		b.Run(c.fn, func(b *testing.B) { runBench(b, c.query, time.Minute) })
	}
}

func BenchmarkVectorAggregation(b *testing.B) {
	for _, c := range []struct{ name, query string }{
		{"sum_by", `sum by (pod) (count_over_time({app="bench"}[5m]))`},
		{"avg", `avg(count_over_time({app="bench"}[5m]))`},
		{"topk", `topk(3, count_over_time({app="bench"}[5m]))`},
		{"stddev", `stddev by (level) (count_over_time({app="bench"}[5m]))`},
	} {
		b.Run(c.name, func(b *testing.B) { runBench(b, c.query, time.Minute) })
	}
}

func BenchmarkBinaryOp(b *testing.B) {
	for _, c := range []struct{ name, query string }{
		{"ratio", `sum by (pod) (rate({app="bench"} |= "error" [5m])) / sum by (pod) (rate({app="bench"}[5m]))`},
		{"scalar", `count_over_time({app="bench"}[5m]) * 2 > 10`},
		{"and", `count_over_time({app="bench"}[5m]) and count_over_time({level="info"}[5m])`},
	} {
		b.Run(c.name, func(b *testing.B) { runBench(b, c.query, time.Minute) })
	}
}

func BenchmarkLogQuery(b *testing.B) {
	for _, c := range []struct{ name, query string }{
		{"limit", `{app="bench"}`},
		{"filter", `{app="bench"} |= "error" | json | amount > 19990`},
	} {
		b.Run(c.name, func(b *testing.B) { runBench(b, c.query, time.Minute) })
	}
}
