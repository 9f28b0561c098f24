package agent

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/agent/stages"
	"github.com/prometheus/common/model"
)

// Entry is what flows through a job's pipeline stages.
type Entry = stages.Entry

// ackKey is the reserved Extracted key under which an entry read from a
// positioned source (a file) carries its acknowledgement ticket through the
// pipeline stages, which keep Extracted with the entry.
const ackKey = "__ledgerlog_ack"

// sendEntry is a pipeline's output on its way to the clients.
type sendEntry struct {
	Labels    model.LabelSet
	Timestamp time.Time
	Line      string
	Metadata  map[string]string
	Tenant    string
	ack       *ackRef // nil for sources without positions
}

// ackRef commits a file position once every client has acknowledged (or
// deliberately dropped) the entry that carries it.
type ackRef struct {
	remaining atomic.Int32
	key       string
	pos       Position
	commit    func()
}

// release is called once per client when the entry is acknowledged.
func (a *ackRef) release() {
	if a != nil && a.remaining.Add(-1) == 0 && a.commit != nil {
		a.commit()
	}
}

// ackSource is one positioned stream of entries (one tailed path). Entries
// of one source reach the clients in read order, so acknowledging ticket n
// acknowledges every earlier ticket of the source, including those a stage
// dropped.
type ackSource struct {
	id        uint64
	key       string
	positions *Positions

	mu      sync.Mutex
	seq     uint64
	pending []pendingPos // guarded by mu; FIFO by seq
}

type pendingPos struct {
	seq uint64
	pos Position
}

// ackRegistry hands out tickets and resolves them when entries leave the
// pipeline. Safe for concurrent use.
type ackRegistry struct {
	mu      sync.Mutex
	next    uint64
	sources map[uint64]*ackSource
}

func newAckRegistry() *ackRegistry { return &ackRegistry{sources: map[uint64]*ackSource{}} }

func (r *ackRegistry) newSource(key string, p *Positions) *ackSource {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	s := &ackSource{id: r.next, key: key, positions: p}
	r.sources[s.id] = s
	return s
}

func (r *ackRegistry) remove(s *ackSource) {
	r.mu.Lock()
	delete(r.sources, s.id)
	r.mu.Unlock()
}

// ticket records pos as the position after the entry and returns the
// ticket to store under ackKey.
func (s *ackSource) ticket(pos Position) string {
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.pending = append(s.pending, pendingPos{seq: seq, pos: pos})
	s.mu.Unlock()
	return strconv.FormatUint(s.id, 10) + "/" + strconv.FormatUint(seq, 10)
}

// lookup returns the position recorded for seq.
func (s *ackSource) lookup(seq uint64) (Position, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pending {
		if p.seq == seq {
			return p.pos, true
		}
		if p.seq > seq {
			break
		}
	}
	return Position{}, false
}

// ack commits the position of seq and forgets every earlier ticket.
func (s *ackSource) ack(seq uint64) {
	s.mu.Lock()
	var last *Position
	i := 0
	for ; i < len(s.pending) && s.pending[i].seq <= seq; i++ {
		last = &s.pending[i].pos
	}
	var pos Position
	if last != nil {
		pos = *last
	}
	s.pending = append(s.pending[:0], s.pending[i:]...)
	s.mu.Unlock()
	if last != nil && s.positions != nil {
		s.positions.Put(s.key, pos)
	}
}

// resolve turns the ticket an entry carries into an ackRef for n clients.
func (r *ackRegistry) resolve(e *Entry, n int) *ackRef {
	v, ok := e.Extracted[ackKey]
	if !ok {
		return nil
	}
	t, ok := v.(string)
	if !ok {
		return nil
	}
	ids, seqs, ok := strings.Cut(t, "/")
	if !ok {
		return nil
	}
	id, err1 := strconv.ParseUint(ids, 10, 64)
	seq, err2 := strconv.ParseUint(seqs, 10, 64)
	if err1 != nil || err2 != nil {
		return nil
	}
	r.mu.Lock()
	src := r.sources[id]
	r.mu.Unlock()
	if src == nil {
		return nil
	}
	pos, ok := src.lookup(seq)
	if !ok {
		return nil
	}
	a := &ackRef{key: src.key, pos: pos, commit: func() { src.ack(seq) }}
	a.remaining.Store(int32(n))
	return a
}

// fanout delivers pipeline output to every client.
type fanout struct {
	clients []entryHandler
	acks    *ackRegistry
}

// entryHandler accepts entries for sending. Handle blocks while the client
// cannot take more (back-pressure) and fails only when ctx is done. It
// takes ownership of e.
type entryHandler interface {
	Handle(ctx context.Context, e sendEntry) error
}

// consume forwards a pipeline's output until the channel closes.
func (f *fanout) consume(ctx context.Context, out <-chan Entry) {
	for e := range out {
		se := sendEntry{Labels: e.Labels, Timestamp: e.Timestamp, Line: e.Line, Metadata: e.StructuredMetadata, Tenant: e.Tenant}
		se.ack = f.acks.resolve(&e, len(f.clients))
		for _, c := range f.clients {
			if err := c.Handle(ctx, se); err != nil {
				// shutting down: the entry stays unacknowledged and is
				// re-read from its position on the next start
				for range out { //nolint:revive // drain so the pipeline can stop
				}
				return
			}
		}
	}
}
