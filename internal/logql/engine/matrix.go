package engine

import (
	"fmt"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// grid is the evaluation steps of a metric query: start + k·step for k in
// [0, n), all in Unix nanoseconds (LQ-R13). An instant query is one step.
type grid struct {
	start, step int64
	n           int
}

func (g grid) t(k int) int64 { return g.start + int64(k)*g.step }

// ms is the timestamp of step k in the result, Unix milliseconds.
func (g grid) ms(k int) int64 { return g.t(k) / 1e6 }

// point is the value of a series at step k.
type point struct {
	k int32
	v float64
}

// series is a label set and its values at some steps, in step order.
type series struct {
	labels model.Labels
	points []point
}

// matrix is the value of a metric expression over every step of the grid:
// a series per label set, each with the steps where it has a value. It
// stands for Prometheus' instant vectors at each step, evaluated all at
// once.
type matrix []series

// stepRef is one element of the vector at a step: a series and its value.
type stepRef struct {
	s int32
	v float64
}

// byStep returns the matrix step by step: the vector at step k is
// refs[offs[k]:offs[k+1]], series in matrix order.
func byStep(m matrix, n int) (offs []int32, refs []stepRef) {
	offs = make([]int32, n+1)
	total := 0
	for _, s := range m {
		for _, p := range s.points {
			offs[p.k+1]++
		}
		total += len(s.points)
	}
	for k := 1; k <= n; k++ {
		offs[k] += offs[k-1]
	}
	refs = make([]stepRef, total)
	fill := make([]int32, n)
	copy(fill, offs[:n])
	for i, s := range m {
		for _, p := range s.points {
			refs[fill[p.k]] = stepRef{s: int32(i), v: p.v}
			fill[p.k]++
		}
	}
	return offs, refs
}

// seriesSet collects output series by label set.
type seriesSet struct {
	index map[uint64][]int32
	out   matrix
}

func newSeriesSet() *seriesSet { return &seriesSet{index: map[uint64][]int32{}} }

// id returns the index of the series with labels ls, adding it if new.
func (ss *seriesSet) id(ls model.Labels) int32 {
	h := ls.Hash()
	for _, i := range ss.index[h] {
		if model.Labels.String(ss.out[i].labels) == ls.String() {
			return i
		}
	}
	i := int32(len(ss.out))
	ss.index[h] = append(ss.index[h], i)
	ss.out = append(ss.out, series{labels: ls})
	return i
}

// add appends a point; steps must be added in increasing order per series.
// A second value at the same step of a series is dropped.
func (ss *seriesSet) add(i int32, k int, v float64) {
	s := &ss.out[i]
	if n := len(s.points); n > 0 && s.points[n-1].k == int32(k) {
		return
	}
	s.points = append(s.points, point{k: int32(k), v: v})
}

// seriesLimitError is Loki's max_query_series error, word for word.
func seriesLimitError(limit int) error {
	return Userf(fmt.Sprintf("maximum number of series (%d) reached for a single query; consider reducing query cardinality by adding more specific stream selectors, reducing the time range, or aggregating results with functions like sum(), count() or topk()", limit))
}

// pipelineError is Loki's error for a metric sample that still carries
// __error__ (LQ-E1), word for word.
func pipelineError(ls model.Labels) error {
	typ := ls.Get("__error__")
	return Userf(fmt.Sprintf("pipeline error: '%s' for series: '%s'.\n"+
		"Use a label filter to intentionally skip this error. (e.g | __error__!=\"%s\").\n"+
		"To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n"+
		"The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n",
		typ, ls.String(), typ))
}
