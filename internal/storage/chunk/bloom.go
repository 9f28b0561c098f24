package chunk

import (
	"math"
	"sync"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Page bloom filters (docs/format/chunk.md, "Token bloom filters"). A
// stored filter is
//
//	scheme <1 byte> ‖ k <1 byte> ‖ bits <m/8 bytes>
//
// where bit i of the filter is bit i%8 of byte i/8 of bits. An item h sets
// (and a query tests) the k bits (uint64(h1 + i*h2) * m) >> 32 for i in
// [0, k), with h1 the low and h2 the high 32 bits (h2 forced odd) of
// fmix64(h ^ crc), crc being the page's CRC from the page table. The page
// seed makes an item's bits differ between pages: otherwise an item whose
// bits coincide with those of the tokens on every page (JSON keys, say)
// would be a false positive on every page at once.
const (
	bloomHeader = 2
	// bloomBitsPerItem and bloomK give a false-positive rate of about 3.6 %
	// per item. A needle usually yields several items (a 32-character trace
	// id gives about four), which multiplies their rates.
	bloomBitsPerItem = 7
	bloomK           = 4
	// bloomMaxShare bounds a filter to this fraction of the stored page:
	// pages of mostly unique long tokens (random base64, say) get no filter
	// rather than one that costs more than it saves.
	bloomMaxShare = 2
)

// bloomScratch is the per-seal working memory: the page's items and a
// direct-mapped table of recently seen items that drops most repeats.
type bloomScratch struct {
	items []uint64
	seen  [1 << seenBits]uint64
}

// seenBits sizes bloomScratch.seen: 8192 slots, several times the distinct
// items of a typical page, so that items repeated on every line (JSON keys,
// levels) are rarely evicted by the unique ones in between.
const seenBits = 13

var bloomScratchPool = sync.Pool{New: func() any { return new(bloomScratch) }}

// buildBloom returns the stored bloom filter of a page of entries es (lines
// only: structured metadata is not indexed) whose stored size is stored
// bytes, or nil when the filter would exceed its share of the page.
//
// The filter is sized from the number of items left after dropping the
// repeats the seen table catches, a slight overestimate of the distinct
// items, and each of those is inserted once.
func buildBloom(es []model.Entry, stored int, crc uint32) []byte {
	s := bloomScratchPool.Get().(*bloomScratch)
	defer bloomScratchPool.Put(s)
	clear(s.seen[:])
	items := s.items[:0]
	for _, e := range es {
		from := len(items)
		items = appendLineItems(items, stringBytes(e.Line))
		kept := from
		for _, h := range items[from:] {
			slot := h >> (64 - seenBits)
			if s.seen[slot] == h && h != 0 {
				continue
			}
			s.seen[slot] = h
			items[kept] = h
			kept++
		}
		items = items[:kept]
	}
	s.items = items
	if cap(s.items) > 1<<20 {
		s.items = nil // do not pool a huge buffer
	}
	if len(items) == 0 {
		return nil
	}
	size := (len(items)*bloomBitsPerItem + 7) / 8
	if size > stored/bloomMaxShare {
		return nil
	}
	f := make([]byte, bloomHeader+size)
	f[0], f[1] = bloomScheme, bloomK
	b := f[bloomHeader:]
	m := uint64(len(b)) * 8
	for _, h := range items {
		h = fmix64(h ^ uint64(crc))
		h1, h2 := uint32(h), uint32(h>>32)|1
		for i := range uint32(bloomK) {
			bit := uint64(h1+i*h2) * m >> 32
			b[bit>>3] |= 1 << (bit & 7)
		}
	}
	return f
}

// pageBloom is a page's usable filter: the bits and the probe count.
type pageBloom struct {
	bits []byte
	k    uint32
}

// parseBloom validates a stored filter. It returns ok false for a filter of
// an unknown scheme or with impossible parameters, which readers ignore.
func parseBloom(f []byte) (pageBloom, bool) {
	if len(f) <= bloomHeader || f[0] != bloomScheme || f[1] == 0 || f[1] > 32 || len(f)-bloomHeader > math.MaxUint32/8 {
		return pageBloom{}, false
	}
	return pageBloom{bits: f[bloomHeader:], k: uint32(f[1])}, true
}

// mayContainAll reports whether every item may be in the filter of the
// page whose CRC is crc.
func (p pageBloom) mayContainAll(items []uint64, crc uint32) bool {
	b := p.bits
	m := uint64(len(b)) * 8
	for _, h := range items {
		h = fmix64(h ^ uint64(crc))
		h1, h2 := uint32(h), uint32(h>>32)|1
		for i := range p.k {
			bit := uint64(h1+i*h2) * m >> 32
			if b[bit>>3]&(1<<(bit&7)) == 0 {
				return false
			}
		}
	}
	return true
}
