package engine

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ledgerlog/ledgerlog/internal/logql/pipeline"
	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
)

// query is the state of one Exec call. Its fields are set before any
// goroutine starts, except the guarded ones.
type query struct {
	e      *Engine
	p      Params
	limits tenant.Limits
	stats  *storage.Stats

	// minTime is the earliest time max_query_lookback lets the query read
	// (0: no limit).
	minTime int64

	postFilter atomic.Int64 // entries (samples) kept by the pipelines
	returned   int64
	splits     int64 // sub-ranges of a split metric query (0: one pass)

	mu     sync.Mutex
	warn   []string       // guarded by mu
	presel []preselection // guarded by mu: streams the split planner selected
}

func (q *query) addWarning(msg string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, w := range q.warn {
		if w == msg {
			return
		}
	}
	if len(q.warn) < 20 {
		q.warn = append(q.warn, msg)
	}
}

func (q *query) warnings() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.warn
}

func (q *query) fillStats(s *Stats) {
	st := q.stats
	s.TotalBytesProcessed = st.DecompressedBytes.Load() + st.HeadChunkBytes.Load()
	s.TotalLinesProcessed = st.DecompressedLines.Load() + st.HeadChunkLines.Load()
	s.PostFilterLines = q.postFilter.Load()
	s.EntriesReturned = q.returned
	s.Splits = q.splits
	s.ChunksRef = st.ChunksRef.Load()
	s.ChunksDownloaded = st.ChunksDownloaded.Load()
	s.CompressedBytes = st.CompressedBytes.Load()
	s.DecompressedBytes = st.DecompressedBytes.Load()
	s.DecompressedLines = st.DecompressedLines.Load()
	s.HeadChunkBytes = st.HeadChunkBytes.Load()
	s.HeadChunkLines = st.HeadChunkLines.Load()
}

// stream is one stream to read: its sources and the labels the pipeline
// sees (with __tenant_id__ in multi-tenant queries).
type stream struct {
	src    *storage.StreamSource
	labels model.Labels
	// ord is the stream's place in the selection (tenants in query order,
	// streams by labels): it orders samples of equal time from different
	// streams, so that float sums do not depend on scheduling.
	ord int32
}

// selectStreams lists the streams of every queried tenant that match ms
// and hold data in r.
func (q *query) selectStreams(ctx context.Context, ms []*model.Matcher, r model.TimeRange, dir model.Direction, f *iter.Filter) ([]stream, error) {
	var out []stream
	r.Min = max(r.Min, q.minTime)
	if r.Max <= r.Min {
		return nil, nil
	}
	for _, t := range q.p.Tenants {
		srcs, err := q.e.store.Streams(ctx, storage.SelectParams{
			Tenant:    t,
			Matchers:  ms,
			Range:     r,
			Direction: dir,
			Filter:    f,
			Stats:     q.stats,
			Warn:      q.addWarning,
		})
		if err != nil {
			return nil, fmt.Errorf("select streams of tenant %s: %w", t, err)
		}
		for _, s := range srcs {
			ls := s.Labels
			if len(q.p.Tenants) > 1 {
				b := model.NewLabelsBuilder(ls)
				b.Set(model.TenantLabel, t)
				ls = b.Labels()
			}
			out = append(out, stream{src: s, labels: ls, ord: int32(len(out))})
		}
	}
	return out, nil
}

// logPlan is a compiled log selector: the storage push-down and the
// pipeline that remains to run on what storage returns.
type logPlan struct {
	matchers []*model.Matcher
	filter   *iter.Filter
	// pipe runs the stages storage does not apply; noop reports that it
	// changes nothing (no stage left).
	pipe *pipeline.Pipeline
	noop bool
}

// compileLog compiles a selector's pipeline. The leading line filters
// (those before the first stage that rewrites the line) go to storage,
// which applies them in full; the rest runs in the engine.
func compileLog(sel lql.LogSelectorExpr, extra ...lql.Stage) (*logPlan, error) {
	stages := sel.Pipeline()
	full, err := pipeline.New(stages)
	if err != nil {
		return nil, Userf(err.Error())
	}
	needles, match := full.Filter()
	pushed := map[lql.Stage]bool{}
	for _, lf := range lql.LineFilters(sel) {
		pushed[lf] = true
	}
	rest := make([]lql.Stage, 0, len(stages))
	for _, st := range stages {
		if !pushed[st] {
			rest = append(rest, st)
		}
	}
	rest = append(rest, extra...)
	pipe, err := pipeline.New(rest)
	if err != nil {
		return nil, Userf(err.Error())
	}
	lp := &logPlan{matchers: sel.Matchers(), pipe: pipe, noop: len(rest) == 0}
	if len(needles) > 0 || match != nil {
		lp.filter = &iter.Filter{Needles: needles, Match: match}
	}
	return lp, nil
}

// forEachStream runs fn for every stream on up to the engine's parallelism
// goroutines; worker is the goroutine's index in [0, workers). It stops at
// the first error or when ctx is done.
func (q *query) forEachStream(ctx context.Context, streams []stream, fn func(ctx context.Context, worker int, s stream) error) (workers int, err error) {
	workers = min(q.e.par, len(streams))
	if workers <= 1 {
		for _, s := range streams {
			if err := ctx.Err(); err != nil {
				return 1, err
			}
			if err := fn(ctx, 0, s); err != nil {
				return 1, err
			}
		}
		return 1, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(streams) || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, w, streams[i]); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return workers, first
	}
	return workers, ctx.Err()
}
