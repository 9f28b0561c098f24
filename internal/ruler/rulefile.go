package ruler

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/ledgerlog/ledgerlog/internal/logql/syntax"
)

// RuleGroups is a Prometheus-format rule file: `groups: [...]`.
type RuleGroups struct {
	Groups []RuleGroup `yaml:"groups"`
}

// RuleGroup is one group of rules evaluated together, in order, at one
// interval. Its YAML is Prometheus' rulefmt (cortextool and Loki speak it).
type RuleGroup struct {
	Name     string         `yaml:"name"`
	Interval model.Duration `yaml:"interval,omitempty"`
	Limit    int            `yaml:"limit,omitempty"`
	Rules    []Rule         `yaml:"rules"`

	line int // 1-based line of the group in its file; 0 when unknown
}

// Rule is an alerting rule (Alert set) or a recording rule (Record set)
// whose Expr is a LogQL metric query.
type Rule struct {
	Record        string            `yaml:"record,omitempty"`
	Alert         string            `yaml:"alert,omitempty"`
	Expr          string            `yaml:"expr"`
	For           model.Duration    `yaml:"for,omitempty"`
	KeepFiringFor model.Duration    `yaml:"keep_firing_for,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty"`
	Annotations   map[string]string `yaml:"annotations,omitempty"`

	line     int // line of the rule
	exprLine int // line where the expression text starts
}

// Name is the alert or record name.
func (r *Rule) Name() string {
	if r.Alert != "" {
		return r.Alert
	}
	return r.Record
}

// ValidationOptions tune rule validation.
type ValidationOptions struct {
	// StrictSelectors rejects stream selectors whose matchers all match
	// the empty string ({service=~".*"}), as the engine does for tenants
	// with require_selective_matcher.
	StrictSelectors bool
}

// RuleError is one problem of a rule file, with the position of the
// construct in the file (Line 0 when unknown).
type RuleError struct {
	File string
	Line int
	// Group and Rule name the group and the rule ("" when the problem is
	// not inside one).
	Group string
	Rule  string
	Err   error
}

func (e *RuleError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Group != "" {
		fmt.Fprintf(&b, "group %q: ", e.Group)
	}
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %q: ", e.Rule)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *RuleError) Unwrap() error { return e.Err }

// ParseFile decodes and validates a rule file. file names it in errors.
// Unknown keys are errors. The error joins one *RuleError per problem.
func ParseFile(file string, b []byte, opts ValidationOptions) (RuleGroups, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return RuleGroups{}, &RuleError{File: file, Err: err}
	}
	var rgs RuleGroups
	if len(root.Content) == 0 {
		return rgs, nil
	}
	if err := decodeKnown(b, &rgs); err != nil {
		return RuleGroups{}, yamlRuleError(file, err)
	}
	annotatePositions(root.Content[0], &rgs)
	var errs []error
	seen := map[string]bool{}
	for i := range rgs.Groups {
		g := &rgs.Groups[i]
		if seen[g.Name] {
			errs = append(errs, &RuleError{File: file, Line: g.line, Group: g.Name, Err: errors.New("groupname is repeated in the same file")})
		}
		seen[g.Name] = true
		errs = append(errs, validateGroup(file, g, opts)...)
	}
	return rgs, errors.Join(errs...)
}

// ParseGroup decodes and validates one rule group, the body of a rules API
// POST. The error joins one *RuleError per problem.
func ParseGroup(b []byte, opts ValidationOptions) (RuleGroup, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return RuleGroup{}, &RuleError{Err: err}
	}
	if len(root.Content) == 0 {
		return RuleGroup{}, &RuleError{Err: errors.New("empty rule group")}
	}
	var g RuleGroup
	if err := decodeKnown(b, &g); err != nil {
		return RuleGroup{}, yamlRuleError("", err)
	}
	annotateGroup(root.Content[0], &g)
	return g, errors.Join(validateGroup("", &g, opts)...)
}

// decodeKnown decodes with unknown keys rejected.
func decodeKnown(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// yamlRuleError keeps yaml's "line N: ..." positions as RuleErrors.
func yamlRuleError(file string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return &RuleError{File: file, Err: err}
	}
	var errs []error
	for _, msg := range te.Errors {
		line := 0
		if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
			if i := strings.Index(msg, ": "); i >= 0 {
				msg = msg[i+2:]
			}
		}
		errs = append(errs, &RuleError{File: file, Line: line, Err: errors.New(msg)})
	}
	return errors.Join(errs...)
}

// annotatePositions records the lines of groups and rules from the node
// tree of a whole file.
func annotatePositions(doc *yaml.Node, rgs *RuleGroups) {
	groups := mapValue(doc, "groups")
	if groups == nil || groups.Kind != yaml.SequenceNode {
		return
	}
	for i, gn := range groups.Content {
		if i < len(rgs.Groups) {
			annotateGroup(gn, &rgs.Groups[i])
		}
	}
}

func annotateGroup(gn *yaml.Node, g *RuleGroup) {
	g.line = gn.Line
	for i := range g.Rules {
		// Empty maps are absent maps: one canonical form on disk.
		if len(g.Rules[i].Labels) == 0 {
			g.Rules[i].Labels = nil
		}
		if len(g.Rules[i].Annotations) == 0 {
			g.Rules[i].Annotations = nil
		}
	}
	rules := mapValue(gn, "rules")
	if rules == nil || rules.Kind != yaml.SequenceNode {
		return
	}
	for j, rn := range rules.Content {
		if j >= len(g.Rules) {
			break
		}
		r := &g.Rules[j]
		r.line = rn.Line
		if en := mapValue(rn, "expr"); en != nil {
			r.exprLine = en.Line
			if en.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
				r.exprLine++ // block scalars start on the next line
			}
		}
	}
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// validateGroup checks a group as Prometheus' rulefmt does, with LogQL
// expressions.
func validateGroup(file string, g *RuleGroup, opts ValidationOptions) []error {
	var errs []error
	gerr := func(err error) {
		errs = append(errs, &RuleError{File: file, Line: g.line, Group: g.Name, Err: err})
	}
	if g.Name == "" {
		gerr(errors.New("groupname must not be empty"))
	}
	if g.Interval < 0 {
		gerr(errors.New("interval must not be negative"))
	}
	if g.Limit < 0 {
		gerr(errors.New("limit must not be negative"))
	}
	if len(g.Rules) == 0 {
		gerr(errors.New("group has no rules"))
	}
	for i := range g.Rules {
		r := &g.Rules[i]
		for _, err := range validateRule(r, opts) {
			line := r.line
			var pe *syntax.ParseError
			if errors.As(err, &pe) && r.exprLine > 0 {
				line = r.exprLine + max(pe.Line, 1) - 1
			}
			errs = append(errs, &RuleError{File: file, Line: line, Group: g.Name, Rule: r.Name(), Err: err})
		}
	}
	return errs
}

func validateRule(r *Rule, opts ValidationOptions) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case r.Record == "" && r.Alert == "":
		add("one of 'record' or 'alert' must be set")
	case r.Record != "" && r.Alert != "":
		add("only one of 'record' and 'alert' must be set")
	}
	if r.Record != "" {
		if !model.IsValidLegacyMetricName(r.Record) {
			add("invalid recording rule name: %s", r.Record)
		}
		if r.For != 0 {
			add("invalid field 'for' in recording rule")
		}
		if r.KeepFiringFor != 0 {
			add("invalid field 'keep_firing_for' in recording rule")
		}
		if len(r.Annotations) > 0 {
			add("invalid field 'annotations' in recording rule")
		}
	}
	if r.Alert != "" && !model.IsValidLegacyMetricName(r.Alert) {
		add("invalid alert name: %s", r.Alert)
	}
	if r.For < 0 || r.KeepFiringFor < 0 {
		add("'for' and 'keep_firing_for' must not be negative")
	}
	for _, k := range sortedKeys(r.Labels) {
		if !model.LabelName(k).IsValidLegacy() || k == model.MetricNameLabel {
			add("invalid label name: %s", k)
		}
		if r.Alert != "" {
			if err := checkTemplate("label "+k, r.Labels[k]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, k := range sortedKeys(r.Annotations) {
		if !model.LabelName(k).IsValidLegacy() {
			add("invalid annotation name: %s", k)
		}
		if err := checkTemplate("annotation "+k, r.Annotations[k]); err != nil {
			errs = append(errs, err)
		}
	}
	if strings.TrimSpace(r.Expr) == "" {
		add("field 'expr' must be set in rule")
	} else if err := parseExpr(strings.TrimRight(r.Expr, " \t\r\n"), opts); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// parseExpr validates a rule expression: a LogQL metric query. Without
// StrictSelectors, selectors that match every stream are accepted, as the
// engine accepts them for tenants without require_selective_matcher.
func parseExpr(s string, opts ValidationOptions) error {
	if opts.StrictSelectors {
		_, err := syntax.ParseSampleExpr(s)
		return err
	}
	e, err := syntax.Options{AllowEmptyCompatible: true}.ParseExpr(s)
	if err != nil {
		return err
	}
	if _, ok := e.(syntax.SampleExpr); !ok {
		return &syntax.ParseError{Msg: "only sample expression supported"}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// MarshalGroups renders namespace → groups as the rules API's YAML.
func MarshalGroups(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(4)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
