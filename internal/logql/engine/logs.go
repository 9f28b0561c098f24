package engine

import (
	"container/heap"
	"context"
	"slices"
	"strings"
	"unsafe"

	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// A log query reads every matching stream on its own goroutine, a bounded
// number of them scanning at any time (the scan semaphore). Each producer
// runs the pipeline and hands its kept entries, in the query's direction, to
// the merge in batches over a small channel; the merge takes entries in
// time order until the limit and then cancels the producers. So scans run
// in parallel and ahead of the merge, a stream with no match costs only its
// scan, and the entries held at once are bounded by streams × 2 batches.

const (
	firstBatch = 16
	maxBatch   = 512
)

type logEntry struct {
	ts       int64
	line     string
	stream   model.Labels
	metadata model.Labels
	parsed   model.Labels
}

type logBatch struct {
	entries []logEntry
	err     error
}

type feed struct {
	ch    chan *logBatch
	cur   *logBatch
	pos   int
	key   string // labels of the head entry, for the tie break
	alive bool
}

func (f *feed) head() *logEntry { return &f.cur.entries[f.pos] }

// advance moves to the next entry, receiving the next batch when the
// current one is used up. It reports false at the end of the feed.
func (f *feed) advance(ctx context.Context) (bool, error) {
	if f.cur != nil {
		f.pos++
		if f.pos < len(f.cur.entries) {
			f.key = f.head().stream.String()
			return true, nil
		}
	}
	select {
	case b, ok := <-f.ch:
		if !ok {
			f.alive = false
			return false, nil
		}
		if b.err != nil {
			return false, b.err
		}
		f.cur, f.pos = b, 0
		f.key = f.head().stream.String()
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

type feedHeap struct {
	feeds   []*feed
	forward bool
}

func (h *feedHeap) Len() int { return len(h.feeds) }
func (h *feedHeap) Less(i, j int) bool {
	a, b := h.feeds[i].head(), h.feeds[j].head()
	if a.ts != b.ts {
		if h.forward {
			return a.ts < b.ts
		}
		return a.ts > b.ts
	}
	return h.feeds[i].key < h.feeds[j].key
}
func (h *feedHeap) Swap(i, j int) { h.feeds[i], h.feeds[j] = h.feeds[j], h.feeds[i] }
func (h *feedHeap) Push(x any)    { h.feeds = append(h.feeds, x.(*feed)) }
func (h *feedHeap) Pop() any {
	n := len(h.feeds)
	x := h.feeds[n-1]
	h.feeds = h.feeds[:n-1]
	return x
}

func (q *query) execLogs(ctx context.Context, sel lql.LogSelectorExpr) (Result, error) {
	res := Result{Type: TypeStreams, Streams: []Stream{}}
	lp, err := compileLog(sel)
	if err != nil {
		return Result{}, err
	}
	p := q.p
	if p.Limit <= 0 || p.End <= p.Start {
		return res, nil
	}
	streams, err := q.selectStreams(ctx, lp.matchers, model.TimeRange{Min: p.Start, Max: p.End}, p.Direction, lp.filter)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, q.e.par)
	feeds := make([]*feed, len(streams))
	done := make(chan struct{}, len(streams))
	for i, s := range streams {
		f := &feed{ch: make(chan *logBatch, 1), alive: true}
		feeds[i] = f
		go func() {
			defer func() { done <- struct{}{} }()
			q.produceLogs(ctx, lp, s, sem, f.ch)
		}()
	}
	defer func() {
		cancel()
		for range streams {
			<-done
		}
	}()

	h := &feedHeap{forward: p.Direction == model.Forward}
	for _, f := range feeds {
		ok, err := f.advance(ctx)
		if err != nil {
			return Result{}, err
		}
		if ok {
			h.feeds = append(h.feeds, f)
		}
	}
	heap.Init(h)

	index := map[string]int{}
	interval := p.Interval.Nanoseconds()
	var last int64
	first := true
	n := 0
	for n < p.Limit && h.Len() > 0 {
		f := h.feeds[0]
		e := *f.head()
		ok, err := f.advance(ctx)
		if err != nil {
			return Result{}, err
		}
		if ok {
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
		if interval > 0 && !first {
			if h.forward && e.ts < last+interval || !h.forward && e.ts > last-interval {
				continue
			}
		}
		first = false
		last = e.ts
		k := e.stream.String()
		i, ok := index[k]
		if !ok {
			i = len(res.Streams)
			index[k] = i
			res.Streams = append(res.Streams, Stream{Labels: e.stream})
		}
		res.Streams[i].Entries = append(res.Streams[i].Entries, Entry{Timestamp: e.ts, Line: e.line, Metadata: e.metadata, Parsed: e.parsed})
		n++
	}
	slices.SortFunc(res.Streams, func(a, b Stream) int { return strings.Compare(a.Labels.String(), b.Labels.String()) })
	q.returned = int64(n)
	return res, nil
}

// produceLogs scans one stream and sends its kept entries to out in
// batches; it closes out when the stream ends, fails (the error travels in
// a batch) or ctx is done.
func (q *query) produceLogs(ctx context.Context, lp *logPlan, s stream, sem chan struct{}, out chan<- *logBatch) {
	defer close(out)
	it := s.src.Iterator(q.p.Direction, q.addWarning)
	defer func() { _ = it.Close() }()
	streamPipe := lp.pipe.ForStream(s.labels)
	size := firstBatch
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		b := &logBatch{entries: make([]logEntry, 0, size)}
		scanned := 0
		ended := true
		for it.Next() {
			scanned++
			if scanned&1023 == 0 {
				q.e.scanned.Add(1024)
				if ctx.Err() != nil {
					<-sem
					return
				}
			}
			e := it.At()
			if lp.noop {
				b.entries = append(b.entries, logEntry{ts: e.Timestamp, line: e.Line, stream: s.labels, metadata: e.Metadata})
			} else {
				out, lbls, keep := streamPipe.ProcessString(e.Timestamp, e.Line, e.Metadata)
				if !keep {
					continue
				}
				line := e.Line
				if len(out) != len(line) || (len(out) > 0 && unsafe.SliceData(out) != unsafe.StringData(line)) {
					line = string(out)
				}
				b.entries = append(b.entries, logEntry{ts: e.Timestamp, line: line, stream: lbls.Stream(), metadata: lbls.StructuredMetadata(), parsed: lbls.Parsed()})
			}
			if len(b.entries) >= size {
				ended = false
				break
			}
		}
		if ended {
			b.err = it.Err()
		}
		q.e.scanned.Add(int64(scanned & 1023))
		<-sem
		q.postFilter.Add(int64(len(b.entries)))
		if len(b.entries) > 0 || b.err != nil {
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
		}
		if ended {
			return
		}
		size = min(size*2, maxBatch)
	}
}
