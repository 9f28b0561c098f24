package head

import (
	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/chunk"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

// Source is one readable piece of a stream: an open chunk snapshot or a cut
// chunk. Both are immutable and safe to read without locks.
type Source struct {
	snap  *chunk.Snapshot
	chunk *chunk.Chunk
	Meta  chunk.Meta
}

// Iterator reads the source.
func (s Source) Iterator(r model.TimeRange, dir model.Direction, f *iter.Filter) iter.EntryIterator {
	if s.snap != nil {
		return s.snap.Iterator(r, dir, f)
	}
	return s.chunk.Iterator(r, dir, f)
}

// StreamView is what a query sees of one head stream.
type StreamView struct {
	Labels  model.Labels
	Sources []Source
}

// Select returns views of the tenant's streams that match ms and hold data
// overlapping r. The views stay valid while appends continue.
func (h *Head) Select(tenantID string, ms []*model.Matcher, r model.TimeRange) []StreamView {
	t := h.tenant(tenantID, false)
	if t == nil {
		return nil
	}
	t.mu.RLock()
	var matched []*Stream
	for _, chain := range t.streams {
		for _, s := range chain {
			if model.MatchLabels(s.Labels, ms) {
				matched = append(matched, s)
			}
		}
	}
	t.mu.RUnlock()
	out := make([]StreamView, 0, len(matched))
	for _, s := range matched {
		v := StreamView{Labels: s.Labels}
		s.mu.Lock()
		for _, c := range s.cut {
			if r.Overlaps(c.Meta.MinTime, c.Meta.MaxTime) {
				v.Sources = append(v.Sources, Source{chunk: c.Chunk, Meta: c.Meta})
			}
		}
		if s.open != nil {
			m := s.open.Meta()
			if m.Entries > 0 && r.Overlaps(m.MinTime, m.MaxTime) {
				v.Sources = append(v.Sources, Source{snap: s.open.Snapshot(), Meta: m})
			}
		}
		s.mu.Unlock()
		if len(v.Sources) > 0 {
			out = append(out, v)
		}
	}
	return out
}

// Checkpoint calls fn for every stream's data: cut chunks as encoded bytes
// and the open chunk encoded on the fly (without cutting it).
func (h *Head) Checkpoint(fn func(tenantID string, ls model.Labels, chunkData []byte) error) error {
	var err error
	h.forEachStream(func(tid string, s *Stream) {
		if err != nil {
			return
		}
		s.mu.Lock()
		cuts := append([]*Cut(nil), s.cut...)
		var snap *chunk.Snapshot
		if s.open != nil && s.open.Meta().Entries > 0 {
			snap = s.open.Snapshot()
		}
		s.mu.Unlock()
		for _, c := range cuts {
			if err = fn(tid, s.Labels, c.Data); err != nil {
				return
			}
		}
		if snap == nil {
			return
		}
		b := chunk.NewBuilder(h.opts.Encoding, h.opts.PageSize)
		it := snap.Iterator(model.AllTime, model.Forward, nil)
		for it.Next() {
			b.Append(it.At())
		}
		if err = it.Err(); err != nil {
			return
		}
		_ = it.Close()
		data, _, encErr := b.Encode()
		if encErr != nil {
			err = encErr
			return
		}
		err = fn(tid, s.Labels, data)
	})
	return err
}
