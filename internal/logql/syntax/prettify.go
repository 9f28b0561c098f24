package syntax

import (
	"strconv"
	"strings"
)

// prettyWidth is the line length up to which an expression stays on one
// line.
const prettyWidth = 100

// Prettify formats e over several lines for /loki/api/v1/format_query
// (LQ-X5): an expression that fits in 100 columns stays on one line; longer
// ones put each pipeline stage, aggregation argument and binary operand on
// its own line, indented by two spaces per level. The result parses back to
// the same tree as e.String().
func Prettify(e Expr) string {
	var b strings.Builder
	pretty(&b, e, 0)
	return b.String()
}

func writeIndent(b *strings.Builder, level int) {
	for i := 0; i < level; i++ {
		b.WriteString("  ")
	}
}

func pretty(b *strings.Builder, e Expr, level int) {
	s := e.String()
	if len(s)+2*level <= prettyWidth {
		writeIndent(b, level)
		b.WriteString(s)
		return
	}
	switch x := e.(type) {
	case *LogExpr:
		prettyLog(b, x, nil, level)
	case *LogRangeExpr:
		prettyLog(b, x.Log, x.Unwrap, level)
		b.WriteByte(' ')
		writeRange(b, x.Range, x.Offset)
	case *RangeAggregationExpr:
		writeIndent(b, level)
		b.WriteString(x.Op.String())
		b.WriteString("(\n")
		if x.Param != nil {
			writeIndent(b, level+1)
			b.WriteString(formatFloat(*x.Param))
			b.WriteString(",\n")
		}
		pretty(b, x.Left, level+1)
		b.WriteByte('\n')
		writeIndent(b, level)
		b.WriteByte(')')
		if x.Grouping != nil {
			b.WriteByte(' ')
			b.WriteString(x.Grouping.String())
		}
	case *VectorAggregationExpr:
		writeIndent(b, level)
		b.WriteString(x.Op.String())
		if x.Grouping != nil {
			b.WriteByte(' ')
			b.WriteString(x.Grouping.String())
			b.WriteByte(' ')
		}
		b.WriteString("(\n")
		if x.Op.HasParam() {
			writeIndent(b, level+1)
			b.WriteString(strconv.Itoa(x.Param))
			b.WriteString(",\n")
		}
		pretty(b, x.Inner, level+1)
		b.WriteByte('\n')
		writeIndent(b, level)
		b.WriteByte(')')
	case *BinOpExpr:
		prettyOperand(b, x, x.Left, false, level)
		b.WriteByte('\n')
		writeIndent(b, level)
		b.WriteString(x.modifiers())
		b.WriteByte('\n')
		prettyOperand(b, x, x.Right, true, level)
	case *LabelReplaceExpr:
		writeIndent(b, level)
		b.WriteString("label_replace(\n")
		pretty(b, x.Left, level+1)
		for _, a := range []string{x.Dst, x.Replacement, x.Src, x.Regex} {
			b.WriteString(",\n")
			writeIndent(b, level+1)
			b.WriteString(strconv.Quote(a))
		}
		b.WriteByte('\n')
		writeIndent(b, level)
		b.WriteByte(')')
	default:
		writeIndent(b, level)
		b.WriteString(s)
	}
}

// prettyLog writes the selector on one line and each stage on its own
// line one level deeper.
func prettyLog(b *strings.Builder, e *LogExpr, u *UnwrapExpr, level int) {
	writeIndent(b, level)
	writeMatchers(b, e.Selector)
	for _, s := range e.Stages {
		b.WriteByte('\n')
		writeIndent(b, level+1)
		b.WriteString(s.String())
	}
	if u == nil {
		return
	}
	b.WriteByte('\n')
	writeIndent(b, level+1)
	b.WriteString((&UnwrapExpr{Label: u.Label, Conv: u.Conv}).String())
	for _, f := range u.PostFilters {
		b.WriteByte('\n')
		writeIndent(b, level+1)
		b.WriteString(f.String())
	}
}

func prettyOperand(b *strings.Builder, parent *BinOpExpr, child SampleExpr, right bool, level int) {
	if !needsParens(parent, child, right) {
		pretty(b, child, level)
		return
	}
	writeIndent(b, level)
	b.WriteString("(\n")
	pretty(b, child, level+1)
	b.WriteByte('\n')
	writeIndent(b, level)
	b.WriteByte(')')
}
