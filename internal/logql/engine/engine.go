package engine

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
	"github.com/ledgerlog/ledgerlog/internal/units"
)

// Store is the storage read path the engine plans onto.
type Store interface {
	SelectLogs(ctx context.Context, p storage.SelectParams) (iter.StreamIterator, error)
}

// Options tune the engine.
type Options struct {
	Logger *slog.Logger
}

// Engine evaluates LogQL queries. It is safe for concurrent use.
type Engine struct {
	store  Store
	limits *tenant.Overrides
	log    *slog.Logger
}

// New returns an engine over store.
func New(store Store, limits *tenant.Overrides, opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{store: store, limits: limits, log: opts.Logger}
}

// queryLimits are the strictest limits over the queried tenants.
func (e *Engine) queryLimits(tenants []string) tenant.Limits {
	l := *e.limits.For(tenants[0])
	for _, t := range tenants[1:] {
		o := e.limits.For(t)
		l.MaxEntriesLimitPerQuery = minPositive(l.MaxEntriesLimitPerQuery, o.MaxEntriesLimitPerQuery)
		l.MaxQueryLength = units.Duration(minPositive(int64(l.MaxQueryLength), int64(o.MaxQueryLength)))
		l.QueryTimeout = units.Duration(minPositive(int64(l.QueryTimeout), int64(o.QueryTimeout)))
		l.RequireSelectiveMatcher = l.RequireSelectiveMatcher || o.RequireSelectiveMatcher
	}
	return l
}

func minPositive[T int | int64](a, b T) T {
	if a <= 0 {
		return b
	}
	if b <= 0 || a < b {
		return a
	}
	return b
}

// Exec evaluates a query.
func (e *Engine) Exec(ctx context.Context, p Params) (Result, error) {
	start := time.Now()
	if len(p.Tenants) == 0 {
		return Result{}, errors.New("no tenant")
	}
	l := e.queryLimits(p.Tenants)
	expr, err := syntax.Options{AllowEmptyCompatible: !l.RequireSelectiveMatcher}.ParseExpr(p.Query)
	if err != nil {
		return Result{}, &UserError{Msg: err.Error()}
	}
	if max := l.MaxQueryLength.D(); max > 0 && time.Duration(p.End-p.Start) > max {
		return Result{}, Userf(fmt.Sprintf("the query time range exceeds the limit (query length: %s, limit: %s)", time.Duration(p.End-p.Start), l.MaxQueryLength))
	}
	if to := l.QueryTimeout.D(); to > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, to)
		defer cancel()
	}
	var res Result
	switch x := expr.(type) {
	case syntax.LogSelectorExpr:
		if p.Instant {
			return Result{}, Userf("log queries are not supported as an instant query type, please change your query to a range query type")
		}
		if max := l.MaxEntriesLimitPerQuery; max > 0 && p.Limit > max {
			return Result{}, Userf(fmt.Sprintf("max entries limit per query exceeded, limit > max_entries_limit_per_query (%d > %d)", p.Limit, max))
		}
		res, err = e.execLogs(ctx, p, x)
	default:
		res, err = e.execLiteral(p, expr)
	}
	if err != nil {
		return Result{}, err
	}
	res.Stats.ExecTime = time.Since(start)
	return res, nil
}

// execLogs runs a log query: stream selection and pushed-down line filters
// in storage, then the limit.
func (e *Engine) execLogs(ctx context.Context, p Params, expr syntax.LogSelectorExpr) (Result, error) {
	filter, err := buildFilter(expr)
	if err != nil {
		return Result{}, err
	}
	var st storage.Stats
	var warnings []string
	warn := func(msg string) { warnings = append(warnings, msg) }
	its := make([]iter.StreamIterator, 0, len(p.Tenants))
	for _, t := range p.Tenants {
		it, err := e.store.SelectLogs(ctx, storage.SelectParams{
			Tenant:    t,
			Matchers:  expr.Matchers(),
			Range:     model.TimeRange{Min: p.Start, Max: p.End},
			Direction: p.Direction,
			Filter:    filter,
			Stats:     &st,
			Warn:      warn,
		})
		if err != nil {
			return Result{}, err
		}
		if len(p.Tenants) > 1 {
			it = &tenantLabelIterator{StreamIterator: it, tenant: t}
		}
		its = append(its, it)
	}
	var it iter.StreamIterator
	if len(its) == 1 {
		it = its[0]
	} else {
		it = mergeStreamIterators(its, p.Direction)
	}
	defer it.Close()

	res := Result{Type: TypeStreams, Streams: []Stream{}}
	index := map[string]int{}
	lastKept := map[int]int64{}
	n := 0
	for n < p.Limit && it.Next() {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return Result{}, err
			}
		}
		ls := it.Labels()
		k := ls.String()
		i, ok := index[k]
		if !ok {
			i = len(res.Streams)
			index[k] = i
			res.Streams = append(res.Streams, Stream{Labels: ls})
		}
		en := it.At()
		if p.Interval > 0 {
			if last, ok := lastKept[i]; ok && absDiff(en.Timestamp, last) < p.Interval.Nanoseconds() {
				continue
			}
			lastKept[i] = en.Timestamp
		}
		res.Streams[i].Entries = append(res.Streams[i].Entries, Entry{Timestamp: en.Timestamp, Line: en.Line, Metadata: en.Metadata})
		n++
	}
	if err := it.Err(); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	res.Warnings = warnings
	res.Stats = Stats{
		TotalBytesProcessed: st.DecompressedBytes.Load() + st.HeadChunkBytes.Load(),
		TotalLinesProcessed: st.DecompressedLines.Load() + st.HeadChunkLines.Load(),
		PostFilterLines:     int64(n),
		EntriesReturned:     int64(n),
		ChunksRef:           st.ChunksRef.Load(),
		ChunksDownloaded:    st.ChunksDownloaded.Load(),
		CompressedBytes:     st.CompressedBytes.Load(),
		DecompressedBytes:   st.DecompressedBytes.Load(),
		DecompressedLines:   st.DecompressedLines.Load(),
		HeadChunkBytes:      st.HeadChunkBytes.Load(),
		HeadChunkLines:      st.HeadChunkLines.Load(),
	}
	return res, nil
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

type tenantLabelIterator struct {
	iter.StreamIterator
	tenant string
	last   model.Labels
	out    model.Labels
}

func (t *tenantLabelIterator) Labels() model.Labels {
	ls := t.StreamIterator.Labels()
	if !model.Labels.IsEmpty(t.last) && t.last.String() == ls.String() {
		return t.out
	}
	b := model.NewLabelsBuilder(ls)
	b.Set(model.TenantLabel, t.tenant)
	t.last, t.out = ls, b.Labels()
	return t.out
}

// mergeStreamIterators merges stream iterators by timestamp.
func mergeStreamIterators(its []iter.StreamIterator, dir model.Direction) iter.StreamIterator {
	return &streamHeap{its: its, forward: dir == model.Forward}
}

type streamHeap struct {
	its     []iter.StreamIterator
	live    []iter.StreamIterator
	forward bool
	started bool
	cur     iter.StreamIterator
	err     error
}

func (h *streamHeap) Len() int { return len(h.live) }
func (h *streamHeap) Less(i, j int) bool {
	a, b := h.live[i].At().Timestamp, h.live[j].At().Timestamp
	if h.forward {
		return a < b
	}
	return a > b
}
func (h *streamHeap) Swap(i, j int) { h.live[i], h.live[j] = h.live[j], h.live[i] }
func (h *streamHeap) Push(x any)    { h.live = append(h.live, x.(iter.StreamIterator)) }
func (h *streamHeap) Pop() any {
	x := h.live[len(h.live)-1]
	h.live = h.live[:len(h.live)-1]
	return x
}

func (h *streamHeap) Next() bool {
	if !h.started {
		h.started = true
		for _, it := range h.its {
			if it.Next() {
				h.live = append(h.live, it)
			} else if err := it.Err(); err != nil {
				h.err = err
				return false
			}
		}
		heap.Init(h)
	} else if len(h.live) > 0 {
		top := h.live[0]
		if top.Next() {
			heap.Fix(h, 0)
		} else {
			if err := top.Err(); err != nil {
				h.err = err
				return false
			}
			heap.Pop(h)
		}
	}
	if len(h.live) == 0 {
		return false
	}
	h.cur = h.live[0]
	return true
}

func (h *streamHeap) At() model.Entry      { return h.cur.At() }
func (h *streamHeap) Labels() model.Labels { return h.cur.Labels() }
func (h *streamHeap) Err() error           { return h.err }
func (h *streamHeap) Close() error {
	var errs []error
	for _, it := range h.its {
		errs = append(errs, it.Close())
	}
	return errors.Join(errs...)
}
