package syntax

import (
	"strings"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Expr is any node of a parsed LogQL query: a log query, a metric query, or
// one of their parts (a pipeline stage, a log range). Nodes are immutable
// after parsing and safe for concurrent reads.
type Expr interface {
	// String prints canonical LogQL; parsing it gives back an equal tree.
	String() string
	// Walk calls f for this node and then, while f returns true, for its
	// children, depth first in source order.
	Walk(f func(Expr) bool)

	isExpr()
}

// LogSelectorExpr is a log query: a stream selector and its pipeline
// (`{app="api"} |= "error" | json | level="error"`).
type LogSelectorExpr interface {
	Expr
	// Matchers returns the stream selector's matchers (shared; do not modify).
	Matchers() []*model.Matcher
	// Pipeline returns the stages after the selector, in order (shared; do
	// not modify).
	Pipeline() []Stage
}

// SampleExpr is a metric query: it evaluates to samples (a vector, a matrix
// or a scalar) rather than log lines.
type SampleExpr interface {
	Expr
	isSampleExpr()
}

// Stage is one pipeline stage: a line filter, a parser, a label filter or a
// formatting stage.
type Stage interface {
	Expr
	isStage()
}

// Walk calls f for e and its descendants (see Expr.Walk). It is a
// convenience for callers that hold an Expr that may be nil.
func Walk(e Expr, f func(Expr) bool) {
	if e != nil {
		e.Walk(f)
	}
}

// Selectors returns every log selector of e in source order: e itself for a
// log query, the selectors inside range aggregations for a metric query.
func Selectors(e Expr) []LogSelectorExpr {
	var out []LogSelectorExpr
	Walk(e, func(x Expr) bool {
		if s, ok := x.(LogSelectorExpr); ok {
			out = append(out, s)
			return false
		}
		return true
	})
	return out
}

// writeMatchers prints {a="b", c=~"d"}.
func writeMatchers(b *strings.Builder, ms []*model.Matcher) {
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteString(", ")
		}
		writeMatcher(b, m, false)
	}
	b.WriteByte('}')
}

func writeMatcher(b *strings.Builder, m *model.Matcher, raw bool) {
	b.WriteString(m.Name)
	b.WriteString(m.Type.String())
	b.WriteString(quote(m.Value, raw))
}

func writeLabelList(b *strings.Builder, names []string) {
	b.WriteByte('(')
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n)
	}
	b.WriteByte(')')
}
