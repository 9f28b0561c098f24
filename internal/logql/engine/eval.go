package engine

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"

	"github.com/prometheus/prometheus/model/labels"

	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// execSample evaluates a metric query over the step grid and shapes the
// answer as Loki does: a scalar for a literal instant query, a vector for
// other instant queries, a matrix for range queries.
func (q *query) execSample(ctx context.Context, expr lql.SampleExpr) (Result, error) {
	p := q.p
	g := grid{start: p.Start, step: p.Step.Nanoseconds(), n: 1}
	if !p.Instant {
		if g.step <= 0 {
			return Result{}, Userf("zero or negative query resolution step widths are not accepted. Try a positive integer")
		}
		g.n = int((p.End-p.Start)/g.step) + 1
	} else {
		g.step = 1
	}
	if err := q.checkRanges(expr); err != nil {
		return Result{}, err
	}
	if !p.Instant && hasApproxTopK(expr) {
		// Loki answers approx_topk from count-min sketches, which it
		// builds for instant queries only (LQ-V4).
		return Result{}, Userf("approx_topk error: count min sketches are only supported on instant queries")
	}
	expr, err := fold(expr)
	if err != nil {
		return Result{}, err
	}
	if lit, ok := expr.(*lql.LiteralExpr); ok {
		if p.Instant {
			return Result{Type: TypeScalar, Scalar: Sample{T: p.Start / 1e6, V: lit.Value}}, nil
		}
		return Result{Type: TypeMatrix, Matrix: []Series{constSeries(g, lit.Value).toResult(g)}}, nil
	}
	plan, split, err := q.planSplit(ctx, expr, g)
	if err != nil {
		return Result{}, err
	}
	var m matrix
	if split {
		q.splits = int64(plan.parts())
		m, err = q.evalSplit(ctx, expr, g, plan)
	} else {
		ev := &evaluator{q: q, g: g}
		m, err = ev.eval(ctx, expr, hint{strict: true})
	}
	if err != nil {
		return Result{}, err
	}
	if max := q.limits.MaxQuerySeries; max > 0 && len(m) > max {
		return Result{}, seriesLimitError(max)
	}
	if p.Instant {
		vec := make([]Sample, 0, len(m))
		for _, s := range m {
			if len(s.points) > 0 {
				vec = append(vec, Sample{Metric: s.labels, T: g.ms(0), V: s.points[0].v})
			}
		}
		if !sortable(expr) {
			slices.SortStableFunc(vec, func(a, b Sample) int { return labels.Compare(a.Metric, b.Metric) })
		}
		return Result{Type: TypeVector, Vector: vec}, nil
	}
	out := make([]Series, 0, len(m))
	for _, s := range m {
		if len(s.points) > 0 {
			out = append(out, s.toResult(g))
		}
	}
	slices.SortFunc(out, func(a, b Series) int { return labels.Compare(a.Metric, b.Metric) })
	return Result{Type: TypeMatrix, Matrix: out}, nil
}

// toResult converts a series for the API: step indexes become Unix ms.
func (s series) toResult(g grid) Series {
	pts := make([]Point, len(s.points))
	for i, p := range s.points {
		pts[i] = Point{T: g.ms(int(p.k)), V: p.v}
	}
	return Series{Metric: s.labels, Points: pts}
}

// constSeries is a series without labels that has v at every step
// (vector(v), or a literal in a range query).
func constSeries(g grid, v float64) series {
	s := series{labels: model.EmptyLabels(), points: make([]point, g.n)}
	for k := range s.points {
		s.points[k] = point{k: int32(k), v: v}
	}
	return s
}

// sortable reports whether the query orders its instant result by value
// (it contains sort or sort_desc); otherwise Loki orders by labels.
func sortable(e lql.Expr) bool {
	found := false
	lql.Walk(e, func(x lql.Expr) bool {
		if v, ok := x.(*lql.VectorAggregationExpr); ok && (v.Op == lql.VectorSort || v.Op == lql.VectorSortDesc) {
			found = true
		}
		return !found
	})
	return found
}

// hasApproxTopK reports whether the query uses approx_topk.
func hasApproxTopK(e lql.Expr) bool {
	found := false
	lql.Walk(e, func(x lql.Expr) bool {
		if v, ok := x.(*lql.VectorAggregationExpr); ok && v.Op == lql.VectorApproxTopK {
			found = true
		}
		return !found
	})
	return found
}

// checkRanges applies max_query_range to every range of the query.
func (q *query) checkRanges(e lql.Expr) error {
	limit := q.limits.MaxQueryRange.D()
	if limit <= 0 {
		return nil
	}
	var err error
	lql.Walk(e, func(x lql.Expr) bool {
		if r, ok := x.(*lql.LogRangeExpr); ok && r.Range > limit && err == nil {
			err = Userf(fmt.Sprintf("[interval] value exceeds limit: [%s] > [%s]", lql.FormatDuration(r.Range), lql.FormatDuration(limit)))
		}
		return err == nil
	})
	return err
}

// fold replaces binary operations between two literals by their value, as
// Loki's parser does ((1+1) is the literal 2; comparisons give 0 or 1). A
// set operator with a literal operand is an error.
func fold(e lql.SampleExpr) (lql.SampleExpr, error) {
	switch x := e.(type) {
	case *lql.BinOpExpr:
		l, err := fold(x.Left)
		if err != nil {
			return nil, err
		}
		r, err := fold(x.Right)
		if err != nil {
			return nil, err
		}
		ll, lok := l.(*lql.LiteralExpr)
		rl, rok := r.(*lql.LiteralExpr)
		if x.Op.IsSetOperator() {
			if lok {
				return nil, Userf(fmt.Sprintf("unexpected literal for left leg of logical/set binary operation (%s): %f", x.Op, ll.Value))
			}
			if rok {
				return nil, Userf(fmt.Sprintf("unexpected literal for right leg of logical/set binary operation (%s): %f", x.Op, rl.Value))
			}
		}
		if lok && rok {
			v, _ := applyOp(x.Op, ll.Value, rl.Value, false)
			return &lql.LiteralExpr{Value: v}, nil
		}
		cp := *x
		cp.Left, cp.Right = l, r
		return &cp, nil
	case *lql.VectorAggregationExpr:
		in, err := fold(x.Inner)
		if err != nil {
			return nil, err
		}
		cp := *x
		cp.Inner = in
		return &cp, nil
	case *lql.LabelReplaceExpr:
		in, err := fold(x.Left)
		if err != nil {
			return nil, err
		}
		cp := *x
		cp.Left = in
		return &cp, nil
	}
	return e, nil
}

// applyOp computes l op r. For comparisons keep reports whether the
// comparison holds; with filter the result is then l, else 1 or 0 (and keep
// is always true). Division and modulo by zero give NaN, as in Loki.
func applyOp(op lql.BinOp, l, r float64, filter bool) (v float64, keep bool) {
	switch op {
	case lql.OpAdd:
		return l + r, true
	case lql.OpSub:
		return l - r, true
	case lql.OpMul:
		return l * r, true
	case lql.OpDiv:
		if r == 0 {
			return math.NaN(), true
		}
		return l / r, true
	case lql.OpMod:
		if r == 0 {
			return math.NaN(), true
		}
		return math.Mod(l, r), true
	case lql.OpPow:
		return math.Pow(l, r), true
	}
	var ok bool
	switch op {
	case lql.OpEq:
		ok = l == r
	case lql.OpNeq:
		ok = l != r
	case lql.OpGt:
		ok = l > r
	case lql.OpGte:
		ok = l >= r
	case lql.OpLt:
		ok = l < r
	case lql.OpLte:
		ok = l <= r
	}
	if filter {
		return l, ok
	}
	if ok {
		return 1, true
	}
	return 0, true
}

// evaluator evaluates metric expressions over a grid.
type evaluator struct {
	q *query
	g grid
}

// canPushGrouping reports whether a parent sum's grouping may be applied to
// the samples of the range aggregation at the source (Loki does the same
// for sum over count_over_time, rate, bytes_*, sum_over_time).
func canPushGrouping(op lql.RangeOp) bool {
	switch op {
	case lql.RangeBytes, lql.RangeBytesRate, lql.RangeSum, lql.RangeRate, lql.RangeCount:
		return true
	}
	return false
}

func (ev *evaluator) eval(ctx context.Context, e lql.SampleExpr, h hint) (matrix, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch x := e.(type) {
	case *lql.RangeAggregationExpr:
		return ev.evalRange(ctx, x, h)
	case *lql.VectorAggregationExpr:
		return ev.evalVectorAgg(ctx, x)
	case *lql.BinOpExpr:
		return ev.evalBinOp(ctx, x)
	case *lql.LabelReplaceExpr:
		return ev.evalLabelReplace(ctx, x, h)
	case *lql.VectorExpr:
		return matrix{constSeries(ev.g, x.Value)}, nil
	case *lql.LiteralExpr:
		return nil, Userf(fmt.Sprintf("unexpected literal %s: a vector is expected here", x))
	}
	return nil, Userf(fmt.Sprintf("unexpected expression type %T", e))
}

// groupLabels returns the labels a vector aggregation groups ls under.
func groupLabels(ls model.Labels, g *lql.Grouping, b *labels.Builder) model.Labels {
	if g == nil {
		return model.EmptyLabels()
	}
	if g.Without {
		b.Reset(ls)
		b.Del(g.Labels...)
		b.Del(labels.MetricName)
		return b.Labels()
	}
	b.Reset(model.EmptyLabels())
	for _, n := range g.Labels {
		if v := ls.Get(n); v != "" {
			b.Set(n, v)
		}
	}
	return b.Labels()
}

// shardable reports whether Loki evaluates the aggregation without
// materialising its input (so max_query_series does not apply to it).
func shardable(op lql.VectorOp) bool {
	switch op {
	case lql.VectorSum, lql.VectorCount, lql.VectorMin, lql.VectorMax, lql.VectorAvg:
		return true
	}
	return false
}

type aggState struct {
	value, mean float64
	count       int
}

func (ev *evaluator) evalVectorAgg(ctx context.Context, x *lql.VectorAggregationExpr) (matrix, error) {
	h := hint{strict: !shardable(x.Op)}
	if x.Op == lql.VectorSum {
		if ra, ok := x.Inner.(*lql.RangeAggregationExpr); ok && ra.Grouping == nil && canPushGrouping(ra.Op) {
			h.pushed, h.grouping = true, x.Grouping
		}
	}
	in, err := ev.eval(ctx, x.Inner, h)
	if err != nil {
		return nil, err
	}
	if max := ev.q.limits.MaxQuerySeries; max > 0 && !shardable(x.Op) && len(in) > max {
		return nil, seriesLimitError(max)
	}
	n := ev.g.n
	offs, refs := byStep(in, n)
	b := labels.NewBuilder(model.EmptyLabels())
	groups := newSeriesSet()
	groupOf := make([]int32, len(in))
	for i, s := range in {
		groupOf[i] = groups.id(groupLabels(s.labels, x.Grouping, b))
	}
	switch x.Op {
	case lql.VectorTopK, lql.VectorBottomK, lql.VectorApproxTopK, lql.VectorSort, lql.VectorSortDesc:
		return ev.selectPerGroup(x, in, groupOf, len(groups.out), offs, refs), nil
	}
	acc := make([]aggState, len(groups.out))
	seen := make([]bool, len(groups.out))
	var touched []int32
	for k := 0; k < n; k++ {
		if k&255 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		touched = touched[:0]
		for _, r := range refs[offs[k]:offs[k+1]] {
			gi := groupOf[r.s]
			a := &acc[gi]
			if !seen[gi] {
				seen[gi] = true
				touched = append(touched, gi)
				*a = aggState{value: r.v, mean: r.v, count: 1}
				if x.Op == lql.VectorStddev || x.Op == lql.VectorStdvar {
					a.value = 0
				}
				continue
			}
			switch x.Op {
			case lql.VectorSum:
				a.value += r.v
			case lql.VectorAvg:
				a.count++
				a.mean += (r.v - a.mean) / float64(a.count)
			case lql.VectorMax:
				if a.value < r.v || math.IsNaN(a.value) {
					a.value = r.v
				}
			case lql.VectorMin:
				if a.value > r.v || math.IsNaN(a.value) {
					a.value = r.v
				}
			case lql.VectorCount:
				a.count++
			case lql.VectorStddev, lql.VectorStdvar:
				a.count++
				delta := r.v - a.mean
				a.mean += delta / float64(a.count)
				a.value += delta * (r.v - a.mean)
			}
		}
		for _, gi := range touched {
			seen[gi] = false
			a := &acc[gi]
			v := a.value
			switch x.Op {
			case lql.VectorAvg:
				v = a.mean
			case lql.VectorCount:
				v = float64(a.count)
			case lql.VectorStddev:
				v = math.Sqrt(a.value / float64(a.count))
			case lql.VectorStdvar:
				v = a.value / float64(a.count)
			}
			groups.add(gi, k, v)
		}
	}
	return groups.out, nil
}

// selectPerGroup evaluates topk, bottomk, sort and sort_desc: per step and
// group it keeps (and orders) input series. For an instant query the output
// is in the selection's order.
func (ev *evaluator) selectPerGroup(x *lql.VectorAggregationExpr, in matrix, groupOf []int32, ngroups int, offs []int32, refs []stepRef) matrix {
	out := make(matrix, len(in))
	for i, s := range in {
		out[i].labels = s.labels
	}
	desc := x.Op == lql.VectorTopK || x.Op == lql.VectorApproxTopK || x.Op == lql.VectorSortDesc
	limit := -1
	if x.Op.HasParam() {
		limit = x.Param
		if limit < 1 {
			return nil
		}
	}
	members := make([][]stepRef, ngroups)
	var order []int32 // instant: output series in selection order
	for k := 0; k < ev.g.n; k++ {
		for gi := range members {
			members[gi] = members[gi][:0]
		}
		var groupOrder []int32
		for _, r := range refs[offs[k]:offs[k+1]] {
			gi := groupOf[r.s]
			if len(members[gi]) == 0 {
				groupOrder = append(groupOrder, gi)
			}
			members[gi] = append(members[gi], r)
		}
		for _, gi := range groupOrder {
			m := members[gi]
			slices.SortStableFunc(m, func(a, b stepRef) int { return compareValues(a.v, b.v, desc) })
			if limit >= 0 && len(m) > limit {
				m = m[:limit]
			}
			for _, r := range m {
				out[r.s].points = append(out[r.s].points, point{k: int32(k), v: r.v})
				if ev.g.n == 1 {
					order = append(order, r.s)
				}
			}
		}
	}
	if ev.g.n == 1 {
		res := make(matrix, 0, len(order))
		for _, i := range order {
			res = append(res, out[i])
		}
		return res
	}
	res := out[:0]
	for _, s := range out {
		if len(s.points) > 0 {
			res = append(res, s)
		}
	}
	return res
}

// compareValues orders values for topk/sort_desc (desc) or bottomk/sort;
// NaN goes last either way.
func compareValues(a, b float64, desc bool) int {
	an, bn := math.IsNaN(a), math.IsNaN(b)
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	}
	if a == b {
		return 0
	}
	if (a > b) == desc {
		return -1
	}
	return 1
}

func (ev *evaluator) evalLabelReplace(ctx context.Context, x *lql.LabelReplaceExpr, h hint) (matrix, error) {
	re, err := regexp.Compile("^(?:" + x.Regex + ")$")
	if err != nil {
		return nil, Userf(fmt.Sprintf("invalid regular expression in label_replace(): %s", x.Regex))
	}
	in, err := ev.eval(ctx, x.Left, hint{strict: h.strict})
	if err != nil {
		return nil, err
	}
	out := newSeriesSet()
	merged := false
	for _, s := range in {
		ls := s.labels
		src := ls.Get(x.Src)
		if idx := re.FindStringSubmatchIndex(src); idx != nil {
			res := re.ExpandString(nil, x.Replacement, src, idx)
			b := labels.NewBuilder(ls)
			b.Del(x.Dst)
			if len(res) > 0 {
				b.Set(x.Dst, string(res))
			}
			ls = b.Labels()
		}
		i := out.id(ls)
		if len(out.out[i].points) > 0 {
			merged = true
		}
		out.out[i].points = append(out.out[i].points, s.points...)
	}
	if merged {
		for i := range out.out {
			pts := out.out[i].points
			slices.SortStableFunc(pts, func(a, b point) int { return int(a.k) - int(b.k) })
			out.out[i].points = slices.CompactFunc(pts, func(a, b point) bool { return a.k == b.k })
		}
	}
	return out.out, nil
}
