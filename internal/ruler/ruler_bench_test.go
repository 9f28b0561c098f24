package ruler

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkAlertingRuleEval measures the alert state machine and template
// expansion for a rule whose query returns 1000 series.
func BenchmarkAlertingRuleEval(b *testing.B) {
	q := newScripted()
	vec := make(Vector, 1000)
	for i := range vec {
		vec[i] = sample(float64(i), "service", "svc-"+strconv.Itoa(i), "env", "prod")
	}
	q.set(errExpr, vec)
	r := alertRule(time.Minute, 0)
	ec := evalContext{tenant: "fake", query: q.query}
	ts := time.Unix(1_700_000_000, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.eval(context.Background(), ts.Add(time.Duration(i)*time.Second), ec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(vec))/b.Elapsed().Seconds(), "alerts/s")
}

// BenchmarkEncodeWriteRequest measures building a snappy-compressed
// remote-write request of 2000 samples (max_samples_per_send).
func BenchmarkEncodeWriteRequest(b *testing.B) {
	batch := make([]rwSample, 2000)
	for i := range batch {
		batch[i] = rwSample{tenant: "fake", labels: mustLabels("__name__", "service:lines:count1m", "service", "svc-"+strconv.Itoa(i)), t: 1_700_000_000_000, v: float64(i)}
	}
	body, err := encodeWriteRequest(batch)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := encodeWriteRequest(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
}
