package chunk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// pageWriter builds page payloads; its column buffers are reused from page
// to page. Not safe for concurrent use.
type pageWriter struct {
	ts, lens, md []byte
}

// appendPayload appends the columnar payload of es (sorted by timestamp) to
// dst and returns it with the page's raw byte count (lines + metadata).
func (w *pageWriter) appendPayload(dst []byte, es []model.Entry) ([]byte, int) {
	w.ts, w.lens, w.md = w.ts[:0], w.lens[:0], w.md[:0]
	hasMD := false
	for _, e := range es {
		if !e.Metadata.IsEmpty() {
			hasMD = true
			break
		}
	}
	raw, lineBytes := 0, 0
	prev := int64(0)
	for i, e := range es {
		if i == 0 {
			w.ts = binary.AppendVarint(w.ts, e.Timestamp)
		} else {
			w.ts = binary.AppendUvarint(w.ts, uint64(e.Timestamp-prev))
		}
		prev = e.Timestamp
		w.lens = binary.AppendUvarint(w.lens, uint64(len(e.Line)))
		lineBytes += len(e.Line)
		if hasMD {
			w.md = binary.AppendUvarint(w.md, uint64(e.Metadata.Len()))
			e.Metadata.Range(func(l labels.Label) {
				w.md = binary.AppendUvarint(w.md, uint64(len(l.Name)))
				w.md = append(w.md, l.Name...)
				w.md = binary.AppendUvarint(w.md, uint64(len(l.Value)))
				w.md = append(w.md, l.Value...)
				raw += len(l.Name) + len(l.Value)
			})
		}
	}
	raw += lineBytes
	dst = binary.AppendUvarint(dst, uint64(len(es)))
	dst = binary.AppendUvarint(dst, uint64(len(w.ts)))
	dst = binary.AppendUvarint(dst, uint64(len(w.lens)))
	dst = binary.AppendUvarint(dst, uint64(len(w.md)))
	dst = grow(dst, len(w.ts)+len(w.lens)+len(w.md)+lineBytes)
	dst = append(dst, w.ts...)
	dst = append(dst, w.lens...)
	dst = append(dst, w.md...)
	for _, e := range es {
		dst = append(dst, e.Line...)
	}
	return dst, raw
}

// pageCols is a decoded page payload. ts and offs are owned by the
// iterator and reused; lines and md point into the payload.
type pageCols struct {
	ts     []int64
	offs   []uint32 // n+1 prefix sums of line lengths into lines
	lines  []byte
	md     []byte   // metadata column, nil if the page has none
	mdOffs []uint32 // n+1 offsets into md, filled by metadataOffsets
}

// decodePayload parses payload into c and checks it against the page table
// entry p. Errors describe the malformation; the caller wraps them.
func decodePayload(payload []byte, p *pageRef, c *pageCols) error {
	d := decoder{b: payload}
	n := d.uvarint()
	tsLen := d.uvarint()
	lenLen := d.uvarint()
	mdLen := d.uvarint()
	if d.err != nil {
		return fmt.Errorf("payload header: %w", d.err)
	}
	if n != uint64(p.entries) {
		return fmt.Errorf("payload has %d entries, page table says %d", n, p.entries)
	}
	rest := uint64(len(payload) - d.pos)
	if tsLen > rest || lenLen > rest-tsLen || mdLen > rest-tsLen-lenLen {
		return errors.New("column lengths exceed the payload")
	}
	// Every entry takes at least one byte in each of the two columns; this
	// also bounds the allocations below by the payload's real size.
	if n > tsLen || n > lenLen {
		return fmt.Errorf("%d entries do not fit in columns of %d and %d bytes", n, tsLen, lenLen)
	}
	tsCol := payload[d.pos : d.pos+int(tsLen)]
	lenCol := payload[d.pos+int(tsLen) : d.pos+int(tsLen+lenLen)]
	mdStart := d.pos + int(tsLen+lenLen)
	c.md = nil
	if mdLen > 0 {
		c.md = payload[mdStart : mdStart+int(mdLen)]
	}
	c.lines = payload[mdStart+int(mdLen):]

	count := int(n)
	c.ts = c.ts[:0]
	if cap(c.ts) < count {
		c.ts = make([]int64, 0, count)
	}
	td := decoder{b: tsCol}
	t := td.varint()
	c.ts = append(c.ts, t)
	for i := 1; i < count; i++ {
		delta := td.uvarint()
		// Modular arithmetic: the distance from t to MaxInt64 fits in a uint64.
		if delta > uint64(math.MaxInt64)-uint64(t) {
			return errors.New("timestamp overflows")
		}
		t = int64(uint64(t) + delta)
		c.ts = append(c.ts, t)
	}
	if td.err != nil {
		return fmt.Errorf("timestamp column: %w", td.err)
	}
	if td.pos != len(tsCol) {
		return errors.New("timestamp column has trailing bytes")
	}
	if c.ts[0] != p.minT || c.ts[count-1] != p.maxT {
		return fmt.Errorf("timestamps [%d, %d] disagree with the page table [%d, %d]", c.ts[0], c.ts[count-1], p.minT, p.maxT)
	}

	c.offs = c.offs[:0]
	if cap(c.offs) < count+1 {
		c.offs = make([]uint32, 0, count+1)
	}
	c.offs = append(c.offs, 0)
	ld := decoder{b: lenCol}
	total := uint64(0)
	for range count {
		l := ld.uvarint()
		if l > uint64(len(c.lines))-total {
			return errors.New("line lengths exceed the line area")
		}
		total += l
		c.offs = append(c.offs, uint32(total))
	}
	if ld.err != nil {
		return fmt.Errorf("line-length column: %w", ld.err)
	}
	if ld.pos != len(lenCol) {
		return errors.New("line-length column has trailing bytes")
	}
	if total != uint64(len(c.lines)) {
		return fmt.Errorf("line lengths sum to %d, line area has %d bytes", total, len(c.lines))
	}
	c.mdOffs = c.mdOffs[:0]
	return nil
}

// metadataOffsets fills c.mdOffs by walking the metadata column once.
func (c *pageCols) metadataOffsets() error {
	n := len(c.offs) - 1
	if cap(c.mdOffs) < n+1 {
		c.mdOffs = make([]uint32, 0, n+1)
	}
	c.mdOffs = append(c.mdOffs[:0], 0)
	d := decoder{b: c.md}
	for range n {
		pairs := d.uvarint()
		if pairs > uint64(len(c.md)) {
			return errors.New("metadata pair count exceeds the column")
		}
		for range 2 * pairs {
			d.skip(d.uvarint())
		}
		if d.err != nil {
			return fmt.Errorf("metadata column: %w", d.err)
		}
		c.mdOffs = append(c.mdOffs, uint32(d.pos))
	}
	if d.pos != len(c.md) {
		return errors.New("metadata column has trailing bytes")
	}
	return nil
}

// metadata decodes entry i's metadata. scratch is reused between calls.
// The result does not reference the payload (labels.New copies).
func (c *pageCols) metadata(i int, scratch *[]labels.Label) model.Labels {
	if c.md == nil {
		return model.EmptyLabels()
	}
	d := decoder{b: c.md[c.mdOffs[i]:c.mdOffs[i+1]]}
	pairs := d.uvarint()
	ls := (*scratch)[:0]
	for range pairs {
		name := d.bytes()
		value := d.bytes()
		if d.err != nil {
			break // validated by metadataOffsets; unreachable
		}
		ls = append(ls, labels.Label{Name: bytesString(name), Value: bytesString(value)})
	}
	*scratch = ls
	if len(ls) == 0 {
		return model.EmptyLabels()
	}
	return labels.New(ls...)
}

// bytes reads a uvarint-length-prefixed byte string.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.pos) {
		d.err = errShort
		return nil
	}
	b := d.b[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return b
}

// bytesString views b as a string without copying. b must never be
// modified afterwards.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// stringBytes views s as a read-only byte slice without copying.
func stringBytes(s string) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
