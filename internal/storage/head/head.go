// Package head owns the in-memory part of storage: one open chunk per
// stream that receives appends, and the chunks cut from it that wait to be
// flushed into a block. Everything in the head is queryable; the write-ahead
// log (owned by the storage package) makes it durable.
package head

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/chunk"
)

// Options configure chunk cutting.
type Options struct {
	Encoding        chunk.Encoding
	PageSize        int           // uncompressed bytes per chunk page (Loki's chunk_block_size)
	ChunkTargetSize int           // compressed bytes at which a chunk is cut
	MaxChunkAge     time.Duration // an open chunk older than this is cut; half of it is the out-of-order window
	ChunkIdlePeriod time.Duration // an open chunk without appends for this long is cut
}

// DefaultOptions are Loki's ingester defaults with zstd chunks.
func DefaultOptions() Options {
	return Options{
		Encoding:        chunk.EncZstd,
		PageSize:        256 << 10,
		ChunkTargetSize: 1572864,
		MaxChunkAge:     2 * time.Hour,
		ChunkIdlePeriod: 30 * time.Minute,
	}
}

// Head holds the recent data of every tenant. It is safe for concurrent use.
type Head struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time

	// cutBytes counts encoded bytes of cut chunks not yet released;
	// openBytes estimates the compressed bytes of open chunks.
	cutBytes  atomic.Int64
	openBytes atomic.Int64

	memStreams   prometheus.Gauge
	chunksCut    *prometheus.CounterVec
	discarded    *prometheus.CounterVec
	createdTotal prometheus.Counter

	mu      sync.RWMutex
	tenants map[string]*tenantHead // guarded by mu
}

// New returns an empty head.
func New(opts Options, log *slog.Logger, reg prometheus.Registerer) *Head {
	f := promauto.With(reg)
	return &Head{
		opts:    opts,
		log:     log,
		now:     time.Now,
		tenants: map[string]*tenantHead{},
		memStreams: f.NewGauge(prometheus.GaugeOpts{
			Name: "loki_ingester_memory_streams", Help: "The total number of streams in memory.",
		}),
		chunksCut: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ledgerlog_head_chunks_cut_total", Help: "Chunks cut from the head, by reason.",
		}, []string{"reason"}),
		discarded: sharedCounterVec(reg, prometheus.CounterOpts{
			Name: "loki_discarded_samples_total", Help: "The total number of samples that were discarded.",
		}, []string{"reason", "tenant"}),
		createdTotal: f.NewCounter(prometheus.CounterOpts{
			Name: "loki_ingester_streams_created_total", Help: "The total number of streams created.",
		}),
	}
}

// sharedCounterVec registers a counter that other components (the push
// validator) may have registered already, and returns the registered one.
func sharedCounterVec(reg prometheus.Registerer, opts prometheus.CounterOpts, labels []string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(opts, labels)
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
	}
	return c
}

// SetClock replaces the wall clock (tests).
func (h *Head) SetClock(now func() time.Time) { h.now = now }

type tenantHead struct {
	id string

	mu      sync.RWMutex
	streams map[uint64][]*Stream // guarded by mu; by label hash, collisions chained
	count   int                  // guarded by mu
}

// Stream is one stream of the head. Labels and hash are immutable; the
// rest is guarded by mu.
type Stream struct {
	Labels model.Labels
	hash   uint64

	mu         sync.Mutex
	open       *chunk.Builder
	openSince  time.Time // wall clock of the open chunk's first append
	lastAppend time.Time
	openBytes  int64 // last estimate added to Head.openBytes
	maxTs      int64 // newest timestamp ever appended
	hasEntries bool
	cut        []*Cut
	recent     recentRing // hashes of the latest entries, to drop re-sent duplicates
	arena      arena      // owned copies of line bytes of the open chunk
	lastMeta   model.Labels
}

// arena holds copies of appended lines so that the head never keeps a
// whole decoded request alive for the sake of a few of its lines. Bytes
// once written are never changed; a full slab is replaced, not reused.
type arena struct{ buf []byte }

const arenaSlab = 64 << 10

func (a *arena) copy(s string) string {
	if len(s) == 0 {
		return ""
	}
	if len(s) > cap(a.buf)-len(a.buf) {
		a.buf = make([]byte, 0, max(arenaSlab, len(s)))
	}
	start := len(a.buf)
	a.buf = append(a.buf, s...)
	return unsafe.String(&a.buf[start], len(s))
}

// ownMetadata returns structured metadata that does not alias request
// memory; consecutive entries usually share one set, which is reused.
func (s *Stream) ownMetadata(md model.Labels) model.Labels {
	if md.IsEmpty() {
		return md
	}
	if labels.Equal(md, s.lastMeta) {
		return s.lastMeta
	}
	b := model.NewScratch()
	md.Range(func(l model.Label) { b.Add(strings.Clone(l.Name), strings.Clone(l.Value)) })
	s.lastMeta, _ = b.Labels()
	return s.lastMeta
}

// recentSize is how many recent entries per stream are remembered for
// duplicate detection. A client that re-sends a batch after a lost
// acknowledgement re-sends at most its batch; 1024 lines cover a 1 MiB batch
// of typical 1 KiB lines per stream at 8 bytes of memory each.
const recentSize = 1024

// recentRing remembers hashes of the newest entries of a stream. Entries
// newer than every stored entry cannot be duplicates, so it is consulted
// only for entries at or before the stream's newest timestamp.
type recentRing struct {
	hashes []uint64
	next   int
}

func entryHash(e model.Entry) uint64 {
	return xxhash.Sum64String(e.Line) ^ uint64(e.Timestamp)*0x9E3779B97F4A7C15
}

func (r *recentRing) add(h uint64) {
	if len(r.hashes) < recentSize {
		r.hashes = append(r.hashes, h)
		return
	}
	r.hashes[r.next] = h
	r.next = (r.next + 1) % recentSize
}

func (r *recentRing) contains(h uint64) bool {
	for _, x := range r.hashes {
		if x == h {
			return true
		}
	}
	return false
}

// Cut is an encoded chunk waiting to be flushed into a block.
type Cut struct {
	Data  []byte
	Meta  chunk.Meta
	Chunk *chunk.Chunk
}

// Limits are the per-tenant limits the head enforces.
type Limits struct {
	MaxStreams      int  // 0 = unlimited
	UnorderedWrites bool // false: reject entries older than the stream's newest
}

// AppendError describes entries the head refused. Status is 400 or 429.
type AppendError struct {
	Status int
	Msgs   []string
}

func (e *AppendError) Error() string { return strings.Join(e.Msgs, "\n") }

func (h *Head) tenant(id string, create bool) *tenantHead {
	h.mu.RLock()
	t := h.tenants[id]
	h.mu.RUnlock()
	if t != nil || !create {
		return t
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if t = h.tenants[id]; t == nil {
		t = &tenantHead{id: id, streams: map[uint64][]*Stream{}}
		h.tenants[id] = t
	}
	return t
}

// Tenants lists tenants with data in the head.
func (h *Head) Tenants() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]string, 0, len(h.tenants))
	for id := range h.tenants {
		out = append(out, id)
	}
	return out
}

func (t *tenantHead) get(ls model.Labels, hash uint64) *Stream {
	for _, s := range t.streams[hash] {
		if labels.Equal(s.Labels, ls) {
			return s
		}
	}
	return nil
}

func (h *Head) getOrCreate(t *tenantHead, ls model.Labels, l Limits) (*Stream, error) {
	hash := ls.Hash()
	t.mu.RLock()
	s := t.get(ls, hash)
	t.mu.RUnlock()
	if s != nil {
		return s, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s = t.get(ls, hash); s != nil {
		return s, nil
	}
	if l.MaxStreams > 0 && t.count >= l.MaxStreams {
		h.discarded.WithLabelValues("stream_limit", t.id).Inc()
		return nil, fmt.Errorf("maximum active stream limit exceeded when trying to create stream %s, reduce the number of active streams (reduce labels or reduce label values), or contact your Loki administrator to see if the limit can be increased, user: '%s'", ls.String(), t.id)
	}
	s = &Stream{Labels: ls, hash: hash}
	t.streams[hash] = append(t.streams[hash], s)
	t.count++
	h.memStreams.Inc()
	h.createdTotal.Inc()
	return s, nil
}

// Append adds streams to the head. It returns what was stored (exact
// duplicates of stored entries are dropped silently, as Loki does) and, if
// anything was refused, an *AppendError naming it. With replay set the
// stream limit and the out-of-order window are not enforced: replayed data
// was acknowledged before.
func (h *Head) Append(tenantID string, streams []model.Stream, l Limits, replay bool) ([]model.Stream, error) {
	t := h.tenant(tenantID, true)
	now := h.now()
	var (
		errs     []string
		status   = http.StatusBadRequest
		accepted []model.Stream
		changed  bool
	)
	for si := range streams {
		in := &streams[si]
		s, err := h.getOrCreate(t, in.Labels, l)
		if err != nil {
			if replay {
				// Never lose acknowledged data on replay.
				s, _ = h.getOrCreate(t, in.Labels, Limits{})
			} else {
				errs = append(errs, err.Error())
				status = http.StatusTooManyRequests
				changed = true
				continue
			}
		}
		kept, msg := h.appendStream(t.id, s, in.Entries, l, replay, now)
		if msg != "" {
			errs = append(errs, msg)
		}
		if len(kept) != len(in.Entries) {
			changed = true
		}
		if len(kept) > 0 {
			accepted = append(accepted, model.Stream{Labels: in.Labels, Entries: kept})
		}
	}
	if !changed {
		accepted = streams
	}
	if len(errs) > 0 {
		return accepted, &AppendError{Status: status, Msgs: errs}
	}
	return accepted, nil
}

func (h *Head) appendStream(tenantID string, s *Stream, entries []model.Entry, l Limits, replay bool, now time.Time) ([]model.Entry, string) {
	window := int64(h.opts.MaxChunkAge / 2)
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := entries[:0:0]
	all := true
	var ignored int
	var firstBad model.Entry
	var oldest int64
	for i, e := range entries {
		if !replay && s.hasEntries {
			bound := s.maxTs - window
			tooOld := e.Timestamp < bound
			if !l.UnorderedWrites {
				tooOld = e.Timestamp < s.maxTs
				bound = s.maxTs
			}
			if tooOld {
				if all {
					kept = append(kept, entries[:i]...)
					all = false
					firstBad = e
					oldest = bound
				}
				ignored++
				continue
			}
		}
		if s.open == nil {
			s.open = chunk.NewBuilder(h.opts.Encoding, h.opts.PageSize)
			s.openSince = now
		}
		eh := entryHash(e)
		if s.hasEntries && e.Timestamp <= s.maxTs && s.recent.contains(eh) {
			if all {
				kept = append(kept, entries[:i]...)
				all = false
			}
			continue
		}
		owned := model.Entry{Timestamp: e.Timestamp, Line: s.arena.copy(e.Line), Metadata: s.ownMetadata(e.Metadata)}
		if !s.open.Append(owned) {
			// Exact duplicate: dropped silently.
			if all {
				kept = append(kept, entries[:i]...)
				all = false
			}
			continue
		}
		s.recent.add(eh)
		if !all {
			kept = append(kept, e)
		}
		if !s.hasEntries || e.Timestamp > s.maxTs {
			s.maxTs = e.Timestamp
			s.hasEntries = true
		}
	}
	s.lastAppend = now
	if all {
		kept = entries
	}
	if s.open != nil {
		est := int64(s.open.Meta().CompressedBytes)
		h.openBytes.Add(est - s.openBytes)
		s.openBytes = est
		if est >= int64(h.opts.ChunkTargetSize) {
			h.cutLocked(s, "full")
		}
	}
	if ignored == 0 {
		return kept, ""
	}
	reason := "too_far_behind"
	if !l.UnorderedWrites {
		reason = "out_of_order"
	}
	h.discarded.WithLabelValues(reason, tenantID).Add(float64(ignored))
	ts := time.Unix(0, firstBad.Timestamp).UTC()
	if !l.UnorderedWrites {
		return kept, fmt.Sprintf("entry with timestamp %s ignored, reason: 'entry out of order', user '%s', total ignored: %d out of %d for stream: %s",
			ts, tenantID, ignored, len(entries), s.Labels.String())
	}
	return kept, fmt.Sprintf("entry with timestamp %s ignored, reason: 'entry too far behind, entry timestamp is: %s, oldest acceptable timestamp is: %s', user '%s', total ignored: %d out of %d for stream: %s",
		ts, ts.Format(time.RFC3339), time.Unix(0, oldest).UTC().Format(time.RFC3339), tenantID, ignored, len(entries), s.Labels.String())
}

// cutLocked encodes the open chunk into a Cut. s.mu must be held.
func (h *Head) cutLocked(s *Stream, reason string) {
	if s.open == nil || s.open.Meta().Entries == 0 {
		return
	}
	data, meta, err := s.open.Encode()
	if err != nil {
		// Encoding in memory cannot fail for valid entries; keep the
		// builder so nothing is lost and try again later.
		h.log.Error("encode chunk", "stream", s.Labels.String(), "err", err)
		return
	}
	c, err := chunk.Open(data)
	if err != nil {
		h.log.Error("open encoded chunk", "stream", s.Labels.String(), "err", err)
		return
	}
	s.cut = append(s.cut, &Cut{Data: data, Meta: meta, Chunk: c})
	h.cutBytes.Add(int64(len(data)))
	h.openBytes.Add(-s.openBytes)
	s.openBytes = 0
	s.open = nil
	h.chunksCut.WithLabelValues(reason).Inc()
}

// Bytes reports the compressed bytes held: cut chunks plus an estimate for
// open chunks.
func (h *Head) Bytes() int64 { return h.cutBytes.Load() + h.openBytes.Load() }

// CutBytes reports the bytes of cut chunks waiting for a flush.
func (h *Head) CutBytes() int64 { return h.cutBytes.Load() }

// CutIdle cuts open chunks that are older than MaxChunkAge or idle for
// ChunkIdlePeriod; with force every non-empty open chunk is cut.
func (h *Head) CutIdle(force bool) {
	now := h.now()
	h.forEachStream(func(_ string, s *Stream) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.open == nil {
			return
		}
		switch {
		case force:
			h.cutLocked(s, "forced")
		case now.Sub(s.openSince) >= h.opts.MaxChunkAge:
			h.cutLocked(s, "max_age")
		case now.Sub(s.lastAppend) >= h.opts.ChunkIdlePeriod:
			h.cutLocked(s, "idle")
		}
	})
}

func (h *Head) forEachStream(fn func(tenantID string, s *Stream)) {
	h.mu.RLock()
	ts := make([]*tenantHead, 0, len(h.tenants))
	for _, t := range h.tenants {
		ts = append(ts, t)
	}
	h.mu.RUnlock()
	for _, t := range ts {
		t.mu.RLock()
		ss := make([]*Stream, 0, t.count)
		for _, chain := range t.streams {
			ss = append(ss, chain...)
		}
		t.mu.RUnlock()
		for _, s := range ss {
			fn(t.id, s)
		}
	}
}

// Pending is a stream's cut chunks taken for a flush.
type Pending struct {
	Tenant string
	Stream *Stream
	Cuts   []*Cut
}

// TakeCuts returns every cut chunk waiting for a flush. The chunks stay in
// the head (and queryable) until Release is called with the same Pending.
func (h *Head) TakeCuts() []Pending {
	var out []Pending
	h.forEachStream(func(tid string, s *Stream) {
		s.mu.Lock()
		if len(s.cut) > 0 {
			out = append(out, Pending{Tenant: tid, Stream: s, Cuts: append([]*Cut(nil), s.cut...)})
		}
		s.mu.Unlock()
	})
	return out
}

// Release removes flushed chunks from the head. The caller makes the block
// holding them visible to queries in the same critical section.
func (h *Head) Release(ps []Pending) {
	for _, p := range ps {
		s := p.Stream
		s.mu.Lock()
		gone := map[*Cut]bool{}
		for _, c := range p.Cuts {
			gone[c] = true
			h.cutBytes.Add(-int64(len(c.Data)))
		}
		kept := s.cut[:0:0]
		for _, c := range s.cut {
			if !gone[c] {
				kept = append(kept, c)
			}
		}
		s.cut = kept
		s.mu.Unlock()
	}
}

// GC removes streams that hold no data and had no appends for idle.
func (h *Head) GC(idle time.Duration) {
	now := h.now()
	h.mu.RLock()
	ts := make([]*tenantHead, 0, len(h.tenants))
	for _, t := range h.tenants {
		ts = append(ts, t)
	}
	h.mu.RUnlock()
	for _, t := range ts {
		t.mu.Lock()
		for hash, chain := range t.streams {
			kept := chain[:0]
			for _, s := range chain {
				s.mu.Lock()
				empty := s.open == nil && len(s.cut) == 0 && now.Sub(s.lastAppend) >= idle
				s.mu.Unlock()
				if empty {
					t.count--
					h.memStreams.Dec()
					continue
				}
				kept = append(kept, s)
			}
			if len(kept) == 0 {
				delete(t.streams, hash)
			} else {
				t.streams[hash] = kept
			}
		}
		t.mu.Unlock()
	}
}
