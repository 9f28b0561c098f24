package syntax

import (
	"strconv"
	"strings"
	"time"
)

// RangeOp is a range aggregation function (LQ-R1…R8).
type RangeOp uint8

// Range aggregation functions.
const (
	RangeCount       RangeOp = iota // count_over_time
	RangeRate                       // rate
	RangeRateCounter                // rate_counter
	RangeBytes                      // bytes_over_time
	RangeBytesRate                  // bytes_rate
	RangeAvg                        // avg_over_time
	RangeSum                        // sum_over_time
	RangeMin                        // min_over_time
	RangeMax                        // max_over_time
	RangeStdvar                     // stdvar_over_time
	RangeStddev                     // stddev_over_time
	RangeQuantile                   // quantile_over_time
	RangeFirst                      // first_over_time
	RangeLast                       // last_over_time
	RangeAbsent                     // absent_over_time
)

var rangeOpNames = [...]string{
	RangeCount:       "count_over_time",
	RangeRate:        "rate",
	RangeRateCounter: "rate_counter",
	RangeBytes:       "bytes_over_time",
	RangeBytesRate:   "bytes_rate",
	RangeAvg:         "avg_over_time",
	RangeSum:         "sum_over_time",
	RangeMin:         "min_over_time",
	RangeMax:         "max_over_time",
	RangeStdvar:      "stdvar_over_time",
	RangeStddev:      "stddev_over_time",
	RangeQuantile:    "quantile_over_time",
	RangeFirst:       "first_over_time",
	RangeLast:        "last_over_time",
	RangeAbsent:      "absent_over_time",
}

func (op RangeOp) String() string {
	if int(op) < len(rangeOpNames) {
		return rangeOpNames[op]
	}
	return "range_op(" + strconv.Itoa(int(op)) + ")"
}

// rangeOpByName maps function names to range aggregations.
var rangeOpByName = func() map[string]RangeOp {
	m := make(map[string]RangeOp, len(rangeOpNames))
	for i, n := range rangeOpNames {
		m[n] = RangeOp(i)
	}
	return m
}()

// AllowsGrouping reports whether `by`/`without` may follow the aggregation
// (LQ-R10).
func (op RangeOp) AllowsGrouping() bool {
	switch op {
	case RangeAvg, RangeStddev, RangeStdvar, RangeQuantile, RangeMax, RangeMin, RangeFirst, RangeLast:
		return true
	}
	return false
}

// AllowsUnwrap reports whether the aggregation may take an unwrapped range.
func (op RangeOp) AllowsUnwrap() bool {
	switch op {
	case RangeAvg, RangeSum, RangeMax, RangeMin, RangeStddev, RangeStdvar, RangeQuantile,
		RangeRate, RangeRateCounter, RangeAbsent, RangeFirst, RangeLast:
		return true
	}
	return false
}

// AllowsLogRange reports whether the aggregation may take a range of log
// lines (no unwrap).
func (op RangeOp) AllowsLogRange() bool {
	switch op {
	case RangeCount, RangeRate, RangeBytes, RangeBytesRate, RangeAbsent:
		return true
	}
	return false
}

// LogRangeExpr is a log query over a time window: `{a="b"} | json [5m]`,
// optionally unwrapped and offset. The range may be written after the
// selector or after the pipeline; the canonical form puts it last.
type LogRangeExpr struct {
	Log    *LogExpr
	Range  time.Duration
	Offset time.Duration
	Unwrap *UnwrapExpr // nil: the samples are log lines
}

func (e *LogRangeExpr) String() string {
	var b strings.Builder
	b.WriteString(e.Log.String())
	if e.Unwrap != nil {
		b.WriteByte(' ')
		b.WriteString(e.Unwrap.String())
	}
	if len(e.Log.Stages) > 0 || e.Unwrap != nil {
		b.WriteByte(' ')
	}
	writeRange(&b, e.Range, e.Offset)
	return b.String()
}

func writeRange(b *strings.Builder, rng, off time.Duration) {
	b.WriteByte('[')
	b.WriteString(FormatDuration(rng))
	b.WriteByte(']')
	if off != 0 {
		b.WriteString(" offset ")
		b.WriteString(FormatDuration(off))
	}
}

// Walk implements Expr.
func (e *LogRangeExpr) Walk(f func(Expr) bool) {
	if !f(e) {
		return
	}
	e.Log.Walk(f)
	if e.Unwrap != nil {
		e.Unwrap.Walk(f)
	}
}

// Grouping is a `by (…)` or `without (…)` clause. An empty list is kept
// (`sum by () (…)`).
type Grouping struct {
	Without bool
	Labels  []string
}

func (g *Grouping) String() string {
	var b strings.Builder
	if g.Without {
		b.WriteString("without ")
	} else {
		b.WriteString("by ")
	}
	writeLabelList(&b, g.Labels)
	return b.String()
}

// RangeAggregationExpr is `fn([param,] logRange) [grouping]`.
type RangeAggregationExpr struct {
	Op       RangeOp
	Param    *float64 // quantile_over_time's φ; nil otherwise
	Left     *LogRangeExpr
	Grouping *Grouping // only for the ops where AllowsGrouping
}

func (e *RangeAggregationExpr) String() string {
	var b strings.Builder
	b.WriteString(e.Op.String())
	b.WriteByte('(')
	if e.Param != nil {
		b.WriteString(formatFloat(*e.Param))
		b.WriteString(", ")
	}
	b.WriteString(e.Left.String())
	b.WriteByte(')')
	if e.Grouping != nil {
		b.WriteByte(' ')
		b.WriteString(e.Grouping.String())
	}
	return b.String()
}

// Walk implements Expr.
func (e *RangeAggregationExpr) Walk(f func(Expr) bool) {
	if f(e) {
		e.Left.Walk(f)
	}
}

// VectorOp is a vector aggregation operator (LQ-V1…V4).
type VectorOp uint8

// Vector aggregation operators.
const (
	VectorSum VectorOp = iota
	VectorAvg
	VectorMin
	VectorMax
	VectorStddev
	VectorStdvar
	VectorCount
	VectorTopK
	VectorBottomK
	VectorSort
	VectorSortDesc
	VectorApproxTopK
)

var vectorOpNames = [...]string{
	VectorSum:        "sum",
	VectorAvg:        "avg",
	VectorMin:        "min",
	VectorMax:        "max",
	VectorStddev:     "stddev",
	VectorStdvar:     "stdvar",
	VectorCount:      "count",
	VectorTopK:       "topk",
	VectorBottomK:    "bottomk",
	VectorSort:       "sort",
	VectorSortDesc:   "sort_desc",
	VectorApproxTopK: "approx_topk",
}

func (op VectorOp) String() string {
	if int(op) < len(vectorOpNames) {
		return vectorOpNames[op]
	}
	return "vector_op(" + strconv.Itoa(int(op)) + ")"
}

var vectorOpByName = func() map[string]VectorOp {
	m := make(map[string]VectorOp, len(vectorOpNames))
	for i, n := range vectorOpNames {
		m[n] = VectorOp(i)
	}
	return m
}()

// HasParam reports whether the operator takes the integer parameter k.
func (op VectorOp) HasParam() bool {
	return op == VectorTopK || op == VectorBottomK || op == VectorApproxTopK
}

// VectorAggregationExpr is `op [grouping] ([k,] expr)`; the grouping may
// also follow the parentheses, the canonical form puts it first.
type VectorAggregationExpr struct {
	Op       VectorOp
	Param    int // k of topk, bottomk and approx_topk
	Inner    SampleExpr
	Grouping *Grouping
}

func (e *VectorAggregationExpr) String() string {
	var b strings.Builder
	b.WriteString(e.Op.String())
	if e.Grouping != nil {
		b.WriteByte(' ')
		b.WriteString(e.Grouping.String())
		b.WriteByte(' ')
	}
	b.WriteByte('(')
	if e.Op.HasParam() {
		b.WriteString(strconv.Itoa(e.Param))
		b.WriteString(", ")
	}
	b.WriteString(e.Inner.String())
	b.WriteByte(')')
	return b.String()
}

// Walk implements Expr.
func (e *VectorAggregationExpr) Walk(f func(Expr) bool) {
	if f(e) {
		e.Inner.Walk(f)
	}
}

// BinOp is a binary operator (LQ-B1…B3).
type BinOp uint8

// Binary operators.
const (
	OpOr BinOp = iota
	OpAnd
	OpUnless
	OpEq
	OpNeq
	OpGt
	OpGte
	OpLt
	OpLte
	OpAdd
	OpSub
	OpMul
	OpDiv
	OpMod
	OpPow
)

var binOpNames = [...]string{
	OpOr: "or", OpAnd: "and", OpUnless: "unless",
	OpEq: "==", OpNeq: "!=", OpGt: ">", OpGte: ">=", OpLt: "<", OpLte: "<=",
	OpAdd: "+", OpSub: "-", OpMul: "*", OpDiv: "/", OpMod: "%", OpPow: "^",
}

func (op BinOp) String() string {
	if int(op) < len(binOpNames) {
		return binOpNames[op]
	}
	return "binop(" + strconv.Itoa(int(op)) + ")"
}

// Precedence returns the binding strength of op, Prometheus' order
// (LQ-B5): or < and, unless < comparisons < + - < * / % < ^.
func (op BinOp) Precedence() int {
	switch op {
	case OpOr:
		return 1
	case OpAnd, OpUnless:
		return 2
	case OpEq, OpNeq, OpGt, OpGte, OpLt, OpLte:
		return 3
	case OpAdd, OpSub:
		return 4
	case OpMul, OpDiv, OpMod:
		return 5
	case OpPow:
		return 6
	}
	return 0
}

// IsComparison reports whether op is ==, !=, >, >=, < or <=.
func (op BinOp) IsComparison() bool { return op.Precedence() == 3 }

// IsSetOperator reports whether op is and, or or unless.
func (op BinOp) IsSetOperator() bool { return op == OpOr || op == OpAnd || op == OpUnless }

// RightAssociative reports whether op groups from the right (only ^).
func (op BinOp) RightAssociative() bool { return op == OpPow }

// Cardinality is the matching cardinality of a binary operation.
type Cardinality uint8

// Cardinalities; ManyToOne is group_left, OneToMany group_right.
const (
	OneToOne Cardinality = iota
	ManyToOne
	OneToMany
)

// VectorMatching is `on (…)`/`ignoring (…)` with an optional
// `group_left (…)`/`group_right (…)` (LQ-B4).
type VectorMatching struct {
	On      bool // false: ignoring
	Labels  []string
	Card    Cardinality
	Include []string // extra labels of the "one" side
}

func (m *VectorMatching) String() string {
	var b strings.Builder
	if m.On {
		b.WriteString("on ")
	} else {
		b.WriteString("ignoring ")
	}
	writeLabelList(&b, m.Labels)
	switch m.Card {
	case ManyToOne:
		b.WriteString(" group_left")
	case OneToMany:
		b.WriteString(" group_right")
	}
	if m.Card != OneToOne && len(m.Include) > 0 {
		b.WriteByte(' ')
		writeLabelList(&b, m.Include)
	}
	return b.String()
}

// BinOpExpr is `left op [bool] [matching] right`.
type BinOpExpr struct {
	Op          BinOp
	Left, Right SampleExpr
	ReturnBool  bool            // comparisons only
	Matching    *VectorMatching // nil: match on all labels
}

func (e *BinOpExpr) String() string {
	var b strings.Builder
	writeOperand(&b, e, e.Left, false)
	b.WriteByte(' ')
	b.WriteString(e.modifiers())
	b.WriteByte(' ')
	writeOperand(&b, e, e.Right, true)
	return b.String()
}

// modifiers prints the operator with bool and vector matching.
func (e *BinOpExpr) modifiers() string {
	s := e.Op.String()
	if e.ReturnBool {
		s += " bool"
	}
	if e.Matching != nil {
		s += " " + e.Matching.String()
	}
	return s
}

// needsParens reports whether child must be parenthesised as an operand of
// parent so that it parses back to the same tree.
func needsParens(parent *BinOpExpr, child SampleExpr, right bool) bool {
	c, ok := child.(*BinOpExpr)
	if !ok {
		return false
	}
	pp, cp := parent.Op.Precedence(), c.Op.Precedence()
	if cp != pp {
		return cp < pp
	}
	if parent.Op.RightAssociative() {
		return !right
	}
	return right
}

func writeOperand(b *strings.Builder, parent *BinOpExpr, child SampleExpr, right bool) {
	if needsParens(parent, child, right) {
		b.WriteByte('(')
		b.WriteString(child.String())
		b.WriteByte(')')
		return
	}
	b.WriteString(child.String())
}

// Walk implements Expr.
func (e *BinOpExpr) Walk(f func(Expr) bool) {
	if f(e) {
		e.Left.Walk(f)
		e.Right.Walk(f)
	}
}

// LiteralExpr is a scalar number (LQ-V7).
type LiteralExpr struct {
	Value float64
}

func (e *LiteralExpr) String() string { return formatFloat(e.Value) }

// Walk implements Expr.
func (e *LiteralExpr) Walk(f func(Expr) bool) { f(e) }

// VectorExpr is `vector(n)` (LQ-V6).
type VectorExpr struct {
	Value float64
}

func (e *VectorExpr) String() string { return "vector(" + formatFloat(e.Value) + ")" }

// Walk implements Expr.
func (e *VectorExpr) Walk(f func(Expr) bool) { f(e) }

// LabelReplaceExpr is `label_replace(expr, "dst", "replacement", "src", "regex")`
// (LQ-V5).
type LabelReplaceExpr struct {
	Left        SampleExpr
	Dst         string
	Replacement string
	Src         string
	Regex       string
}

func (e *LabelReplaceExpr) String() string {
	var b strings.Builder
	b.WriteString("label_replace(")
	b.WriteString(e.Left.String())
	for _, s := range []string{e.Dst, e.Replacement, e.Src, e.Regex} {
		b.WriteString(", ")
		b.WriteString(strconv.Quote(s))
	}
	b.WriteByte(')')
	return b.String()
}

// Walk implements Expr.
func (e *LabelReplaceExpr) Walk(f func(Expr) bool) {
	if f(e) {
		e.Left.Walk(f)
	}
}

func (*LogRangeExpr) isExpr()          {}
func (*RangeAggregationExpr) isExpr()  {}
func (*VectorAggregationExpr) isExpr() {}
func (*BinOpExpr) isExpr()             {}
func (*LiteralExpr) isExpr()           {}
func (*VectorExpr) isExpr()            {}
func (*LabelReplaceExpr) isExpr()      {}

func (*RangeAggregationExpr) isSampleExpr()  {}
func (*VectorAggregationExpr) isSampleExpr() {}
func (*BinOpExpr) isSampleExpr()             {}
func (*LiteralExpr) isSampleExpr()           {}
func (*VectorExpr) isSampleExpr()            {}
func (*LabelReplaceExpr) isSampleExpr()      {}
