package index

import (
	"math/bits"
	"slices"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Len is the number of streams.
func (ix *Index) Len() int { return len(ix.streams) }

// Streams returns every stream, sorted by labels; the slice is shared.
func (ix *Index) Streams() []Stream { return ix.streams }

// Stream returns the stream with the given ID (0 <= id < Len); the result
// is shared.
func (ix *Index) Stream(id int) *Stream { return &ix.streams[id] }

// Postings returns the ascending IDs of the streams with name=value, or nil.
// The slice is shared.
func (ix *Index) Postings(name, value string) []uint32 {
	i, ok := ix.byName[name]
	if !ok {
		return nil
	}
	lp := &ix.labels[i]
	if j, ok := slices.BinarySearch(lp.values, value); ok {
		return lp.lists[j]
	}
	return nil
}

// Select returns the ascending IDs of the streams matching every matcher,
// with Prometheus semantics: a stream without a label has the empty value
// for it, so a matcher that matches "" also selects streams lacking the
// label. No matchers select every stream.
func (ix *Index) Select(ms []*model.Matcher) []uint32 {
	set := ix.selectSet(ms)
	out := make([]uint32, 0, set.count())
	set.each(func(id int) { out = append(out, uint32(id)) })
	return out
}

// SelectFunc calls f with the ID of each stream matching ms, in ascending
// order, without allocating a result slice.
func (ix *Index) SelectFunc(ms []*model.Matcher, f func(id int)) { ix.selectSet(ms).each(f) }

func (ix *Index) selectSet(ms []*model.Matcher) bitset {
	n := len(ix.streams)
	var set bitset
	for i, m := range ms {
		s := ix.matcherSet(m)
		if i == 0 {
			set = s
		} else {
			set.and(s)
		}
		if set.empty() {
			return set
		}
	}
	if set == nil {
		set = fullSet(n)
	}
	return set
}

// matcherSet returns the streams one matcher selects.
func (ix *Index) matcherSet(m *model.Matcher) bitset {
	n := len(ix.streams)
	var lp *labelPostings
	if i, ok := ix.byName[m.Name]; ok {
		lp = &ix.labels[i]
	}
	if m.Matches("") {
		// All streams minus those whose value does not match.
		set := fullSet(n)
		if lp == nil {
			return set
		}
		switch {
		case m.Type == model.MatchNotEqual:
			set.andNot(ix.Postings(m.Name, m.Value))
		case m.Type == model.MatchNotRegexp && m.SetMatches() != nil:
			for _, v := range m.SetMatches() {
				if !m.Matches(v) {
					set.andNot(ix.Postings(m.Name, v))
				}
			}
		default:
			for j, v := range lp.values {
				if !m.Matches(v) {
					set.andNot(lp.lists[j])
				}
			}
		}
		return set
	}
	set := emptySet(n)
	if lp == nil {
		return set
	}
	switch {
	case m.Type == model.MatchEqual:
		set.or(ix.Postings(m.Name, m.Value))
	case m.Type == model.MatchRegexp && m.SetMatches() != nil:
		for _, v := range m.SetMatches() {
			if m.Matches(v) {
				set.or(ix.Postings(m.Name, v))
			}
		}
	default:
		for j, v := range lp.values {
			if m.Matches(v) {
				set.or(lp.lists[j])
			}
		}
	}
	return set
}

// LabelNames returns the sorted label names of the streams matching ms (all
// streams when ms is empty).
func (ix *Index) LabelNames(ms []*model.Matcher) []string {
	if len(ms) == 0 {
		return slices.Clone(ix.names)
	}
	set := ix.selectSet(ms)
	out := make([]string, 0, len(ix.names))
	for i, name := range ix.names {
		for _, list := range ix.labels[i].lists {
			if set.intersects(list) {
				out = append(out, name)
				break
			}
		}
	}
	return out
}

// LabelValues returns the sorted values of label name among the streams
// matching ms (all streams when ms is empty).
func (ix *Index) LabelValues(name string, ms []*model.Matcher) []string {
	i, ok := ix.byName[name]
	if !ok {
		return nil
	}
	lp := &ix.labels[i]
	if len(ms) == 0 {
		return slices.Clone(lp.values)
	}
	set := ix.selectSet(ms)
	out := make([]string, 0, len(lp.values))
	for j, v := range lp.values {
		if set.intersects(lp.lists[j]) {
			out = append(out, v)
		}
	}
	return out
}

// LabelNamesAll returns every label name, sorted; the slice is shared.
func (ix *Index) LabelNamesAll() []string { return ix.names }

// bitset is a set of stream IDs.
type bitset []uint64

func emptySet(n int) bitset { return make(bitset, (n+63)/64) }

func fullSet(n int) bitset {
	s := make(bitset, (n+63)/64)
	for i := range s {
		s[i] = ^uint64(0)
	}
	if r := n % 64; r != 0 {
		s[len(s)-1] = (1 << r) - 1
	}
	return s
}

func (s bitset) or(ids []uint32) {
	for _, id := range ids {
		s[id/64] |= 1 << (id % 64)
	}
}

func (s bitset) andNot(ids []uint32) {
	for _, id := range ids {
		s[id/64] &^= 1 << (id % 64)
	}
}

func (s bitset) and(o bitset) {
	for i := range s {
		s[i] &= o[i]
	}
}

func (s bitset) empty() bool {
	for _, w := range s {
		if w != 0 {
			return false
		}
	}
	return true
}

func (s bitset) count() int {
	c := 0
	for _, w := range s {
		c += bits.OnesCount64(w)
	}
	return c
}

func (s bitset) has(id uint32) bool { return s[id/64]&(1<<(id%64)) != 0 }

func (s bitset) intersects(ids []uint32) bool {
	for _, id := range ids {
		if s.has(id) {
			return true
		}
	}
	return false
}

func (s bitset) each(f func(id int)) {
	for i, w := range s {
		for w != 0 {
			f(i*64 + bits.TrailingZeros64(w))
			w &= w - 1
		}
	}
}
