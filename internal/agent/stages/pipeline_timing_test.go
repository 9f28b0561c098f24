package stages

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func benchPipeline(b *testing.B, cfg string, lines []string) {
	p := newTestPipeline(b, cfg, Options{})
	var total int64
	for _, l := range lines {
		total += int64(len(l))
	}
	b.SetBytes(total / int64(len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		e := Entry{Labels: ls("job", "rust-fintech", "filename", "/var/log/fintech/app.log"), Timestamp: ts0, Line: lines[i%len(lines)]}
		if out := p.Process(e); len(out) != 1 {
			b.Fatalf("%d entries out", len(out))
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lines/s")
}

// BenchmarkPipelineJSON: json + labels + timestamp over tracing JSON, the
// common Rust service pipeline.
func BenchmarkPipelineJSON(b *testing.B) {
	benchPipeline(b, `
- json:
    expressions:
      level: level
      timestamp: timestamp
      message: fields.message
      event: fields.event
- labels: {level: }
- timestamp: {source: timestamp, format: RFC3339Nano}
`, tracingLines(b))
}

func BenchmarkRegex(b *testing.B) {
	lines := make([]string, 64)
	for i := range lines {
		lines[i] = fmt.Sprintf(`10.0.%d.%d - - [25/Nov/2026:10:00:%02d +0000] "GET /api/v1/payments/%d HTTP/1.1" %d %d "-" "curl/8.5.0"`,
			i%8, i, i%60, 1000+i, 200+i%3*100, 512+i*7)
	}
	benchPipeline(b, `
- regex:
    expression: '^(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) \S+" (?P<status>\d{3}) (?P<bytes>\d+)'
- labels: {method: , status: }
`, lines)
}

func BenchmarkLogfmt(b *testing.B) {
	lines := make([]string, 64)
	for i := range lines {
		lines[i] = fmt.Sprintf(`ts=2026-11-25T10:00:%02d.123Z level=info caller=payments.go:%d msg="payment processed" tx_id=tx-%08x amount=%d.%02d currency=EUR duration=%dms`,
			i%60, 100+i, i*7919, 10+i, i%100, 3+i%40)
	}
	benchPipeline(b, `
- logfmt: {mapping: {level: , msg: , tx_id: , duration: , ts: }}
- labels: {level: }
- timestamp: {source: ts, format: RFC3339Nano}
`, lines)
}

// BenchmarkPipelineRustSeed runs the seed "Promtail Configuration for Rust
// Logs" pipeline unchanged (json with 8 expressions + labels + timestamp +
// template + output) over tracing JSON.
func BenchmarkPipelineRustSeed(b *testing.B) {
	text, err := os.ReadFile("testdata/rust_seed_pipeline.yaml")
	if err != nil {
		b.Fatal(err)
	}
	benchPipeline(b, string(text), tracingLines(b))
}

// BenchmarkPipelineRustTracing runs the corrected tracing pipeline
// (testdata/rust_tracing_pipeline.yaml).
func BenchmarkPipelineRustTracing(b *testing.B) {
	text, err := os.ReadFile("testdata/rust_tracing_pipeline.yaml")
	if err != nil {
		b.Fatal(err)
	}
	benchPipeline(b, string(text), tracingLines(b))
}
