package engine

import (
	"bytes"
	"fmt"
	"regexp/syntax"
	"strings"

	"github.com/grafana/regexp"

	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

// buildFilter turns the log pipeline into a storage filter. Only line
// filters are evaluated in this build; other stages are refused with a
// clear 400 rather than ignored.
func buildFilter(expr lql.LogSelectorExpr) (*iter.Filter, error) {
	var needles [][]byte
	var preds []func([]byte) bool
	for _, st := range expr.Pipeline() {
		lf, ok := st.(*lql.LineFilterExpr)
		if !ok {
			return nil, Userf(fmt.Sprintf("unsupported query: pipeline stage %q is not evaluated by this server yet; only line filters (|=, !=, |~, !~, |>, !>) are", st.String()))
		}
		pred, needle, err := lineFilter(lf)
		if err != nil {
			return nil, err
		}
		if needle != nil {
			needles = append(needles, needle)
		}
		if pred != nil {
			preds = append(preds, pred)
		}
	}
	f := &iter.Filter{Needles: needles}
	switch len(preds) {
	case 0:
	case 1:
		f.Match = preds[0]
	default:
		f.Match = func(line []byte) bool {
			for _, p := range preds {
				if !p(line) {
					return false
				}
			}
			return true
		}
	}
	if f.Empty() {
		return nil, nil
	}
	return f, nil
}

// lineFilter returns the predicate of one filter stage and, when every
// matching line must contain a literal, that literal (then the predicate may
// be nil: the needle alone decides).
func lineFilter(lf *lql.LineFilterExpr) (func([]byte) bool, []byte, error) {
	var alts []func([]byte) bool
	var lits [][]byte
	for _, v := range lf.Values {
		if v.IP {
			return nil, nil, Userf("unsupported query: ip() line filters are not evaluated by this server yet")
		}
		switch lf.Op {
		case lql.LineContains, lql.LineNotContains:
			lit := []byte(v.Value)
			lits = append(lits, lit)
			alts = append(alts, func(line []byte) bool { return bytes.Contains(line, lit) })
		case lql.LineRegexp, lql.LineNotRegexp:
			if lit, ok := literalRegexp(v.Value); ok {
				b := []byte(lit)
				lits = append(lits, b)
				alts = append(alts, func(line []byte) bool { return bytes.Contains(line, b) })
				continue
			}
			re, err := regexp.Compile(v.Value)
			if err != nil {
				return nil, nil, Userf(fmt.Sprintf("invalid regexp %q: %v", v.Value, err))
			}
			lits = append(lits, nil)
			alts = append(alts, re.Match)
		case lql.LinePattern, lql.LineNotPattern:
			m, err := compilePattern(v.Value)
			if err != nil {
				return nil, nil, err
			}
			lits = append(lits, nil)
			alts = append(alts, m)
		}
	}
	any := alts[0]
	if len(alts) > 1 {
		any = func(line []byte) bool {
			for _, a := range alts {
				if a(line) {
					return true
				}
			}
			return false
		}
	}
	if lf.Op.Negated() {
		return func(line []byte) bool { return !any(line) }, nil, nil
	}
	if len(lits) == 1 && lits[0] != nil && len(lits[0]) > 0 {
		return nil, lits[0], nil
	}
	return any, nil, nil
}

// literalRegexp reports whether re matches exactly the lines containing a
// fixed string (no metacharacters, case-sensitive), so the needle index
// and a plain substring search can serve it.
func literalRegexp(re string) (string, bool) {
	parsed, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return "", false
	}
	parsed = parsed.Simplify()
	if parsed.Op == syntax.OpLiteral && parsed.Flags&syntax.FoldCase == 0 {
		return string(parsed.Rune), true
	}
	return "", false
}

// compilePattern compiles a pattern filter (`|> "<_> error <_>"`): the
// literal parts must appear in order; a pattern that does not start (end)
// with a placeholder must match at the start (end) of the line.
func compilePattern(p string) (func([]byte) bool, error) {
	var lits [][]byte
	rest := p
	anchoredStart, anchoredEnd := true, true
	first := true
	for len(rest) > 0 {
		i := strings.Index(rest, "<")
		j := -1
		if i >= 0 {
			j = strings.Index(rest[i:], ">")
		}
		if i < 0 || j < 0 {
			lits = append(lits, []byte(rest))
			break
		}
		if i > 0 {
			lits = append(lits, []byte(rest[:i]))
		} else if first {
			anchoredStart = false
		}
		rest = rest[i+j+1:]
		if rest == "" {
			anchoredEnd = false
		}
		first = false
	}
	if len(lits) == 0 {
		return nil, Userf(fmt.Sprintf("invalid pattern %q: at least one literal is required", p))
	}
	return func(line []byte) bool {
		pos := 0
		for k, lit := range lits {
			if k == 0 && anchoredStart {
				if !bytes.HasPrefix(line, lit) {
					return false
				}
				pos = len(lit)
				continue
			}
			idx := bytes.Index(line[pos:], lit)
			if idx < 0 {
				return false
			}
			pos += idx + len(lit)
		}
		if anchoredEnd && !bytes.HasSuffix(line, lits[len(lits)-1]) {
			return false
		}
		return true
	}, nil
}
