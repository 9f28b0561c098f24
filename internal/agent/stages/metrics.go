package stages

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

type metricConfig struct {
	Type            string    `yaml:"type"`
	Description     string    `yaml:"description"`
	Source          *string   `yaml:"source"`
	Prefix          string    `yaml:"prefix"`
	MaxIdleDuration *string   `yaml:"max_idle_duration"`
	Config          yaml.Node `yaml:"config"`
}

type counterConfig struct {
	Value           *string `yaml:"value"`
	Action          string  `yaml:"action"`
	MatchAll        *bool   `yaml:"match_all"`
	CountEntryBytes *bool   `yaml:"count_entry_bytes"`
}

type gaugeConfig struct {
	Value  *string `yaml:"value"`
	Action string  `yaml:"action"`
}

type histogramConfig struct {
	Value   *string   `yaml:"value"`
	Buckets []float64 `yaml:"buckets"`
}

const (
	defaultMetricPrefix  = "promtail_custom_"
	defaultMaxIdle       = 5 * time.Minute
	metricTypeCounter    = "counter"
	metricTypeGauge      = "gauge"
	metricTypeHistogram  = "histogram"
	metricActionInc      = "inc"
	metricActionAdd      = "add"
	metricActionSet      = "set"
	metricActionDec      = "dec"
	metricActionSubtract = "sub"
)

// metricsStage updates Prometheus metrics from extracted values. Every series
// carries the entry's stream labels (names starting with "__" and invalid
// names left out) and expires max_idle_duration after its last update.
type metricsStage struct {
	metrics []*customMetric
}

// customMetric is one configured metric: an unchecked collector (no
// descriptors, like Promtail's) holding one series per label set.
type customMetric struct {
	name     string // full name with prefix
	source   string
	kind     string
	help     string
	maxIdle  time.Duration
	value    *string // only update when the value equals this
	action   string
	matchAll bool
	bytes    bool
	buckets  []float64

	mu     sync.Mutex
	series map[model.Fingerprint]*customSeries // guarded by mu
	closed bool                                // guarded by mu
}

type customSeries struct {
	metric  prometheus.Metric // Counter, Gauge or Histogram
	lastMod time.Time
}

func newMetricsStage(b *builder, _ *builtStage, n *yaml.Node) (any, error) {
	var cfg map[string]metricConfig
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, errors.New("empty metric stage configuration")
	}
	s := &metricsStage{}
	for _, name := range sortedKeys(cfg) {
		mc := cfg[name]
		m, err := newCustomMetric(name, mc)
		if err != nil {
			return nil, err
		}
		if err := b.reg.Register(m); err != nil {
			return nil, fmt.Errorf("register metric %s: %w", m.name, err)
		}
		b.collectors = append(b.collectors, m)
		s.metrics = append(s.metrics, m)
	}
	return s, nil
}

func newCustomMetric(name string, mc metricConfig) (*customMetric, error) {
	m := &customMetric{
		name:    defaultMetricPrefix + name,
		source:  name,
		kind:    strings.ToLower(mc.Type),
		help:    mc.Description,
		maxIdle: defaultMaxIdle,
		series:  map[model.Fingerprint]*customSeries{},
	}
	if mc.Prefix != "" {
		m.name = mc.Prefix + name
	}
	if !model.LegacyValidation.IsValidMetricName(m.name) {
		return nil, fmt.Errorf("metric %q: invalid metric name %q", name, m.name)
	}
	if mc.Source != nil {
		m.source = *mc.Source
	}
	if mc.MaxIdleDuration != nil {
		d, err := time.ParseDuration(*mc.MaxIdleDuration)
		if err != nil {
			return nil, fmt.Errorf("metric %q: max_idle_duration could not be parsed as a time.Duration: %w", name, err)
		}
		if d < time.Second {
			return nil, fmt.Errorf("metric %q: max_idle_duration less than 1s not allowed", name)
		}
		m.maxIdle = d
	}
	switch m.kind {
	case metricTypeCounter:
		var c counterConfig
		if err := decodeStrict(&mc.Config, &c); err != nil {
			return nil, err
		}
		if c.Action == "" {
			return nil, fmt.Errorf("metric %q: counter action must be defined as either `inc` or `add`", name)
		}
		m.action = strings.ToLower(c.Action)
		if m.action != metricActionInc && m.action != metricActionAdd {
			return nil, fmt.Errorf("metric %q: action %s is not valid, action must be either `inc` or `add`", name, c.Action)
		}
		m.matchAll = c.MatchAll != nil && *c.MatchAll
		m.bytes = c.CountEntryBytes != nil && *c.CountEntryBytes
		if m.matchAll && c.Value != nil {
			return nil, fmt.Errorf("metric %q: `match_all: true` cannot be combined with `value`, please remove `match_all` or `value`", name)
		}
		if m.bytes && !m.matchAll {
			return nil, fmt.Errorf("metric %q: `count_entry_bytes: true` can only be set with `match_all: true`", name)
		}
		if m.bytes && m.action != metricActionAdd {
			return nil, fmt.Errorf("metric %q: `count_entry_bytes: true` can only be used with `action: add`", name)
		}
		m.value = c.Value
	case metricTypeGauge:
		var g gaugeConfig
		if err := decodeStrict(&mc.Config, &g); err != nil {
			return nil, err
		}
		if g.Action == "" {
			return nil, fmt.Errorf("metric %q: gauge action must be defined as `set`, `inc`, `dec`, `add`, or `sub`", name)
		}
		m.action = strings.ToLower(g.Action)
		switch m.action {
		case metricActionSet, metricActionInc, metricActionDec, metricActionAdd, metricActionSubtract:
		default:
			return nil, fmt.Errorf("metric %q: action %s is not valid, action must be `set`, `inc`, `dec`, `add`, or `sub`", name, g.Action)
		}
		m.value = g.Value
	case metricTypeHistogram:
		var h histogramConfig
		if err := decodeStrict(&mc.Config, &h); err != nil {
			return nil, err
		}
		m.value = h.Value
		m.buckets = h.Buckets
	default:
		return nil, fmt.Errorf("invalid metric type '%s', metric type must be one of 'counter', 'gauge', or 'histogram'", mc.Type)
	}
	return m, nil
}

func (s *metricsStage) process(e *Entry) bool {
	for _, m := range s.metrics {
		if m.matchAll {
			if m.bytes {
				m.update(e.Labels, float64(len(e.Line)))
			} else {
				m.update(e.Labels, 1)
			}
			continue
		}
		v, ok := e.Extracted[m.source]
		if !ok {
			continue
		}
		if m.value != nil {
			str, ok := toString(v)
			if !ok || str != *m.value {
				continue
			}
		}
		var f float64
		if m.kind == metricTypeHistogram || m.action == metricActionAdd || m.action == metricActionSet || m.action == metricActionSubtract {
			var err error
			if f, err = toFloat(v); err != nil {
				continue
			}
		}
		m.update(e.Labels, f)
	}
	return true
}

func (s *metricsStage) reads() []string {
	var out []string
	for _, m := range s.metrics {
		if !m.matchAll {
			out = append(out, m.source)
		}
	}
	return out
}

// update applies the metric's action with value f to the series for ls.
func (m *customMetric) update(ls model.LabelSet, f float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	fp := ls.Fingerprint()
	s, ok := m.series[fp]
	if !ok {
		s = &customSeries{metric: m.newSeries(ls)}
		m.series[fp] = s
	}
	s.lastMod = time.Now()
	// Switch on the configured kind: a Gauge also satisfies prometheus.Counter.
	switch m.kind {
	case metricTypeCounter:
		c := s.metric.(prometheus.Counter)
		switch m.action {
		case metricActionInc:
			c.Inc()
		case metricActionAdd:
			if f >= 0 { // a counter cannot go down; Promtail would panic here
				c.Add(f)
			}
		}
	case metricTypeGauge:
		g := s.metric.(prometheus.Gauge)
		switch m.action {
		case metricActionSet:
			g.Set(f)
		case metricActionInc:
			g.Inc()
		case metricActionDec:
			g.Dec()
		case metricActionAdd:
			g.Add(f)
		case metricActionSubtract:
			g.Sub(f)
		}
	case metricTypeHistogram:
		s.metric.(prometheus.Histogram).Observe(f)
	}
}

func (m *customMetric) newSeries(ls model.LabelSet) prometheus.Metric {
	constLabels := prometheus.Labels{}
	for k, v := range ls {
		if strings.HasPrefix(string(k), "__") || !model.LegacyValidation.IsValidLabelName(string(k)) {
			continue
		}
		constLabels[string(k)] = string(v)
	}
	switch m.kind {
	case metricTypeCounter:
		return prometheus.NewCounter(prometheus.CounterOpts{Name: m.name, Help: m.help, ConstLabels: constLabels})
	case metricTypeGauge:
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: m.name, Help: m.help, ConstLabels: constLabels})
	}
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: m.name, Help: m.help, ConstLabels: constLabels, Buckets: m.buckets})
}

// Describe sends nothing: the series' label names depend on the entries, so
// the collector is unchecked, as Promtail's is.
func (m *customMetric) Describe(chan<- *prometheus.Desc) {}

// Collect sends the live series and forgets those idle for max_idle_duration.
func (m *customMetric) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for fp, s := range m.series {
		if now.Sub(s.lastMod) >= m.maxIdle {
			delete(m.series, fp)
			continue
		}
		ch <- s.metric
	}
}

// close drops every series and stops recording. The collector cannot leave
// the registry (unchecked collectors cannot be unregistered), so it stays
// there empty.
func (m *customMetric) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	clear(m.series)
}
