package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/storage"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
	"github.com/ledgerlog/ledgerlog/internal/units"
)

// Store is the storage read path the engine plans onto.
//
// Streams returns, per stream matching p.Matchers with data in p.Range, the
// sources of that stream; it must be safe for concurrent use, and the
// returned StreamSources may be iterated from several goroutines at once
// (one goroutine per source). Errors are storage failures.
type Store interface {
	Streams(ctx context.Context, p storage.SelectParams) ([]*storage.StreamSource, error)
}

// Options tune the engine.
type Options struct {
	Logger *slog.Logger
	// Parallelism is the number of goroutines that read streams of one
	// query; 0 means GOMAXPROCS.
	Parallelism int
	// Now is the clock for max_query_lookback; nil means time.Now.
	Now func() time.Time
	// ForceSplit splits every metric range query whose steps span two
	// split intervals, whatever the planner would decide (for tests that
	// prove split and single-pass answers identical).
	ForceSplit bool
}

// Engine evaluates LogQL queries. It is safe for concurrent use.
type Engine struct {
	store  Store
	limits *tenant.Overrides
	log    *slog.Logger
	par    int

	forceSplit bool
	now        func() time.Time

	// scanned counts entries read from storage by all queries, in steps of
	// up to 1024 per stream.
	scanned atomic.Int64
}

// EntriesScanned returns the number of entries queries have read from
// storage so far (counted in steps of up to 1024 per stream).
func (e *Engine) EntriesScanned() int64 { return e.scanned.Load() }

// New returns an engine over store.
func New(store Store, limits *tenant.Overrides, opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Parallelism <= 0 {
		opts.Parallelism = runtime.GOMAXPROCS(0)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Engine{store: store, limits: limits, log: opts.Logger, par: opts.Parallelism, forceSplit: opts.ForceSplit, now: opts.Now}
}

// queryLimits are the strictest limits over the queried tenants.
func (e *Engine) queryLimits(tenants []string) tenant.Limits {
	l := *e.limits.For(tenants[0])
	for _, t := range tenants[1:] {
		o := e.limits.For(t)
		l.MaxEntriesLimitPerQuery = minPositive(l.MaxEntriesLimitPerQuery, o.MaxEntriesLimitPerQuery)
		l.MaxQuerySeries = minPositive(l.MaxQuerySeries, o.MaxQuerySeries)
		l.MaxQueryLength = units.Duration(minPositive(int64(l.MaxQueryLength), int64(o.MaxQueryLength)))
		l.MaxQueryRange = units.Duration(minPositive(int64(l.MaxQueryRange), int64(o.MaxQueryRange)))
		l.QueryTimeout = units.Duration(minPositive(int64(l.QueryTimeout), int64(o.QueryTimeout)))
		l.SplitQueriesByInterval = units.Duration(minPositive(int64(l.SplitQueriesByInterval), int64(o.SplitQueriesByInterval)))
		l.MaxQueryLookback = units.Duration(minPositive(int64(l.MaxQueryLookback), int64(o.MaxQueryLookback)))
		l.MaxQueryBytesRead = units.ByteSize(minPositive(int64(l.MaxQueryBytesRead), int64(o.MaxQueryBytesRead)))
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

// Exec evaluates a query. Errors that are the query's fault (parse errors,
// limits, pipeline errors) are *UserError; a timeout or cancellation is the
// context's error.
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
	// max_query_lookback clamps the time range as Loki's frontend does: a
	// query wholly before now-lookback answers nothing, one that starts
	// before it starts there (metric steps then start there too), and no
	// data before it is read, not even by range windows.
	var minTime int64
	if lb := l.MaxQueryLookback.D(); lb > 0 {
		minTime = e.now().Add(-lb).UnixNano()
		if p.End < minTime || (p.End == minTime && !p.Instant && isLogQuery(expr)) {
			return emptyResult(expr, p), nil
		}
		p.Start = max(p.Start, minTime)
	}
	if max := l.MaxQueryLength.D(); max > 0 && time.Duration(p.End-p.Start) > max {
		return Result{}, Userf(fmt.Sprintf("the query time range exceeds the limit (query length: %s, limit: %s)", time.Duration(p.End-p.Start), l.MaxQueryLength))
	}
	if to := l.QueryTimeout.D(); to > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, to)
		defer cancel()
	}
	q := &query{
		e:       e,
		p:       p,
		limits:  l,
		stats:   &storage.Stats{},
		minTime: minTime,
	}
	if err := q.checkBytesRead(ctx, expr); err != nil {
		return Result{}, err
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
		res, err = q.execLogs(ctx, x)
	case syntax.SampleExpr:
		res, err = q.execSample(ctx, x)
	default:
		err = Userf(fmt.Sprintf("unexpected expression type %T", expr))
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !IsUserError(err) {
			return Result{}, ctxErr
		}
		return Result{}, err
	}
	res.Warnings = q.warnings()
	res.Stats.ExecTime = time.Since(start)
	q.fillStats(&res.Stats)
	return res, nil
}

func isLogQuery(e syntax.Expr) bool {
	_, ok := e.(syntax.LogSelectorExpr)
	return ok
}

// emptyResult is the answer to a query that may read no data.
func emptyResult(e syntax.Expr, p Params) Result {
	switch {
	case isLogQuery(e):
		return Result{Type: TypeStreams, Streams: []Stream{}}
	case p.Instant:
		return Result{Type: TypeVector, Vector: []Sample{}}
	}
	return Result{Type: TypeMatrix, Matrix: []Series{}}
}
