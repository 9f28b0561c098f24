package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Encode returns the bytes of an index file holding streams.
//
// Streams may come in any order; Encode sorts streams by labels and each
// stream's Chunks by (MinTime, MaxTime) in place, and sets Fingerprint. It
// rejects input the format cannot hold: a stream without labels or chunks,
// an empty label name or value, two streams with the same labels, a chunk
// with MaxTime < MinTime, no entries, a negative offset or length, or a
// segment number below 1.
func Encode(streams []Stream) ([]byte, error) {
	sort.Slice(streams, func(i, j int) bool { return labels.Compare(streams[i].Labels, streams[j].Labels) < 0 })

	symSet := make(map[string]struct{}, 64)
	for i := range streams {
		s := &streams[i]
		if s.Labels.IsEmpty() {
			return nil, errors.New("encode index: stream without labels")
		}
		if len(s.Chunks) == 0 {
			return nil, fmt.Errorf("encode index: stream %s has no chunks", s.Labels)
		}
		if i > 0 && labels.Equal(s.Labels, streams[i-1].Labels) {
			return nil, fmt.Errorf("encode index: duplicate stream %s", s.Labels)
		}
		var bad error
		s.Labels.Range(func(l model.Label) {
			if bad == nil && (l.Name == "" || l.Value == "") {
				bad = fmt.Errorf("encode index: stream %s has an empty label name or value", s.Labels)
			}
			symSet[l.Name] = struct{}{}
			symSet[l.Value] = struct{}{}
		})
		if bad != nil {
			return nil, bad
		}
		if _, dup := s.Labels.HasDuplicateLabelNames(); dup {
			return nil, fmt.Errorf("encode index: stream %s has duplicate label names", s.Labels)
		}
		slices.SortFunc(s.Chunks, func(a, b ChunkRef) int {
			if a.MinTime != b.MinTime {
				if a.MinTime < b.MinTime {
					return -1
				}
				return 1
			}
			if a.MaxTime != b.MaxTime {
				if a.MaxTime < b.MaxTime {
					return -1
				}
				return 1
			}
			return 0
		})
		for _, c := range s.Chunks {
			if c.Segment < 1 || c.Offset < 0 || c.Length < 0 || c.Entries < 1 || c.UncompressedBytes < 0 || c.MaxTime < c.MinTime {
				return nil, fmt.Errorf("encode index: stream %s: invalid chunk reference %+v", s.Labels, c)
			}
		}
		s.Fingerprint = s.Labels.Hash()
	}

	symbols := make([]string, 0, len(symSet))
	for s := range symSet {
		symbols = append(symbols, s)
	}
	slices.Sort(symbols)
	refs := make(map[string]uint64, len(symbols))
	for i, s := range symbols {
		refs[s] = uint64(i)
	}

	out := make([]byte, 0, 4096)
	out = binary.BigEndian.AppendUint32(out, Magic)
	out = append(out, Version1, 0, 0, 0)
	var toc [tocEntries]uint64

	// Symbol table.
	payload := make([]byte, 0, 4096)
	payload = binary.AppendUvarint(payload, uint64(len(symbols)))
	for _, s := range symbols {
		payload = appendString(payload, s)
	}
	toc[0] = uint64(len(out))
	out = appendSection(out, payload)

	// Streams, collecting postings on the way: name ref -> value ref -> ids.
	postings := make(map[uint64]map[uint64][]uint32)
	payload = payload[:0]
	payload = binary.AppendUvarint(payload, uint64(len(streams)))
	for id := range streams {
		s := &streams[id]
		payload = binary.AppendUvarint(payload, uint64(s.Labels.Len()))
		s.Labels.Range(func(l model.Label) {
			n, v := refs[l.Name], refs[l.Value]
			payload = binary.AppendUvarint(payload, n)
			payload = binary.AppendUvarint(payload, v)
			byValue := postings[n]
			if byValue == nil {
				byValue = make(map[uint64][]uint32)
				postings[n] = byValue
			}
			byValue[v] = append(byValue[v], uint32(id))
		})
		payload = binary.BigEndian.AppendUint64(payload, s.Fingerprint)
		payload = binary.AppendUvarint(payload, uint64(len(s.Chunks)))
		var prevMin int64
		for i, c := range s.Chunks {
			payload = binary.AppendUvarint(payload, uint64(c.Segment))
			payload = binary.AppendUvarint(payload, uint64(c.Offset))
			payload = binary.AppendUvarint(payload, uint64(c.Length))
			if i == 0 {
				payload = binary.AppendVarint(payload, c.MinTime)
			} else {
				payload = binary.AppendUvarint(payload, uint64(c.MinTime-prevMin))
			}
			prevMin = c.MinTime
			payload = binary.AppendUvarint(payload, uint64(c.MaxTime-c.MinTime))
			payload = binary.AppendUvarint(payload, uint64(c.Entries))
			payload = binary.AppendUvarint(payload, uint64(c.UncompressedBytes))
			payload = binary.AppendUvarint(payload, 0) // no extension records
		}
	}
	toc[1] = uint64(len(out))
	out = appendSection(out, payload)

	// Postings.
	names := make([]uint64, 0, len(postings))
	for n := range postings {
		names = append(names, n)
	}
	slices.Sort(names)
	payload = payload[:0]
	payload = binary.AppendUvarint(payload, uint64(len(names)))
	values := make([]uint64, 0, 64)
	for _, n := range names {
		byValue := postings[n]
		values = values[:0]
		for v := range byValue {
			values = append(values, v)
		}
		slices.Sort(values)
		payload = binary.AppendUvarint(payload, n)
		payload = binary.AppendUvarint(payload, uint64(len(values)))
		for _, v := range values {
			ids := byValue[v] // ascending: streams were visited in ID order
			payload = binary.AppendUvarint(payload, v)
			payload = binary.AppendUvarint(payload, uint64(len(ids)))
			prev := uint32(0)
			for i, id := range ids {
				if i == 0 {
					payload = binary.AppendUvarint(payload, uint64(id))
				} else {
					payload = binary.AppendUvarint(payload, uint64(id-prev))
				}
				prev = id
			}
		}
	}
	toc[2] = uint64(len(out))
	out = appendSection(out, payload)

	// TOC; blooms and keys are absent in version 1 files.
	tocStart := len(out)
	for _, off := range toc {
		out = binary.BigEndian.AppendUint64(out, off)
	}
	out = binary.BigEndian.AppendUint32(out, crc(out[tocStart:]))
	return out, nil
}
