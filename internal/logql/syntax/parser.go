package syntax

import (
	"errors"
	"strings"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Options tune validation. The zero value is Loki's default behaviour.
type Options struct {
	// AllowEmptyCompatible accepts selectors whose matchers all match the
	// empty string ({} or {app=~".*"}), which Loki rejects by default
	// (LQ-S2).
	AllowEmptyCompatible bool
}

// ParseExpr parses any LogQL query (a log query or a metric query) and
// validates it as Loki does at parse time. The error is a *ParseError.
func ParseExpr(s string) (Expr, error) { return Options{}.ParseExpr(s) }

// ParseExpr parses any LogQL query with these options.
func (o Options) ParseExpr(s string) (Expr, error) {
	p := newParser(s, o)
	e, err := p.parseQuery()
	if err != nil {
		return nil, err
	}
	if err := p.checkSelectors(); err != nil {
		return nil, err
	}
	return e, nil
}

// ParseLogSelector parses a log query; a metric query is an error. With
// validate unset the empty-compatible selector rule is not applied (the
// grammar and every other check still are).
func ParseLogSelector(s string, validate bool) (LogSelectorExpr, error) {
	e, err := Options{AllowEmptyCompatible: !validate}.ParseExpr(s)
	if err != nil {
		return nil, err
	}
	l, ok := e.(LogSelectorExpr)
	if !ok {
		return nil, newValidationError(s, 0, "only log selector is supported")
	}
	return l, nil
}

// ParseSampleExpr parses a metric query; a log query is an error. The ruler
// uses it for rule expressions.
func ParseSampleExpr(s string) (SampleExpr, error) {
	e, err := ParseExpr(s)
	if err != nil {
		return nil, err
	}
	m, ok := e.(SampleExpr)
	if !ok {
		return nil, newValidationError(s, 0, "only sample expression supported")
	}
	return m, nil
}

// ParseMatchers parses a bare stream selector such as `{app="api", env!="dev"}`
// (the series API's match[] and the agent's match stage). A pipeline is an
// error. Empty-compatible selectors are accepted; callers that must reject
// them use IsEmptyCompatible.
func ParseMatchers(s string) ([]*model.Matcher, error) {
	p := newParser(s, Options{AllowEmptyCompatible: true})
	ms, err := p.parseSelector()
	if err != nil {
		return nil, err
	}
	if !p.at(tokEOF) {
		return nil, p.unexpected("$end")
	}
	return ms, nil
}

// IsEmptyCompatible reports whether every matcher matches the empty string,
// i.e. the selector would select every stream ({} or {app=~".*"}). Loki
// rejects such selectors (LQ-S2).
func IsEmptyCompatible(ms []*model.Matcher) bool {
	for _, m := range ms {
		if !m.Matches("") {
			return false
		}
	}
	return true
}

// errEmptyCompatible is Loki's text for a selector without a matcher that
// narrows the stream set.
const errEmptyCompatible = `queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will`

type selectorPos struct {
	off int
	ms  []*model.Matcher
}

type parser struct {
	input     string
	toks      []token
	i         int
	opts      Options
	selectors []selectorPos
}

func newParser(s string, o Options) *parser {
	return &parser{input: s, toks: lex(s), opts: o}
}

func (p *parser) peek() token { return p.toks[p.i] }

// peekAt returns the token n positions ahead, or the final EOF/error token.
func (p *parser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) at(k tokenKind) bool { return p.toks[p.i].kind == k }

// atKeyword reports whether the current token is the identifier kw.
func (p *parser) atKeyword(kw string) bool {
	t := p.toks[p.i]
	return t.kind == tokIdent && t.text == kw
}

// next consumes the current token. The final EOF/error token is never
// consumed.
func (p *parser) next() token {
	t := p.toks[p.i]
	if p.i < len(p.toks)-1 {
		p.i++
	}
	return t
}

// expect consumes a token of kind k or fails listing what was expected.
func (p *parser) expect(k tokenKind, expected ...string) (token, error) {
	if p.at(k) {
		return p.next(), nil
	}
	if len(expected) == 0 {
		expected = []string{k.String()}
	}
	return token{}, p.unexpected(expected...)
}

// expectKeyword consumes the identifier kw.
func (p *parser) expectKeyword(kw string) error {
	if p.atKeyword(kw) {
		p.next()
		return nil
	}
	return p.unexpected(kw)
}

// unexpected reports the current token as a syntax error. A lexical error
// token reports its own message instead.
func (p *parser) unexpected(expected ...string) error {
	t := p.peek()
	if t.kind == tokError {
		return newParseError(p.input, t.pos, t.str)
	}
	found := t.describe()
	msg := "syntax error: unexpected " + found
	if len(expected) > 0 {
		msg += ", expecting " + strings.Join(expected, " or ")
	}
	e := newParseError(p.input, t.pos, msg)
	e.Found = found
	e.Expected = expected
	return e
}

// errorAt reports a positioned non-syntax error (an invalid regexp, template
// or pattern) at the byte offset off.
func (p *parser) errorAt(off int, msg string) error {
	return newParseError(p.input, off, msg)
}

// invalid reports a semantic validation error the way Loki does (without a
// position in the text).
func (p *parser) invalid(off int, msg string) error {
	return newValidationError(p.input, off, msg)
}

// checkSelectors applies the empty-compatible rule to every selector.
func (p *parser) checkSelectors() error {
	if p.opts.AllowEmptyCompatible {
		return nil
	}
	for _, s := range p.selectors {
		if IsEmptyCompatible(s.ms) {
			return p.invalid(s.off, errEmptyCompatible)
		}
	}
	return nil
}

// parseQuery: query = ( logExpr | metricExpr ) EOF .
//
// A query whose first token after any opening parentheses is "{" is a log
// query; anything else is a metric query.
func (p *parser) parseQuery() (Expr, error) {
	n := 0
	for p.peekAt(n).kind == tokLParen {
		n++
	}
	var e Expr
	if p.peekAt(n).kind == tokLBrace {
		l, err := p.parseLogExpr()
		if err != nil {
			return nil, err
		}
		e = l
	} else {
		m, err := p.parseMetricExpr()
		if err != nil {
			return nil, err
		}
		e = m
	}
	if !p.at(tokEOF) {
		if _, isLog := e.(*LogExpr); isLog {
			return nil, p.unexpected("$end", "|", "line filter")
		}
		return nil, p.unexpected("$end", "binary operator")
	}
	return e, nil
}

var errBug = errors.New("BUG: unreachable parser state")
