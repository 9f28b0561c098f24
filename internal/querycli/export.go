package querycli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// DefaultBatch is the page size of exports (logcli's default).
const DefaultBatch = 1000

// ExportQuery is a log query read in pages.
type ExportQuery struct {
	Query      string
	Start, End time.Time // [Start, End)
	Limit      int       // lines in total; 0: every line of the range
	Batch      int       // lines per request; 0: DefaultBatch
	Direction  Direction // Backward (newest first, the default) or Forward
}

// Progress is called after every page with the lines emitted so far and
// the timestamp the export has reached.
type Progress func(lines int, at time.Time)

// Export runs a log query in pages of Batch lines and calls emit for every
// entry in Direction order, until Limit lines were emitted or the range is
// exhausted. It relies on query_range's ordering and its half-open
// [start, end) range: a backward page ends just after the oldest timestamp
// of the previous page, a forward page starts at its newest, and entries
// already emitted at that edge timestamp are skipped (they are recognised
// by labels and line), so entries with equal timestamps at a page edge are
// neither lost nor repeated. If more entries than a batch share one
// timestamp, Export fails and names the timestamp: raise the batch. emit
// must not keep the Labels map beyond the call.
func (c *Client) Export(ctx context.Context, q ExportQuery, emit func(Entry) error, progress Progress) error {
	if q.Batch <= 0 {
		q.Batch = DefaultBatch
	}
	if q.Direction == "" {
		q.Direction = Backward
	}
	start, end := q.Start, q.End
	emitted := 0
	var edge map[string]bool // entries emitted at edgeTS
	var edgeTS time.Time
	for start.Before(end) {
		batch := q.Batch
		if q.Limit > 0 && q.Limit-emitted+len(edge) < batch {
			batch = q.Limit - emitted + len(edge)
		}
		resp, err := c.QueryRange(ctx, RangeQuery{Query: q.Query, Start: start, End: end, Limit: batch, Direction: q.Direction})
		if err != nil {
			return err
		}
		entries, err := resp.Entries()
		if err != nil {
			return err
		}
		SortEntries(entries, q.Direction)
		if len(entries) == 0 {
			return nil
		}
		last := entries[len(entries)-1].Timestamp
		next := map[string]bool{}
		fresh := 0
		for _, e := range entries {
			k := entryKey(e)
			if e.Timestamp.Equal(last) {
				next[k] = true
			}
			if edge[k] {
				continue
			}
			fresh++
			emitted++
			if err := emit(e); err != nil {
				return err
			}
			if q.Limit > 0 && emitted >= q.Limit {
				if progress != nil {
					progress(emitted, e.Timestamp)
				}
				return nil
			}
		}
		if progress != nil {
			progress(emitted, last)
		}
		if len(entries) < batch {
			return nil
		}
		if fresh == 0 {
			return fmt.Errorf("more than %d entries share the timestamp %s (%d ns): raise --batch to export them all",
				batch-1, last.Format(time.RFC3339Nano), last.UnixNano())
		}
		if edge != nil && last.Equal(edgeTS) {
			for k := range edge {
				next[k] = true
			}
		}
		edge, edgeTS = next, last
		if q.Direction == Forward {
			start = last
		} else {
			end = last.Add(time.Nanosecond)
		}
	}
	return nil
}

// SortEntries orders entries by timestamp in dir, ties by labels and then
// line, as query_range orders them.
func SortEntries(es []Entry, dir Direction) {
	keys := make([]string, len(es))
	for i := range es {
		keys[i] = labelsString(es[i].Labels)
	}
	idx := make([]int, len(es))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		x, y := es[idx[a]], es[idx[b]]
		if !x.Timestamp.Equal(y.Timestamp) {
			if dir == Forward {
				return x.Timestamp.Before(y.Timestamp)
			}
			return x.Timestamp.After(y.Timestamp)
		}
		if keys[idx[a]] != keys[idx[b]] {
			return keys[idx[a]] < keys[idx[b]]
		}
		return x.Line < y.Line
	})
	sorted := make([]Entry, len(es))
	for i, j := range idx {
		sorted[i] = es[j]
	}
	copy(es, sorted)
}

func entryKey(e Entry) string { return labelsString(e.Labels) + "\x00" + e.Line }

// labelsString renders labels as {a="b", c="d"}, sorted by name.
func labelsString(ls map[string]string) string {
	names := make([]string, 0, len(ls))
	for n := range ls {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", n, ls[n])
	}
	b.WriteByte('}')
	return b.String()
}
