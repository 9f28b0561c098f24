package chunk

import (
	"bytes"
	"cmp"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sort"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

// Iterator returns the chunk's entries with r.Min <= ts < r.Max that pass
// f (every needle contained, then f.Match if set; f may be nil), in
// timestamp order: ascending for model.Forward, descending for
// model.Backward. Entries with equal timestamps come in insertion order
// forward and in reverse insertion order backward.
//
// The iterator is lazy: it decompresses a page only when the merge reaches
// it and never decompresses pages outside r, so a caller that stops early
// touches few pages. With needles, a page whose bloom filter shows that it
// cannot hold a line containing every needle is skipped without being read
// or decompressed. For a chunk opened by OpenAt, pages are read through its
// reader when reached (a read error ends the iteration with that error).
// Overlapping pages (out-of-order writes) are merged.
// Returned lines point into decompressed page buffers (or into the chunk
// bytes for EncNone) that are never reused, so callers may keep them. A page
// that fails its CRC or does not decode ends the iteration with a
// *iter.CorruptionError from Err. The iterator is not safe for concurrent
// use; any number of iterators may read one Chunk concurrently. f.Match
// must not retain the line slice it is given.
func (c *Chunk) Iterator(r model.TimeRange, dir model.Direction, f *iter.Filter) iter.EntryIterator {
	it := newIterator(c.enc, c.pages, c.r, r, dir, f)
	it.start()
	return it
}

// source is one page (or a snapshot's open page) taking part in the merge.
type source struct {
	idx        int // insertion order: page index, the open page last
	minT, maxT int64

	page       *pageRef      // a stored page, or
	open       []model.Entry // the open page's entries in arrival order
	openSorted bool
	run        *pageRun // pages to read together when the page has no data

	cols pageCols // decoded page (stored pages only)
	sel  []int32  // selected entries in ascending (ts, insertion) order
	pos  int      // cursor into sel
}

func (s *source) ts() int64 {
	i := s.sel[s.pos]
	if s.page == nil {
		return s.open[i].Timestamp
	}
	return s.cols.ts[i]
}

// pageRun is a stretch of adjacent pages that an iterator reads from the
// chunk's reader with one read, when the first of them is reached.
type pageRun struct {
	off  int64
	n    int
	data []byte // nil until read
}

// maxRun bounds the bytes of one pageRun read.
const maxRun = 1 << 20

type iterator struct {
	enc     Encoding
	reader  io.ReaderAt // reads pages without data (chunks from OpenAt)
	r       model.TimeRange
	forward bool
	match   func([]byte) bool
	needles [][]byte // non-empty needles, longest first
	skipped int      // pages in range skipped by their bloom filter

	pending []*source // not yet loaded, in visiting order
	heap    []*source // loaded, with a current entry
	free    []*source // exhausted sources whose columns can be reused
	spare   []byte    // a payload buffer no returned entry points into
	bufSize int       // capacity for new payload buffers: the largest pending page

	cur     model.Entry
	err     error
	scratch []labels.Label
}

func newIterator(enc Encoding, pages []pageRef, reader io.ReaderAt, r model.TimeRange, dir model.Direction, f *iter.Filter) *iterator {
	it := &iterator{enc: enc, reader: reader, r: r, forward: dir == model.Forward}
	if f != nil {
		it.match = f.Match
		for _, n := range f.Needles {
			if len(n) > 0 {
				it.needles = append(it.needles, n)
			}
		}
		// The longest needle is usually the rarest: search for it first.
		slices.SortStableFunc(it.needles, func(a, b []byte) int { return cmp.Compare(len(b), len(a)) })
	}
	var items []uint64 // what every line holding all needles has in its page's bloom
	for _, n := range it.needles {
		items = appendNeedleItems(items, n)
	}
	var run *pageRun
	for i := range pages {
		p := &pages[i]
		if !r.Overlaps(p.minT, p.maxT) {
			continue
		}
		if len(items) > 0 && p.bloom.bits != nil && !p.bloom.mayContainAll(items, p.crc) {
			it.skipped++
			continue
		}
		s := &source{idx: i, minT: p.minT, maxT: p.maxT, page: p}
		if p.data == nil {
			// Pages are stored in table order; a run continues while the
			// next wanted page starts where the run ends.
			if run == nil || run.off+int64(run.n) != p.offset || run.n+p.length > maxRun {
				run = &pageRun{off: p.offset}
			}
			run.n += p.length
			s.run = run
		}
		it.pending = append(it.pending, s)
		it.bufSize = max(it.bufSize, p.payloadSize)
	}
	return it
}

func (it *iterator) addSource(s *source) { it.pending = append(it.pending, s) }

// start orders the pending sources in visiting order.
func (it *iterator) start() {
	if it.forward {
		slices.SortFunc(it.pending, func(a, b *source) int {
			return cmp.Or(cmp.Compare(a.minT, b.minT), cmp.Compare(a.idx, b.idx))
		})
	} else {
		slices.SortFunc(it.pending, func(a, b *source) int {
			return cmp.Or(cmp.Compare(b.maxT, a.maxT), cmp.Compare(b.idx, a.idx))
		})
	}
}

// before reports whether a's current entry comes before b's.
func (it *iterator) before(a, b *source) bool {
	ta, tb := a.ts(), b.ts()
	if it.forward {
		return ta < tb || (ta == tb && a.idx < b.idx)
	}
	return ta > tb || (ta == tb && a.idx > b.idx)
}

// mayPrecede reports whether an unloaded source could hold an entry that
// comes before (or ties with) the current entry of loaded source top.
func (it *iterator) mayPrecede(p, top *source) bool {
	if it.forward {
		return p.minT <= top.ts()
	}
	return p.maxT >= top.ts()
}

func (it *iterator) Next() bool {
	if it.err != nil {
		return false
	}
	for len(it.pending) > 0 && (len(it.heap) == 0 || it.mayPrecede(it.pending[0], it.heap[0])) {
		s := it.pending[0]
		it.pending[0] = nil
		it.pending = it.pending[1:]
		if err := it.load(s); err != nil {
			it.err = err
			it.heap = nil
			it.pending = nil
			return false
		}
		if len(s.sel) == 0 {
			it.release(s)
			continue
		}
		s.pos = 0
		if !it.forward {
			s.pos = len(s.sel) - 1
		}
		it.push(s)
	}
	if len(it.heap) == 0 {
		return false
	}
	top := it.heap[0]
	it.cur = it.entry(top)
	if it.forward {
		top.pos++
	} else {
		top.pos--
	}
	if top.pos >= 0 && top.pos < len(top.sel) {
		it.down(0)
	} else {
		it.pop()
		it.release(top)
	}
	return true
}

func (it *iterator) At() model.Entry { return it.cur }

func (it *iterator) Err() error { return it.err }

func (it *iterator) Close() error {
	it.pending, it.heap, it.free, it.spare = nil, nil, nil, nil
	it.cur = model.Entry{}
	return nil
}

func (it *iterator) entry(s *source) model.Entry {
	i := s.sel[s.pos]
	if s.page == nil {
		return s.open[i]
	}
	c := &s.cols
	e := model.Entry{
		Timestamp: c.ts[i],
		Line:      bytesString(c.lines[c.offs[i]:c.offs[i+1]]),
		Metadata:  model.EmptyLabels(),
	}
	if c.md != nil {
		e.Metadata = c.metadata(int(i), &it.scratch)
	}
	return e
}

// load decompresses, verifies and decodes a source's page and selects the
// entries in range that pass the filter.
func (it *iterator) load(s *source) error {
	if s.page == nil {
		it.selectOpen(s)
		return nil
	}
	p := s.page
	data := p.data
	if data == nil {
		var err error
		if data, err = it.readPage(s); err != nil {
			return err
		}
	}
	if crc := crc32.Checksum(data, castagnoli); crc != p.crc {
		return corrupt(p.offset, "page %d: crc32c mismatch: stored %08x, computed %08x", s.idx, p.crc, crc)
	}
	// Reuse the columns of an exhausted source.
	if n := len(it.free); n > 0 {
		s.cols, s.sel = it.free[n-1].cols, it.free[n-1].sel[:0]
		it.free[n-1] = nil
		it.free = it.free[:n-1]
	}
	if err := checkPayloadSize(it.enc, data, p.payloadSize); err != nil {
		return corrupt(p.offset, "page %d: %w", s.idx, err)
	}
	buf := it.spare
	it.spare = nil
	if it.enc != EncNone && cap(buf) < p.payloadSize {
		// Room for the largest page, so that a recycled buffer fits the
		// next one, but no more than a quarter above this page's size.
		buf = make([]byte, max(p.payloadSize, min(it.bufSize, p.payloadSize+p.payloadSize/4)))
	}
	payload, err := decompress(it.enc, buf, data, p.payloadSize)
	if err != nil {
		it.spare = buf
		return corrupt(p.offset, "page %d: decompress %s: %w", s.idx, it.enc, err)
	}
	if err := decodePayload(payload, p, &s.cols); err != nil {
		it.spare = buf
		return corrupt(p.offset, "page %d: %w", s.idx, err)
	}
	it.selectPage(s)
	if len(s.sel) > 0 && s.cols.md != nil {
		if err := s.cols.metadataOffsets(); err != nil {
			it.spare = buf
			return corrupt(p.offset, "page %d: %w", s.idx, err)
		}
	}
	if len(s.sel) == 0 || it.enc == EncNone {
		// No entry points into buf (with EncNone entries point into the
		// chunk and buf is untouched): it can take the next page.
		it.spare = buf
	}
	return nil
}

// readPage returns the stored bytes of a page without data, reading its
// run through the chunk's reader first if needed.
func (it *iterator) readPage(s *source) ([]byte, error) {
	p, run := s.page, s.run
	if it.reader == nil || run == nil {
		return nil, fmt.Errorf("read page %d: chunk has no page reader", s.idx)
	}
	if run.data == nil {
		buf := make([]byte, run.n)
		if _, err := it.reader.ReadAt(buf, run.off); err != nil {
			return nil, fmt.Errorf("read page %d at %d+%d: %w", s.idx, run.off, run.n, err)
		}
		run.data = buf
	}
	start := p.offset - run.off
	return run.data[start : start+int64(p.length) : start+int64(p.length)], nil
}

// selectPage fills s.sel with the page's entries in range that pass the
// filter. With needles, it searches the page's concatenated lines for the
// longest needle and checks only the lines that contain a hit.
func (it *iterator) selectPage(s *source) {
	c := &s.cols
	n := len(c.ts)
	lo := sort.Search(n, func(i int) bool { return c.ts[i] >= it.r.Min })
	hi := lo + sort.Search(n-lo, func(i int) bool { return c.ts[lo+i] >= it.r.Max })
	sel := s.sel[:0]
	switch {
	case len(it.needles) > 0:
		needle := it.needles[0]
		pos, end := int(c.offs[lo]), int(c.offs[hi])
		i := lo
		for pos < end {
			j := bytes.Index(c.lines[pos:end], needle)
			if j < 0 {
				break
			}
			hit := pos + j
			// The line holding the hit: the first line from i on that ends
			// after it.
			base := i
			i = base + sort.Search(hi-base, func(k int) bool { return int(c.offs[base+k+1]) > hit })
			lineEnd := int(c.offs[i+1])
			if hit+len(needle) <= lineEnd && it.accept(c.lines[c.offs[i]:lineEnd], 1) {
				sel = append(sel, int32(i))
			}
			pos = lineEnd
			i++
		}
	case it.match != nil:
		for i := lo; i < hi; i++ {
			if it.match(c.lines[c.offs[i]:c.offs[i+1]]) {
				sel = append(sel, int32(i))
			}
		}
	default:
		for i := lo; i < hi; i++ {
			sel = append(sel, int32(i))
		}
	}
	s.sel = sel
}

// accept applies the needles from index from on, then Match.
func (it *iterator) accept(line []byte, from int) bool {
	for _, n := range it.needles[min(from, len(it.needles)):] {
		if !bytes.Contains(line, n) {
			return false
		}
	}
	return it.match == nil || it.match(line)
}

// selectOpen selects a snapshot's open-page entries in range that pass the
// filter and orders them by timestamp, keeping arrival order for ties.
func (it *iterator) selectOpen(s *source) {
	sel := s.sel[:0]
	for i, e := range s.open {
		if it.r.Contains(e.Timestamp) && (len(it.needles) == 0 && it.match == nil || it.accept(stringBytes(e.Line), 0)) {
			sel = append(sel, int32(i))
		}
	}
	if !s.openSorted {
		slices.SortStableFunc(sel, func(a, b int32) int { return cmp.Compare(s.open[a].Timestamp, s.open[b].Timestamp) })
	}
	s.sel = sel
}

func (it *iterator) release(s *source) {
	if s.page != nil {
		s.page, s.open = nil, nil
		it.free = append(it.free, s)
	}
}

// Heap over loaded sources, ordered by before.

func (it *iterator) push(s *source) {
	it.heap = append(it.heap, s)
	it.up(len(it.heap) - 1)
}

func (it *iterator) pop() {
	n := len(it.heap) - 1
	it.heap[0] = it.heap[n]
	it.heap[n] = nil
	it.heap = it.heap[:n]
	if n > 0 {
		it.down(0)
	}
}

func (it *iterator) up(j int) {
	h := it.heap
	for j > 0 {
		i := (j - 1) / 2
		if !it.before(h[j], h[i]) {
			break
		}
		h[i], h[j] = h[j], h[i]
		j = i
	}
}

func (it *iterator) down(i int) {
	h := it.heap
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		j := l
		if r := l + 1; r < n && it.before(h[r], h[l]) {
			j = r
		}
		if !it.before(h[j], h[i]) {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}
