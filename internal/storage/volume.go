package storage

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// StreamVolume is the data one stream holds in a time range. Bytes count
// line bytes plus structured-metadata name and value bytes, the measure of
// chunk.Meta.UncompressedBytes and of IndexStats.
type StreamVolume struct {
	Labels  model.Labels
	Entries int64
	Bytes   int64
	// Steps holds the non-empty steps in ascending order when Volume was
	// asked for a step; nil otherwise.
	Steps []StepVolume
}

// StepVolume is the data of one step: entries with
// Start <= ts < Start+step.
type StepVolume struct {
	Start   int64
	Entries int64
	Bytes   int64
}

// Volume returns, per stream matching ms, the entries and bytes it holds in
// the half-open range r, sorted by labels; streams without data in r are
// left out. With step > 0 each stream also gets per-step figures for the
// steps [r.Min+i*step, r.Min+(i+1)*step).
//
// The figures are exact, not estimates: a chunk that lies wholly inside r
// (and, with a step, wholly inside one step) is counted from its metadata
// without being read; any other chunk is decoded and its entries counted
// one by one. A stream whose chunks overlap in time (out-of-order writes,
// overlapping blocks) is read through the same de-duplicating merge as
// queries, so an entry stored twice counts once. Corrupt chunks are skipped,
// as queries skip them. Safe for concurrent use.
func (db *DB) Volume(ctx context.Context, tenantID string, ms []*model.Matcher, r model.TimeRange, step time.Duration) ([]StreamVolume, error) {
	if step < 0 {
		return nil, errors.New("volume: negative step")
	}
	if r.Max <= r.Min {
		return nil, nil
	}
	db.viewMu.RLock()
	views := db.head.Select(tenantID, ms, r)
	blocks := db.blocksOverlapping(tenantID, r)
	db.viewMu.RUnlock()

	p := SelectParams{Tenant: tenantID, Matchers: ms, Range: r, Direction: model.Forward}
	type stream struct {
		labels model.Labels
		pieces []volumePiece
	}
	byLabels := map[string]*stream{}
	get := func(ls model.Labels) *stream {
		k := ls.String()
		s := byLabels[k]
		if s == nil {
			s = &stream{labels: ls}
			byLabels[k] = s
		}
		return s
	}
	for _, b := range blocks {
		for _, sr := range b.Streams(ms, r) {
			s := get(sr.Labels)
			for _, ref := range sr.Chunks {
				s.pieces = append(s.pieces, volumePiece{
					entries: int64(ref.Entries), bytes: int64(ref.UncompressedBytes),
					src: db.blockSource(ctx, b, ref, p),
				})
			}
		}
	}
	for _, v := range views {
		s := get(v.Labels)
		for _, src := range v.Sources {
			s.pieces = append(s.pieces, volumePiece{
				entries: int64(src.Meta.Entries), bytes: int64(src.Meta.UncompressedBytes),
				src: headSource(src, p),
			})
		}
	}

	out := make([]StreamVolume, 0, len(byLabels))
	for _, s := range byLabels {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		acc := volumeAcc{r: r, step: step.Nanoseconds()}
		if err := acc.addStream(s.pieces); err != nil {
			return nil, err
		}
		if acc.entries == 0 {
			continue
		}
		out = append(out, acc.result(s.labels))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Labels.String() < out[j].Labels.String() })
	return out, nil
}

// volumePiece is one chunk of a stream with the figures of its metadata.
type volumePiece struct {
	entries, bytes int64
	src            source
}

// volumeAcc accumulates one stream's volume.
type volumeAcc struct {
	r       model.TimeRange
	step    int64 // ns; 0: no steps
	entries int64
	bytes   int64
	steps   map[int64]*StepVolume // by step index
}

func (a *volumeAcc) addStream(pieces []volumePiece) error {
	sort.Slice(pieces, func(i, j int) bool { return pieces[i].src.minT < pieces[j].src.minT })
	overlap := false
	for i := 1; i < len(pieces); i++ {
		// Sorted by minT and disjoint so far, the previous piece has the
		// largest maxT.
		if pieces[i].src.minT <= pieces[i-1].src.maxT {
			overlap = true
			break
		}
	}
	if overlap {
		srcs := make([]source, len(pieces))
		for i, pc := range pieces {
			srcs[i] = pc.src
		}
		ss := &StreamSource{sources: srcs}
		it := ss.Iterator(model.Forward, nil)
		for it.Next() {
			a.addEntry(it.At())
		}
		return errors.Join(it.Err(), it.Close())
	}
	for _, pc := range pieces {
		if a.whole(pc.src.minT, pc.src.maxT) {
			a.add(pc.src.minT, pc.entries, pc.bytes)
			continue
		}
		it := &lazyIterator{src: pc.src}
		for it.Next() {
			a.addEntry(it.At())
		}
		if err := errors.Join(it.Err(), it.Close()); err != nil {
			return err
		}
	}
	return nil
}

// whole reports whether a chunk spanning [minT, maxT] lies inside the range
// and inside one step, so that its metadata gives its exact figures.
func (a *volumeAcc) whole(minT, maxT int64) bool {
	if !a.r.Contains(minT) || !a.r.Contains(maxT) {
		return false
	}
	return a.step == 0 || a.stepIndex(minT) == a.stepIndex(maxT)
}

func (a *volumeAcc) stepIndex(ts int64) int64 { return (ts - a.r.Min) / a.step }

func (a *volumeAcc) addEntry(e model.Entry) {
	if !a.r.Contains(e.Timestamp) {
		return
	}
	n := int64(len(e.Line))
	e.Metadata.Range(func(l model.Label) { n += int64(len(l.Name) + len(l.Value)) })
	a.add(e.Timestamp, 1, n)
}

func (a *volumeAcc) add(ts, entries, bytes int64) {
	a.entries += entries
	a.bytes += bytes
	if a.step == 0 {
		return
	}
	if a.steps == nil {
		a.steps = map[int64]*StepVolume{}
	}
	i := a.stepIndex(ts)
	sv := a.steps[i]
	if sv == nil {
		sv = &StepVolume{Start: a.r.Min + i*a.step}
		a.steps[i] = sv
	}
	sv.Entries += entries
	sv.Bytes += bytes
}

func (a *volumeAcc) result(ls model.Labels) StreamVolume {
	v := StreamVolume{Labels: ls, Entries: a.entries, Bytes: a.bytes}
	if a.step > 0 {
		v.Steps = make([]StepVolume, 0, len(a.steps))
		for _, sv := range a.steps {
			v.Steps = append(v.Steps, *sv)
		}
		sort.Slice(v.Steps, func(i, j int) bool { return v.Steps[i].Start < v.Steps[j].Start })
	}
	return v
}
