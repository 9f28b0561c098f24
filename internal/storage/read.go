package storage

import (
	"container/heap"
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/block"
	"github.com/ledgerlog/ledgerlog/internal/storage/chunk"
	"github.com/ledgerlog/ledgerlog/internal/storage/head"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

// SelectParams describe a log read: one tenant, stream matchers, a
// half-open time range, a direction and a line filter the storage may push
// down.
type SelectParams struct {
	Tenant    string
	Matchers  []*model.Matcher
	Range     model.TimeRange
	Direction model.Direction
	Filter    *iter.Filter
	Stats     *Stats // may be nil
	Warn      func(msg string)
}

// Stats counts the work of a read. Fields are updated atomically and may
// be read after the iterators are closed.
type Stats struct {
	ChunksRef         atomic.Int64
	ChunksDownloaded  atomic.Int64
	CompressedBytes   atomic.Int64
	DecompressedBytes atomic.Int64
	DecompressedLines atomic.Int64
	HeadChunkBytes    atomic.Int64
	HeadChunkLines    atomic.Int64
}

// StreamSource is every readable piece of one stream within a read.
type StreamSource struct {
	Labels  model.Labels
	sources []source
	// corrupt is told about corrupt data met while reading (metric, log).
	corrupt func(msg string)
}

type source struct {
	minT, maxT int64
	open       func() (iter.EntryIterator, error)
}

// Streams returns, per matching stream, the sources of its data in
// p.Range. The engine may iterate streams in parallel.
func (db *DB) Streams(ctx context.Context, p SelectParams) ([]*StreamSource, error) {
	db.viewMu.RLock()
	views := db.head.Select(p.Tenant, p.Matchers, p.Range)
	blocks := db.blocksOverlapping(p.Tenant, p.Range)
	db.viewMu.RUnlock()

	byHash := map[uint64][]*StreamSource{}
	var out []*StreamSource
	get := func(ls model.Labels) *StreamSource {
		h := ls.Hash()
		for _, s := range byHash[h] {
			if labels.Equal(s.Labels, ls) {
				return s
			}
		}
		s := &StreamSource{Labels: ls, corrupt: db.reportCorruption}
		byHash[h] = append(byHash[h], s)
		out = append(out, s)
		return s
	}
	for _, b := range blocks {
		for _, sr := range b.Streams(p.Matchers, p.Range) {
			ss := get(sr.Labels)
			for _, ref := range sr.Chunks {
				ss.sources = append(ss.sources, db.blockSource(ctx, b, ref, p))
			}
		}
	}
	for _, v := range views {
		ss := get(v.Labels)
		for _, src := range v.Sources {
			ss.sources = append(ss.sources, headSource(src, p))
		}
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].Labels, out[j].Labels) < 0 })
	return out, nil
}

func (db *DB) blocksOverlapping(tenantID string, r model.TimeRange) []*block.Block {
	var out []*block.Block
	for _, b := range db.blocks[tenantID] {
		m := b.Meta()
		if m.MinTime < r.Max && m.MaxTime > r.Min {
			out = append(out, b)
		}
	}
	return out
}

func headSource(src head.Source, p SelectParams) source {
	return source{
		minT: src.Meta.MinTime,
		maxT: src.Meta.MaxTime,
		open: func() (iter.EntryIterator, error) {
			if p.Stats != nil {
				p.Stats.HeadChunkBytes.Add(int64(src.Meta.UncompressedBytes))
				p.Stats.HeadChunkLines.Add(int64(src.Meta.Entries))
			}
			return src.Iterator(p.Range, p.Direction, p.Filter), nil
		},
	}
}

func (db *DB) blockSource(ctx context.Context, b *block.Block, ref block.ChunkRef, p SelectParams) source {
	if p.Stats != nil {
		p.Stats.ChunksRef.Add(1)
	}
	return source{
		minT: ref.MinTime,
		maxT: ref.MaxTime,
		open: func() (iter.EntryIterator, error) {
			c, err := b.OpenChunk(ctx, ref)
			if err == nil {
				return db.countChunk(c, p), nil
			}
			return nil, err
		},
	}
}

// reportCorruption counts corrupt chunk data met by a read; the read skips
// it and carries a warning to the client.
func (db *DB) reportCorruption(msg string) {
	db.metrics.corruptions.WithLabelValues("chunk").Inc()
	db.log.Error("read skipped corrupt data", "err", msg)
}

func (db *DB) countChunk(c *chunk.Chunk, p SelectParams) iter.EntryIterator {
	if p.Stats != nil {
		m := c.Meta()
		p.Stats.ChunksDownloaded.Add(1)
		p.Stats.CompressedBytes.Add(int64(m.CompressedBytes))
		p.Stats.DecompressedBytes.Add(int64(m.UncompressedBytes))
		p.Stats.DecompressedLines.Add(int64(m.Entries))
	}
	return c.Iterator(p.Range, p.Direction, p.Filter)
}

func openChunk(b []byte) (*chunk.Chunk, error) { return chunk.Open(b) }

// Iterator returns the stream's entries in p.Direction, merged over its
// sources with exact duplicates (same timestamp and line) removed.
func (s *StreamSource) Iterator(dir model.Direction, warn func(string)) iter.EntryIterator {
	if s.corrupt != nil {
		outer := warn
		warn = func(msg string) {
			s.corrupt(msg)
			if outer != nil {
				outer(msg)
			}
		}
	}
	srcs := append([]source(nil), s.sources...)
	if dir == model.Forward {
		sort.Slice(srcs, func(i, j int) bool { return srcs[i].minT < srcs[j].minT })
	} else {
		sort.Slice(srcs, func(i, j int) bool { return srcs[i].maxT > srcs[j].maxT })
	}
	overlap := false
	for i := 1; i < len(srcs); i++ {
		if dir == model.Forward && srcs[i].minT <= srcs[i-1].maxT || dir == model.Backward && srcs[i].maxT >= srcs[i-1].minT {
			overlap = true
			break
		}
	}
	if !overlap {
		return &chainIterator{srcs: srcs, warn: warn}
	}
	its := make([]iter.EntryIterator, 0, len(srcs))
	for _, src := range srcs {
		its = append(its, &lazyIterator{src: src, warn: warn})
	}
	return newMergeIterator(its, dir)
}

// lazyIterator opens its source on first use, so sources that are never
// reached (limit reached) are never read.
type lazyIterator struct {
	src  source
	it   iter.EntryIterator
	err  error
	warn func(string)
}

func (l *lazyIterator) Next() bool {
	if l.it == nil {
		if l.err != nil {
			return false
		}
		it, err := l.src.open()
		if err != nil {
			l.fail(err)
			return false
		}
		l.it = it
	}
	if l.it.Next() {
		return true
	}
	if err := l.it.Err(); err != nil {
		l.fail(err)
	}
	return false
}

// fail reports corrupt data as a warning and skips it; other errors stop
// the read.
func (l *lazyIterator) fail(err error) {
	var ce *iter.CorruptionError
	if errors.As(err, &ce) {
		if l.warn != nil {
			l.warn("skipped corrupt data: " + err.Error())
		}

		l.err = nil
		l.it = iter.Empty()
		return
	}
	l.err = err
}

func (l *lazyIterator) At() model.Entry { return l.it.At() }
func (l *lazyIterator) Err() error      { return l.err }
func (l *lazyIterator) Close() error {
	if l.it != nil {
		return l.it.Close()
	}
	return nil
}

// chainIterator reads non-overlapping sources one after another.
type chainIterator struct {
	srcs []source
	cur  *lazyIterator
	err  error
	warn func(string)
}

func (c *chainIterator) Next() bool {
	for {
		if c.cur != nil {
			if c.cur.Next() {
				return true
			}
			if err := c.cur.Err(); err != nil {
				c.err = err
				return false
			}
			_ = c.cur.Close()
			c.cur = nil
		}
		if len(c.srcs) == 0 {
			return false
		}
		c.cur = &lazyIterator{src: c.srcs[0], warn: c.warn}
		c.srcs = c.srcs[1:]
	}
}

func (c *chainIterator) At() model.Entry { return c.cur.At() }
func (c *chainIterator) Err() error      { return c.err }
func (c *chainIterator) Close() error {
	if c.cur != nil {
		return c.cur.Close()
	}
	return nil
}

// mergeIterator merges entry iterators of one stream by timestamp and drops
// exact duplicates.
type mergeIterator struct {
	h       entryHeap
	started bool
	cur     model.Entry
	seen    map[string]struct{} // lines emitted at cur.Timestamp
	err     error
	all     []iter.EntryIterator
}

func newMergeIterator(its []iter.EntryIterator, dir model.Direction) *mergeIterator {
	return &mergeIterator{h: entryHeap{forward: dir == model.Forward}, all: its}
}

func (m *mergeIterator) Next() bool {
	if !m.started {
		m.started = true
		for _, it := range m.all {
			if it.Next() {
				m.h.items = append(m.h.items, heapItem{it: it, e: it.At()})
			} else if err := it.Err(); err != nil {
				m.err = err
				return false
			}
		}
		heap.Init(&m.h)
	}
	for len(m.h.items) > 0 {
		top := &m.h.items[0]
		e := top.e
		if top.it.Next() {
			top.e = top.it.At()
			heap.Fix(&m.h, 0)
		} else {
			if err := top.it.Err(); err != nil {
				m.err = err
				return false
			}
			heap.Pop(&m.h)
		}
		if m.seen != nil && e.Timestamp == m.cur.Timestamp {
			if _, dup := m.seen[e.Line]; dup {
				continue
			}
		} else {
			m.seen = map[string]struct{}{}
		}
		m.seen[e.Line] = struct{}{}
		m.cur = e
		return true
	}
	return false
}

func (m *mergeIterator) At() model.Entry { return m.cur }
func (m *mergeIterator) Err() error      { return m.err }
func (m *mergeIterator) Close() error {
	var errs []error
	for _, it := range m.all {
		errs = append(errs, it.Close())
	}
	return errors.Join(errs...)
}

type heapItem struct {
	it     iter.EntryIterator
	e      model.Entry
	labels string // for the cross-stream merge's tie break
	ls     model.Labels
}

type entryHeap struct {
	items   []heapItem
	forward bool
}

func (h *entryHeap) Len() int { return len(h.items) }
func (h *entryHeap) Less(i, j int) bool {
	a, b := &h.items[i], &h.items[j]
	if a.e.Timestamp != b.e.Timestamp {
		if h.forward {
			return a.e.Timestamp < b.e.Timestamp
		}
		return a.e.Timestamp > b.e.Timestamp
	}
	return a.labels < b.labels
}
func (h *entryHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *entryHeap) Push(x any)    { h.items = append(h.items, x.(heapItem)) }
func (h *entryHeap) Pop() any {
	n := len(h.items)
	x := h.items[n-1]
	h.items = h.items[:n-1]
	return x
}

// SelectLogs returns the entries of all matching streams merged in
// p.Direction (ties broken by labels), deduplicated per stream.
func (db *DB) SelectLogs(ctx context.Context, p SelectParams) (iter.StreamIterator, error) {
	streams, err := db.Streams(ctx, p)
	if err != nil {
		return nil, err
	}
	its := make([]iter.EntryIterator, len(streams))
	lss := make([]model.Labels, len(streams))
	for i, s := range streams {
		its[i] = s.Iterator(p.Direction, p.Warn)
		lss[i] = s.Labels
	}
	return NewStreamMerge(its, lss, p.Direction), nil
}

// StreamMerge merges per-stream iterators into one ordered stream iterator.
type StreamMerge struct {
	h       entryHeap
	pending []heapItem
	started bool
	cur     heapItem
	err     error
	all     []iter.EntryIterator
	once    sync.Once
}

// NewStreamMerge merges its (one per stream, labelled by lss).
func NewStreamMerge(its []iter.EntryIterator, lss []model.Labels, dir model.Direction) *StreamMerge {
	m := &StreamMerge{h: entryHeap{forward: dir == model.Forward}, all: its}
	for i, it := range its {
		m.pending = append(m.pending, heapItem{it: it, ls: lss[i], labels: lss[i].String()})
	}
	return m
}

func (m *StreamMerge) Next() bool {
	if m.err != nil {
		return false
	}
	if !m.started {
		m.started = true
		for _, p := range m.pending {
			if p.it.Next() {
				p.e = p.it.At()
				m.h.items = append(m.h.items, p)
			} else if err := p.it.Err(); err != nil {
				m.err = err
				return false
			}
		}
		m.pending = nil
		heap.Init(&m.h)
	} else if len(m.h.items) > 0 {
		top := &m.h.items[0]
		if top.it.Next() {
			top.e = top.it.At()
			heap.Fix(&m.h, 0)
		} else {
			if err := top.it.Err(); err != nil {
				m.err = err
				return false
			}
			heap.Pop(&m.h)
		}
	}
	if len(m.h.items) == 0 {
		return false
	}
	m.cur = m.h.items[0]
	return true
}

func (m *StreamMerge) At() model.Entry      { return m.cur.e }
func (m *StreamMerge) Labels() model.Labels { return m.cur.ls }
func (m *StreamMerge) Err() error           { return m.err }
func (m *StreamMerge) Close() error {
	var errs []error
	m.once.Do(func() {
		for _, it := range m.all {
			errs = append(errs, it.Close())
		}
	})
	return errors.Join(errs...)
}
