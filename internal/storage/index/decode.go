package index

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

// Index is a decoded index file, held in memory. It is immutable and safe
// for concurrent use. Slices it returns (Streams, Stream.Chunks, Postings)
// are shared and must not be modified.
type Index struct {
	streams []Stream
	names   []string       // sorted label names
	byName  map[string]int // name -> position in names and postings
	labels  []labelPostings
}

// labelPostings are the values of one label name and, per value, the
// ascending IDs of the streams carrying it.
type labelPostings struct {
	values []string // sorted
	lists  [][]uint32
}

// decbuf reads a byte slice that is a part of the file starting at base. The
// first failure is sticky and records where it happened.
type decbuf struct {
	b    []byte
	pos  int
	base int
	err  error
}

func (d *decbuf) fail(format string, args ...any) {
	if d.err == nil {
		d.err = &iter.CorruptionError{Object: "index", Offset: int64(d.base + d.pos), Err: fmt.Errorf(format, args...)}
	}
}

func (d *decbuf) remaining() int { return len(d.b) - d.pos }

func (d *decbuf) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.pos:])
	if n <= 0 {
		d.fail("invalid uvarint")
		return 0
	}
	d.pos += n
	return v
}

func (d *decbuf) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.pos:])
	if n <= 0 {
		d.fail("invalid varint")
		return 0
	}
	d.pos += n
	return v
}

func (d *decbuf) be64() uint64 {
	if d.err != nil {
		return 0
	}
	if d.remaining() < 8 {
		d.fail("unexpected end of data")
		return 0
	}
	v := binary.BigEndian.Uint64(d.b[d.pos:])
	d.pos += 8
	return v
}

// count reads a uvarint count of items of at least minSize bytes each and
// checks that the remaining bytes can hold them.
func (d *decbuf) count(what string, minSize int) int {
	v := d.uvarint()
	if d.err != nil {
		return 0
	}
	if v > uint64(d.remaining()/minSize) {
		d.fail("%s count %d exceeds the remaining %d bytes", what, v, d.remaining())
		return 0
	}
	return int(v)
}

// ref reads a symbol reference below n.
func (d *decbuf) ref(n int) int {
	v := d.uvarint()
	if d.err == nil && v >= uint64(n) {
		d.fail("symbol reference %d out of range (%d symbols)", v, n)
		return 0
	}
	return int(v)
}

func corrupt(off int, format string, args ...any) error {
	return &iter.CorruptionError{Object: "index", Offset: int64(off), Err: fmt.Errorf(format, args...)}
}

// Decode parses and verifies an index file: header, TOC and section CRCs,
// bounds of every count and reference, and the ordering rules of the format.
// Any failure is a *iter.CorruptionError with Object "index" and the offset
// of the bad data. Decode does not keep b.
func Decode(b []byte) (*Index, error) {
	if len(b) < headerSize+TOCSize {
		return nil, corrupt(0, "file of %d bytes is too short", len(b))
	}
	if m := binary.BigEndian.Uint32(b); m != Magic {
		return nil, corrupt(0, "bad magic %#08x", m)
	}
	if v := b[4]; v != Version1 {
		return nil, corrupt(4, "unsupported version %d", v)
	}
	if b[5]|b[6]|b[7] != 0 {
		return nil, corrupt(5, "reserved header bytes are not zero")
	}
	tocStart := len(b) - TOCSize
	toc := b[tocStart:]
	if got, want := crc(toc[:tocEntries*8]), binary.BigEndian.Uint32(toc[tocEntries*8:]); got != want {
		return nil, corrupt(tocStart, "toc: crc mismatch")
	}
	section := func(i int, name string) (*decbuf, error) {
		off := binary.BigEndian.Uint64(toc[i*8:])
		if off < headerSize || off > uint64(tocStart-sectionOverhead) {
			return nil, corrupt(tocStart+i*8, "%s: section offset %d out of range", name, off)
		}
		o := int(off)
		n := int(binary.BigEndian.Uint32(b[o:]))
		if n > tocStart-sectionOverhead-o {
			return nil, corrupt(o, "%s: section length %d exceeds the file", name, n)
		}
		payload := b[o+4 : o+4+n]
		if crc(payload) != binary.BigEndian.Uint32(b[o+4+n:]) {
			return nil, corrupt(o, "%s: crc mismatch", name)
		}
		return &decbuf{b: payload, base: o + 4}, nil
	}

	ix := &Index{}
	d, err := section(0, "symbols")
	if err != nil {
		return nil, err
	}
	symbols, err := decodeSymbols(d)
	if err != nil {
		return nil, err
	}
	if d, err = section(1, "streams"); err != nil {
		return nil, err
	}
	pairs, err := ix.decodeStreams(d, symbols)
	if err != nil {
		return nil, err
	}
	if d, err = section(2, "postings"); err != nil {
		return nil, err
	}
	if err := ix.decodePostings(d, symbols, pairs); err != nil {
		return nil, err
	}
	return ix, nil
}

func decodeSymbols(d *decbuf) ([]string, error) {
	n := d.count("symbol", 1)
	symbols := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		l := d.uvarint()
		if d.err != nil {
			break
		}
		if l > uint64(d.remaining()) {
			d.fail("symbol length %d exceeds the remaining %d bytes", l, d.remaining())
			break
		}
		s := string(d.b[d.pos : d.pos+int(l)])
		if i > 0 && s <= symbols[i-1] {
			d.fail("symbols not sorted and unique")
			break
		}
		d.pos += int(l)
		symbols = append(symbols, s)
	}
	if d.err == nil && d.remaining() != 0 {
		d.fail("%d trailing bytes", d.remaining())
	}
	return symbols, d.err
}

// decodeStreams decodes the streams section and returns the number of label
// pairs it holds.
func (ix *Index) decodeStreams(d *decbuf, symbols []string) (int, error) {
	n := d.count("stream", 12)
	ix.streams = make([]Stream, n)
	sb := labels.NewScratchBuilder(16)
	pairs := 0
	for id := 0; id < n && d.err == nil; id++ {
		s := &ix.streams[id]
		nl := d.count("label", 2)
		if d.err == nil && nl == 0 {
			d.fail("stream %d has no labels", id)
		}
		sb.Reset()
		prevName := -1
		for j := 0; j < nl && d.err == nil; j++ {
			name, value := d.ref(len(symbols)), d.ref(len(symbols))
			if d.err != nil {
				break
			}
			if name <= prevName {
				d.fail("stream %d: label names not sorted and unique", id)
				break
			}
			if symbols[name] == "" || symbols[value] == "" {
				d.fail("stream %d: empty label name or value", id)
				break
			}
			prevName = name
			sb.Add(symbols[name], symbols[value])
		}
		pairs += nl
		s.Labels = sb.Labels()
		s.Fingerprint = d.be64()
		if d.err == nil && id > 0 && labels.Compare(ix.streams[id-1].Labels, s.Labels) >= 0 {
			d.fail("stream %d: streams not sorted and unique", id)
		}
		nc := d.count("chunk", 8)
		if d.err == nil && nc == 0 {
			d.fail("stream %d has no chunks", id)
		}
		s.Chunks = make([]ChunkRef, nc)
		var prevMin int64
		for j := 0; j < nc && d.err == nil; j++ {
			c := &s.Chunks[j]
			seg, off, length := d.uvarint(), d.uvarint(), d.uvarint()
			var minT int64
			if j == 0 {
				minT = d.varint()
			} else {
				// Unsigned arithmetic: the delta and the span may exceed
				// MaxInt64 while their sums still fit.
				delta := d.uvarint()
				if d.err == nil && delta > uint64(math.MaxInt64)-uint64(prevMin) {
					d.fail("stream %d chunk %d: start time overflows", id, j)
					break
				}
				minT = prevMin + int64(delta)
			}
			span, entries, ubytes := d.uvarint(), d.uvarint(), d.uvarint()
			ext := d.uvarint()
			if d.err != nil {
				break
			}
			if seg < 1 || seg > math.MaxInt32 || off > math.MaxInt64 || length > math.MaxInt32 || entries < 1 || entries > math.MaxInt32 || ubytes > math.MaxInt64 {
				d.fail("stream %d chunk %d: value out of range", id, j)
				break
			}
			if span > uint64(math.MaxInt64)-uint64(minT) {
				d.fail("stream %d chunk %d: end time overflows", id, j)
				break
			}
			if ext > uint64(d.remaining()) {
				d.fail("stream %d chunk %d: extension length %d exceeds the remaining %d bytes", id, j, ext, d.remaining())
				break
			}
			d.pos += int(ext) // version 1 readers use no extension records
			prevMin = minT
			*c = ChunkRef{
				Segment: int(seg), Offset: int64(off), Length: int(length),
				MinTime: minT, MaxTime: minT + int64(span),
				Entries: int(entries), UncompressedBytes: int(ubytes),
			}
		}
	}
	if d.err == nil && d.remaining() != 0 {
		d.fail("%d trailing bytes", d.remaining())
	}
	return pairs, d.err
}

func (ix *Index) decodePostings(d *decbuf, symbols []string, pairs int) error {
	nn := d.count("label name", 3)
	ix.names = make([]string, 0, nn)
	ix.byName = make(map[string]int, nn)
	ix.labels = make([]labelPostings, 0, nn)
	// All lists share one backing array; spans index into it until the
	// end, as appending may move it.
	ids := make([]uint32, 0, pairs)
	type span struct{ lp, v, start, end int }
	var spans []span
	prevName := -1
	for i := 0; i < nn && d.err == nil; i++ {
		name := d.ref(len(symbols))
		nv := d.count("label value", 3)
		if d.err != nil {
			break
		}
		if name <= prevName {
			d.fail("label names not sorted and unique")
			break
		}
		if nv == 0 {
			d.fail("label %q has no values", symbols[name])
			break
		}
		prevName = name
		lp := labelPostings{values: make([]string, nv), lists: make([][]uint32, nv)}
		prevValue := -1
		for j := 0; j < nv && d.err == nil; j++ {
			value := d.ref(len(symbols))
			ns := d.count("stream ID", 1)
			if d.err != nil {
				break
			}
			if value <= prevValue {
				d.fail("values of label %q not sorted and unique", symbols[name])
				break
			}
			if ns == 0 {
				d.fail("empty postings list for %s=%q", symbols[name], symbols[value])
				break
			}
			prevValue = value
			lp.values[j] = symbols[value]
			start := len(ids)
			var id uint64
			for k := 0; k < ns && d.err == nil; k++ {
				delta := d.uvarint()
				if k > 0 && delta == 0 {
					d.fail("postings for %s=%q not strictly increasing", symbols[name], symbols[value])
				}
				id += delta
				if d.err == nil && (delta >= uint64(len(ix.streams)) || id >= uint64(len(ix.streams))) {
					d.fail("stream ID %d out of range (%d streams)", id, len(ix.streams))
				}
				if len(ids) >= pairs {
					d.fail("postings hold more entries than the streams' %d label pairs", pairs)
				}
				ids = append(ids, uint32(id))
			}
			spans = append(spans, span{lp: len(ix.labels), v: j, start: start, end: len(ids)})
		}
		ix.byName[symbols[name]] = len(ix.names)
		ix.names = append(ix.names, symbols[name])
		ix.labels = append(ix.labels, lp)
	}
	if d.err == nil && len(ids) != pairs {
		d.fail("postings hold %d entries, the streams %d label pairs", len(ids), pairs)
	}
	if d.err == nil && d.remaining() != 0 {
		d.fail("%d trailing bytes", d.remaining())
	}
	if d.err != nil {
		return d.err
	}
	for _, s := range spans {
		ix.labels[s.lp].lists[s.v] = ids[s.start:s.end:s.end]
	}
	return nil
}
