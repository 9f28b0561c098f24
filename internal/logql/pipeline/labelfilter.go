package pipeline

import (
	"fmt"
	"strconv"
	"time"

	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// labelPredicate evaluates a label filter on an entry's labels. Typed
// predicates may set __error__=LabelFilterErr when a value does not convert;
// such an entry is kept (LQ-LF2). Predicates are immutable and safe for
// concurrent use.
type labelPredicate interface {
	eval(l *Labels) bool
	names(dst []string) []string
}

func compileLabelFilter(f lql.LabelFilter) (labelPredicate, error) {
	switch x := f.(type) {
	case *lql.BinaryLabelFilter:
		left, err := compileLabelFilter(x.Left)
		if err != nil {
			return nil, err
		}
		right, err := compileLabelFilter(x.Right)
		if err != nil {
			return nil, err
		}
		return &binaryPred{and: x.And, left: left, right: right}, nil
	case *lql.StringLabelFilter:
		m := x.Matcher
		if m.Type == model.MatchRegexp || m.Type == model.MatchNotRegexp {
			// Rebuild so a programmatically built matcher gets its regexp
			// compiled (and its error reported).
			nm, err := model.NewMatcher(m.Type, m.Name, m.Value)
			if err != nil {
				return nil, fmt.Errorf("label filter %s: %w", x.String(), err)
			}
			m = nm
		}
		return &stringPred{m: m}, nil
	case *lql.NumericLabelFilter:
		return &numericPred{name: x.Name, op: x.Op, value: x.Value}, nil
	case *lql.DurationLabelFilter:
		return &durationPred{name: x.Name, op: x.Op, value: x.Value}, nil
	case *lql.BytesLabelFilter:
		return &bytesPred{name: x.Name, op: x.Op, value: x.Value}, nil
	case *lql.IPLabelFilter:
		r, err := newIPRange(x.Pattern)
		if err != nil {
			return nil, err
		}
		return &ipPred{name: x.Name, negate: x.Negate, r: r}, nil
	}
	return nil, fmt.Errorf("unsupported label filter %T", f)
}

// binaryPred is and/or. Like Loki, both sides of an and are evaluated (a
// conversion error on the right is recorded even when the left is false);
// or stops at the first true side.
type binaryPred struct {
	and         bool
	left, right labelPredicate
}

func (p *binaryPred) eval(l *Labels) bool {
	lok := p.left.eval(l)
	if !p.and && lok {
		return true
	}
	rok := p.right.eval(l)
	if p.and {
		return lok && rok
	}
	return rok
}

func (p *binaryPred) names(dst []string) []string {
	return p.right.names(p.left.names(dst))
}

// stringPred is a string matcher; a missing label compares as "". It is the
// only filter that can drop entries by __error__ (LQ-LF7).
type stringPred struct{ m *model.Matcher }

func (p *stringPred) eval(l *Labels) bool {
	v, _ := l.Get(p.m.Name)
	return p.m.Matches(v)
}

func (p *stringPred) names(dst []string) []string { return append(dst, p.m.Name) }

// compare applies a comparison operator.
func compare[T int64 | uint64 | float64](op lql.CmpOp, a, b T) bool {
	switch op {
	case lql.CmpEq:
		return a == b
	case lql.CmpNeq:
		return a != b
	case lql.CmpGt:
		return a > b
	case lql.CmpGte:
		return a >= b
	case lql.CmpLt:
		return a < b
	case lql.CmpLte:
		return a <= b
	}
	return false
}

// filterError records a conversion failure unless an earlier, likely more
// useful, error is set; the entry is kept.
func filterError(l *Labels, err error) bool {
	if l.err == "" {
		l.setErr(ErrLabelFilter, err.Error())
	}
	return true
}

type numericPred struct {
	name  string
	op    lql.CmpOp
	value float64
}

func (p *numericPred) eval(l *Labels) bool {
	v, ok := l.Get(p.name)
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return filterError(l, err)
	}
	return compare(p.op, f, p.value)
}

func (p *numericPred) names(dst []string) []string { return append(dst, p.name) }

// durationPred compares a Go duration ("250ms", "1h30m").
type durationPred struct {
	name  string
	op    lql.CmpOp
	value time.Duration
}

func (p *durationPred) eval(l *Labels) bool {
	v, ok := l.Get(p.name)
	if !ok {
		return false
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return filterError(l, err)
	}
	return compare(p.op, int64(d), int64(p.value))
}

func (p *durationPred) names(dst []string) []string { return append(dst, p.name) }

// bytesPred compares a humanized byte size ("20MB", "1.5KiB", "42").
type bytesPred struct {
	name  string
	op    lql.CmpOp
	value uint64
}

func (p *bytesPred) eval(l *Labels) bool {
	v, ok := l.Get(p.name)
	if !ok {
		return false
	}
	b, err := parseBytes(v)
	if err != nil {
		return filterError(l, err)
	}
	return compare(p.op, b, p.value)
}

func (p *bytesPred) names(dst []string) []string { return append(dst, p.name) }

// parseBytes parses a humanized byte size, with an error text naming the
// value.
func parseBytes(v string) (uint64, error) {
	b, err := lql.ParseBytes(v)
	if err != nil {
		return 0, fmt.Errorf("unhandled size name or number: %q", v)
	}
	return b, nil
}

// ipPred is `label = ip("…")` / `!= ip("…")` (LQ-LF6). An entry that already
// has an error is kept; a missing label does not match.
type ipPred struct {
	name   string
	negate bool
	r      *ipRange
}

func (p *ipPred) eval(l *Labels) bool {
	if l.err != "" {
		return true
	}
	v, ok := l.Get(p.name)
	if !ok {
		return false
	}
	return p.r.inText(stringBytes(v)) != p.negate
}

func (p *ipPred) names(dst []string) []string { return append(dst, p.name) }
