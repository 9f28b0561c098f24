package stages

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// selector is the match stage's evaluator: a stream selector and line
// filters, the subset of LogQL Promtail's match stage accepts:
//
//	{name="v", name!="v", name=~"re", name!~"re"} |= "s" != "s" |~ "re" !~ "re"
//
// Line filters may list alternatives with "or" (|= "a" or "b"); a positive
// filter keeps a line when any alternative matches, a negated one when none
// does.
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

// compileSelector parses a match stage selector with the LogQL parser and
// accepts stream matchers followed by contains and regexp line filters, the
// subset Promtail's match stage supports.
func compileSelector(text string) (entryMatcher, error) {
	expr, err := syntax.ParseLogSelector(text, false)
	if err != nil {
		return nil, err
	}
	sel := &selector{matchers: expr.Matchers()}
	for _, st := range expr.Pipeline() {
		lf, ok := st.(*syntax.LineFilterExpr)
		if !ok {
			return nil, fmt.Errorf("only stream matchers and line filters are supported, found %q", st.String())
		}
		f := lineFilter{negate: lf.Op.Negated()}
		for _, v := range lf.Values {
			if v.IP {
				return nil, fmt.Errorf("ip() line filters are not supported in a match stage: %q", lf.String())
			}
			switch lf.Op {
			case syntax.LineContains, syntax.LineNotContains:
				f.subs = append(f.subs, v.Value)
			case syntax.LineRegexp, syntax.LineNotRegexp:
				re, err := regexp.Compile(v.Value)
				if err != nil {
					return nil, fmt.Errorf("invalid regular expression %q: %w", v.Value, err)
				}
				f.res = append(f.res, re)
			default:
				return nil, fmt.Errorf("pattern line filters are not supported in a match stage: %q", lf.String())
			}
		}
		sel.filters = append(sel.filters, f)
	}
	return sel, nil
}
