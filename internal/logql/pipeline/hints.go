package pipeline

import (
	"slices"
	"strings"
)

// hints tell parsers which labels the rest of the query needs (Loki's
// "required labels"): in `sum by (currency) (rate({…} | json | amount > 10 [1m]))`
// the json parser only has to extract currency and amount. The zero value
// (and nil) extracts everything.
//
// hints are immutable and shared by every StreamPipeline of a Pipeline.
type hints struct {
	// required are the label names to extract; nil means all.
	required []string
	// none: no label is needed at all (parsers still report errors).
	none bool
}

func (h *hints) all() bool { return h == nil || (h.required == nil && !h.none) }

// shouldExtract reports whether a parser should extract the label name.
// Parsers cache the answer per key, so it depends on the name only.
func (h *hints) shouldExtract(name string) bool {
	if h.all() {
		return true
	}
	return slices.Contains(h.required, name)
}

// shouldExtractPrefix reports whether a nested JSON object whose labels all
// start with prefix may hold a needed label.
func (h *hints) shouldExtractPrefix(prefix string) bool {
	if h.all() {
		return true
	}
	for _, r := range h.required {
		if strings.HasPrefix(r, prefix) {
			return true
		}
	}
	return false
}

// isRequired reports whether name counts towards allExtracted.
func (h *hints) isRequired(name string) bool {
	return !h.all() && slices.Contains(h.required, name)
}

// allExtracted reports whether a parser may stop: every required label was
// extracted on this line.
func (h *hints) allExtracted(l *Labels) bool {
	return !h.all() && len(h.required) > 0 && l.extractedRequired >= len(h.required)
}

// newHints builds the hints of a metric query: the labels the pipeline's own
// stages read (unknown when a template reads labels dynamically), the
// grouping labels, the unwrapped label and the post-unwrap filters' labels.
// Without a by-grouping every label may end up in a series, so everything
// is extracted unless noLabels says the caller drops all labels.
func newHints(stagesNeed []string, stagesKnown bool, grouping []string, without, noLabels bool, extra ...string) *hints {
	if !stagesKnown {
		return nil
	}
	if !noLabels && (without || grouping == nil) {
		return nil
	}
	var req []string
	add := func(names ...string) {
		for _, n := range names {
			if n == "" || slices.Contains(req, n) {
				continue
			}
			req = append(req, n)
			// A label asked for as x_extracted is extracted from key x.
			if t, ok := strings.CutSuffix(n, extractedSuffix); ok && t != "" && !slices.Contains(req, t) {
				req = append(req, t)
			}
		}
	}
	add(stagesNeed...)
	add(extra...)
	if !noLabels {
		add(grouping...)
	}
	if len(req) == 0 {
		return &hints{none: true, required: []string{}}
	}
	return &hints{required: req}
}
