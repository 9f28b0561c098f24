// Package iter owns the read-path contract shared by the head, chunks, blocks
// and the query engine: iterators over entries, one stream or many, and the
// line filter that storage layers may push down.
package iter

import (
	"bytes"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// EntryIterator walks the entries of one stream in the order it was asked
// for. It is not safe for concurrent use.
//
// Next advances and reports whether an entry is available. At returns the
// current entry; its Line may point into a buffer owned by the iterator that
// stays valid (is never overwritten) until the iterator is garbage, so callers
// may keep it. Err returns the first error (a *CorruptionError for bad data);
// it is nil after a clean end. Close releases resources and must be called.
type EntryIterator interface {
	Next() bool
	At() model.Entry
	Err() error
	Close() error
}

// StreamIterator walks entries of many streams; Labels names the stream of
// the current entry.
type StreamIterator interface {
	EntryIterator
	Labels() model.Labels
}

// Filter is a line filter a storage layer may push down. Needles are
// byte strings that every matching line contains (so a page or chunk without
// one of them can be skipped without looking at its lines); Match is the full
// predicate and is applied after the needles. A nil Match accepts every line
// that contains the needles. The zero Filter accepts everything.
type Filter struct {
	Needles [][]byte
	Match   func(line []byte) bool
}

// Empty reports whether the filter accepts every line.
func (f *Filter) Empty() bool { return f == nil || (len(f.Needles) == 0 && f.Match == nil) }

// Accept applies the whole filter to one line.
func (f *Filter) Accept(line []byte) bool {
	if f == nil {
		return true
	}
	for _, n := range f.Needles {
		if !bytes.Contains(line, n) {
			return false
		}
	}
	return f.Match == nil || f.Match(line)
}

// Empty iterators.
type emptyIterator struct{ err error }

func (emptyIterator) Next() bool           { return false }
func (emptyIterator) At() model.Entry      { return model.Entry{} }
func (e emptyIterator) Err() error         { return e.err }
func (emptyIterator) Close() error         { return nil }
func (emptyIterator) Labels() model.Labels { return model.EmptyLabels() }

// Empty returns an iterator without entries.
func Empty() StreamIterator { return emptyIterator{} }

// Errored returns an iterator without entries whose Err is err.
func Errored(err error) StreamIterator { return emptyIterator{err: err} }

// Slice iterates over entries that are already in the wanted order.
type Slice struct {
	Entries []model.Entry
	i       int
}

// NewSlice returns an iterator over entries.
func NewSlice(entries []model.Entry) *Slice { return &Slice{Entries: entries, i: -1} }

func (s *Slice) Next() bool      { s.i++; return s.i < len(s.Entries) }
func (s *Slice) At() model.Entry { return s.Entries[s.i] }
func (s *Slice) Err() error      { return nil }
func (s *Slice) Close() error    { return nil }
