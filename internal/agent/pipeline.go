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

// ackSource is one positioned stream of entries: one tailed path, across
// every tailer that follows it during the agent's life (a target stopped
// and started again keeps its source, so tickets stay in read order).
//
// Every line read gets a ticket, in read order. A ticket's entry may leave
// the pipeline, be dropped by a stage, or be merged into a later entry
// (multiline). When an entry leaves the pipeline (resolve), every earlier
// ticket that has not left it was dropped or merged and needs no
// acknowledgement of its own. The committed position is that of the
// longest prefix of tickets that are acknowledged or need none, so batches
// acknowledged out of order (per-tenant batches, several clients) never
// commit past a line still in flight.
type ackSource struct {
	id        uint64
	key       string
	positions *Positions
	retired   time.Time // guarded by the file job's mutex; when its last tailer stopped

	mu        sync.Mutex
	seq       uint64       // guarded by mu; last ticket issued
	pending   []pendingPos // guarded by mu; FIFO, contiguous seqs
	resolved  uint64       // guarded by mu; highest seq that left the pipeline
	read      Position     // guarded by mu; position after the last ticket
	hasRead   bool         // guarded by mu
	committed Position     // guarded by mu; last position put
	forget    bool         // guarded by mu; remove the position once idle
}

// ticket states
const (
	ticketRead  = iota // read, not yet out of the pipeline
	ticketOut          // out of the pipeline, waiting for acknowledgement
	ticketAcked        // acknowledged, dropped or merged
)

type pendingPos struct {
	seq   uint64
	pos   Position
	state uint8
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

// ticket records pos as the position after a line and returns the ticket
// to store under ackKey.
func (s *ackSource) ticket(pos Position) string {
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.pending = append(s.pending, pendingPos{seq: seq, pos: pos})
	s.read, s.hasRead = pos, true
	s.mu.Unlock()
	return strconv.FormatUint(s.id, 10) + "/" + strconv.FormatUint(seq, 10)
}

// resume returns the position after the last line handed out, which is
// where a new tailer of the same path continues: lines before it are in
// flight or done.
func (s *ackSource) resume() (Position, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read, s.hasRead
}

// idle reports whether every ticket is committed.
func (s *ackSource) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) == 0
}

// setForget asks the source to remove its key from the positions once
// every ticket is committed (the file is gone), or cancels that request.
func (s *ackSource) setForget(forget bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forget = forget
	if forget && len(s.pending) == 0 && s.positions != nil {
		s.positions.Remove(s.key)
	}
}

// index returns the index of seq in pending, or -1. Called with s.mu held.
func (s *ackSource) index(seq uint64) int {
	if len(s.pending) == 0 || seq < s.pending[0].seq {
		return -1
	}
	i := int(seq - s.pending[0].seq)
	if i >= len(s.pending) {
		return -1
	}
	return i
}

// out marks seq as out of the pipeline and every earlier ticket still
// inside it as needing no acknowledgement. It returns seq's position.
func (s *ackSource) out(seq uint64) (Position, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.index(seq)
	if i < 0 || s.pending[i].state != ticketRead {
		return Position{}, false
	}
	s.pending[i].state = ticketOut
	first := 0
	if s.resolved >= s.pending[0].seq {
		first = s.index(s.resolved) + 1
	}
	for j := first; j < i; j++ {
		if s.pending[j].state == ticketRead {
			s.pending[j].state = ticketAcked
		}
	}
	s.resolved = max(s.resolved, seq)
	return s.pending[i].pos, true
}

// skip records a line dropped before it entered the pipeline: it needs
// no acknowledgement, and it is committed as soon as every line before it
// is.
func (s *ackSource) skip(pos Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.pending = append(s.pending, pendingPos{seq: s.seq, pos: pos, state: ticketAcked})
	s.read, s.hasRead = pos, true
	s.commitLocked()
}

// ack marks seq acknowledged and commits the position of the longest
// acknowledged prefix.
func (s *ackSource) ack(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.index(seq); i >= 0 {
		s.pending[i].state = ticketAcked
	}
	s.commitLocked()
}

// commitLocked commits the position of the longest acknowledged prefix.
// Called with s.mu held.
func (s *ackSource) commitLocked() {
	n := 0
	for n < len(s.pending) && s.pending[n].state == ticketAcked {
		n++
	}
	if n == 0 {
		return
	}
	pos := s.pending[n-1].pos
	s.pending = append(s.pending[:0], s.pending[n:]...)
	s.committed = pos
	if s.positions == nil {
		return
	}
	// under s.mu, so that concurrent acknowledgements put in order
	s.positions.Put(s.key, pos)
	if s.forget && len(s.pending) == 0 {
		s.positions.Remove(s.key)
	}
}

// resolve turns the ticket an entry carries into an ackRef for n clients.
// It is called in pipeline output order.
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
	pos, ok := src.out(seq)
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
