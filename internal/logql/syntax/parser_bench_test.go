package syntax

import "testing"

func benchmarkParse(b *testing.B, q string) {
	b.ReportAllocs()
	b.SetBytes(int64(len(q)))
	for b.Loop() {
		if _, err := ParseExpr(q); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}

// BenchmarkParseExpr parses a typical dashboard metric query.
func BenchmarkParseExpr(b *testing.B) {
	benchmarkParse(b, `sum by (host) (rate({job="mysql", env=~"prod|staging"} |= "error" != "timeout" | json | duration > 10s and status >= 500 [5m]))`)
}

// BenchmarkParseExpr_Log parses a typical Explore log query.
func BenchmarkParseExpr_Log(b *testing.B) {
	benchmarkParse(b, `{cluster="ops-tools1", namespace="loki-dev", job="loki-dev/query-frontend"} |= "metrics.go" != "out of order" | logfmt | duration > 30s or status_code != "200"`)
}

// BenchmarkParseExpr_Template includes a line_format template, whose
// validation parses the template.
func BenchmarkParseExpr_Template(b *testing.B) {
	benchmarkParse(b, `{app="api"} | json | line_format "{{.method}} {{.path | ToUpper}} {{ printf \"%.3f\" .latency }}"`)
}
