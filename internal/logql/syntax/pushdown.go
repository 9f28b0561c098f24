package syntax

import (
	"regexp/syntax"
	"strings"
)

// LineFilters returns the line filters of e that storage may apply to the
// stored line before running the pipeline: every line filter that comes
// before the first stage that rewrites the line (line_format, decolorize,
// unpack). Parsers, label filters and label stages do not change the line
// and only ever drop lines, so line filters commute with them. The result
// shares e's nodes; do not modify them.
func LineFilters(e LogSelectorExpr) []*LineFilterExpr {
	var out []*LineFilterExpr
	for _, s := range e.Pipeline() {
		switch x := s.(type) {
		case *LineFilterExpr:
			out = append(out, x)
		case *LineFormatExpr, *DecolorizeExpr, *UnpackParserExpr:
			return out
		}
	}
	return out
}

// Needles returns byte strings that every line selected by e contains, for
// bloom-filter and substring pruning in storage. They come from the leading
// line filters (see LineFilters): the value of a single `|= "…"`, the
// literals that every match of a `|~ "…"` regexp must contain (none for
// case-insensitive `(?i)` regexps or alternations), and the literal parts of
// a `|> "…"` pattern. Negated filters, or-chains and ip() yield none. The
// result is deduplicated; callers own it.
func Needles(e LogSelectorExpr) [][]byte {
	var out [][]byte
	seen := map[string]bool{}
	add := func(s string) {
		if s == "" || seen[s] {
			return
		}
		seen[s] = true
		out = append(out, []byte(s))
	}
	for _, f := range LineFilters(e) {
		if len(f.Values) != 1 || f.Values[0].IP {
			continue
		}
		v := f.Values[0].Value
		switch f.Op {
		case LineContains:
			add(v)
		case LineRegexp:
			re, err := syntax.Parse(v, syntax.Perl)
			if err != nil {
				continue
			}
			for _, s := range requiredLiterals(re) {
				add(s)
			}
		case LinePattern:
			parts, err := ParsePattern(v)
			if err != nil {
				continue
			}
			for _, p := range parts {
				if !p.Capture {
					add(p.Text)
				}
			}
		}
	}
	return out
}

// requiredLiterals returns strings every match of re contains.
func requiredLiterals(re *syntax.Regexp) []string {
	switch re.Op {
	case syntax.OpLiteral, syntax.OpCapture, syntax.OpEmptyMatch:
		if s, ok := exactLiteral(re); ok && s != "" {
			return []string{s}
		}
		if re.Op == syntax.OpCapture {
			return requiredLiterals(re.Sub[0])
		}
	case syntax.OpPlus:
		return requiredLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiterals(re.Sub[0])
		}
	case syntax.OpConcat:
		var out []string
		var run strings.Builder
		flush := func() {
			if run.Len() > 0 {
				out = append(out, run.String())
				run.Reset()
			}
		}
		for _, sub := range re.Sub {
			if s, ok := exactLiteral(sub); ok {
				run.WriteString(s)
				continue
			}
			flush()
			out = append(out, requiredLiterals(sub)...)
		}
		flush()
		return out
	}
	return nil
}

// exactLiteral reports whether re matches exactly one case-sensitive string.
func exactLiteral(re *syntax.Regexp) (string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return "", false
		}
		return string(re.Rune), true
	case syntax.OpEmptyMatch:
		return "", true
	case syntax.OpCapture:
		return exactLiteral(re.Sub[0])
	case syntax.OpConcat:
		var b strings.Builder
		for _, sub := range re.Sub {
			s, ok := exactLiteral(sub)
			if !ok {
				return "", false
			}
			b.WriteString(s)
		}
		return b.String(), true
	}
	return "", false
}
