package stages

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// gather returns "name{l="v",…}" → value for counters and gauges and
// "name_count{…}"/"name_sum{…}" for histograms, for names with prefix.
func gather(t testing.TB, reg *prometheus.Registry, prefix string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), prefix) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var pairs []string
			for _, lp := range m.GetLabel() {
				pairs = append(pairs, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			slices.Sort(pairs)
			key := "{" + strings.Join(pairs, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[mf.GetName()+key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[mf.GetName()+key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[mf.GetName()+"_count"+key] = float64(m.GetHistogram().GetSampleCount())
				out[mf.GetName()+"_sum"+key] = m.GetHistogram().GetSampleSum()
				for _, b := range m.GetHistogram().GetBucket() {
					out[fmt.Sprintf("%s_bucket%s le=%g", mf.GetName(), key, b.GetUpperBound())] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return out
}

func TestMetricsStage(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := newTestPipeline(t, `
- logfmt: {mapping: {level: , bytes: , latency: , queue: }}
- metrics:
    log_lines_total:
      type: Counter
      description: total lines
      config: {match_all: true, action: inc}
    log_bytes_total:
      type: Counter
      config: {match_all: true, count_entry_bytes: true, action: add}
    errors_total:
      type: counter
      source: level
      config: {value: error, action: inc}
    bytes_sent:
      type: counter
      source: bytes
      prefix: my_
      config: {action: add}
    queue_depth:
      type: Gauge
      source: queue
      config: {action: set}
    latency_seconds:
      type: Histogram
      source: latency
      config: {buckets: [0.001, 0.01, 0.1, 1]}
`, Options{Registerer: reg})
	lines := []string{
		`level=info bytes=100 latency=0.5ms queue=3`,
		`level=error bytes=50 latency=0.2 queue=7`,
		`level=error bytes=oops latency=2s`,
	}
	for _, l := range lines {
		p.Process(entry(l, ls("app", "pay", "__internal", "x")))
	}
	total := 0
	for _, l := range lines {
		total += len(l)
	}
	got := gather(t, reg, "")
	app := `{app="pay"}`
	for name, want := range map[string]float64{
		"promtail_custom_log_lines_total" + app:                      3,
		"promtail_custom_log_bytes_total" + app:                      float64(total),
		"promtail_custom_errors_total" + app:                         2,
		"my_bytes_sent" + app:                                        150, // "oops" is not a number
		"promtail_custom_queue_depth" + app:                          7,
		"promtail_custom_latency_seconds_count" + app:                3,
		"promtail_custom_latency_seconds_sum" + app:                  0.0005 + 0.2 + 2,
		"promtail_custom_latency_seconds_bucket" + app + " le=0.001": 1,
		"promtail_custom_latency_seconds_bucket" + app + " le=1":     2,
	} {
		require.InDelta(t, want, got[name], 1e-9, name)
	}
}

func TestMetricsIdleExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		p := newTestPipeline(t, `
- metrics:
    lines:
      type: counter
      max_idle_duration: 1m
      config: {match_all: true, action: inc}
`, Options{Registerer: reg})
		p.Process(entry("a", ls("app", "a")))
		time.Sleep(30 * time.Second)
		p.Process(entry("b", ls("app", "b")))
		require.Len(t, gather(t, reg, "promtail_custom_"), 2)
		time.Sleep(45 * time.Second) // a idle 75s, b idle 45s
		require.Equal(t, map[string]float64{`promtail_custom_lines{app="b"}`: 1}, gather(t, reg, "promtail_custom_"))
		p.Close()
		require.Empty(t, gather(t, reg, "promtail_custom_"))
	})
}

func TestDroppedLinesMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	// Two pipelines on one registry share the counter.
	p1 := newTestPipeline(t, `
- drop: {expression: debug}
- drop: {longer_than: 10, drop_counter_reason: too_long}
- match: {selector: '{app="noisy"}', action: drop}
- sampling: {rate: 0}
`, Options{Registerer: reg})
	p2 := newTestPipeline(t, `
- limit: {rate: 0.001, burst: 1, drop: true}
- match: {selector: '{app="x"}', action: drop, drop_counter_reason: x_app}
`, Options{Registerer: reg, JobName: "j2"})
	processAll(p1, entry("debug", nil), entry("this is too long", nil), entry("n", ls("app", "noisy")), entry("kept?", nil))
	processAll(p2, entry("1", nil), entry("2", nil), entry("3", ls("app", "x")))
	got := gather(t, reg, "logentry_dropped_lines_total")
	require.Equal(t, map[string]float64{
		`logentry_dropped_lines_total{reason="drop_stage"}`:           1,
		`logentry_dropped_lines_total{reason="too_long"}`:             1,
		`logentry_dropped_lines_total{reason="match_stage"}`:          1,
		`logentry_dropped_lines_total{reason="sampling_stage"}`:       1,
		`logentry_dropped_lines_total{reason="ratelimit_drop_stage"}`: 2,
		`logentry_dropped_lines_total{reason="x_app"}`:                0, // never hit: the limit dropped first
	}, got)
	dur := gather(t, reg, "logentry_pipeline_duration_seconds")
	require.Equal(t, 3.0, dur[`logentry_pipeline_duration_seconds_count{job_name="j2"}`])
}
