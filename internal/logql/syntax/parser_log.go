package syntax

import (
	"fmt"
	"regexp/syntax"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// parseLogExpr: logExpr = selector pipeline | "(" logExpr ")" .
func (p *parser) parseLogExpr() (*LogExpr, error) {
	if p.at(tokLParen) {
		p.next()
		e, err := p.parseLogExpr()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen); err != nil {
			return nil, err
		}
		return e, nil
	}
	ms, err := p.parseSelector()
	if err != nil {
		return nil, err
	}
	stages, unwrap, err := p.parsePipeline(false)
	if err != nil {
		return nil, err
	}
	if unwrap != nil {
		return nil, errBug
	}
	return &LogExpr{Selector: ms, Stages: stages}, nil
}

// parseSelector: selector = "{" [ matcher { "," matcher } ] "}" .
func (p *parser) parseSelector() ([]*model.Matcher, error) {
	open, err := p.expect(tokLBrace)
	if err != nil {
		return nil, err
	}
	var ms []*model.Matcher
	if p.at(tokRBrace) {
		p.next()
		p.selectors = append(p.selectors, selectorPos{off: open.pos, ms: ms})
		return ms, nil
	}
	for {
		m, err := p.parseMatcher()
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
		if p.at(tokComma) {
			p.next()
			continue
		}
		if p.at(tokRBrace) {
			p.next()
			break
		}
		return nil, p.unexpected("}", ",")
	}
	p.selectors = append(p.selectors, selectorPos{off: open.pos, ms: ms})
	return ms, nil
}

// parseMatcher: matcher = IDENTIFIER matchOp STRING .
func (p *parser) parseMatcher() (*model.Matcher, error) {
	name, err := p.expect(tokIdent)
	if err != nil {
		return nil, err
	}
	m, _, err := p.parseMatchOpValue(name.text)
	return m, err
}

// parseMatchOpValue parses `op STRING` after a label name into a matcher
// (part of matcher, labelPredicate and namedMatcher).
func (p *parser) parseMatchOpValue(name string) (*model.Matcher, bool, error) {
	var t model.MatchType
	switch p.peek().kind {
	case tokEq:
		t = model.MatchEqual
	case tokNeq:
		t = model.MatchNotEqual
	case tokRe:
		t = model.MatchRegexp
	case tokNre:
		t = model.MatchNotRegexp
	default:
		return nil, false, p.unexpected("=", "!=", "=~", "!~")
	}
	p.next()
	v, err := p.expect(tokString)
	if err != nil {
		return nil, false, err
	}
	m, err := p.newMatcher(t, name, v)
	return m, v.raw, err
}

func (p *parser) newMatcher(t model.MatchType, name string, v token) (*model.Matcher, error) {
	if t == model.MatchRegexp || t == model.MatchNotRegexp {
		if err := checkRegexp(v.str); err != nil {
			return nil, p.errorAt(v.pos, err.Error())
		}
	}
	m, err := model.NewMatcher(t, name, v.str)
	if err != nil {
		return nil, p.errorAt(v.pos, err.Error())
	}
	return m, nil
}

func checkRegexp(re string) error {
	_, err := syntax.Parse(re, syntax.Perl)
	return err
}

// isLineFilterOp reports whether k starts a line filter.
func isLineFilterOp(k tokenKind) bool {
	switch k {
	case tokPipeE, tokNeq, tokPipeR, tokNre, tokPipeP, tokNpa:
		return true
	}
	return false
}

// parsePipeline: pipeline = { lineFilter | "|" pipeStage } [ unwrapStage ] .
//
// The unwrap stage, which ends a pipeline, is accepted only inside a range
// aggregation (inRange).
func (p *parser) parsePipeline(inRange bool) ([]Stage, *UnwrapExpr, error) {
	var stages []Stage
	for {
		k := p.peek().kind
		switch {
		case isLineFilterOp(k):
			f, err := p.parseLineFilter()
			if err != nil {
				return nil, nil, err
			}
			stages = append(stages, f)
		case k == tokPipe:
			if next := p.peekAt(1); next.kind == tokIdent && next.text == "unwrap" {
				if !inRange {
					return nil, nil, p.invalid(next.pos, "unwrap is only allowed in a range aggregation with unwrap (e.g. sum_over_time)")
				}
				u, err := p.parseUnwrapStage()
				if err != nil {
					return nil, nil, err
				}
				return stages, u, nil
			}
			p.next()
			s, err := p.parsePipeStage()
			if err != nil {
				return nil, nil, err
			}
			stages = append(stages, s)
		default:
			return stages, nil, nil
		}
	}
}

// parseLineFilter: lineFilter = lineFilterOp lineFilterValue { "or" lineFilterValue } .
func (p *parser) parseLineFilter() (*LineFilterExpr, error) {
	var op LineFilterOp
	switch p.next().kind {
	case tokPipeE:
		op = LineContains
	case tokNeq:
		op = LineNotContains
	case tokPipeR:
		op = LineRegexp
	case tokNre:
		op = LineNotRegexp
	case tokPipeP:
		op = LinePattern
	case tokNpa:
		op = LineNotPattern
	}
	f := &LineFilterExpr{Op: op}
	for {
		v, err := p.parseLineFilterValue(op)
		if err != nil {
			return nil, err
		}
		f.Values = append(f.Values, v)
		if !p.atKeyword("or") {
			return f, nil
		}
		p.next()
	}
}

// parseLineFilterValue: lineFilterValue = STRING | "ip" "(" STRING ")" .
// ip() is allowed only with |= and != (LQ-F7).
func (p *parser) parseLineFilterValue(op LineFilterOp) (LineFilterValue, error) {
	ipAllowed := op == LineContains || op == LineNotContains
	if p.atKeyword("ip") && ipAllowed {
		p.next()
		s, err := p.parseIPArg()
		if err != nil {
			return LineFilterValue{}, err
		}
		return LineFilterValue{Value: s.str, IP: true, Raw: s.raw}, nil
	}
	if !p.at(tokString) {
		if ipAllowed {
			return LineFilterValue{}, p.unexpected("STRING", "ip")
		}
		return LineFilterValue{}, p.unexpected("STRING")
	}
	s := p.next()
	switch op {
	case LineRegexp, LineNotRegexp:
		if err := checkRegexp(s.str); err != nil {
			return LineFilterValue{}, p.errorAt(s.pos, err.Error())
		}
	case LinePattern, LineNotPattern:
		if _, err := ParsePattern(s.str); err != nil {
			return LineFilterValue{}, p.errorAt(s.pos, err.Error())
		}
	}
	return LineFilterValue{Value: s.str, Raw: s.raw}, nil
}

// parseIPArg parses `( STRING )` after ip and validates the pattern.
func (p *parser) parseIPArg() (token, error) {
	if _, err := p.expect(tokLParen); err != nil {
		return token{}, err
	}
	s, err := p.expect(tokString)
	if err != nil {
		return token{}, err
	}
	if _, err := p.expect(tokRParen); err != nil {
		return token{}, err
	}
	if err := validateIPPattern(s.str); err != nil {
		return token{}, p.errorAt(s.pos, err.Error())
	}
	return s, nil
}

// stageKeywords are the identifiers that start a stage after "|".
var stageKeywords = map[string]bool{
	"json": true, "logfmt": true, "regexp": true, "pattern": true, "unpack": true,
	"line_format": true, "label_format": true, "drop": true, "keep": true,
	"decolorize": true, "unwrap": true,
}

// parsePipeStage: pipeStage = jsonParser | logfmtParser | regexpParser |
// patternParser | "unpack" | lineFormat | labelFormat | dropLabels |
// keepLabels | "decolorize" | labelFilter .
func (p *parser) parsePipeStage() (Stage, error) {
	t := p.peek()
	if t.kind == tokIdent {
		switch t.text {
		case "json":
			return p.parseJSONParser()
		case "logfmt":
			return p.parseLogfmtParser()
		case "regexp":
			return p.parseRegexpParser()
		case "pattern":
			return p.parsePatternParser()
		case "unpack":
			p.next()
			return &UnpackParserExpr{}, nil
		case "line_format":
			return p.parseLineFormat()
		case "label_format":
			return p.parseLabelFormat()
		case "drop":
			p.next()
			ls, err := p.parseNamedMatchers()
			if err != nil {
				return nil, err
			}
			return &DropLabelsExpr{Labels: ls}, nil
		case "keep":
			p.next()
			ls, err := p.parseNamedMatchers()
			if err != nil {
				return nil, err
			}
			return &KeepLabelsExpr{Labels: ls}, nil
		case "decolorize":
			p.next()
			return &DecolorizeExpr{}, nil
		}
	}
	if t.kind == tokIdent || t.kind == tokLParen {
		f, err := p.parseLabelFilter()
		if err != nil {
			return nil, err
		}
		return &LabelFilterExpr{Filter: f}, nil
	}
	return nil, p.unexpected("parser", "formatter", "label filter")
}

// parseJSONParser: jsonParser = "json" [ labelExtraction { "," labelExtraction } ] .
func (p *parser) parseJSONParser() (*JSONParserExpr, error) {
	p.next()
	ps, err := p.parseLabelExtractions()
	if err != nil {
		return nil, err
	}
	return &JSONParserExpr{Params: ps}, nil
}

// parseLogfmtParser: logfmtParser = "logfmt" { FLAG } [ labelExtraction { "," labelExtraction } ] .
func (p *parser) parseLogfmtParser() (*LogfmtParserExpr, error) {
	p.next()
	e := &LogfmtParserExpr{}
	for p.at(tokFlag) {
		t := p.peek()
		switch t.text {
		case "--strict":
			e.Strict = true
		case "--keep-empty":
			e.KeepEmpty = true
		default:
			return nil, p.unexpected("--strict", "--keep-empty")
		}
		p.next()
	}
	ps, err := p.parseLabelExtractions()
	if err != nil {
		return nil, err
	}
	e.Params = ps
	return e, nil
}

// parseLabelExtractions parses the optional parameter list of json and
// logfmt: it starts only at an identifier.
func (p *parser) parseLabelExtractions() ([]LabelExtraction, error) {
	if !p.at(tokIdent) {
		return nil, nil
	}
	var ps []LabelExtraction
	for {
		x, err := p.parseLabelExtraction()
		if err != nil {
			return nil, err
		}
		ps = append(ps, x)
		if !p.at(tokComma) {
			return ps, nil
		}
		p.next()
	}
}

// parseLabelExtraction: labelExtraction = IDENTIFIER [ "=" STRING ] .
func (p *parser) parseLabelExtraction() (LabelExtraction, error) {
	name, err := p.expect(tokIdent)
	if err != nil {
		return LabelExtraction{}, err
	}
	if !p.at(tokEq) {
		return LabelExtraction{Label: name.text, Expr: name.text}, nil
	}
	p.next()
	v, err := p.expect(tokString)
	if err != nil {
		return LabelExtraction{}, err
	}
	return LabelExtraction{Label: name.text, Expr: v.str, Raw: v.raw}, nil
}

// parseRegexpParser: regexpParser = "regexp" STRING .
func (p *parser) parseRegexpParser() (*RegexpParserExpr, error) {
	p.next()
	s, err := p.expect(tokString)
	if err != nil {
		return nil, err
	}
	if err := validateRegexpParser(s.str); err != nil {
		return nil, p.errorAt(s.pos, err.Error())
	}
	return &RegexpParserExpr{Regexp: s.str, Raw: s.raw}, nil
}

// parsePatternParser: patternParser = "pattern" STRING .
func (p *parser) parsePatternParser() (*PatternParserExpr, error) {
	p.next()
	s, err := p.expect(tokString)
	if err != nil {
		return nil, err
	}
	parts, err := ParsePattern(s.str)
	if err == nil && !hasNamedCapture(parts) {
		err = errNoCapture
	}
	if err != nil {
		return nil, p.errorAt(s.pos, err.Error())
	}
	return &PatternParserExpr{Pattern: s.str, Raw: s.raw}, nil
}

// parseLineFormat: lineFormat = "line_format" STRING .
func (p *parser) parseLineFormat() (*LineFormatExpr, error) {
	p.next()
	s, err := p.expect(tokString)
	if err != nil {
		return nil, err
	}
	if err := validateTemplate("line", s.str); err != nil {
		return nil, p.errorAt(s.pos, err.Error())
	}
	return &LineFormatExpr{Template: s.str, Raw: s.raw}, nil
}

// parseLabelFormat: labelFormat = "label_format" labelFormatItem { "," labelFormatItem } .
func (p *parser) parseLabelFormat() (*LabelFormatExpr, error) {
	start := p.next()
	e := &LabelFormatExpr{}
	targets := map[string]bool{}
	sources := map[string]bool{}
	for {
		f, err := p.parseLabelFormatItem()
		if err != nil {
			return nil, err
		}
		if targets[f.Name] {
			return nil, p.invalid(start.pos, fmt.Sprintf("multiple label name '%s' not allowed in a single format operation", f.Name))
		}
		targets[f.Name] = true
		if f.Rename {
			if sources[f.Value] {
				return nil, p.invalid(start.pos, fmt.Sprintf("label '%s' renamed more than once in a single format operation", f.Value))
			}
			sources[f.Value] = true
		}
		e.Formats = append(e.Formats, f)
		if !p.at(tokComma) {
			return e, nil
		}
		p.next()
	}
}

// parseLabelFormatItem: labelFormatItem = IDENTIFIER "=" ( IDENTIFIER | STRING ) .
func (p *parser) parseLabelFormatItem() (LabelFormat, error) {
	name, err := p.expect(tokIdent)
	if err != nil {
		return LabelFormat{}, err
	}
	if name.text == errorLabel || name.text == errorDetailsLabel {
		return LabelFormat{}, p.errorAt(name.pos, fmt.Sprintf("%s cannot be the target of label_format", name.text))
	}
	if _, err := p.expect(tokEq); err != nil {
		return LabelFormat{}, err
	}
	switch t := p.peek(); t.kind {
	case tokIdent:
		p.next()
		return LabelFormat{Name: name.text, Value: t.text, Rename: true}, nil
	case tokString:
		p.next()
		if err := validateTemplate("label", t.str); err != nil {
			return LabelFormat{}, p.errorAt(t.pos, err.Error())
		}
		return LabelFormat{Name: name.text, Value: t.str, Raw: t.raw}, nil
	}
	return LabelFormat{}, p.unexpected("IDENTIFIER", "STRING")
}

// parseNamedMatchers: namedMatchers = namedMatcher { "," namedMatcher } .
// It is the argument list of drop and keep.
func (p *parser) parseNamedMatchers() ([]NamedMatcher, error) {
	var out []NamedMatcher
	for {
		m, err := p.parseNamedMatcher()
		if err != nil {
			return nil, err
		}
		out = append(out, m)
		if !p.at(tokComma) {
			return out, nil
		}
		p.next()
	}
}

// parseNamedMatcher: namedMatcher = IDENTIFIER [ matchOp STRING ] .
func (p *parser) parseNamedMatcher() (NamedMatcher, error) {
	name, err := p.expect(tokIdent)
	if err != nil {
		return NamedMatcher{}, err
	}
	switch p.peek().kind {
	case tokEq, tokNeq, tokRe, tokNre:
		m, raw, err := p.parseMatchOpValue(name.text)
		if err != nil {
			return NamedMatcher{}, err
		}
		return NamedMatcher{Name: name.text, Matcher: m, Raw: raw}, nil
	}
	return NamedMatcher{Name: name.text}, nil
}

// parseUnwrapStage: unwrapStage = "|" "unwrap" ( IDENTIFIER | unwrapConv "(" IDENTIFIER ")" ) { "|" labelFilter } .
func (p *parser) parseUnwrapStage() (*UnwrapExpr, error) {
	p.next() // |
	p.next() // unwrap
	name, err := p.expect(tokIdent)
	if err != nil {
		return nil, err
	}
	u := &UnwrapExpr{Label: name.text}
	if p.at(tokLParen) {
		switch name.text {
		case "duration":
			u.Conv = UnwrapDuration
		case "duration_seconds":
			u.Conv = UnwrapDurationSeconds
		case "bytes":
			u.Conv = UnwrapBytes
		default:
			return nil, p.errorAt(name.pos, fmt.Sprintf("syntax error: unknown unwrap conversion %q, expecting duration, duration_seconds or bytes", name.text))
		}
		p.next()
		arg, err := p.expect(tokIdent)
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen); err != nil {
			return nil, err
		}
		u.Label = arg.text
	}
	for p.at(tokPipe) {
		next := p.peekAt(1)
		if next.kind == tokIdent && stageKeywords[next.text] {
			return nil, p.errorAt(next.pos, fmt.Sprintf("syntax error: unexpected %s after unwrap, only label filters are allowed after unwrap", next.text))
		}
		p.next()
		f, err := p.parseLabelFilter()
		if err != nil {
			return nil, err
		}
		u.PostFilters = append(u.PostFilters, &LabelFilterExpr{Filter: f})
	}
	return u, nil
}

// parseLabelFilter: labelFilter = labelFilterAnd { "or" labelFilterAnd } .
func (p *parser) parseLabelFilter() (LabelFilter, error) {
	left, err := p.parseLabelFilterAnd()
	if err != nil {
		return nil, err
	}
	for p.atKeyword("or") {
		p.next()
		right, err := p.parseLabelFilterAnd()
		if err != nil {
			return nil, err
		}
		left = &BinaryLabelFilter{Left: left, Right: right}
	}
	return left, nil
}

// parseLabelFilterAnd: labelFilterAnd = labelFilterTerm { [ "and" | "," ] labelFilterTerm } .
// Juxtaposed terms are joined with and (LQ-LF5).
func (p *parser) parseLabelFilterAnd() (LabelFilter, error) {
	left, err := p.parseLabelFilterTerm()
	if err != nil {
		return nil, err
	}
	for {
		switch t := p.peek(); {
		case t.kind == tokIdent && t.text == "and", t.kind == tokComma:
			p.next()
		case t.kind == tokIdent && t.text != "or", t.kind == tokLParen:
			// juxtaposition
		default:
			return left, nil
		}
		right, err := p.parseLabelFilterTerm()
		if err != nil {
			return nil, err
		}
		left = &BinaryLabelFilter{And: true, Left: left, Right: right}
	}
}

// parseLabelFilterTerm: labelFilterTerm = "(" labelFilter ")" | labelPredicate .
func (p *parser) parseLabelFilterTerm() (LabelFilter, error) {
	if p.at(tokLParen) {
		p.next()
		f, err := p.parseLabelFilter()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen); err != nil {
			return nil, err
		}
		return f, nil
	}
	return p.parseLabelPredicate()
}

// parseLabelPredicate: labelPredicate = IDENTIFIER ( matchOp STRING
// | ( "=" | "!=" ) "ip" "(" STRING ")" | cmpOp ( signedNumber | DURATION | BYTES ) ) .
func (p *parser) parseLabelPredicate() (LabelFilter, error) {
	name, err := p.expect(tokIdent, "IDENTIFIER", "(")
	if err != nil {
		return nil, err
	}
	opTok := p.peek()
	var cmp CmpOp
	switch opTok.kind {
	case tokEq:
		cmp = CmpEq
	case tokEqEq:
		cmp = CmpEq
	case tokNeq:
		cmp = CmpNeq
	case tokGt:
		cmp = CmpGt
	case tokGte:
		cmp = CmpGte
	case tokLt:
		cmp = CmpLt
	case tokLte:
		cmp = CmpLte
	case tokRe, tokNre:
		m, raw, err := p.parseMatchOpValue(name.text)
		if err != nil {
			return nil, err
		}
		return &StringLabelFilter{Matcher: m, Raw: raw}, nil
	default:
		return nil, p.unexpected("=", "!=", "=~", "!~", "==", ">", ">=", "<", "<=")
	}
	p.next()
	v := p.peek()
	switch {
	case v.kind == tokString && (opTok.kind == tokEq || opTok.kind == tokNeq):
		p.next()
		t := model.MatchEqual
		if opTok.kind == tokNeq {
			t = model.MatchNotEqual
		}
		m, err := p.newMatcher(t, name.text, v)
		if err != nil {
			return nil, err
		}
		return &StringLabelFilter{Matcher: m, Raw: v.raw}, nil
	case v.kind == tokIdent && v.text == "ip" && (opTok.kind == tokEq || opTok.kind == tokNeq):
		p.next()
		s, err := p.parseIPArg()
		if err != nil {
			return nil, err
		}
		return &IPLabelFilter{Name: name.text, Negate: opTok.kind == tokNeq, Pattern: s.str, Raw: s.raw}, nil
	case v.kind == tokDuration:
		p.next()
		return &DurationLabelFilter{Name: name.text, Op: cmp, Value: v.dur}, nil
	case v.kind == tokBytes:
		p.next()
		return &BytesLabelFilter{Name: name.text, Op: cmp, Value: v.bytes}, nil
	case v.kind == tokNumber || v.kind == tokAdd || v.kind == tokSub:
		f, err := p.parseSignedNumber()
		if err != nil {
			return nil, err
		}
		return &NumericLabelFilter{Name: name.text, Op: cmp, Value: f}, nil
	}
	if opTok.kind == tokEq || opTok.kind == tokNeq {
		return nil, p.unexpected("STRING", "NUMBER", "DURATION", "BYTES", "ip")
	}
	return nil, p.unexpected("NUMBER", "DURATION", "BYTES")
}

// parseSignedNumber: signedNumber = [ "+" | "-" ] NUMBER .
func (p *parser) parseSignedNumber() (float64, error) {
	neg := false
	switch p.peek().kind {
	case tokAdd:
		p.next()
	case tokSub:
		p.next()
		neg = true
	}
	t, err := p.expect(tokNumber)
	if err != nil {
		return 0, err
	}
	if neg {
		return -t.num, nil
	}
	return t.num, nil
}
