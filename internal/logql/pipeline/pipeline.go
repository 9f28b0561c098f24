package pipeline

import (
	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Pipeline is a compiled log pipeline: the stages after a stream selector.
// It is immutable and safe for concurrent use; per-stream state lives in the
// StreamPipelines it creates.
type Pipeline struct {
	src    []lql.Stage
	stages []stage
	hints  *hints // nil: parsers extract every label
}

// New compiles a pipeline from stages (everything after the selector).
// Errors are user errors (a bad template, regexp, pattern or ip range) with
// a message naming the offending stage.
func New(stages []lql.Stage) (*Pipeline, error) {
	p := &Pipeline{src: stages}
	for _, st := range stages {
		s, err := compileStage(st)
		if err != nil {
			return nil, err
		}
		p.stages = append(p.stages, s)
	}
	return p, nil
}

// withHints returns a copy of p whose parsers extract only what h asks for.
func (p *Pipeline) withHints(h *hints) *Pipeline {
	cp := *p
	cp.hints = h
	return &cp
}

// needs returns the labels the stages read, and whether that is known.
func (p *Pipeline) needs() ([]string, bool) {
	var names []string
	known := true
	for _, s := range p.stages {
		var ok bool
		names, ok = s.needs(names)
		known = known && ok
	}
	return names, known
}

// IsNoop reports whether the pipeline changes nothing: it is empty or has
// only line filters, so every kept entry keeps its line and stream labels.
func (p *Pipeline) IsNoop() bool {
	for _, s := range p.stages {
		if _, ok := s.(*lineFilterStage); !ok {
			return false
		}
	}
	return true
}

// Filter returns the leading line filters as a storage push-down: the
// line filters before the first stage that rewrites the line (line_format,
// decolorize, unpack). needles are byte strings every matching line
// contains; match is the conjunction of those filters (nil when there are
// none). Process still applies every filter, so pushing down is optional.
// match is safe for concurrent use; needles are owned by the caller.
func (p *Pipeline) Filter() (needles [][]byte, match func(line []byte) bool) {
	var ms []lineMatcher
loop:
	for i, st := range p.src {
		switch st.(type) {
		case *lql.LineFilterExpr:
			ms = append(ms, p.stages[i].(*lineFilterStage).match)
		case *lql.LineFormatExpr, *lql.DecolorizeExpr, *lql.UnpackParserExpr:
			break loop
		}
	}
	needles = lql.Needles(&lql.LogExpr{Stages: p.src})
	switch len(ms) {
	case 0:
		return needles, nil
	case 1:
		return needles, ms[0]
	}
	return needles, func(line []byte) bool {
		for _, m := range ms {
			if !m(line) {
				return false
			}
		}
		return true
	}
}

// StreamPipeline evaluates a Pipeline for the entries of one stream. One
// StreamPipeline is not safe for concurrent use; different ones are.
type StreamPipeline struct {
	procs  []proc
	labels *Labels
}

// ForStream returns the evaluator for a stream; call it once per stream and
// reuse it for all the stream's entries.
func (p *Pipeline) ForStream(stream model.Labels) *StreamPipeline {
	l := newLabels(stream)
	sp := &StreamPipeline{labels: l, procs: make([]proc, len(p.stages))}
	for i, s := range p.stages {
		sp.procs[i] = s.newProc(p.hints, l)
	}
	return sp
}

// Process evaluates one entry. line is only read, and only until the next
// call (the caller owns it). The returned line and labels may alias line and
// internal buffers and are valid until the next call; keep=false means the
// entry was filtered out (out and lbls are then nil).
func (sp *StreamPipeline) Process(ts int64, line []byte, metadata model.Labels) (out []byte, lbls *Labels, keep bool) {
	l := sp.labels
	l.reset(metadata)
	for _, pr := range sp.procs {
		var ok bool
		line, ok = pr.process(ts, line, l)
		if !ok {
			return nil, nil, false
		}
	}
	return line, l, true
}

// ProcessString is Process for a line held as a string.
func (sp *StreamPipeline) ProcessString(ts int64, line string, metadata model.Labels) (out []byte, lbls *Labels, keep bool) {
	return sp.Process(ts, stringBytes(line), metadata)
}

// BaseLabels returns the stream's labels, as an entry that no stage changed
// would have them.
func (sp *StreamPipeline) BaseLabels() model.Labels { return sp.labels.base }
