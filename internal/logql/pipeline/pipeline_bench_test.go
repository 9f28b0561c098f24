package pipeline

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// benchLine is a dataset line with its stream's labels.
type benchLine struct {
	stream model.Labels
	line   []byte
}

// loadBench reads testdata/bench.ndjson (300 lines of the bench generator's
// tracing JSON).
func loadBench(b *testing.B) []benchLine {
	b.Helper()
	fh, err := os.Open("testdata/bench.ndjson")
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	var out []benchLine
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e tracingEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			b.Fatal(err)
		}
		ls, err := model.ParseLabels(e.Labels)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, benchLine{stream: ls, line: []byte(e.Line)})
	}
	return out
}

// toLogfmt rewrites the tracing JSON lines as flat logfmt lines.
func toLogfmt(b *testing.B, lines []benchLine) []benchLine {
	b.Helper()
	out := make([]benchLine, len(lines))
	for i, l := range lines {
		var doc map[string]any
		if err := json.Unmarshal(l.line, &doc); err != nil {
			b.Fatal(err)
		}
		var sb strings.Builder
		var walk func(prefix string, m map[string]any)
		walk = func(prefix string, m map[string]any) {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				switch v := m[k].(type) {
				case map[string]any:
					walk(prefix+k+"_", v)
				case string:
					if strings.ContainsAny(v, " \"=") {
						fmt.Fprintf(&sb, "%s%s=%q ", prefix, k, v)
					} else {
						fmt.Fprintf(&sb, "%s%s=%s ", prefix, k, v)
					}
				default:
					fmt.Fprintf(&sb, "%s%s=%v ", prefix, k, v)
				}
			}
		}
		walk("", doc)
		out[i] = benchLine{stream: l.stream, line: []byte(strings.TrimSpace(sb.String()))}
	}
	return out
}

// cpuTime is the process's user+system CPU time. The benchmarks report
// CPU time per line next to wall-clock rates, since the machine is shared
// and wall time includes waiting for a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds lines/s (wall clock) and cpu-ns/line metrics.
func report(b *testing.B, lines int, cpuStart time.Duration) {
	n := float64(b.N * lines)
	b.ReportMetric(n/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(cpuTime()-cpuStart)/n, "cpu-ns/line")
}

// benchPipeline runs every line through one StreamPipeline per stream,
// calling All() on kept entries as a log query's result grouping would.
func benchPipeline(b *testing.B, stages string, lines []benchLine) {
	p := mustPipeline(b, stages)
	sps := make([]*StreamPipeline, len(lines))
	byStream := map[string]*StreamPipeline{}
	var total int64
	for i, l := range lines {
		key := l.stream.String()
		if byStream[key] == nil {
			byStream[key] = p.ForStream(l.stream)
		}
		sps[i] = byStream[key]
		total += int64(len(l.line))
	}
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	kept := 0
	for range b.N {
		for i, l := range lines {
			if _, lb, ok := sps[i].Process(1, l.line, model.EmptyLabels()); ok {
				_ = lb.All()
				kept++
			}
		}
	}
	report(b, len(lines), cpu)
	if kept == 0 {
		b.Fatal("no line kept")
	}
}

func BenchmarkJSON(b *testing.B) {
	benchPipeline(b, `| json`, loadBench(b))
}

// BenchmarkJSONRequiredLabels is the metric path of
// sum by (fields_currency) (rate({…} | json | fields_amount > 100 [1m])):
// the parser extracts two labels and the sample keeps one.
func BenchmarkJSONRequiredLabels(b *testing.B) {
	benchExtract(b, `sum by (fields_currency) (rate({environment="prod"} | json | fields_amount > 100 [1m]))`, "fields_currency")
}

// BenchmarkJSONGroupedByStreamLabel is the metric path of
// sum by (level) (count_over_time({…} | json [1h])): nothing is extracted,
// but every line is still checked to be JSON (an error fails the query).
func BenchmarkJSONGroupedByStreamLabel(b *testing.B) {
	benchExtract(b, `sum by (level) (count_over_time({environment="prod"} | json [1h]))`, "level")
}

func benchExtract(b *testing.B, query, by string) {
	lines := loadBench(b)
	e, err := lql.ParseExpr(query)
	if err != nil {
		b.Fatal(err)
	}
	var r *lql.RangeAggregationExpr
	lql.Walk(e, func(x lql.Expr) bool {
		if ra, ok := x.(*lql.RangeAggregationExpr); ok {
			r = ra
		}
		return true
	})
	p, err := New(r.Left.Log.Stages)
	if err != nil {
		b.Fatal(err)
	}
	ex, err := NewSampleExtractor(p, nil, ExtractorOptions{Grouping: &lql.Grouping{Labels: []string{by}}})
	if err != nil {
		b.Fatal(err)
	}
	byStream := map[string]*StreamSampleExtractor{}
	sps := make([]*StreamSampleExtractor, len(lines))
	var total int64
	for i, l := range lines {
		key := l.stream.String()
		if byStream[key] == nil {
			byStream[key] = ex.ForStream(l.stream)
		}
		sps[i] = byStream[key]
		total += int64(len(l.line))
	}
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for range b.N {
		for i, l := range lines {
			sps[i].Process(1, l.line, model.EmptyLabels())
		}
	}
	report(b, len(lines), cpu)
}

func BenchmarkLogfmt(b *testing.B) {
	benchPipeline(b, `| logfmt`, toLogfmt(b, loadBench(b)))
}

func BenchmarkLineFilter(b *testing.B) {
	lines := loadBench(b)
	for _, q := range []string{`|= "Payment"`, `|~ "(?i)payment"`, `|~ "amount\":\"[0-9]{4,}"`, `|= "risk" or "kyc"`, `|> "<_>\"level\":\"<_>\"<_>"`} {
		b.Run(q, func(b *testing.B) { benchPipeline(b, q, lines) })
	}
}

func BenchmarkLabelFilter(b *testing.B) {
	lines := loadBench(b)
	for _, q := range []string{`| region=~"eu-.*" and service!="auth"`, `| json | fields_latency_ms > 100 or fields_amount > 1000`} {
		b.Run(q, func(b *testing.B) { benchPipeline(b, q, lines) })
	}
}

func BenchmarkLineFormat(b *testing.B) {
	benchPipeline(b, "| json | line_format `{{.level_extracted}} {{.fields_message}} span={{.span_name}}`", loadBench(b))
}
