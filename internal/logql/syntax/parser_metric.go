package syntax

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// parseMetricExpr: metricExpr = binaryExpr .
func (p *parser) parseMetricExpr() (SampleExpr, error) {
	return p.parseBinaryExpr(1)
}

// binOpToken maps the current token to a binary operator.
func (p *parser) binOpToken() (BinOp, bool) {
	t := p.peek()
	switch t.kind {
	case tokAdd:
		return OpAdd, true
	case tokSub:
		return OpSub, true
	case tokMul:
		return OpMul, true
	case tokDiv:
		return OpDiv, true
	case tokMod:
		return OpMod, true
	case tokPow:
		return OpPow, true
	case tokEqEq:
		return OpEq, true
	case tokNeq:
		return OpNeq, true
	case tokGt:
		return OpGt, true
	case tokGte:
		return OpGte, true
	case tokLt:
		return OpLt, true
	case tokLte:
		return OpLte, true
	case tokIdent:
		switch t.text {
		case "or":
			return OpOr, true
		case "and":
			return OpAnd, true
		case "unless":
			return OpUnless, true
		}
	}
	return 0, false
}

// parseBinaryExpr: binaryExpr = metricPrimary { binOp binModifiers metricPrimary } .
//
// binOp is one of `or`, `and unless`, `== != > >= < <=`, `+ -`, `* / %`,
// `^` from loosest to tightest; all are left-associative except `^`.
// Operands of an operator bind by precedence climbing: minPrec is the
// loosest operator this call may consume.
func (p *parser) parseBinaryExpr(minPrec int) (SampleExpr, error) {
	left, err := p.parseMetricPrimary()
	if err != nil {
		return nil, err
	}
	for {
		op, ok := p.binOpToken()
		if !ok || op.Precedence() < minPrec {
			return left, nil
		}
		opTok := p.next()
		e := &BinOpExpr{Op: op, Left: left}
		if err := p.parseBinModifiers(e); err != nil {
			return nil, err
		}
		next := op.Precedence() + 1
		if op.RightAssociative() {
			next = op.Precedence()
		}
		right, err := p.parseBinaryExpr(next)
		if err != nil {
			return nil, err
		}
		e.Right = right
		if err := p.checkBinOp(e, opTok.pos); err != nil {
			return nil, err
		}
		left = e
	}
}

// parseBinModifiers: binModifiers = [ "bool" ] [ ( "on" | "ignoring" ) labelList
// [ ( "group_left" | "group_right" ) [ labelList ] ] ] .
func (p *parser) parseBinModifiers(e *BinOpExpr) error {
	if p.atKeyword("bool") {
		t := p.next()
		if !e.Op.IsComparison() {
			return p.errorAt(t.pos, "bool modifier can only be used on comparison operators")
		}
		e.ReturnBool = true
	}
	if !p.atKeyword("on") && !p.atKeyword("ignoring") {
		return nil
	}
	m := &VectorMatching{On: p.next().text == "on"}
	ls, err := p.parseLabelList()
	if err != nil {
		return err
	}
	m.Labels = ls
	e.Matching = m
	if !p.atKeyword("group_left") && !p.atKeyword("group_right") {
		return nil
	}
	g := p.next()
	if e.Op.IsSetOperator() {
		return p.errorAt(g.pos, fmt.Sprintf("no grouping allowed for %q operation", e.Op.String()))
	}
	m.Card = ManyToOne
	if g.text == "group_right" {
		m.Card = OneToMany
	}
	if p.at(tokLParen) {
		inc, err := p.parseLabelList()
		if err != nil {
			return err
		}
		m.Include = inc
	}
	return nil
}

// isScalar reports whether e evaluates to a scalar (a literal or arithmetic
// on literals).
func isScalar(e SampleExpr) bool {
	switch x := e.(type) {
	case *LiteralExpr:
		return true
	case *BinOpExpr:
		return isScalar(x.Left) && isScalar(x.Right)
	}
	return false
}

// checkBinOp validates operand types: set operators work on vectors only
// (LQ-B3).
func (p *parser) checkBinOp(e *BinOpExpr, off int) error {
	if !e.Op.IsSetOperator() {
		return nil
	}
	if isScalar(e.Left) {
		return p.invalid(off, fmt.Sprintf("unexpected literal for left leg of logical/set binary operation (%s): %s", e.Op, e.Left))
	}
	if isScalar(e.Right) {
		return p.invalid(off, fmt.Sprintf("unexpected literal for right leg of logical/set binary operation (%s): %s", e.Op, e.Right))
	}
	return nil
}

// parseMetricPrimary: metricPrimary = signedNumber | rangeAggregation | vectorAggregation
// | vectorExpr | labelReplace | "(" metricExpr ")" .
func (p *parser) parseMetricPrimary() (SampleExpr, error) {
	t := p.peek()
	switch t.kind {
	case tokNumber, tokAdd, tokSub:
		v, err := p.parseSignedNumber()
		if err != nil {
			return nil, err
		}
		return &LiteralExpr{Value: v}, nil
	case tokLParen:
		p.next()
		e, err := p.parseMetricExpr()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen, ")", "binary operator"); err != nil {
			return nil, err
		}
		return e, nil
	case tokIdent:
		if _, ok := rangeOpByName[t.text]; ok {
			return p.parseRangeAggregation()
		}
		if _, ok := vectorOpByName[t.text]; ok {
			return p.parseVectorAggregation()
		}
		switch t.text {
		case "vector":
			return p.parseVectorExpr()
		case "label_replace":
			return p.parseLabelReplace()
		}
		if p.peekAt(1).kind == tokLParen {
			return nil, p.errorAt(t.pos, fmt.Sprintf("syntax error: unknown function %q", t.text))
		}
	}
	return nil, p.unexpected("metric expression")
}

// parseRangeAggregation: rangeAggregation = rangeOp "(" [ signedNumber "," ] logRangeExpr ")" [ grouping ] .
func (p *parser) parseRangeAggregation() (*RangeAggregationExpr, error) {
	name := p.next()
	e := &RangeAggregationExpr{Op: rangeOpByName[name.text]}
	if _, err := p.expect(tokLParen); err != nil {
		return nil, err
	}
	switch p.peek().kind {
	case tokNumber, tokAdd, tokSub:
		v, err := p.parseSignedNumber()
		if err != nil {
			return nil, err
		}
		e.Param = &v
		if _, err := p.expect(tokComma); err != nil {
			return nil, err
		}
	}
	lr, hasRange, err := p.parseLogRangeExpr()
	if err != nil {
		return nil, err
	}
	if !hasRange {
		return nil, p.unexpected("[", "pipeline stage")
	}
	e.Left = lr
	if _, err := p.expect(tokRParen); err != nil {
		return nil, err
	}
	if p.atKeyword("by") || p.atKeyword("without") {
		g, err := p.parseGrouping()
		if err != nil {
			return nil, err
		}
		e.Grouping = g
	}
	return e, p.checkRangeAggregation(e, name.pos)
}

// checkRangeAggregation applies Loki's rules on grouping, unwrap and the
// parameter (LQ-R7, LQ-R8, LQ-R10).
func (p *parser) checkRangeAggregation(e *RangeAggregationExpr, off int) error {
	switch {
	case e.Grouping != nil && !e.Op.AllowsGrouping():
		return p.invalid(off, fmt.Sprintf("grouping not allowed for %s aggregation", e.Op))
	case e.Left.Unwrap != nil && !e.Op.AllowsUnwrap():
		return p.invalid(off, fmt.Sprintf("invalid aggregation %s with unwrap", e.Op))
	case e.Left.Unwrap == nil && !e.Op.AllowsLogRange():
		return p.invalid(off, fmt.Sprintf("invalid aggregation %s without unwrap", e.Op))
	case e.Op == RangeQuantile && e.Param == nil:
		return p.invalid(off, "parameter required for operation quantile_over_time")
	case e.Op != RangeQuantile && e.Param != nil:
		return p.invalid(off, fmt.Sprintf("unsupported parameter for operation %s", e.Op))
	}
	return nil
}

// parseLogRangeExpr: logRangeExpr = "(" logRangeExpr ")" [ range ]
// | selector ( range pipeline | pipeline [ range ] ) .
//
// Exactly one range must appear; hasRange tells the caller whether it has.
func (p *parser) parseLogRangeExpr() (e *LogRangeExpr, hasRange bool, err error) {
	if p.at(tokLParen) {
		p.next()
		e, hasRange, err = p.parseLogRangeExpr()
		if err != nil {
			return nil, false, err
		}
		if _, err := p.expect(tokRParen); err != nil {
			return nil, false, err
		}
		if !hasRange && p.at(tokLBracket) {
			if e.Range, e.Offset, err = p.parseRange(); err != nil {
				return nil, false, err
			}
			hasRange = true
		}
		return e, hasRange, nil
	}
	ms, err := p.parseSelector()
	if err != nil {
		return nil, false, err
	}
	e = &LogRangeExpr{Log: &LogExpr{Selector: ms}}
	if p.at(tokLBracket) {
		if e.Range, e.Offset, err = p.parseRange(); err != nil {
			return nil, false, err
		}
		hasRange = true
	}
	if e.Log.Stages, e.Unwrap, err = p.parsePipeline(true); err != nil {
		return nil, false, err
	}
	if !hasRange && p.at(tokLBracket) {
		if e.Range, e.Offset, err = p.parseRange(); err != nil {
			return nil, false, err
		}
		hasRange = true
	}
	return e, hasRange, nil
}

// parseRange: range = "[" DURATION "]" [ "offset" DURATION ] .
func (p *parser) parseRange() (rng, off time.Duration, err error) {
	if _, err := p.expect(tokLBracket); err != nil {
		return 0, 0, err
	}
	d, err := p.expect(tokDuration)
	if err != nil {
		return 0, 0, err
	}
	if _, err := p.expect(tokRBracket); err != nil {
		return 0, 0, err
	}
	if !p.atKeyword("offset") {
		return d.dur, 0, nil
	}
	p.next()
	o, err := p.expect(tokDuration)
	if err != nil {
		return 0, 0, err
	}
	return d.dur, o.dur, nil
}

// parseVectorAggregation: vectorAggregation = vectorOp ( grouping "(" [ signedNumber "," ] metricExpr ")"
// | "(" [ signedNumber "," ] metricExpr ")" [ grouping ] ) .
func (p *parser) parseVectorAggregation() (*VectorAggregationExpr, error) {
	name := p.next()
	e := &VectorAggregationExpr{Op: vectorOpByName[name.text]}
	if p.atKeyword("by") || p.atKeyword("without") {
		g, err := p.parseGrouping()
		if err != nil {
			return nil, err
		}
		e.Grouping = g
	}
	if _, err := p.expect(tokLParen); err != nil {
		return nil, err
	}
	var param *token
	switch k := p.peek().kind; {
	case k == tokNumber && p.peekAt(1).kind == tokComma:
		t := p.next()
		p.next()
		param = &t
	case (k == tokAdd || k == tokSub) && p.peekAt(1).kind == tokNumber && p.peekAt(2).kind == tokComma:
		sign := p.next()
		t := p.next()
		p.next()
		t.text = sign.text + t.text
		param = &t
	}
	inner, err := p.parseMetricExpr()
	if err != nil {
		return nil, err
	}
	e.Inner = inner
	if _, err := p.expect(tokRParen, ")", "binary operator"); err != nil {
		return nil, err
	}
	if e.Grouping == nil && (p.atKeyword("by") || p.atKeyword("without")) {
		g, err := p.parseGrouping()
		if err != nil {
			return nil, err
		}
		e.Grouping = g
	}
	return e, p.checkVectorAggregation(e, param, name.pos)
}

// checkVectorAggregation validates the parameter and grouping (LQ-V2, LQ-V4).
func (p *parser) checkVectorAggregation(e *VectorAggregationExpr, param *token, off int) error {
	if !e.Op.HasParam() {
		if param != nil {
			return p.invalid(off, fmt.Sprintf("unsupported parameter for operation %s(%s,", e.Op, param.text))
		}
		return nil
	}
	if param == nil {
		return p.invalid(off, fmt.Sprintf("parameter required for operation %s", e.Op))
	}
	k, err := strconv.Atoi(param.text)
	if err != nil || k <= 0 {
		return p.invalid(off, fmt.Sprintf("invalid parameter %s(%s,: must be a positive integer", e.Op, param.text))
	}
	e.Param = k
	if e.Op == VectorApproxTopK && e.Grouping != nil {
		return p.invalid(off, "grouping not allowed for approx_topk aggregation")
	}
	return nil
}

// parseGrouping: grouping = ( "by" | "without" ) labelList .
func (p *parser) parseGrouping() (*Grouping, error) {
	t := p.next()
	ls, err := p.parseLabelList()
	if err != nil {
		return nil, err
	}
	return &Grouping{Without: t.text == "without", Labels: ls}, nil
}

// parseLabelList: labelList = "(" [ IDENTIFIER { "," IDENTIFIER } ] ")" .
func (p *parser) parseLabelList() ([]string, error) {
	if _, err := p.expect(tokLParen); err != nil {
		return nil, err
	}
	ls := []string{}
	if p.at(tokRParen) {
		p.next()
		return ls, nil
	}
	for {
		t, err := p.expect(tokIdent)
		if err != nil {
			return nil, err
		}
		ls = append(ls, t.text)
		if p.at(tokComma) {
			p.next()
			continue
		}
		if _, err := p.expect(tokRParen, ")", ","); err != nil {
			return nil, err
		}
		return ls, nil
	}
}

// parseVectorExpr: vectorExpr = "vector" "(" signedNumber ")" .
func (p *parser) parseVectorExpr() (*VectorExpr, error) {
	p.next()
	if _, err := p.expect(tokLParen); err != nil {
		return nil, err
	}
	v, err := p.parseSignedNumber()
	if err != nil {
		return nil, err
	}
	if _, err := p.expect(tokRParen); err != nil {
		return nil, err
	}
	return &VectorExpr{Value: v}, nil
}

// parseLabelReplace: labelReplace = "label_replace" "(" metricExpr "," STRING "," STRING "," STRING "," STRING ")" .
func (p *parser) parseLabelReplace() (*LabelReplaceExpr, error) {
	p.next()
	if _, err := p.expect(tokLParen); err != nil {
		return nil, err
	}
	left, err := p.parseMetricExpr()
	if err != nil {
		return nil, err
	}
	var args [4]token
	for i := range args {
		want := []string{","}
		if i == 0 {
			want = append(want, "binary operator")
		}
		if _, err := p.expect(tokComma, want...); err != nil {
			return nil, err
		}
		if args[i], err = p.expect(tokString); err != nil {
			return nil, err
		}
	}
	if _, err := p.expect(tokRParen); err != nil {
		return nil, err
	}
	e := &LabelReplaceExpr{Left: left, Dst: args[0].str, Replacement: args[1].str, Src: args[2].str, Regex: args[3].str}
	if !IsValidLabelName(e.Dst) {
		return nil, p.errorAt(args[0].pos, fmt.Sprintf("invalid destination label name in label_replace(): %s", e.Dst))
	}
	if _, err := regexp.Compile("^(?s:" + e.Regex + ")$"); err != nil {
		return nil, p.errorAt(args[3].pos, fmt.Sprintf("invalid regular expression in label_replace(): %s", e.Regex))
	}
	return e, nil
}
