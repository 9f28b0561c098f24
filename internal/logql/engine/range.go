package engine

import (
	"context"
	"math"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/ledgerlog/ledgerlog/internal/logql/pipeline"
	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// A range aggregation reads each matching stream once, forward, over
// [start-offset-range, end-offset], on a pool of workers (one stream at a
// time per worker). Every sample lands in the contiguous run of steps whose
// windows (t-range, t] hold it, computed in O(1); samples outside every
// window (step > range) are skipped before the pipeline runs.
//
// Counting functions (count_over_time, rate, bytes_over_time, bytes_rate,
// absent_over_time) keep per series only run-length "events" (first step,
// last step, count, bytes), so memory grows with the steps a series spans,
// not with its lines; windows are summed exactly in integers by a sweep.
// Unwrapped functions keep the samples of each series and evaluate every
// window in time order with Loki's formulas.
//
// Workers keep their own series; they are merged by label set at the end
// (a series can come from several streams once labels are reduced).

// maxIntermediateSeries bounds the series one range aggregation may build
// when its result is reduced further (sum, count, min, max, avg), where Loki
// itself does not apply max_query_series.
const maxIntermediateSeries = 200_000

type event struct {
	kf, kl int32
	n, b   int64
}

type tsv struct {
	ts  int64
	v   float64
	ord int32 // the stream's ord
}

type accSeries struct {
	labels   model.Labels
	hasErr   bool
	unsorted bool
	// multi: samples come from more than one stream, so equal times need
	// ordering by stream.
	multi   bool
	lastOrd int32
	events  []event
	samples []tsv
}

type rangeWorker struct {
	index  map[uint64][]int32
	series []accSeries
}

type rangeEval struct {
	q        *query
	x        *lql.RangeAggregationExpr
	ext      *pipeline.SampleExtractor
	rng, off int64
	e0, step int64
	n        int
	sampling bool
	// fast: no pipeline stage runs and nothing is unwrapped, so a sample's
	// labels depend only on the stream and the entry's structured
	// metadata, and its value on the line length: labels are computed once
	// per distinct metadata set.
	fast    bool
	bytes   bool
	maxSer  int64
	created atomic.Int64
}

// hint is what a parent tells the evaluation of its operand.
type hint struct {
	// grouping is a parent sum's grouping pushed into a range aggregation;
	// pushed says there is one (nil grouping: sum without by drops all).
	grouping *lql.Grouping
	pushed   bool
	// strict: the result is checked against max_query_series (it is the
	// query's result or materialised by a non-shardable parent), so a range
	// aggregation may stop as soon as it certainly exceeds the limit.
	strict bool
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

// steps returns the first and last step whose window holds ts; kf > kl
// when none does.
func (r *rangeEval) steps(ts int64) (kf, kl int64) {
	kf = max(ceilDiv(ts-r.e0, r.step), 0)
	kl = min(floorDiv(ts+r.rng-1-r.e0, r.step), int64(r.n-1))
	return kf, kl
}

func (ev *evaluator) evalRange(ctx context.Context, x *lql.RangeAggregationExpr, h hint) (matrix, error) {
	q := ev.q
	lp, err := compileLog(x.Left.Log)
	if err != nil {
		return nil, err
	}
	opts := pipeline.ExtractorOptions{Bytes: x.Op == lql.RangeBytes || x.Op == lql.RangeBytesRate}
	switch {
	case x.Grouping != nil:
		opts.Grouping = x.Grouping
	case h.pushed:
		if h.grouping == nil || (!h.grouping.Without && len(h.grouping.Labels) == 0) {
			opts.NoLabels = true
		} else {
			opts.Grouping = h.grouping
		}
	case x.Op == lql.RangeAbsent:
		opts.NoLabels = true
	}
	ext, err := pipeline.NewSampleExtractor(lp.pipe, x.Left.Unwrap, opts)
	if err != nil {
		return nil, Userf(err.Error())
	}
	r := &rangeEval{
		q: q, x: x, ext: ext,
		rng:  x.Left.Range.Nanoseconds(),
		off:  x.Left.Offset.Nanoseconds(),
		step: ev.g.step,
		n:    ev.g.n,
	}
	r.e0 = ev.g.start - r.off
	r.sampling = x.Left.Unwrap != nil
	r.fast = lp.noop && !r.sampling
	r.bytes = opts.Bytes
	r.maxSer = maxIntermediateSeries
	window := readWindow(x, ev.g)
	streams, ok := q.takePreselected(x, window)
	if !ok {
		if streams, err = q.selectStreams(ctx, lp.matchers, window, model.Forward, lp.filter); err != nil {
			return nil, err
		}
	}
	if h.strict && q.limits.MaxQuerySeries > 0 {
		// Each worker counts its own series: beyond limit×workers the
		// distinct series certainly exceed the limit.
		r.maxSer = int64(q.limits.MaxQuerySeries) * int64(max(1, min(q.e.par, len(streams))))
	}
	workers := make([]*rangeWorker, max(1, min(q.e.par, len(streams))))
	for i := range workers {
		workers[i] = &rangeWorker{index: map[uint64][]int32{}}
	}
	if _, err := q.forEachStream(ctx, streams, func(ctx context.Context, w int, s stream) error {
		return r.scan(ctx, workers[w], s)
	}); err != nil {
		if _, ok := err.(*seriesLimitErr); ok {
			if h.strict && q.limits.MaxQuerySeries > 0 {
				return nil, seriesLimitError(q.limits.MaxQuerySeries)
			}
			return nil, seriesLimitError(maxIntermediateSeries)
		}
		return nil, err
	}
	return r.merge(ctx, workers)
}

type seriesLimitErr struct{}

func (*seriesLimitErr) Error() string { return "too many series" }

// scan reads one stream and adds its samples to the worker's series.
func (r *rangeEval) scan(ctx context.Context, w *rangeWorker, s stream) error {
	it := s.src.Iterator(model.Forward, r.q.addWarning)
	defer func() { _ = it.Close() }()
	sx := r.ext.ForStream(s.labels)
	var mc metadataCache
	var last model.Labels
	cur := int32(-1)
	var n, kept int64
	defer func() {
		r.q.postFilter.Add(kept)
		r.q.e.scanned.Add(n & 1023)
	}()
	for it.Next() {
		n++
		if n&1023 == 0 {
			r.q.e.scanned.Add(1024)
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e := it.At()
		kf, kl := r.steps(e.Timestamp)
		if kf > kl {
			continue
		}
		var v float64
		var ls model.Labels
		if r.fast {
			ls = mc.labels(sx, e)
			v = 1
			if r.bytes {
				v = float64(len(e.Line))
			}
		} else {
			var ok bool
			if v, ls, ok = sx.ProcessString(e.Timestamp, e.Line, e.Metadata); !ok {
				continue
			}
		}
		kept++
		if cur < 0 || !labels.Equal(ls, last) {
			var err error
			if cur, err = r.id(w, ls); err != nil {
				return err
			}
			last = ls
		}
		as := &w.series[cur]
		if as.hasErr {
			return pipelineError(as.labels)
		}
		if r.sampling {
			if k := len(as.samples); k > 0 {
				if as.samples[k-1].ts > e.Timestamp {
					as.unsorted = true
				}
				if as.lastOrd != s.ord {
					as.multi = true
				}
			}
			as.lastOrd = s.ord
			as.samples = append(as.samples, tsv{ts: e.Timestamp, v: v, ord: s.ord})
			continue
		}
		if k := len(as.events); k > 0 {
			le := &as.events[k-1]
			if le.kf == int32(kf) && le.kl == int32(kl) {
				le.n++
				le.b += int64(v)
				continue
			}
			if le.kf > int32(kf) || (le.kf == int32(kf) && le.kl > int32(kl)) {
				as.unsorted = true
			}
		}
		as.events = append(as.events, event{kf: int32(kf), kl: int32(kl), n: 1, b: int64(v)})
	}
	return it.Err()
}

// metadataCache remembers the sample labels of a stream per structured
// metadata set (for the fast path, where nothing else changes them).
type metadataCache struct {
	empty    model.Labels
	hasEmpty bool
	byHash   map[uint64][]mdLabels
	n        int
}

type mdLabels struct {
	md, ls model.Labels
}

func (c *metadataCache) labels(sx *pipeline.StreamSampleExtractor, e model.Entry) model.Labels {
	if e.Metadata.IsEmpty() {
		if !c.hasEmpty {
			_, c.empty, _ = sx.ProcessString(e.Timestamp, e.Line, e.Metadata)
			c.hasEmpty = true
		}
		return c.empty
	}
	h := e.Metadata.Hash()
	for _, m := range c.byHash[h] {
		if labels.Equal(m.md, e.Metadata) {
			return m.ls
		}
	}
	_, ls, _ := sx.ProcessString(e.Timestamp, e.Line, e.Metadata)
	if c.byHash == nil || c.n >= 4096 {
		c.byHash, c.n = map[uint64][]mdLabels{}, 0
	}
	c.byHash[h] = append(c.byHash[h], mdLabels{md: e.Metadata, ls: ls})
	c.n++
	return ls
}

func (r *rangeEval) id(w *rangeWorker, ls model.Labels) (int32, error) {
	h := ls.Hash()
	for _, i := range w.index[h] {
		if labels.Equal(w.series[i].labels, ls) {
			return i, nil
		}
	}
	if r.created.Add(1) > r.maxSer {
		return 0, &seriesLimitErr{}
	}
	i := int32(len(w.series))
	w.index[h] = append(w.index[h], i)
	w.series = append(w.series, accSeries{labels: ls, hasErr: ls.Has(pipeline.ErrorLabel)})
	return i, nil
}

// merge combines the workers' series by label set and evaluates every
// window.
func (r *rangeEval) merge(ctx context.Context, workers []*rangeWorker) (matrix, error) {
	type ref struct{ w, i int32 }
	index := map[uint64][]int{}
	var groups [][]ref
	var lbls []model.Labels
	for wi, w := range workers {
		for si := range w.series {
			ls := w.series[si].labels
			h := ls.Hash()
			gi := -1
			for _, g := range index[h] {
				if labels.Equal(lbls[g], ls) {
					gi = g
					break
				}
			}
			if gi < 0 {
				gi = len(groups)
				index[h] = append(index[h], gi)
				groups = append(groups, nil)
				lbls = append(lbls, ls)
			}
			groups[gi] = append(groups[gi], ref{int32(wi), int32(si)})
		}
	}
	out := make(matrix, 0, len(groups))
	var scratch []float64
	for gi, refs := range groups {
		if gi&255 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		s := series{labels: lbls[gi]}
		if r.sampling {
			var samples []tsv
			unsorted := len(refs) > 1
			for _, rf := range refs {
				as := &workers[rf.w].series[rf.i]
				samples = append(samples, as.samples...)
				unsorted = unsorted || as.unsorted || as.multi
				as.samples = nil
			}
			if unsorted {
				// By time, then stream: the order of a single pass and
				// of every split, whatever worker read which stream.
				slices.SortStableFunc(samples, func(a, b tsv) int {
					switch {
					case a.ts < b.ts:
						return -1
					case a.ts > b.ts:
						return 1
					}
					return int(a.ord) - int(b.ord)
				})
			}
			s.points, scratch = r.sweepSamples(samples, scratch)
		} else {
			var evs []event
			unsorted := len(refs) > 1
			for _, rf := range refs {
				as := &workers[rf.w].series[rf.i]
				evs = append(evs, as.events...)
				unsorted = unsorted || as.unsorted
				as.events = nil
			}
			if unsorted {
				slices.SortStableFunc(evs, func(a, b event) int {
					if a.kf != b.kf {
						return int(a.kf - b.kf)
					}
					return int(a.kl - b.kl)
				})
			}
			s.points = r.sweepEvents(evs)
		}
		if len(s.points) > 0 {
			if s.labels.Has(pipeline.ErrorLabel) {
				return nil, pipelineError(s.labels)
			}
			out = append(out, s)
		}
	}
	if r.x.Op == lql.RangeAbsent {
		return r.absent(out), nil
	}
	// Series in label order: parents that sum floats over them then add in
	// the same order on every run (workers pick streams as they come).
	slices.SortFunc(out, func(a, b series) int { return labels.Compare(a.labels, b.labels) })
	return out, nil
}

// sweepEvents evaluates a counting function at every step from events
// sorted by first step (so their last steps are sorted too).
func (r *rangeEval) sweepEvents(evs []event) []point {
	var pts []point
	var sumN, sumB int64
	secs := time.Duration(r.rng).Seconds()
	head, i := 0, 0
	k := int32(0)
	for k < int32(r.n) {
		if head == i {
			if i >= len(evs) {
				break
			}
			k = max(k, evs[i].kf)
		}
		for i < len(evs) && evs[i].kf <= k {
			sumN += evs[i].n
			sumB += evs[i].b
			i++
		}
		for head < i && evs[head].kl < k {
			sumN -= evs[head].n
			sumB -= evs[head].b
			head++
		}
		if head == i {
			continue
		}
		var v float64
		switch r.x.Op {
		case lql.RangeCount, lql.RangeAbsent:
			v = float64(sumN)
		case lql.RangeRate:
			v = float64(sumN) / secs
		case lql.RangeBytes:
			v = float64(sumB)
		case lql.RangeBytesRate:
			v = float64(sumB) / secs
		}
		pts = append(pts, point{k: k, v: v})
		k++
	}
	return pts
}

// sweepSamples evaluates an unwrapped function at every step from samples
// sorted by time.
func (r *rangeEval) sweepSamples(ss []tsv, scratch []float64) ([]point, []float64) {
	var pts []point
	lo, hi := 0, 0
	for k := 0; k < r.n; k++ {
		ek := r.e0 + int64(k)*r.step
		for hi < len(ss) && ss[hi].ts <= ek {
			hi++
		}
		for lo < hi && ss[lo].ts <= ek-r.rng {
			lo++
		}
		if lo == hi {
			if hi == len(ss) {
				break
			}
			if kf, _ := r.steps(ss[hi].ts); int(kf)-1 > k {
				k = int(kf) - 1
			}
			continue
		}
		var v float64
		v, scratch = r.aggregate(ss[lo:hi], scratch)
		pts = append(pts, point{k: int32(k), v: v})
	}
	return pts, scratch
}

// aggregate applies an unwrapped range function to a window's samples,
// with Loki's arithmetic (LQ-R2, R6…R8).
func (r *rangeEval) aggregate(w []tsv, scratch []float64) (float64, []float64) {
	switch r.x.Op {
	case lql.RangeRate:
		var sum float64
		for _, s := range w {
			sum += s.v
		}
		return sum / time.Duration(r.rng).Seconds(), scratch
	case lql.RangeRateCounter:
		return rateCounter(w, time.Duration(r.rng)), scratch
	case lql.RangeSum:
		var sum float64
		for _, s := range w {
			sum += s.v
		}
		return sum, scratch
	case lql.RangeAvg:
		var mean, count float64
		for _, s := range w {
			count++
			if math.IsInf(mean, 0) {
				if math.IsInf(s.v, 0) && (mean > 0) == (s.v > 0) {
					continue
				}
				if !math.IsInf(s.v, 0) && !math.IsNaN(s.v) {
					continue
				}
			}
			mean += s.v/count - mean/count
		}
		return mean, scratch
	case lql.RangeMax:
		m := w[0].v
		for _, s := range w {
			if s.v > m || math.IsNaN(m) {
				m = s.v
			}
		}
		return m, scratch
	case lql.RangeMin:
		m := w[0].v
		for _, s := range w {
			if s.v < m || math.IsNaN(m) {
				m = s.v
			}
		}
		return m, scratch
	case lql.RangeStdvar, lql.RangeStddev:
		var aux, count, mean float64
		for _, s := range w {
			count++
			delta := s.v - mean
			mean += delta / count
			aux += delta * (s.v - mean)
		}
		if r.x.Op == lql.RangeStddev {
			return math.Sqrt(aux / count), scratch
		}
		return aux / count, scratch
	case lql.RangeQuantile:
		scratch = scratch[:0]
		for _, s := range w {
			scratch = append(scratch, s.v)
		}
		return quantile(*r.x.Param, scratch), scratch
	case lql.RangeFirst:
		return w[0].v, scratch
	case lql.RangeLast:
		return w[len(w)-1].v, scratch
	case lql.RangeAbsent, lql.RangeCount:
		return float64(len(w)), scratch
	}
	return math.NaN(), scratch
}

// quantile is the φ-quantile of values (sorted in place), interpolating
// between neighbours; φ < 0 is -Inf, φ > 1 is +Inf.
func quantile(q float64, values []float64) float64 {
	if len(values) == 0 {
		return math.NaN()
	}
	if q < 0 {
		return math.Inf(-1)
	}
	if q > 1 {
		return math.Inf(+1)
	}
	sort.Slice(values, func(i, j int) bool {
		if math.IsNaN(values[i]) {
			return !math.IsNaN(values[j])
		}
		return values[i] < values[j]
	})
	n := float64(len(values))
	rank := q * (n - 1)
	lower := math.Max(0, math.Floor(rank))
	upper := math.Min(n-1, lower+1)
	weight := rank - math.Floor(rank)
	return values[int(lower)]*(1-weight) + values[int(upper)]*weight
}

// rateCounter is Loki's rate_counter: Prometheus' extrapolated counter rate
// over the window's samples, with the window taken as ending at the last
// sample and starting one range before the first; sample times are in
// nanoseconds while the range enters in milliseconds, exactly as Loki
// computes it, so the answers agree.
func rateCounter(w []tsv, rng time.Duration) float64 {
	if len(w) < 2 {
		return 0
	}
	first, last := w[0], w[len(w)-1]
	rangeStart := first.ts - rng.Milliseconds()
	rangeEnd := last.ts
	result := last.v - first.v
	var prev float64
	for _, s := range w {
		if s.v < prev {
			result += prev
		}
		prev = s.v
	}
	toStart := float64(first.ts-rangeStart) / 1000
	toEnd := float64(rangeEnd-last.ts) / 1000
	sampled := float64(last.ts-first.ts) / 1000
	avg := sampled / float64(len(w)-1)
	if result > 0 && first.v >= 0 {
		if toZero := sampled * (first.v / result); toZero < toStart {
			toStart = toZero
		}
	}
	threshold := avg * 1.1
	extrapolated := sampled
	if toStart < threshold {
		extrapolated += toStart
	} else {
		extrapolated += avg / 2
	}
	if toEnd < threshold {
		extrapolated += toEnd
	} else {
		extrapolated += avg / 2
	}
	result *= extrapolated / sampled
	return result / rng.Seconds()
}

// absent turns the series of absent_over_time into its answer: 1 at the
// steps where no series has a value, labelled with the selector's equality
// matchers (LQ-R5).
func (r *rangeEval) absent(m matrix) matrix {
	present := make([]bool, r.n)
	for _, s := range m {
		for _, p := range s.points {
			present[p.k] = true
		}
	}
	s := series{labels: absentLabels(r.x.Left.Log.Selector)}
	for k, ok := range present {
		if !ok {
			s.points = append(s.points, point{k: int32(k), v: 1})
		}
	}
	if len(s.points) == 0 {
		return nil
	}
	return matrix{s}
}

func absentLabels(ms []*model.Matcher) model.Labels {
	b := labels.NewBuilder(model.EmptyLabels())
	var drop []string
	set := map[string]bool{}
	for _, m := range ms {
		if m.Type == labels.MatchEqual && !set[m.Name] {
			b.Set(m.Name, m.Value)
			set[m.Name] = true
		} else {
			drop = append(drop, m.Name)
		}
	}
	b.Del(drop...)
	return b.Labels()
}
