package stages

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/units"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// ---- drop ----

type dropConfig struct {
	Source     stringOrList `yaml:"source"`
	Separator  *string      `yaml:"separator"`
	Expression *string      `yaml:"expression"`
	Value      *string      `yaml:"value"`
	OlderThan  *string      `yaml:"older_than"`
	LongerThan *string      `yaml:"longer_than"`
	DropReason *string      `yaml:"drop_counter_reason"`
}

// dropStage drops entries meeting every configured condition (AND):
// longer_than, older_than, source presence, and expression/value matched
// against the line or the separator-joined source values.
type dropStage struct {
	source     []string // nil when not configured
	separator  string
	re         *regexp.Regexp // from expression or ^value$
	olderThan  time.Duration
	hasOlder   bool
	longerThan int
	hasLonger  bool
	dropped    prometheus.Counter
}

func newDropStage(b *builder, _ *builtStage, n *yaml.Node) (any, error) {
	var cfg dropConfig
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	if cfg.Source == nil && cfg.Expression == nil && cfg.OlderThan == nil && cfg.LongerThan == nil {
		return nil, errors.New("drop stage config must contain at least one of `source`, `expression`, `older_than` or `longer_than`")
	}
	s := &dropStage{source: cfg.Source, separator: ";"}
	if cfg.Separator != nil {
		s.separator = *cfg.Separator
	}
	if cfg.OlderThan != nil {
		d, err := time.ParseDuration(*cfg.OlderThan)
		if err != nil {
			return nil, fmt.Errorf("drop stage invalid duration, %v cannot be converted to a duration: %w", *cfg.OlderThan, err)
		}
		s.olderThan, s.hasOlder = d, true
	}
	if cfg.Value != nil && cfg.Source == nil {
		return nil, errors.New("drop stage config must contain `source` if `value` is specified")
	}
	if cfg.Value != nil && cfg.Expression != nil {
		return nil, errors.New("drop stage config error, `value` and `expression` cannot both be defined at the same time")
	}
	if cfg.Expression != nil {
		re, err := regexp.Compile(*cfg.Expression)
		if err != nil {
			return nil, fmt.Errorf("drop stage regex compilation error: %w", err)
		}
		s.re = re
	}
	if cfg.Value != nil {
		s.re = regexp.MustCompile("^" + regexp.QuoteMeta(*cfg.Value) + "$")
	}
	if cfg.LongerThan != nil {
		size, err := units.ParseByteSize(*cfg.LongerThan)
		if err != nil {
			return nil, fmt.Errorf("drop stage failed to parse longer_than to bytes: %w", err)
		}
		s.longerThan, s.hasLonger = int(size), true
	}
	reason := "drop_stage"
	if cfg.DropReason != nil && *cfg.DropReason != "" {
		reason = *cfg.DropReason
	}
	s.dropped = b.droppedLines().WithLabelValues(reason)
	return s, nil
}

func (s *dropStage) process(e *Entry) bool {
	if s.shouldDrop(e) {
		s.dropped.Inc()
		return false
	}
	return true
}

func (s *dropStage) shouldDrop(e *Entry) bool {
	if s.hasLonger && len(e.Line) <= s.longerThan {
		return false
	}
	if s.hasOlder && !e.Timestamp.Before(time.Now().Add(-s.olderThan)) {
		return false
	}
	if s.source != nil && s.re == nil {
		for _, src := range s.source {
			if _, ok := e.Extracted[src]; !ok {
				return false
			}
		}
	}
	if s.source == nil && s.re != nil && !s.re.MatchString(e.Line) {
		return false
	}
	if s.source != nil && s.re != nil {
		vals := make([]string, 0, len(s.source))
		for _, src := range s.source {
			if v, ok := e.Extracted[src]; ok {
				str, ok := toString(v)
				if !ok {
					return false
				}
				vals = append(vals, str)
			}
		}
		if !s.re.MatchString(strings.Join(vals, s.separator)) {
			return false
		}
	}
	return true
}

func (s *dropStage) reads() []string { return s.source }

// ---- sampling ----

type samplingConfig struct {
	Rate       float64 `yaml:"rate"`
	DropReason *string `yaml:"drop_counter_reason"`
}

// samplingStage keeps each entry with probability rate.
type samplingStage struct {
	boundary uint64
	rng      *rand.Rand
	dropped  prometheus.Counter
	rate     float64
}

const maxRandom = ^(uint64(1) << 63) // 0x7fffffffffffffff

func newSamplingStage(b *builder, _ *builtStage, n *yaml.Node) (any, error) {
	var cfg samplingConfig
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	if cfg.Rate < 0 || cfg.Rate > 1 {
		return nil, fmt.Errorf("sampling stage failed to parse rate, sampling rate must be between 0.0 and 1.0, received %f", cfg.Rate)
	}
	reason := "sampling_stage"
	if cfg.DropReason != nil && *cfg.DropReason != "" {
		reason = *cfg.DropReason
	}
	return &samplingStage{
		boundary: uint64(float64(maxRandom) * math.Max(0, math.Min(cfg.Rate, 1))),
		rng:      rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		dropped:  b.droppedLines().WithLabelValues(reason),
		rate:     cfg.Rate,
	}, nil
}

func (s *samplingStage) process(*Entry) bool {
	r := s.rng.Uint64() & maxRandom
	for r == 0 {
		r = s.rng.Uint64() & maxRandom
	}
	if s.boundary >= r {
		return true
	}
	s.dropped.Inc()
	return false
}

// ---- limit ----

type limitConfig struct {
	Rate              float64 `yaml:"rate"`
	Burst             int     `yaml:"burst"`
	Drop              bool    `yaml:"drop"`
	ByLabelName       string  `yaml:"by_label_name"`
	MaxDistinctLabels int     `yaml:"max_distinct_labels"`
}

// minMaxDistinctLabels is Promtail's floor for max_distinct_labels.
const minMaxDistinctLabels = 10000

// limitStage rate-limits entries with a token bucket (rate per second,
// burst). With drop: false it waits for a token, blocking the pipeline
// (back-pressure); with drop: true it drops. by_label_name keeps one bucket
// per value of that label (drop must be true).
type limitStage struct {
	cfg     limitConfig
	bucket  *tokenBucket
	byLabel *bucketGenerations
	dropped prometheus.Counter
	byValue *prometheus.CounterVec
	sleep   func(time.Duration)
}

func newLimitStage(b *builder, _ *builtStage, n *yaml.Node) (any, error) {
	var cfg limitConfig
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	if cfg.Rate <= 0 || cfg.Burst <= 0 {
		return nil, errors.New("limit stage failed to parse rate or burst: both must be positive")
	}
	if cfg.ByLabelName != "" && !cfg.Drop {
		return nil, errors.New("when ratelimiting by label, drop must be true")
	}
	s := &limitStage{
		cfg:     cfg,
		dropped: b.droppedLines().WithLabelValues("ratelimit_drop_stage"),
		sleep:   time.Sleep,
	}
	if cfg.ByLabelName != "" {
		if cfg.MaxDistinctLabels < minMaxDistinctLabels {
			b.logger.Warn("limit stage max_distinct_labels adjusted up to the minimal reasonable value", "value", minMaxDistinctLabels)
			s.cfg.MaxDistinctLabels = minMaxDistinctLabels
		}
		s.byValue = shared(b.reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "logentry",
			Name:      "dropped_lines_by_label_total",
			Help:      "A count of all log lines dropped as a result of a pipeline stage",
		}, []string{"label_name", "label_value"}))
		s.byLabel = &bucketGenerations{max: s.cfg.MaxDistinctLabels, rate: cfg.Rate, burst: cfg.Burst,
			cur: map[model.LabelValue]*tokenBucket{}, onRotate: s.byValue.Reset}
	} else {
		s.bucket = newTokenBucket(cfg.Rate, cfg.Burst, time.Now())
	}
	return s, nil
}

func (s *limitStage) process(e *Entry) bool {
	now := time.Now()
	if s.byLabel != nil {
		v, ok := e.Labels[model.LabelName(s.cfg.ByLabelName)]
		if !ok {
			return true
		}
		if s.byLabel.get(v, now).allow(now) {
			return true
		}
		s.dropped.Inc()
		s.byValue.WithLabelValues(s.cfg.ByLabelName, string(v)).Inc()
		return false
	}
	if s.cfg.Drop {
		if s.bucket.allow(now) {
			return true
		}
		s.dropped.Inc()
		return false
	}
	if wait := s.bucket.reserve(now); wait > 0 {
		s.sleep(wait)
	}
	return true
}

// tokenBucket holds up to burst tokens refilled at rate per second; it starts
// full.
type tokenBucket struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int, now time.Time) *tokenBucket {
	return &tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

func (b *tokenBucket) advance(now time.Time) {
	if now.After(b.last) {
		b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
}

// allow takes a token if one is available.
func (b *tokenBucket) allow(now time.Time) bool {
	b.advance(now)
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// reserve takes a token, going into debt if needed, and returns how long the
// caller must wait before using it.
func (b *tokenBucket) reserve(now time.Time) time.Duration {
	b.advance(now)
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// bucketGenerations keeps per-label-value buckets in two generations; when the
// current one reaches max distinct values it becomes the old one and the
// previous old one is forgotten (Promtail's generational map).
type bucketGenerations struct {
	max      int
	rate     float64
	burst    int
	cur, old map[model.LabelValue]*tokenBucket
	onRotate func()
}

func (g *bucketGenerations) get(v model.LabelValue, now time.Time) *tokenBucket {
	if b, ok := g.cur[v]; ok {
		return b
	}
	b, ok := g.old[v]
	if !ok {
		b = newTokenBucket(g.rate, g.burst, now)
	}
	if len(g.cur) >= g.max {
		g.old, g.cur = g.cur, make(map[model.LabelValue]*tokenBucket, g.max)
		if g.onRotate != nil {
			g.onRotate()
		}
	}
	g.cur[v] = b
	return b
}
