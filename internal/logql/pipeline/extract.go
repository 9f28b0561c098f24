package pipeline

import (
	"fmt"
	"slices"
	"strconv"

	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// ExtractorOptions tell a SampleExtractor what the metric engine does with
// the samples, so that the parsers extract only the labels it needs and the
// returned label sets are already reduced.
type ExtractorOptions struct {
	// Bytes makes a sample without unwrap worth the byte length of the
	// processed line (bytes_over_time, bytes_rate) instead of 1
	// (count_over_time, rate, absent_over_time).
	Bytes bool
	// Grouping is the label set the engine will aggregate by: with
	// Without=false only these labels are returned, with Without=true all
	// but these. nil returns every label (the unwrapped label excepted).
	Grouping *lql.Grouping
	// NoLabels says the engine drops every label (for instance sum(…)
	// without grouping); samples then carry no labels and the parsers only
	// extract what the pipeline's own filters read.
	NoLabels bool
}

// SampleExtractor turns the entries of a metric query's log range into
// samples (LQ-R1…R9). It is immutable and safe for concurrent use.
type SampleExtractor struct {
	p        *Pipeline
	unwrap   *lql.UnwrapExpr
	post     []labelPredicate
	conv     func(string) (float64, error)
	bytes    bool
	group    []string // sorted; nil: keep all
	without  bool
	noLabels bool
}

// NewSampleExtractor builds the sample extractor of a range aggregation over
// p. unwrap is nil for count_over_time, rate, bytes_* and absent_over_time;
// its PostFilters run after the conversion and may drop entries by
// __error__.
func NewSampleExtractor(p *Pipeline, unwrap *lql.UnwrapExpr, opts ExtractorOptions) (*SampleExtractor, error) {
	e := &SampleExtractor{unwrap: unwrap, bytes: opts.Bytes, noLabels: opts.NoLabels}
	var grouping []string
	if opts.Grouping != nil {
		grouping = slices.Clone(opts.Grouping.Labels)
		if grouping == nil {
			grouping = []string{}
		}
		e.without = opts.Grouping.Without
	}
	var extra []string
	if unwrap != nil {
		switch unwrap.Conv {
		case lql.UnwrapFloat:
			e.conv = convertFloat
		case lql.UnwrapDuration, lql.UnwrapDurationSeconds:
			e.conv = convertDuration
		case lql.UnwrapBytes:
			e.conv = convertBytes
		default:
			return nil, fmt.Errorf("unsupported unwrap conversion %v", unwrap.Conv)
		}
		for _, f := range unwrap.PostFilters {
			pred, err := compileLabelFilter(f.Filter)
			if err != nil {
				return nil, err
			}
			e.post = append(e.post, pred)
			extra = pred.names(extra)
		}
		extra = append(extra, unwrap.Label)
		// Without a by-grouping every label but the unwrapped one is kept.
		if grouping == nil || e.without {
			e.without = true
			grouping = append(grouping, unwrap.Label)
		}
	}
	slices.Sort(grouping)
	e.group = grouping
	need, known := p.needs()
	byGrouping := grouping
	if e.without {
		byGrouping = nil
	}
	e.p = p.withHints(newHints(need, known, byGrouping, e.without, opts.NoLabels, extra...))
	return e, nil
}

func convertFloat(v string) (float64, error) { return strconv.ParseFloat(v, 64) }

// ForStream returns the extractor for one stream; see Pipeline.ForStream.
func (e *SampleExtractor) ForStream(stream model.Labels) *StreamSampleExtractor {
	return &StreamSampleExtractor{e: e, sp: e.p.ForStream(stream)}
}

// StreamSampleExtractor extracts samples from one stream's entries. It is
// not safe for concurrent use.
type StreamSampleExtractor struct {
	e  *SampleExtractor
	sp *StreamPipeline
}

// Process runs the pipeline on one entry and returns its sample. ok=false
// means the entry yields no sample (filtered out, or unwrap of a label the
// entry lacks). lbls is immutable and may be kept; it carries __error__ and
// __error_details__ when a stage or the conversion failed (then all the
// entry's labels are returned, whatever the grouping, so the error can name
// the series), and the engine must fail the query for such a sample.
func (s *StreamSampleExtractor) Process(ts int64, line []byte, metadata model.Labels) (value float64, lbls model.Labels, ok bool) {
	out, l, keep := s.sp.Process(ts, line, metadata)
	if !keep {
		return 0, model.EmptyLabels(), false
	}
	e := s.e
	switch {
	case e.unwrap != nil:
		v, _ := l.Get(e.unwrap.Label)
		if v == "" {
			return 0, model.EmptyLabels(), false
		}
		f, err := e.conv(v)
		if err != nil {
			l.setErr(ErrSampleExtraction, err.Error())
		} else {
			value = f
		}
		for _, p := range e.post {
			if !p.eval(l) {
				return 0, model.EmptyLabels(), false
			}
		}
	case e.bytes:
		value = float64(len(out))
	default:
		value = 1
	}
	return value, s.labels(l), true
}

// ProcessString is Process for a line held as a string.
func (s *StreamSampleExtractor) ProcessString(ts int64, line string, metadata model.Labels) (float64, model.Labels, bool) {
	return s.Process(ts, stringBytes(line), metadata)
}

func (s *StreamSampleExtractor) labels(l *Labels) model.Labels {
	e := s.e
	switch {
	case l.err != "":
		return l.All()
	case e.noLabels:
		return model.EmptyLabels()
	case e.group == nil:
		return l.All()
	}
	return l.grouped(e.group, e.without)
}
