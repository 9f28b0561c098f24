package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// WAL record kinds. The WAL itself stores opaque records; these are the
// payloads the storage layer writes. See docs/format/wal.md.
type recordKind byte

const (
	// recordEntries carries accepted entries of one push:
	// kind | tenant | nstreams | (labels | nentries | (ts | line | nmeta | (name | value)*)*)*
	recordEntries recordKind = 1
	// recordChunk carries one encoded chunk of a stream (checkpoints):
	// kind | tenant | labels | chunk bytes
	recordChunk recordKind = 2
)

func (k recordKind) String() string {
	switch k {
	case recordEntries:
		return "entries"
	case recordChunk:
		return "chunk"
	}
	return fmt.Sprintf("unknown(%d)", byte(k))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendLabels(dst []byte, ls model.Labels) []byte {
	dst = binary.AppendUvarint(dst, uint64(ls.Len()))
	ls.Range(func(l model.Label) {
		dst = appendString(dst, l.Name)
		dst = appendString(dst, l.Value)
	})
	return dst
}

// appendEntriesRecord encodes streams of one tenant.
func appendEntriesRecord(dst []byte, tenantID string, streams []model.Stream) []byte {
	dst = append(dst, byte(recordEntries))
	dst = appendString(dst, tenantID)
	dst = binary.AppendUvarint(dst, uint64(len(streams)))
	for _, s := range streams {
		dst = appendLabels(dst, s.Labels)
		dst = binary.AppendUvarint(dst, uint64(len(s.Entries)))
		for _, e := range s.Entries {
			dst = binary.AppendVarint(dst, e.Timestamp)
			dst = appendString(dst, e.Line)
			dst = appendLabels(dst, e.Metadata)
		}
	}
	return dst
}

func appendChunkRecord(dst []byte, tenantID string, ls model.Labels, data []byte) []byte {
	dst = append(dst, byte(recordChunk))
	dst = appendString(dst, tenantID)
	dst = appendLabels(dst, ls)
	return append(dst, data...)
}

var errShortRecord = errors.New("record truncated")

type recordReader struct {
	b   []byte
	err error
}

func (r *recordReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShortRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShortRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a length that must not exceed the bytes left (each counted
// item takes at least one byte), so corrupt input cannot force huge
// allocations.
func (r *recordReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errShortRecord
		return 0
	}
	return int(n)
}

func (r *recordReader) str() string {
	n := r.count()
	if r.err != nil {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *recordReader) labels() model.Labels {
	n := r.count()
	if n == 0 || r.err != nil {
		return model.EmptyLabels()
	}
	sc := model.NewScratch()
	for i := 0; i < n && r.err == nil; i++ {
		name := r.str()
		sc.Add(name, r.str())
	}
	ls, dup := sc.Labels()
	if dup != "" && r.err == nil {
		r.err = fmt.Errorf("duplicate label %q in record", dup)
	}
	return ls
}

type decodedRecord struct {
	kind    recordKind
	tenant  string
	streams []model.Stream // recordEntries
	labels  model.Labels   // recordChunk
	chunk   []byte         // recordChunk; aliases the input
}

func decodeRecord(b []byte) (decodedRecord, error) {
	var d decodedRecord
	if len(b) == 0 {
		return d, errShortRecord
	}
	d.kind = recordKind(b[0])
	r := recordReader{b: b[1:]}
	d.tenant = r.str()
	switch d.kind {
	case recordEntries:
		n := r.count()
		d.streams = make([]model.Stream, 0, n)
		for i := 0; i < n && r.err == nil; i++ {
			s := model.Stream{Labels: r.labels()}
			ne := r.count()
			s.Entries = make([]model.Entry, 0, ne)
			for j := 0; j < ne && r.err == nil; j++ {
				e := model.Entry{Timestamp: r.varint()}
				e.Line = r.str()
				e.Metadata = r.labels()
				s.Entries = append(s.Entries, e)
			}
			d.streams = append(d.streams, s)
		}
	case recordChunk:
		d.labels = r.labels()
		d.chunk = r.b
	default:
		return d, fmt.Errorf("unknown record kind %d", byte(d.kind))
	}
	if r.err != nil {
		return d, fmt.Errorf("decode %s record: %w", d.kind, r.err)
	}
	return d, nil
}
