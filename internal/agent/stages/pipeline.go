package stages

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
)

// ErrNotSupported is wrapped by the error for a stage this agent does not
// implement (geoip, eventlogmessage) or does not know; its text reads
// "not supported: <name>".
var ErrNotSupported = errors.New("not supported")

// Options are a pipeline's dependencies. The zero value works: no logging,
// metrics registered nowhere, no inspection.
type Options struct {
	// Logger receives stage warnings (e.g. cri partial-line overflow).
	Logger *slog.Logger
	// Registerer receives the metrics stage's promtail_custom_* series, the
	// drop counter logentry_dropped_lines_total{reason} and
	// logentry_pipeline_duration_seconds{job_name}. The drop counter is shared
	// by every pipeline registered on the same Registerer.
	Registerer prometheus.Registerer
	// JobName is the scrape config's job_name; it labels the duration metric.
	JobName string
	// Inspect, when set, receives what each stage changed for every entry,
	// like Promtail's -inspect flag. It is written from the goroutine that
	// processes entries.
	Inspect io.Writer
	// TargetLabels names labels entries are known to carry when they enter the
	// pipeline (static labels, relabel targets, "filename"). Warnings uses it
	// to tell a key a stage reads from a target label from a key nothing sets;
	// nil means unknown (such reads are reported as "set only if the target
	// carries a label" of that name).
	TargetLabels []string
}

type emitFunc func(*Entry)

// processor is a stage that changes one entry in place. It returns false to
// drop the entry. process is called from one goroutine at a time.
type processor interface {
	process(e *Entry) bool
}

// linker is a stage that is more than one-in-one-out (buffering, nested
// stages): given the function that feeds the rest of the chain it returns
// the function that feeds itself.
type linker interface {
	link(next emitFunc, l *linkState, self *builtStage) emitFunc
}

// flusher is a stage that holds entries back (multiline, cri partial lines).
// All methods are called with the pipeline lock held.
type flusher interface {
	// deadline is the earliest time at which flushDue has work.
	deadline() (time.Time, bool)
	// flushDue emits the entries whose wait has expired at now.
	flushDue(now time.Time)
	// flushAll emits everything held.
	flushAll()
}

// builtStage is one configured stage with its position in the config.
type builtStage struct {
	pos       string // 1-based, nested positions joined by "."
	seq       int    // pre-order number over the whole tree
	name      string
	line, col int
	impl      any // processor or linker
}

type linkState struct {
	inspect  *inspector
	flushers []seqFlusher
}

type seqFlusher struct {
	seq int
	f   flusher
}

func (l *linkState) addFlusher(s *builtStage, f flusher) {
	l.flushers = append(l.flushers, seqFlusher{s.seq, f})
}

// linkChain connects stages so that each feeds the next and the last feeds
// next.
func linkChain(stages []*builtStage, next emitFunc, l *linkState) emitFunc {
	for i := len(stages) - 1; i >= 0; i-- {
		next = stages[i].link(next, l)
	}
	return next
}

func (s *builtStage) link(next emitFunc, l *linkState) emitFunc {
	switch impl := s.impl.(type) {
	case linker:
		return impl.link(next, l, s)
	case processor:
		if l.inspect != nil {
			in, name := l.inspect, s.name
			return func(e *Entry) {
				before := e.clone()
				keep := impl.process(e)
				in.report(name, &before, e, keep)
				if keep {
					next(e)
				}
			}
		}
		return func(e *Entry) {
			if impl.process(e) {
				next(e)
			}
		}
	}
	panic(fmt.Sprintf("BUG: stage %s has no implementation", s.name))
}

// Pipeline runs entries through the configured stages in order.
//
// Concurrency: Run and Process may be called from several goroutines; entries
// are processed one at a time under an internal lock, so a limit stage that
// waits (drop: false) blocks every caller, which is the intended
// back-pressure. Warnings and Close are safe to call at any time.
type Pipeline struct {
	logger     *slog.Logger
	stages     []*builtStage
	warnings   []string
	collectors []*customMetric     // registered by this pipeline; emptied by Close
	duration   prometheus.Observer // nil without a job name

	mu       sync.Mutex
	flushers []flusher // immutable after construction; in stage order; called with mu held
	head     emitFunc  // immutable; called with mu held
	out      []Entry   // guarded by mu; collects the current call's output
}

// NewPipeline builds a pipeline from a scrape config's pipeline_stages list.
// Each element is a YAML mapping with one key, the stage name. Configs are
// decoded strictly: an unknown key is an error naming the stage and the key's
// line:column. Stages Promtail had that this agent lacks (geoip,
// eventlogmessage) and unknown names fail with ErrNotSupported.
func NewPipeline(cfg []yaml.Node, opts Options) (*Pipeline, error) {
	b := newBuilder(opts)
	nodes := make([]*yaml.Node, len(cfg))
	for i := range cfg {
		nodes[i] = &cfg[i]
	}
	stages, err := b.buildList(nodes, "")
	if err != nil {
		b.closeMetrics()
		return nil, err
	}
	p := &Pipeline{
		logger:     b.logger,
		stages:     stages,
		collectors: b.collectors,
	}
	if opts.JobName != "" {
		p.duration = b.pipelineDuration().WithLabelValues(opts.JobName)
	}
	ls := &linkState{}
	if opts.Inspect != nil {
		ls.inspect = &inspector{w: opts.Inspect}
	}
	p.head = linkChain(stages, p.sink, ls)
	slices.SortFunc(ls.flushers, func(a, b seqFlusher) int { return a.seq - b.seq })
	for _, f := range ls.flushers {
		p.flushers = append(p.flushers, f.f)
	}
	p.warnings = analyze(stages, opts.TargetLabels)
	return p, nil
}

// sink receives entries that left the last stage. Called with mu held.
func (p *Pipeline) sink(e *Entry) {
	e.finish()
	p.out = append(p.out, *e)
}

// Process runs one entry through the pipeline synchronously and returns the
// entries that came out: none if a stage dropped it or a buffering stage
// (multiline, cri partial lines) is holding it, possibly several when a
// buffering stage released earlier entries. Buffered entries are released by
// later calls, by Flush, or by Run's timers.
func (p *Pipeline) Process(e Entry) []Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.processLocked(&e, nil)
}

// Flush releases every buffered entry (multiline blocks, cri partial lines).
func (p *Pipeline) Flush() []Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flushLocked(nil)
}

func (p *Pipeline) processLocked(e *Entry, dst []Entry) []Entry {
	var start time.Time
	if p.duration != nil {
		start = time.Now()
	}
	p.out = dst
	e.prepare()
	p.head(e)
	dst, p.out = p.out, nil
	if p.duration != nil {
		p.duration.Observe(time.Since(start).Seconds())
	}
	return dst
}

func (p *Pipeline) flushLocked(dst []Entry) []Entry {
	p.out = dst
	for _, f := range p.flushers {
		f.flushAll()
	}
	dst, p.out = p.out, nil
	return dst
}

func (p *Pipeline) flushDueLocked(now time.Time, dst []Entry) []Entry {
	p.out = dst
	for _, f := range p.flushers {
		f.flushDue(now)
	}
	dst, p.out = p.out, nil
	return dst
}

func (p *Pipeline) nextDeadline() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best time.Time
	found := false
	for _, f := range p.flushers {
		if d, ok := f.deadline(); ok && (!found || d.Before(best)) {
			best, found = d, true
		}
	}
	return best, found
}

// Run consumes in on one goroutine and returns the output channel. Buffering
// stages release held entries when their wait expires (multiline
// max_wait_time). When in is closed, everything still held is flushed and the
// output channel is closed. The caller must drain the output channel until it
// is closed; an output send blocks the pipeline (back-pressure).
func (p *Pipeline) Run(in <-chan Entry) <-chan Entry {
	out := make(chan Entry)
	go p.run(in, out)
	return out
}

func (p *Pipeline) run(in <-chan Entry, out chan<- Entry) {
	defer close(out)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var batch []Entry
	for {
		var timerC <-chan time.Time
		if len(p.flushers) > 0 {
			if d, ok := p.nextDeadline(); ok {
				wait := time.Until(d)
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				timerC = timer.C
			}
		}
		select {
		case e, ok := <-in:
			p.mu.Lock()
			if !ok {
				batch = p.flushLocked(batch[:0])
				p.mu.Unlock()
				for i := range batch {
					out <- batch[i]
				}
				return
			}
			batch = p.processLocked(&e, batch[:0])
			p.mu.Unlock()
		case <-timerC:
			p.mu.Lock()
			batch = p.flushDueLocked(time.Now(), batch[:0])
			p.mu.Unlock()
		}
		for i := range batch {
			out <- batch[i]
			batch[i] = Entry{}
		}
	}
}

// Warnings reports configuration smells found at load: a stage reading an
// extracted key that no earlier stage can produce, JSON expressions that read
// a top-level key where the log shape nests it, and the like. Each warning
// names the stage by position and type.
func (p *Pipeline) Warnings() []string { return slices.Clone(p.warnings) }

// Close drops the series of this pipeline's metrics stages and stops them
// recording, as Promtail's stage cleanup does. Call it when the scrape config
// goes away (e.g. on reload) and stop using the pipeline. The shared drop
// counter is left alone.
func (p *Pipeline) Close() {
	for _, m := range p.collectors {
		m.close()
	}
}

// builder holds what stage constructors share.
type builder struct {
	opts       Options
	logger     *slog.Logger
	reg        prometheus.Registerer
	dropped    *prometheus.CounterVec
	collectors []*customMetric
	seq        int
}

func newBuilder(opts Options) *builder {
	b := &builder{opts: opts, logger: opts.Logger, reg: opts.Registerer}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	if b.reg == nil {
		b.reg = prometheus.NewRegistry() // registered nowhere visible
	}
	return b
}

func (b *builder) closeMetrics() {
	for _, m := range b.collectors {
		m.close()
	}
	b.collectors = nil
}

// shared registers c, or returns the collector already registered under the
// same descriptors (metrics shared by all pipelines).
func shared[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
		// A conflicting registration (same name, other labels) leaves the
		// collector unregistered; it still counts, just unexposed.
	}
	return c
}

// droppedLines is logentry_dropped_lines_total{reason}, Promtail's counter
// for lines dropped by drop, sampling, limit and match stages.
func (b *builder) droppedLines() *prometheus.CounterVec {
	if b.dropped == nil {
		b.dropped = shared(b.reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "logentry",
			Name:      "dropped_lines_total",
			Help:      "A count of all log lines dropped as a result of a pipeline stage",
		}, []string{"reason"}))
	}
	return b.dropped
}

func (b *builder) pipelineDuration() *prometheus.HistogramVec {
	return shared(b.reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "logentry",
		Name:      "pipeline_duration_seconds",
		Help:      "Label and metric extraction pipeline processing time, in seconds",
		Buckets:   []float64{.000005, .000010, .000025, .000050, .000100, .000250, .000500, .001000, .002500, .005000, .010000, .025000},
	}, []string{"job_name"}))
}

type stageCtor func(b *builder, s *builtStage, cfg *yaml.Node) (any, error)

// stageCtors maps stage names to constructors; filled in init to break the
// initialisation cycle through the match stage.
var stageCtors map[string]stageCtor

// unsupportedStages are Promtail stages this agent rejects, with the reason.
var unsupportedStages = map[string]string{
	"geoip":           "it needs MaxMind databases; enrich at query time or upstream",
	"eventlogmessage": "it parses Windows Event Log messages, which this agent does not read",
}

func init() {
	stageCtors = map[string]stageCtor{
		"docker":              newDockerStage,
		"cri":                 newCRIStage,
		"regex":               newRegexStage,
		"json":                newJSONStage,
		"logfmt":              newLogfmtStage,
		"replace":             newReplaceStage,
		"multiline":           newMultilineStage,
		"pack":                newPackStage,
		"decolorize":          newDecolorizeStage,
		"template":            newTemplateStage,
		"output":              newOutputStage,
		"labels":              newLabelsStage,
		"labelallow":          newLabelAllowStage,
		"labeldrop":           newLabelDropStage,
		"static_labels":       newStaticLabelsStage,
		"structured_metadata": newStructuredMetadataStage,
		"non_indexed_labels":  newStructuredMetadataStage, // Promtail's deprecated name
		"timestamp":           newTimestampStage,
		"metrics":             newMetricsStage,
		"tenant":              newTenantStage,
		"match":               newMatchStage,
		"drop":                newDropStage,
		"limit":               newLimitStage,
		"sampling":            newSamplingStage,
	}
}

// buildList builds a list of stage nodes; prefix is the parent position
// ("4." for stages nested in the match stage at position 4).
func (b *builder) buildList(nodes []*yaml.Node, prefix string) ([]*builtStage, error) {
	out := make([]*builtStage, 0, len(nodes))
	for i, n := range nodes {
		pos := prefix + strconv.Itoa(i+1)
		s, err := b.buildOne(n, pos)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (b *builder) buildOne(n *yaml.Node, pos string) (*builtStage, error) {
	n = resolve(n)
	if n == nil {
		return nil, &ConfigError{Stage: pos, Err: errors.New("empty stage")}
	}
	if n.Kind != yaml.MappingNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf(" (write %q)", n.Value+": {}")
		}
		return nil, &ConfigError{Stage: pos, Line: n.Line, Column: n.Column,
			Err: fmt.Errorf("a stage must be a YAML mapping whose only key is the stage name%s", hint)}
	}
	if len(n.Content) != 2 {
		var keys []string
		for i := 0; i < len(n.Content); i += 2 {
			keys = append(keys, n.Content[i].Value)
		}
		return nil, &ConfigError{Stage: pos, Line: n.Line, Column: n.Column,
			Err: fmt.Errorf("a stage must contain exactly one key, the stage name; found %d: %v (indent the stage's options under its name)", len(keys), keys)}
	}
	key, cfg := n.Content[0], n.Content[1]
	b.seq++
	s := &builtStage{pos: pos, seq: b.seq, name: key.Value, line: key.Line, col: key.Column}
	ctor, ok := stageCtors[s.name]
	if !ok {
		err := fmt.Errorf("%w: %s", ErrNotSupported, s.name)
		if why, known := unsupportedStages[s.name]; known {
			err = fmt.Errorf("%w (%s)", err, why)
		}
		return nil, &ConfigError{Stage: pos, Name: s.name, Line: key.Line, Column: key.Column, Err: err}
	}
	impl, err := ctor(b, s, cfg)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			return nil, err // from a nested stage; already positioned
		}
		cerr := &ConfigError{Stage: pos, Name: s.name, Line: key.Line, Column: key.Column, Err: err}
		var pe *posError
		if errors.As(err, &pe) {
			cerr.Line, cerr.Column, cerr.Err = pe.line, pe.col, pe.err
		}
		return nil, cerr
	}
	s.impl = impl
	return s, nil
}
