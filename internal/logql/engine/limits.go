package engine

import (
	"context"
	"fmt"
	"math"

	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage"
)

// IndexStatser is implemented by stores that can summarise what a read
// would touch from chunk metadata alone, without reading chunks
// (storage.DB does). The engine uses it to enforce max_query_bytes_read
// before reading anything; with a store that lacks it the limit is not
// enforced. Stats must be safe for concurrent use; an error is a storage
// failure.
type IndexStatser interface {
	Stats(ctx context.Context, tenantID string, ms []*model.Matcher, r model.TimeRange) (storage.IndexStats, error)
}

// readRange is a selector and the time range the query reads through it.
type readRange struct {
	sel lql.LogSelectorExpr
	r   model.TimeRange
}

// readRanges lists what a query reads: for a log query its selector over
// [start, end), for a metric query every range aggregation's selector over
// its windows, from the first step's window to the last step.
func (q *query) readRanges(expr lql.Expr) []readRange {
	p := q.p
	if sel, ok := expr.(lql.LogSelectorExpr); ok {
		return []readRange{{sel: sel, r: model.TimeRange{Min: p.Start, Max: p.End}}}
	}
	var out []readRange
	lql.Walk(expr, func(x lql.Expr) bool {
		ra, ok := x.(*lql.RangeAggregationExpr)
		if !ok {
			return true
		}
		rng, off := ra.Left.Range.Nanoseconds(), ra.Left.Offset.Nanoseconds()
		out = append(out, readRange{sel: ra.Left.Log, r: model.TimeRange{Min: p.Start - off - rng + 1, Max: p.End - off + 1}})
		return false
	})
	return out
}

// checkBytesRead enforces max_query_bytes_read: the uncompressed bytes of
// every chunk the query would open (a chunk partly inside the range counts
// whole, a selector read twice counts once per distinct range), estimated
// from chunk metadata before anything is read, as Loki estimates from its
// index statistics.
func (q *query) checkBytesRead(ctx context.Context, expr lql.Expr) error {
	limit := int64(q.limits.MaxQueryBytesRead)
	if limit <= 0 {
		return nil
	}
	st, ok := q.e.store.(IndexStatser)
	if !ok {
		return nil
	}
	seen := map[string]bool{}
	var total int64
	for _, rr := range q.readRanges(expr) {
		r := rr.r
		r.Min = max(r.Min, q.minTime)
		if r.Max <= r.Min {
			continue
		}
		key := fmt.Sprintf("%v %d %d", rr.sel.Matchers(), r.Min, r.Max)
		if seen[key] {
			continue
		}
		seen[key] = true
		for _, t := range q.p.Tenants {
			s, err := st.Stats(ctx, t, rr.sel.Matchers(), r)
			if err != nil {
				return fmt.Errorf("estimate bytes of tenant %s: %w", t, err)
			}
			total += s.Bytes
		}
	}
	if total > limit {
		return Userf(fmt.Sprintf("the query would read too many bytes (query: %s, limit: %s); consider adding more specific stream selectors or reduce the time range of the query", iBytes(total), iBytes(limit)))
	}
	return nil
}

// iBytes prints a size as Loki's messages do (go-humanize IBytes: "49
// MiB", "1.0 MiB", "512 B").
func iBytes(n int64) string {
	if n < 10 {
		return fmt.Sprintf("%d B", n)
	}
	sizes := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	e := math.Floor(math.Log(float64(n)) / math.Log(1024))
	val := math.Floor(float64(n)/math.Pow(1024, e)*10+0.5) / 10
	if val < 10 {
		return fmt.Sprintf("%.1f %s", val, sizes[int(e)])
	}
	return fmt.Sprintf("%.0f %s", val, sizes[int(e)])
}
