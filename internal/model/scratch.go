package model

import (
	"sort"

	"github.com/prometheus/prometheus/model/labels"
)

// Scratch collects label pairs in any order and turns them into a sorted
// Labels, reporting a duplicate name. It is cheaper than labels.Builder for
// building a label set from scratch.
type Scratch struct {
	pairs []Label
}

// NewScratch returns an empty Scratch.
func NewScratch() *Scratch { return &Scratch{pairs: make([]Label, 0, 8)} }

// Add appends a pair.
func (s *Scratch) Add(name, value string) { s.pairs = append(s.pairs, Label{Name: name, Value: value}) }

// Reset empties the Scratch for reuse.
func (s *Scratch) Reset() { s.pairs = s.pairs[:0] }

// Len is the number of pairs added.
func (s *Scratch) Len() int { return len(s.pairs) }

// Labels sorts the pairs and returns them as Labels. dup names the first
// duplicated label name, or is empty.
func (s *Scratch) Labels() (ls Labels, dup string) {
	sort.Slice(s.pairs, func(i, j int) bool { return s.pairs[i].Name < s.pairs[j].Name })
	for i := 1; i < len(s.pairs); i++ {
		if s.pairs[i].Name == s.pairs[i-1].Name {
			return EmptyLabels(), s.pairs[i].Name
		}
	}
	return labels.New(s.pairs...), ""
}
