package syntax

import (
	"strings"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// LogExpr is the one implementation of LogSelectorExpr: a stream selector
// and its pipeline.
type LogExpr struct {
	Selector []*model.Matcher
	Stages   []Stage
}

// Matchers implements LogSelectorExpr.
func (e *LogExpr) Matchers() []*model.Matcher { return e.Selector }

// Pipeline implements LogSelectorExpr.
func (e *LogExpr) Pipeline() []Stage { return e.Stages }

func (e *LogExpr) String() string {
	var b strings.Builder
	writeMatchers(&b, e.Selector)
	for _, s := range e.Stages {
		b.WriteByte(' ')
		b.WriteString(s.String())
	}
	return b.String()
}

// Walk implements Expr.
func (e *LogExpr) Walk(f func(Expr) bool) {
	if !f(e) {
		return
	}
	for _, s := range e.Stages {
		s.Walk(f)
	}
}

// LineFilterOp is the operator of a line filter.
type LineFilterOp uint8

// Line filter operators (LQ-F1…F4).
const (
	LineContains    LineFilterOp = iota // |=
	LineNotContains                     // !=
	LineRegexp                          // |~
	LineNotRegexp                       // !~
	LinePattern                         // |>
	LineNotPattern                      // !>
)

func (op LineFilterOp) String() string {
	switch op {
	case LineContains:
		return "|="
	case LineNotContains:
		return "!="
	case LineRegexp:
		return "|~"
	case LineNotRegexp:
		return "!~"
	case LinePattern:
		return "|>"
	case LineNotPattern:
		return "!>"
	}
	return "?"
}

// Negated reports whether the operator keeps lines that do not match.
func (op LineFilterOp) Negated() bool {
	return op == LineNotContains || op == LineNotRegexp || op == LineNotPattern
}

// LineFilterExpr is a line filter stage: `|= "a"`, `!~ "re"`, `|> "<_> x"`,
// `|= ip("10.0.0.0/8")`, or an or-chain of values under one operator
// (`|= "a" or "b"`, LQ-F5). A positive operator keeps a line when any value
// matches; a negated one when none does.
type LineFilterExpr struct {
	Op     LineFilterOp
	Values []LineFilterValue // at least one
}

// LineFilterValue is one alternative of a line filter: a string (substring,
// regexp or pattern, by the operator) or an ip("…") pattern.
type LineFilterValue struct {
	Value string
	IP    bool // ip("…"): Value is an address, range or CIDR (LQ-F7)
	Raw   bool // written as a backtick string
}

func (e *LineFilterExpr) String() string {
	var b strings.Builder
	b.WriteString(e.Op.String())
	for i, v := range e.Values {
		if i > 0 {
			b.WriteString(" or")
		}
		b.WriteByte(' ')
		if v.IP {
			b.WriteString("ip(")
			b.WriteString(quote(v.Value, v.Raw))
			b.WriteByte(')')
			continue
		}
		b.WriteString(quote(v.Value, v.Raw))
	}
	return b.String()
}

// LabelExtraction is one `label="expression"` parameter of the json and
// logfmt parsers; a bare `label` means the expression is the label name.
type LabelExtraction struct {
	Label string
	Expr  string
	Raw   bool
}

func writeExtractions(b *strings.Builder, ps []LabelExtraction) {
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte(' ')
		b.WriteString(p.Label)
		if p.Expr != p.Label || p.Raw {
			b.WriteByte('=')
			b.WriteString(quote(p.Expr, p.Raw))
		}
	}
}

// JSONParserExpr is `| json` (LQ-P1) or `| json a="x.y", b` (LQ-P2).
type JSONParserExpr struct {
	Params []LabelExtraction // empty: extract every key
}

func (e *JSONParserExpr) String() string {
	var b strings.Builder
	b.WriteString("| json")
	writeExtractions(&b, e.Params)
	return b.String()
}

// LogfmtParserExpr is `| logfmt [--strict] [--keep-empty] [params]` (LQ-P3).
type LogfmtParserExpr struct {
	Strict    bool
	KeepEmpty bool
	Params    []LabelExtraction // empty: extract every pair
}

func (e *LogfmtParserExpr) String() string {
	var b strings.Builder
	b.WriteString("| logfmt")
	if e.Strict {
		b.WriteString(" --strict")
	}
	if e.KeepEmpty {
		b.WriteString(" --keep-empty")
	}
	writeExtractions(&b, e.Params)
	return b.String()
}

// RegexpParserExpr is `| regexp "(?P<name>…)"` (LQ-P4).
type RegexpParserExpr struct {
	Regexp string
	Raw    bool
}

func (e *RegexpParserExpr) String() string { return "| regexp " + quote(e.Regexp, e.Raw) }

// PatternParserExpr is `| pattern "<ip> - <_>"` (LQ-P5).
type PatternParserExpr struct {
	Pattern string
	Raw     bool
}

func (e *PatternParserExpr) String() string { return "| pattern " + quote(e.Pattern, e.Raw) }

// UnpackParserExpr is `| unpack` (LQ-P6).
type UnpackParserExpr struct{}

func (e *UnpackParserExpr) String() string { return "| unpack" }

// LabelFilterExpr is a label filter stage (`| status >= 400 and level="error"`).
type LabelFilterExpr struct {
	Filter LabelFilter
}

func (e *LabelFilterExpr) String() string { return "| " + e.Filter.String() }

// LineFormatExpr is `| line_format "{{.a}}"` (LQ-T1).
type LineFormatExpr struct {
	Template string
	Raw      bool
}

func (e *LineFormatExpr) String() string { return "| line_format " + quote(e.Template, e.Raw) }

// LabelFormat is one item of label_format: `dst=src` renames (Rename is set
// and Value is the source label), `dst="{{…}}"` sets dst from a template.
type LabelFormat struct {
	Name   string
	Value  string
	Rename bool
	Raw    bool
}

// LabelFormatExpr is `| label_format a=b, c="{{.d}}"` (LQ-T2).
type LabelFormatExpr struct {
	Formats []LabelFormat
}

func (e *LabelFormatExpr) String() string {
	var b strings.Builder
	b.WriteString("| label_format ")
	for i, f := range e.Formats {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Name)
		b.WriteByte('=')
		if f.Rename {
			b.WriteString(f.Value)
		} else {
			b.WriteString(quote(f.Value, f.Raw))
		}
	}
	return b.String()
}

// NamedMatcher is one item of drop or keep: a bare label name (Matcher is
// nil) or a matcher that limits the stage to matching values.
type NamedMatcher struct {
	Name    string
	Matcher *model.Matcher
	Raw     bool
}

func writeNamedMatchers(b *strings.Builder, ms []NamedMatcher) {
	for i, m := range ms {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteByte(' ')
		if m.Matcher == nil {
			b.WriteString(m.Name)
			continue
		}
		writeMatcher(b, m.Matcher, m.Raw)
	}
}

// DropLabelsExpr is `| drop a, b="v", c=~"re"` (LQ-T4).
type DropLabelsExpr struct {
	Labels []NamedMatcher
}

func (e *DropLabelsExpr) String() string {
	var b strings.Builder
	b.WriteString("| drop")
	writeNamedMatchers(&b, e.Labels)
	return b.String()
}

// KeepLabelsExpr is `| keep a, b="v"` (LQ-T5).
type KeepLabelsExpr struct {
	Labels []NamedMatcher
}

func (e *KeepLabelsExpr) String() string {
	var b strings.Builder
	b.WriteString("| keep")
	writeNamedMatchers(&b, e.Labels)
	return b.String()
}

// DecolorizeExpr is `| decolorize` (LQ-T6).
type DecolorizeExpr struct{}

func (e *DecolorizeExpr) String() string { return "| decolorize" }

// UnwrapConv is the conversion of an unwrapped label value (LQ-R9).
type UnwrapConv uint8

// Unwrap conversions.
const (
	UnwrapFloat           UnwrapConv = iota // unwrap x
	UnwrapDuration                          // unwrap duration(x)
	UnwrapDurationSeconds                   // unwrap duration_seconds(x)
	UnwrapBytes                             // unwrap bytes(x)
)

func (c UnwrapConv) String() string {
	switch c {
	case UnwrapDuration:
		return "duration"
	case UnwrapDurationSeconds:
		return "duration_seconds"
	case UnwrapBytes:
		return "bytes"
	}
	return ""
}

// UnwrapExpr is `| unwrap x` with the label filters that may follow it
// (LQ-R9). It appears only inside a LogRangeExpr.
type UnwrapExpr struct {
	Label       string
	Conv        UnwrapConv
	PostFilters []*LabelFilterExpr
}

func (e *UnwrapExpr) String() string {
	var b strings.Builder
	b.WriteString("| unwrap ")
	if e.Conv == UnwrapFloat {
		b.WriteString(e.Label)
	} else {
		b.WriteString(e.Conv.String())
		b.WriteByte('(')
		b.WriteString(e.Label)
		b.WriteByte(')')
	}
	for _, f := range e.PostFilters {
		b.WriteByte(' ')
		b.WriteString(f.String())
	}
	return b.String()
}

// Walk implements Expr.
func (e *UnwrapExpr) Walk(f func(Expr) bool) {
	if !f(e) {
		return
	}
	for _, p := range e.PostFilters {
		p.Walk(f)
	}
}

// LabelFilter is a predicate over the labels of a line; the leaves are
// typed (string, number, duration, bytes, ip) and BinaryLabelFilter joins
// them with and/or (LQ-LF1…LF7).
type LabelFilter interface {
	String() string
	isLabelFilter()
}

// BinaryLabelFilter joins two label filters; `and` (also written `,` or by
// juxtaposition) binds tighter than `or`.
type BinaryLabelFilter struct {
	And         bool // false: or
	Left, Right LabelFilter
}

// StringLabelFilter is `name op "value"` with =, !=, =~ or !~.
type StringLabelFilter struct {
	Matcher *model.Matcher
	Raw     bool
}

// CmpOp is a comparison of a typed label filter.
type CmpOp uint8

// Comparison operators.
const (
	CmpEq  CmpOp = iota // == (also written =)
	CmpNeq              // !=
	CmpGt               // >
	CmpGte              // >=
	CmpLt               // <
	CmpLte              // <=
)

func (op CmpOp) String() string {
	switch op {
	case CmpEq:
		return "=="
	case CmpNeq:
		return "!="
	case CmpGt:
		return ">"
	case CmpGte:
		return ">="
	case CmpLt:
		return "<"
	case CmpLte:
		return "<="
	}
	return "?"
}

// NumericLabelFilter compares a label's value parsed as a float64.
type NumericLabelFilter struct {
	Name  string
	Op    CmpOp
	Value float64
}

// DurationLabelFilter compares a label's value parsed as a duration.
type DurationLabelFilter struct {
	Name  string
	Op    CmpOp
	Value time.Duration
}

// BytesLabelFilter compares a label's value parsed as a humanized byte size.
type BytesLabelFilter struct {
	Name  string
	Op    CmpOp
	Value uint64
}

// IPLabelFilter is `name = ip("…")` or `name != ip("…")` (LQ-LF6).
type IPLabelFilter struct {
	Name    string
	Negate  bool
	Pattern string
	Raw     bool
}

func (f *StringLabelFilter) String() string {
	var b strings.Builder
	writeMatcher(&b, f.Matcher, f.Raw)
	return b.String()
}

func (f *NumericLabelFilter) String() string {
	return f.Name + " " + f.Op.String() + " " + formatFloat(f.Value)
}

func (f *DurationLabelFilter) String() string {
	return f.Name + " " + f.Op.String() + " " + FormatDuration(f.Value)
}

func (f *BytesLabelFilter) String() string {
	return f.Name + " " + f.Op.String() + " " + formatBytes(f.Value)
}

func (f *IPLabelFilter) String() string {
	op := " = "
	if f.Negate {
		op = " != "
	}
	return f.Name + op + "ip(" + quote(f.Pattern, f.Raw) + ")"
}

func labelFilterPrec(f LabelFilter) int {
	if b, ok := f.(*BinaryLabelFilter); ok {
		if b.And {
			return 2
		}
		return 1
	}
	return 3
}

func (f *BinaryLabelFilter) String() string {
	var b strings.Builder
	p := labelFilterPrec(f)
	writeSide := func(x LabelFilter, right bool) {
		xp := labelFilterPrec(x)
		if xp < p || (right && xp == p) {
			b.WriteByte('(')
			b.WriteString(x.String())
			b.WriteByte(')')
			return
		}
		b.WriteString(x.String())
	}
	writeSide(f.Left, false)
	if f.And {
		b.WriteString(" and ")
	} else {
		b.WriteString(" or ")
	}
	writeSide(f.Right, true)
	return b.String()
}

func (*BinaryLabelFilter) isLabelFilter()   {}
func (*StringLabelFilter) isLabelFilter()   {}
func (*NumericLabelFilter) isLabelFilter()  {}
func (*DurationLabelFilter) isLabelFilter() {}
func (*BytesLabelFilter) isLabelFilter()    {}
func (*IPLabelFilter) isLabelFilter()       {}

// Leaf stages walk only themselves.
func (e *LineFilterExpr) Walk(f func(Expr) bool)    { f(e) }
func (e *JSONParserExpr) Walk(f func(Expr) bool)    { f(e) }
func (e *LogfmtParserExpr) Walk(f func(Expr) bool)  { f(e) }
func (e *RegexpParserExpr) Walk(f func(Expr) bool)  { f(e) }
func (e *PatternParserExpr) Walk(f func(Expr) bool) { f(e) }
func (e *UnpackParserExpr) Walk(f func(Expr) bool)  { f(e) }
func (e *LabelFilterExpr) Walk(f func(Expr) bool)   { f(e) }
func (e *LineFormatExpr) Walk(f func(Expr) bool)    { f(e) }
func (e *LabelFormatExpr) Walk(f func(Expr) bool)   { f(e) }
func (e *DropLabelsExpr) Walk(f func(Expr) bool)    { f(e) }
func (e *KeepLabelsExpr) Walk(f func(Expr) bool)    { f(e) }
func (e *DecolorizeExpr) Walk(f func(Expr) bool)    { f(e) }

func (*LogExpr) isExpr()           {}
func (*LineFilterExpr) isExpr()    {}
func (*JSONParserExpr) isExpr()    {}
func (*LogfmtParserExpr) isExpr()  {}
func (*RegexpParserExpr) isExpr()  {}
func (*PatternParserExpr) isExpr() {}
func (*UnpackParserExpr) isExpr()  {}
func (*LabelFilterExpr) isExpr()   {}
func (*LineFormatExpr) isExpr()    {}
func (*LabelFormatExpr) isExpr()   {}
func (*DropLabelsExpr) isExpr()    {}
func (*KeepLabelsExpr) isExpr()    {}
func (*DecolorizeExpr) isExpr()    {}
func (*UnwrapExpr) isExpr()        {}

func (*LineFilterExpr) isStage()    {}
func (*JSONParserExpr) isStage()    {}
func (*LogfmtParserExpr) isStage()  {}
func (*RegexpParserExpr) isStage()  {}
func (*PatternParserExpr) isStage() {}
func (*UnpackParserExpr) isStage()  {}
func (*LabelFilterExpr) isStage()   {}
func (*LineFormatExpr) isStage()    {}
func (*LabelFormatExpr) isStage()   {}
func (*DropLabelsExpr) isStage()    {}
func (*KeepLabelsExpr) isStage()    {}
func (*DecolorizeExpr) isStage()    {}
