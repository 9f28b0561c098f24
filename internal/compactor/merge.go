package compactor

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/block"
	"github.com/ledgerlog/ledgerlog/internal/storage/chunk"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

// mergeOptions describe the block a merge writes.
type mergeOptions struct {
	window  model.TimeRange
	level   int
	sources []ulid.ULID
	// cutoff drops entries with a timestamp below it (retention);
	// math.MinInt64 keeps everything.
	cutoff int64
}

// mergeStats count what a merge did.
type mergeStats struct {
	entriesIn, entriesOut, duplicates, expired int64
}

// corruptBlockError reports that a source block failed verification.
type corruptBlockError struct {
	id  ulid.ULID
	err error
}

func (e *corruptBlockError) Error() string { return fmt.Sprintf("block %s: %v", e.id, e.err) }
func (e *corruptBlockError) Unwrap() error { return e.err }

// streamSource is one source block's chunks of a stream.
type streamSource struct {
	blk    *block.Block
	chunks []block.ChunkRef
}

// mergeBlocks writes one new block holding every entry of srcs at or after
// opts.cutoff, with exact duplicates (same stream, timestamp and line)
// dropped, and returns its meta. It does not touch the sources. It returns
// block.ErrEmpty when nothing is left, and a *corruptBlockError when a
// source block's data fails verification.
func (c *Compactor) mergeBlocks(ctx context.Context, tenant string, srcs []*block.Block, opts mergeOptions) (block.Meta, mergeStats, error) {
	var st mergeStats
	parents := make([]block.Parent, 0, len(srcs))
	// The new block's ULID must sort after its sources' even if clocks
	// disagree: a rewrite with the same sources and level supersedes its
	// source only by having the greater ULID.
	idTime := c.now()
	for _, b := range srcs {
		m := b.Meta()
		parents = append(parents, block.Parent{ULID: m.ULID, MinTime: m.MinTime, MaxTime: m.MaxTime})
		if t := ulid.Time(m.ULID.Time()).Add(time.Millisecond); t.After(idTime) {
			idTime = t
		}
	}
	w, err := block.NewWriter(c.bkt, tenant, block.WriterOptions{
		Window:  opts.window,
		Level:   opts.level,
		Sources: opts.sources,
		Parents: parents,
		Now:     func() time.Time { return idTime },
		TempDir: c.cfg.WorkingDirectory,
	})
	if err != nil {
		return block.Meta{}, st, err
	}
	defer w.Close()

	// Union of streams, in label order.
	type stream struct {
		labels  model.Labels
		sources []streamSource
	}
	byHash := map[uint64][]*stream{}
	var streams []*stream
	all := model.TimeRange{Min: opts.cutoff, Max: math.MaxInt64}
	for _, b := range srcs {
		for _, ref := range b.Streams(nil, all) {
			h := ref.Labels.Hash()
			var s *stream
			for _, cand := range byHash[h] {
				if labels.Equal(cand.labels, ref.Labels) {
					s = cand
					break
				}
			}
			if s == nil {
				s = &stream{labels: ref.Labels}
				byHash[h] = append(byHash[h], s)
				streams = append(streams, s)
			}
			s.sources = append(s.sources, streamSource{blk: b, chunks: ref.Chunks})
		}
	}
	slices.SortFunc(streams, func(a, b *stream) int { return labels.Compare(a.labels, b.labels) })
	for _, b := range srcs {
		st.entriesIn += b.Meta().Stats.Entries
	}

	for _, s := range streams {
		if err := ctx.Err(); err != nil {
			return block.Meta{}, st, err
		}
		if err := c.mergeStream(ctx, w, s.labels, s.sources, opts.cutoff, &st); err != nil {
			return block.Meta{}, st, err
		}
	}
	st.expired = st.entriesIn - st.entriesOut - st.duplicates
	meta, err := w.Flush(ctx)
	return meta, st, err
}

// mergeStream merges one stream's chunks from every source into new
// chunks of about the target size.
func (c *Compactor) mergeStream(ctx context.Context, w *block.Writer, ls model.Labels, srcs []streamSource, cutoff int64, st *mergeStats) error {
	type pending struct {
		blk *block.Block
		ref block.ChunkRef
	}
	var todo []pending
	for _, s := range srcs {
		for _, ref := range s.chunks {
			todo = append(todo, pending{s.blk, ref})
		}
	}
	slices.SortStableFunc(todo, func(a, b pending) int {
		switch {
		case a.ref.MinTime < b.ref.MinTime:
			return -1
		case a.ref.MinTime > b.ref.MinTime:
			return 1
		}
		return 0
	})

	var (
		h       entryHeap
		builder = chunk.NewBuilder(c.enc, 0)
		dedup   dedupSet
		r       = model.TimeRange{Min: cutoff, Max: math.MaxInt64}
	)
	defer func() {
		for _, it := range h {
			_ = it.it.Close()
		}
	}()
	flush := func() error {
		if builder.Meta().Entries == 0 {
			return nil
		}
		data, m, err := builder.Encode()
		if err != nil {
			return fmt.Errorf("encode chunk of stream %s: %w", ls, err)
		}
		builder = chunk.NewBuilder(c.enc, 0)
		return w.AddStream(ls, []block.ChunkData{{
			Meta: block.ChunkMeta{MinTime: m.MinTime, MaxTime: m.MaxTime, Entries: m.Entries, UncompressedBytes: m.UncompressedBytes, CompressedBytes: m.CompressedBytes},
			Data: data,
		}})
	}
	open := func(p pending) error {
		data, err := p.blk.ReadChunk(ctx, p.ref)
		if err == nil {
			var ch *chunk.Chunk
			if ch, err = chunk.Open(data); err == nil {
				it := ch.Iterator(r, model.Forward, nil)
				if it.Next() {
					heap.Push(&h, &heapItem{it: it, blk: p.blk})
					return nil
				}
				err = it.Err()
				_ = it.Close()
			}
		}
		if err != nil {
			return sourceError(p.blk, err)
		}
		return nil
	}

	for len(todo) > 0 || len(h) > 0 {
		// Open every chunk that may hold an entry not after the smallest
		// one seen so far.
		for len(todo) > 0 && (len(h) == 0 || todo[0].ref.MinTime <= h[0].it.At().Timestamp) {
			if err := open(todo[0]); err != nil {
				return err
			}
			todo = todo[1:]
		}
		if len(h) == 0 {
			continue
		}
		top := h[0]
		e := top.it.At()
		if dedup.seen(e.Timestamp, e.Line) {
			st.duplicates++
		} else {
			builder.Append(e)
			st.entriesOut++
			if builder.Meta().CompressedBytes >= int(c.cfg.ChunkTargetSize) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if top.it.Next() {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
			err := top.it.Err()
			_ = top.it.Close()
			if err != nil {
				return sourceError(top.blk, err)
			}
		}
	}
	return flush()
}

// sourceError marks corruption of a source block's data as such.
func sourceError(b *block.Block, err error) error {
	var ce *iter.CorruptionError
	if errors.As(err, &ce) {
		return &corruptBlockError{id: b.ID(), err: err}
	}
	return fmt.Errorf("read block %s: %w", b.ID(), err)
}

// heapItem is an open chunk iterator positioned on its next entry.
type heapItem struct {
	it  iter.EntryIterator
	blk *block.Block
}

// entryHeap orders open chunk iterators by their current timestamp.
type entryHeap []*heapItem

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].it.At().Timestamp < h[j].it.At().Timestamp }
func (h entryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *entryHeap) Push(x any)        { *h = append(*h, x.(*heapItem)) }
func (h *entryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// dedupSet remembers the lines seen at the current timestamp; entries come
// in timestamp order, so an exact duplicate is always among them.
type dedupSet struct {
	ts    int64
	valid bool
	lines []string
	big   map[string]struct{}
}

// seen reports whether (ts, line) was seen before, and records it.
func (d *dedupSet) seen(ts int64, line string) bool {
	if !d.valid || ts != d.ts {
		d.ts, d.valid = ts, true
		d.lines = d.lines[:0]
		d.big = nil
	}
	if d.big != nil {
		if _, ok := d.big[line]; ok {
			return true
		}
		d.big[line] = struct{}{}
		return false
	}
	if slices.Contains(d.lines, line) {
		return true
	}
	d.lines = append(d.lines, line)
	if len(d.lines) > 32 {
		d.big = make(map[string]struct{}, 64)
		for _, l := range d.lines {
			d.big[l] = struct{}{}
		}
	}
	return false
}
