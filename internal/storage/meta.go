package storage

import (
	"context"
	"sort"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Series returns the label sets of streams that match ms and hold data in
// r, sorted.
func (db *DB) Series(ctx context.Context, tenantID string, ms []*model.Matcher, r model.TimeRange) ([]model.Labels, error) {
	db.viewMu.RLock()
	views := db.head.Select(tenantID, ms, r)
	blocks := db.blocksOverlapping(tenantID, r)
	db.viewMu.RUnlock()
	seen := map[string]model.Labels{}
	for _, v := range views {
		seen[v.Labels.String()] = v.Labels
	}
	for _, b := range blocks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for _, s := range b.Streams(ms, r) {
			if len(s.Chunks) > 0 {
				seen[s.Labels.String()] = s.Labels
			}
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]model.Labels, len(keys))
	for i, k := range keys {
		out[i] = seen[k]
	}
	return out, nil
}

// LabelNames returns the sorted label names of matching streams in r.
func (db *DB) LabelNames(ctx context.Context, tenantID string, ms []*model.Matcher, r model.TimeRange) ([]string, error) {
	series, err := db.Series(ctx, tenantID, ms, r)
	if err != nil {
		return nil, err
	}
	set := map[string]struct{}{}
	for _, ls := range series {
		ls.Range(func(l model.Label) { set[l.Name] = struct{}{} })
	}
	return sortedKeys(set), nil
}

// LabelValues returns the sorted values of a label over matching streams.
func (db *DB) LabelValues(ctx context.Context, tenantID, name string, ms []*model.Matcher, r model.TimeRange) ([]string, error) {
	series, err := db.Series(ctx, tenantID, ms, r)
	if err != nil {
		return nil, err
	}
	set := map[string]struct{}{}
	for _, ls := range series {
		if v := ls.Get(name); v != "" {
			set[v] = struct{}{}
		}
	}
	return sortedKeys(set), nil
}

func sortedKeys(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// IndexStats summarises matching data in r: streams, chunks, entries and
// uncompressed bytes, counted from chunk metadata (a chunk partly inside r
// counts whole). Unlike Loki it includes unflushed head data and counts
// every chunk once.
type IndexStats struct {
	Streams int64 `json:"streams"`
	Chunks  int64 `json:"chunks"`
	Entries int64 `json:"entries"`
	Bytes   int64 `json:"bytes"`
}

// Stats computes IndexStats.
func (db *DB) Stats(ctx context.Context, tenantID string, ms []*model.Matcher, r model.TimeRange) (IndexStats, error) {
	db.viewMu.RLock()
	views := db.head.Select(tenantID, ms, r)
	blocks := db.blocksOverlapping(tenantID, r)
	db.viewMu.RUnlock()
	var st IndexStats
	streams := map[string]struct{}{}
	for _, v := range views {
		streams[v.Labels.String()] = struct{}{}
		for _, s := range v.Sources {
			st.Chunks++
			st.Entries += int64(s.Meta.Entries)
			st.Bytes += int64(s.Meta.UncompressedBytes)
		}
	}
	for _, b := range blocks {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		for _, s := range b.Streams(ms, r) {
			if len(s.Chunks) == 0 {
				continue
			}
			streams[s.Labels.String()] = struct{}{}
			for _, c := range s.Chunks {
				st.Chunks++
				st.Entries += int64(c.Entries)
				st.Bytes += int64(c.UncompressedBytes)
			}
		}
	}
	st.Streams = int64(len(streams))
	return st, nil
}
