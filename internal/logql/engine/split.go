package engine

import (
	"context"
	"sync"
	"time"

	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Splitting by time (split_queries_by_interval, LQ-X4).
//
// A metric range query may be cut into sub-ranges of whole steps: the steps
// whose times fall in the same multiple of the interval since the Unix epoch
// form one sub-range (so the cuts are the same for every query with that
// interval, as Loki's are). Each sub-range is the whole query evaluated over
// its own steps only: its range windows reach back before its first step,
// and every function, aggregation and binary operation sees exactly the
// samples it sees in one pass. Only steps are divided, never a range window,
// so non-associative functions (avg, quantile, stddev, topk, rate_counter…)
// need no re-combination and the concatenated answer is bit for bit the
// answer of a single pass.
//
// The planner rule. A query is split when all of these hold, and evaluated
// in one pass otherwise:
//
//   - it is a range query and the interval is positive;
//   - its steps fall in at least two intervals;
//   - no range window (range plus offset) is longer than the interval:
//     a sub-range reads its steps' data plus one window before its first
//     step, so longer windows would make every sub-range re-read most of
//     what its neighbours read;
//   - some selector of the query matches fewer streams than the engine's
//     parallelism: a single pass already reads one stream per core at a
//     time, so with at least as many streams as cores splitting adds reads
//     and merges without adding parallel work.
//
// Sub-ranges run in parallel (up to the engine's parallelism at once) and
// their series are concatenated by label set; max_query_series applies to
// the union.

// splitPlan is the step ranges [from[i], from[i+1]) of a split query.
type splitPlan struct {
	from []int
}

func (p splitPlan) parts() int { return len(p.from) - 1 }

// splitSteps cuts the grid at the steps where t/interval changes.
func splitSteps(g grid, interval int64) splitPlan {
	p := splitPlan{from: []int{0}}
	cur := floorDiv(g.t(0), interval)
	for k := 1; k < g.n; k++ {
		if b := floorDiv(g.t(k), interval); b != cur {
			p.from = append(p.from, k)
			cur = b
		}
	}
	p.from = append(p.from, g.n)
	return p
}

// maxWindow is the longest range plus offset of the query's range
// aggregations.
func maxWindow(e lql.Expr) time.Duration {
	var m time.Duration
	lql.Walk(e, func(x lql.Expr) bool {
		if r, ok := x.(*lql.LogRangeExpr); ok {
			m = max(m, r.Range+max(r.Offset, -r.Offset))
		}
		return true
	})
	return m
}

// planSplit decides whether and how to split a range query (see the
// planner rule above); ok is false for a single pass.
func (q *query) planSplit(ctx context.Context, expr lql.SampleExpr, g grid) (splitPlan, bool, error) {
	interval := q.limits.SplitQueriesByInterval.D()
	if q.p.Instant || g.n < 2 || interval <= 0 {
		return splitPlan{}, false, nil
	}
	plan := splitSteps(g, interval.Nanoseconds())
	if plan.parts() < 2 {
		return splitPlan{}, false, nil
	}
	if q.e.forceSplit {
		return plan, true, nil
	}
	if maxWindow(expr) > interval {
		return splitPlan{}, false, nil
	}
	// Select the streams of every range aggregation as a single pass
	// would: kept for it when the query is not split, so the look-up is
	// not repeated.
	few := false
	var sels []preselection
	var err error
	lql.Walk(expr, func(x lql.Expr) bool {
		ra, ok := x.(*lql.RangeAggregationExpr)
		if !ok || err != nil {
			return err == nil
		}
		var lp *logPlan
		if lp, err = compileLog(ra.Left.Log); err != nil {
			return false
		}
		r := readWindow(ra, g)
		var streams []stream
		if streams, err = q.selectStreams(ctx, lp.matchers, r, model.Forward, lp.filter); err != nil {
			return false
		}
		few = few || len(streams) < q.e.par
		sels = append(sels, preselection{x: ra, r: r, streams: streams})
		return false
	})
	if err != nil {
		return splitPlan{}, false, err
	}
	if !few {
		q.presel = sels
		return splitPlan{}, false, nil
	}
	return plan, true, nil
}

// preselection is the streams a range aggregation reads over r, selected
// by the planner.
type preselection struct {
	x       *lql.RangeAggregationExpr
	r       model.TimeRange
	streams []stream
}

// readWindow is the time range a range aggregation reads over grid g.
func readWindow(x *lql.RangeAggregationExpr, g grid) model.TimeRange {
	rng, off := x.Left.Range.Nanoseconds(), x.Left.Offset.Nanoseconds()
	return model.TimeRange{Min: g.start - off - rng + 1, Max: g.t(g.n-1) - off + 1}
}

// takePreselected returns (once) the planner's streams for x over r.
func (q *query) takePreselected(x *lql.RangeAggregationExpr, r model.TimeRange) ([]stream, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, p := range q.presel {
		if p.x == x && p.r == r && p.streams != nil {
			q.presel[i].streams = nil
			return p.streams, true
		}
	}
	return nil, false
}

// evalSplit evaluates expr over every sub-range of plan in parallel and
// concatenates the answers.
func (q *query) evalSplit(ctx context.Context, expr lql.SampleExpr, g grid, plan splitPlan) (matrix, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts := make([]matrix, plan.parts())
	sem := make(chan struct{}, q.e.par)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			a, b := plan.from[i], plan.from[i+1]
			ev := &evaluator{q: q, g: grid{start: g.t(a), step: g.step, n: b - a}}
			m, err := ev.eval(ctx, expr, hint{strict: true})
			if err != nil {
				once.Do(func() { first = err; cancel() })
				return
			}
			for si := range m {
				for pi := range m[si].points {
					m[si].points[pi].k += int32(a)
				}
			}
			parts[i] = m
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := newSeriesSet()
	for _, m := range parts {
		for _, s := range m {
			i := out.id(s.labels)
			out.out[i].points = append(out.out[i].points, s.points...)
		}
	}
	return out.out, nil
}
