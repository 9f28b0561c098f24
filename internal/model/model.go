// Package model owns the domain types every other package shares: label sets,
// matchers, log entries, streams, tenants and half-open time ranges. It has no
// dependencies on storage, the network or configuration.
package model

import (
	"math"

	"github.com/prometheus/prometheus/model/labels"
)

// Labels is an immutable, sorted set of label pairs. It is Prometheus'
// string-backed label set; callers must treat it as opaque and use its
// methods (Get, Range, Hash, String) rather than index into it.
type Labels = labels.Labels

// Label is one name/value pair.
type Label = labels.Label

// Matcher is one stream matcher (=, !=, =~, !~). Regexp matchers are
// anchored and optimised by Prometheus' FastRegexMatcher.
type Matcher = labels.Matcher

// MatchType is the operator of a Matcher.
type MatchType = labels.MatchType

// Matcher operators.
const (
	MatchEqual     = labels.MatchEqual
	MatchNotEqual  = labels.MatchNotEqual
	MatchRegexp    = labels.MatchRegexp
	MatchNotRegexp = labels.MatchNotRegexp
)

// NewMatcher returns a matcher; it fails only for an invalid regexp.
func NewMatcher(t MatchType, name, value string) (*Matcher, error) {
	return labels.NewMatcher(t, name, value)
}

// LabelsFromMap builds a sorted label set from a map.
func LabelsFromMap(m map[string]string) Labels { return labels.FromMap(m) }

// LabelsFromStrings builds a label set from name, value pairs.
func LabelsFromStrings(ss ...string) Labels { return labels.FromStrings(ss...) }

// EmptyLabels returns the empty label set.
func EmptyLabels() Labels { return labels.EmptyLabels() }

// NewLabelsBuilder returns a builder seeded with base.
func NewLabelsBuilder(base Labels) *labels.Builder { return labels.NewBuilder(base) }

// Entry is one log line. Timestamp is Unix nanoseconds. Metadata holds the
// entry's structured metadata (not part of the stream identity).
type Entry struct {
	Timestamp int64
	Line      string
	Metadata  Labels
}

// Stream is a label set and entries belonging to it.
type Stream struct {
	Labels  Labels
	Entries []Entry
}

// TenantFake is the tenant used when authentication is disabled, as in Loki.
const TenantFake = "fake"

// TenantLabel is added to every series of a multi-tenant (a|b) read.
const TenantLabel = "__tenant_id__"

// TimeRange is the half-open interval [Min, Max) of Unix nanoseconds.
type TimeRange struct {
	Min, Max int64
}

// AllTime covers every representable timestamp.
var AllTime = TimeRange{Min: math.MinInt64, Max: math.MaxInt64}

// Contains reports whether ts lies in [Min, Max).
func (r TimeRange) Contains(ts int64) bool { return ts >= r.Min && ts < r.Max }

// Overlaps reports whether the closed interval [mint, maxt] shares a point
// with r.
func (r TimeRange) Overlaps(mint, maxt int64) bool { return mint < r.Max && maxt >= r.Min }

// Direction orders entries of a log query.
type Direction uint8

// Directions; Backward (newest first) is Loki's default.
const (
	Backward Direction = iota
	Forward
)

func (d Direction) String() string {
	if d == Forward {
		return "forward"
	}
	return "backward"
}

// MatchLabels reports whether ls satisfies every matcher.
func MatchLabels(ls Labels, ms []*Matcher) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}
