package pipeline

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp/syntax"
	"unicode/utf8"

	"github.com/grafana/regexp"

	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
)

// lineMatcher tests a line. Implementations are immutable and safe for
// concurrent use.
type lineMatcher func(line []byte) bool

// compileLineFilter compiles one line filter stage (LQ-F1…F8): a positive
// operator keeps a line when any alternative matches, a negated one when
// none does.
func compileLineFilter(f *lql.LineFilterExpr) (lineMatcher, error) {
	alts := make([]lineMatcher, 0, len(f.Values))
	for _, v := range f.Values {
		m, err := compileLineValue(f.Op, v)
		if err != nil {
			return nil, err
		}
		alts = append(alts, m)
	}
	var any lineMatcher
	if len(alts) == 1 {
		any = alts[0]
	} else {
		any = func(line []byte) bool {
			for _, m := range alts {
				if m(line) {
					return true
				}
			}
			return false
		}
	}
	if f.Op.Negated() {
		return func(line []byte) bool { return !any(line) }, nil
	}
	return any, nil
}

func compileLineValue(op lql.LineFilterOp, v lql.LineFilterValue) (lineMatcher, error) {
	if v.IP {
		r, err := newIPRange(v.Value)
		if err != nil {
			return nil, err
		}
		return r.inText, nil
	}
	switch op {
	case lql.LineContains, lql.LineNotContains:
		return containsMatcher(v.Value), nil
	case lql.LineRegexp, lql.LineNotRegexp:
		return regexpMatcher(v.Value)
	case lql.LinePattern, lql.LineNotPattern:
		parts, err := lql.ParsePattern(v.Value)
		if err != nil {
			return nil, fmt.Errorf("line filter pattern %q: %w", v.Value, err)
		}
		m := newPatternMatcher(parts)
		return m.test, nil
	}
	return nil, fmt.Errorf("unknown line filter operator %v", op)
}

func containsMatcher(s string) lineMatcher {
	if s == "" {
		return func([]byte) bool { return true }
	}
	needle := []byte(s)
	return func(line []byte) bool { return bytes.Contains(line, needle) }
}

// regexpMatcher compiles an unanchored line regexp in which "." also matches
// a newline, as in Loki. Literal regexps become substring searches and
// (?i) literals case-insensitive ones.
func regexpMatcher(expr string) (lineMatcher, error) {
	re, err := syntax.Parse(expr, syntax.Perl|syntax.DotNL)
	if err != nil {
		return nil, fmt.Errorf("line filter regexp %q: %w", expr, err)
	}
	re = re.Simplify()
	if lits, fold, ok := literalAlternatives(re); ok {
		return literalsMatcher(lits, fold), nil
	}
	compiled, err := regexp.Compile("(?s)" + expr)
	if err != nil {
		return nil, fmt.Errorf("line filter regexp %q: %w", expr, err)
	}
	return compiled.Match, nil
}

// literalAlternatives reports whether re matches exactly when the text
// contains one of a few literals (a literal, an alternation of literals,
// possibly in a capture group or surrounded by .*), all with the same case
// sensitivity.
func literalAlternatives(re *syntax.Regexp) (lits []string, fold, ok bool) {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	if re.Op == syntax.OpConcat && len(re.Sub) == 3 && isDotStar(re.Sub[0]) && isDotStar(re.Sub[2]) {
		re = re.Sub[1]
		for re.Op == syntax.OpCapture {
			re = re.Sub[0]
		}
	}
	literal := func(r *syntax.Regexp) (string, bool, bool) {
		for r.Op == syntax.OpCapture {
			r = r.Sub[0]
		}
		if r.Op != syntax.OpLiteral || len(r.Rune) == 0 {
			return "", false, false
		}
		f := r.Flags&syntax.FoldCase != 0
		s := string(r.Rune)
		if f {
			// Case folding beyond ASCII (K matches the Kelvin sign, s the
			// long s) is left to the regexp engine.
			for _, c := range s {
				if c >= utf8.RuneSelf || c == 'k' || c == 'K' || c == 's' || c == 'S' {
					return "", false, false
				}
			}
		}
		return s, f, true
	}
	switch re.Op {
	case syntax.OpLiteral:
		s, f, ok := literal(re)
		if !ok {
			return nil, false, false
		}
		return []string{s}, f, true
	case syntax.OpAlternate:
		for i, sub := range re.Sub {
			s, f, ok := literal(sub)
			if !ok || (i > 0 && f != fold) {
				return nil, false, false
			}
			fold = f
			lits = append(lits, s)
		}
		return lits, fold, true
	}
	return nil, false, false
}

func isDotStar(r *syntax.Regexp) bool {
	return r.Op == syntax.OpStar && len(r.Sub) == 1 && (r.Sub[0].Op == syntax.OpAnyChar || r.Sub[0].Op == syntax.OpAnyCharNotNL)
}

func literalsMatcher(lits []string, fold bool) lineMatcher {
	needles := make([][]byte, len(lits))
	for i, s := range lits {
		if fold {
			needles[i] = bytes.ToLower([]byte(s))
		} else {
			needles[i] = []byte(s)
		}
	}
	if fold {
		return func(line []byte) bool {
			for _, n := range needles {
				if containsFoldASCII(line, n) {
					return true
				}
			}
			return false
		}
	}
	if len(needles) == 1 {
		n := needles[0]
		return func(line []byte) bool { return bytes.Contains(line, n) }
	}
	return func(line []byte) bool {
		for _, n := range needles {
			if bytes.Contains(line, n) {
				return true
			}
		}
		return false
	}
}

// containsFoldASCII reports whether line contains the lower-case ASCII
// needle, ignoring ASCII case.
func containsFoldASCII(line, needle []byte) bool {
	if len(needle) == 0 {
		return true
	}
	first := needle[0]
	upper := first
	if first >= 'a' && first <= 'z' {
		upper = first - 'a' + 'A'
	}
	for i := 0; i+len(needle) <= len(line); i++ {
		c := line[i]
		if c != first && c != upper {
			continue
		}
		match := true
		for j := 1; j < len(needle); j++ {
			c := line[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != needle[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// patternMatcher matches pattern expressions (`<_> "<method> <path>"`,
// LQ-P5, LQ-F4) against lines.
type patternMatcher struct {
	parts []lql.PatternPart
	lits  [][]byte // the literal of each part (nil for captures)
	names []string // names of the named captures, in order
}

func newPatternMatcher(parts []lql.PatternPart) *patternMatcher {
	m := &patternMatcher{parts: parts, lits: make([][]byte, len(parts))}
	for i, p := range parts {
		if p.Capture {
			if p.Text != "_" {
				m.names = append(m.names, p.Text)
			}
			continue
		}
		m.lits[i] = []byte(p.Text)
	}
	return m
}

// test is the `|>` semantics: the literals occur in order, captures are not
// empty, a pattern ending with a literal must end the line and one ending
// with a capture must leave text for it.
func (m *patternMatcher) test(line []byte) bool {
	if len(line) == 0 || len(m.parts) == 0 {
		return len(line) == 0 && len(m.parts) == 0
	}
	off := 0
	for i, p := range m.parts {
		if p.Capture {
			continue
		}
		j := bytes.Index(line[off:], m.lits[i])
		if j < 0 {
			return false
		}
		if i != 0 && j == 0 {
			return false
		}
		off += j + len(m.lits[i])
	}
	endsOnCapture := m.parts[len(m.parts)-1].Capture
	return endsOnCapture == (off != len(line))
}

// matches is the `| pattern` semantics: a leading literal must start the
// line; each capture takes the text up to the next occurrence of the
// following literal; when a literal is missing, the capture takes the rest
// of the line and matching stops. It appends the named captures' values to
// dst; fewer than len(names) when matching stopped early, none when the
// leading literal does not match.
func (m *patternMatcher) matches(dst [][]byte, line []byte) [][]byte {
	if len(line) == 0 || len(m.parts) == 0 {
		return dst
	}
	parts := m.parts
	lits := m.lits
	if !parts[0].Capture {
		if !bytes.HasPrefix(line, lits[0]) {
			return dst
		}
		line = line[len(lits[0]):]
		parts, lits = parts[1:], lits[1:]
	}
	for len(parts) > 0 {
		named := parts[0].Text != "_"
		if len(parts) == 1 {
			if named {
				dst = append(dst, line)
			}
			return dst
		}
		lit := lits[1]
		i := bytes.Index(line, lit)
		if i < 0 {
			if named {
				dst = append(dst, line)
			}
			return dst
		}
		if named {
			dst = append(dst, line[:i])
		}
		line = line[i+len(lit):]
		parts, lits = parts[2:], lits[2:]
	}
	return dst
}

// ipRange is the inclusive address range of an ip("…") argument (LQ-F7).
type ipRange struct {
	first, last netip.Addr
}

func newIPRange(pattern string) (*ipRange, error) {
	first, last, err := lql.ParseIPPattern(pattern)
	if err != nil {
		return nil, err
	}
	return &ipRange{first: first, last: last}, nil
}

func (r *ipRange) contains(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is4() != r.first.Is4() {
		return false
	}
	return r.first.Compare(a) <= 0 && a.Compare(r.last) <= 0
}

// inText reports whether text contains an address in the range. Candidate
// addresses are the maximal runs of IPv4 characters starting with a digit
// and a dot in their first four bytes, or of IPv6 characters with a colon
// in their first five, as Loki finds them.
func (r *ipRange) inText(text []byte) bool {
	n := len(text)
	for i := 0; i < n; i++ {
		if i+3 < n && isDigit(text[i]) && (text[i+1] == '.' || text[i+2] == '.' || text[i+3] == '.') {
			l := spanOf(text[i:], isIPv4Char)
			if a, err := netip.ParseAddr(string(text[i : i+l])); err == nil && r.contains(a) {
				return true
			}
			i += l
			continue
		}
		if i+4 < n && ipv6Hint(text[i:i+5]) {
			l := spanOf(text[i:], isIPv6Char)
			if a, err := netip.ParseAddr(string(text[i : i+l])); err == nil && r.contains(a) {
				return true
			}
			i += l
			continue
		}
	}
	return false
}

func isDigit(c byte) bool    { return c >= '0' && c <= '9' }
func isHex(c byte) bool      { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }
func isIPv4Char(c byte) bool { return isDigit(c) || c == '.' }
func isIPv6Char(c byte) bool { return isHex(c) || c == ':' || c == '.' }

func ipv6Hint(p []byte) bool {
	return (p[0] == ':' && p[1] == ':' && isHex(p[2])) ||
		(isHex(p[0]) && p[1] == ':') ||
		(isHex(p[0]) && isHex(p[1]) && p[2] == ':') ||
		(isHex(p[0]) && isHex(p[1]) && isHex(p[2]) && p[3] == ':') ||
		(isHex(p[0]) && isHex(p[1]) && isHex(p[2]) && isHex(p[3]) && p[4] == ':')
}

func spanOf(b []byte, ok func(byte) bool) int {
	for i, c := range b {
		if !ok(c) {
			return i
		}
	}
	return len(b)
}
