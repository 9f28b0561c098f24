package stages

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// selector is the match stage's evaluator: a stream selector and line
// filters, the subset of LogQL Promtail's match stage accepts:
//
//	{name="v", name!="v", name=~"re", name!~"re"} |= "s" != "s" |~ "re" !~ "re"
//
// Line filters may list alternatives with "or" (|= "a" or "b"). Strings are
// double-quoted with Go escapes or back-quoted.
type selector struct {
	matchers []*labels.Matcher
	filters  []lineFilter
}

type lineFilter struct {
	negate bool
	subs   []string         // |= and != alternatives
	res    []*regexp.Regexp // |~ and !~ alternatives
}

func (f *lineFilter) match(line string) bool {
	hit := false
	for _, s := range f.subs {
		if strings.Contains(line, s) {
			hit = true
			break
		}
	}
	if !hit {
		for _, re := range f.res {
			if re.MatchString(line) {
				hit = true
				break
			}
		}
	}
	return hit != f.negate
}

func (s *selector) matches(ls model.LabelSet, line string) bool {
	for _, m := range s.matchers {
		if !m.Matches(string(ls[model.LabelName(m.Name)])) {
			return false
		}
	}
	for i := range s.filters {
		if !s.filters[i].match(line) {
			return false
		}
	}
	return true
}

// compileSelector parses a match stage selector.
func compileSelector(text string) (entryMatcher, error) {
	p := &selParser{s: text}
	sel, err := p.parse()
	if err != nil {
		return nil, err
	}
	return sel, nil
}

type selParser struct {
	s   string
	pos int
}

func (p *selParser) errorf(format string, args ...any) error {
	return fmt.Errorf("parse error at col %d: %s", p.pos+1, fmt.Sprintf(format, args...))
}

func (p *selParser) skipSpace() {
	for p.pos < len(p.s) && unicode.IsSpace(rune(p.s[p.pos])) {
		p.pos++
	}
}

func (p *selParser) peek(tok string) bool {
	p.skipSpace()
	return strings.HasPrefix(p.s[p.pos:], tok)
}

func (p *selParser) expect(tok string) error {
	if !p.peek(tok) {
		return p.errorf("expected %q, found %s", tok, p.found())
	}
	p.pos += len(tok)
	return nil
}

func (p *selParser) found() string {
	if p.pos >= len(p.s) {
		return "end of input"
	}
	rest := p.s[p.pos:]
	if len(rest) > 10 {
		rest = rest[:10] + "…"
	}
	return strconv.Quote(rest)
}

func (p *selParser) parse() (*selector, error) {
	sel := &selector{}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	for {
		if p.peek("}") {
			break
		}
		m, err := p.matcher()
		if err != nil {
			return nil, err
		}
		sel.matchers = append(sel.matchers, m)
		if p.peek(",") {
			p.pos++
			continue
		}
		if !p.peek("}") {
			return nil, p.errorf("expected \",\" or \"}\", found %s", p.found())
		}
	}
	p.pos++ // }
	if len(sel.matchers) == 0 {
		return nil, p.errorf("a selector needs at least one matcher")
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.s) {
			return sel, nil
		}
		f, err := p.filter()
		if err != nil {
			return nil, err
		}
		sel.filters = append(sel.filters, f)
	}
}

func (p *selParser) matcher() (*labels.Matcher, error) {
	p.skipSpace()
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || (p.pos > start && c >= '0' && c <= '9') {
			p.pos++
			continue
		}
		break
	}
	if p.pos == start {
		return nil, p.errorf("expected a label name, found %s", p.found())
	}
	name := p.s[start:p.pos]
	var typ labels.MatchType
	switch {
	case p.peek("=~"):
		typ, p.pos = labels.MatchRegexp, p.pos+2
	case p.peek("!~"):
		typ, p.pos = labels.MatchNotRegexp, p.pos+2
	case p.peek("!="):
		typ, p.pos = labels.MatchNotEqual, p.pos+2
	case p.peek("="):
		typ, p.pos = labels.MatchEqual, p.pos+1
	default:
		return nil, p.errorf("expected one of =, !=, =~, !~ after %q, found %s", name, p.found())
	}
	val, err := p.str()
	if err != nil {
		return nil, err
	}
	m, err := labels.NewMatcher(typ, name, val)
	if err != nil {
		return nil, p.errorf("invalid regular expression %q: %v", val, err)
	}
	return m, nil
}

func (p *selParser) filter() (lineFilter, error) {
	var f lineFilter
	var regex bool
	switch {
	case p.peek("|="):
	case p.peek("!="):
		f.negate = true
	case p.peek("|~"):
		regex = true
	case p.peek("!~"):
		regex, f.negate = true, true
	default:
		return f, p.errorf("expected a line filter (|=, !=, |~, !~), found %s", p.found())
	}
	p.pos += 2
	for {
		v, err := p.str()
		if err != nil {
			return f, err
		}
		if regex {
			re, err := regexp.Compile(v)
			if err != nil {
				return f, p.errorf("invalid regular expression %q: %v", v, err)
			}
			f.res = append(f.res, re)
		} else {
			f.subs = append(f.subs, v)
		}
		if !p.peekWord("or") {
			return f, nil
		}
		p.pos += 2
	}
}

func (p *selParser) peekWord(w string) bool {
	if !p.peek(w) {
		return false
	}
	end := p.pos + len(w)
	return end < len(p.s) && unicode.IsSpace(rune(p.s[end]))
}

func (p *selParser) str() (string, error) {
	p.skipSpace()
	if p.pos >= len(p.s) {
		return "", p.errorf("expected a string, found end of input")
	}
	switch q := p.s[p.pos]; q {
	case '`':
		end := strings.IndexByte(p.s[p.pos+1:], '`')
		if end < 0 {
			return "", p.errorf("unterminated raw string")
		}
		v := p.s[p.pos+1 : p.pos+1+end]
		p.pos += end + 2
		return v, nil
	case '"':
		i := p.pos + 1
		for i < len(p.s) && p.s[i] != '"' {
			if p.s[i] == '\\' {
				i++
			}
			i++
		}
		if i >= len(p.s) {
			return "", p.errorf("unterminated string")
		}
		v, err := strconv.Unquote(p.s[p.pos : i+1])
		if err != nil {
			return "", p.errorf("invalid string %s: %v", p.s[p.pos:i+1], err)
		}
		p.pos = i + 1
		return v, nil
	}
	return "", p.errorf("expected a string, found %s", p.found())
}
