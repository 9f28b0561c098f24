package stages

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/go-logfmt/logfmt"
	"github.com/jmespath/go-jmespath"
	"go.yaml.in/yaml/v3"
)

// sourceText returns what a parsing stage reads: the line, or the extracted
// value named by source converted to a string. ok is false when the source
// key is absent or not convertible; the stage then does nothing.
func sourceText(e *Entry, source *string) (string, bool) {
	if source == nil {
		return e.Line, true
	}
	v, ok := e.Extracted[*source]
	if !ok {
		return "", false
	}
	return toString(v)
}

func checkSource(source *string) error {
	if source != nil && *source == "" {
		return errors.New("empty source")
	}
	return nil
}

func sourceReads(source *string) []string {
	if source == nil {
		return nil
	}
	return []string{*source}
}

// ---- json ----

type jsonConfig struct {
	Expressions   map[string]string `yaml:"expressions"`
	Source        *string           `yaml:"source"`
	DropMalformed bool              `yaml:"drop_malformed"`
}

type jsonExpr struct {
	name string // extracted key
	expr string // JMESPath text
	path *jmespath.JMESPath
}

// jsonStage parses the line (or source) as a JSON object and sets one
// extracted key per JMESPath expression. Strings, numbers (float64), booleans
// and null are stored as they are; objects and arrays as their JSON text. An
// expression that matches nothing stores nil, which later stages treat as
// "not convertible" (a template renders it as "<no value>").
type jsonStage struct {
	cfg   jsonConfig
	exprs []jsonExpr
	fast  *jsonFastPath // nil unless every expression is a plain field path
}

func newJSONStage(_ *builder, _ *builtStage, n *yaml.Node) (any, error) {
	var cfg jsonConfig
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	if len(cfg.Expressions) == 0 {
		return nil, errors.New("JMES expression is required: set expressions")
	}
	if err := checkSource(cfg.Source); err != nil {
		return nil, err
	}
	s := &jsonStage{cfg: cfg}
	for _, name := range sortedKeys(cfg.Expressions) {
		text := cfg.Expressions[name]
		if text == "" {
			text = name
		}
		p, err := jmespath.Compile(text)
		if err != nil {
			return nil, fmt.Errorf("could not compile JMES expression %q for %q: %w", text, name, err)
		}
		s.exprs = append(s.exprs, jsonExpr{name: name, expr: text, path: p})
	}
	s.fast = newJSONFastPath(s.exprs)
	return s, nil
}

func (s *jsonStage) process(e *Entry) bool {
	in, ok := sourceText(e, s.cfg.Source)
	if !ok {
		return true
	}
	if s.fast != nil {
		return s.processFast(e, in)
	}
	return s.processFull(e, in)
}

// processFast extracts plain field paths with one scan of the line.
func (s *jsonStage) processFast(e *Entry, in string) bool {
	if !s.fast.extract(in) {
		return !s.cfg.DropMalformed
	}
	for i, x := range s.exprs {
		if v, ok := s.fast.value(in, i); ok {
			e.Extracted[x.name] = v
		}
	}
	return true
}

// processFull decodes the whole line and evaluates each JMESPath
// expression on it.
func (s *jsonStage) processFull(e *Entry, in string) bool {
	var data map[string]any
	if err := json.Unmarshal([]byte(in), &data); err != nil {
		return !s.cfg.DropMalformed
	}
	for _, x := range s.exprs {
		r, err := x.path.Search(data)
		if err != nil {
			continue
		}
		switch r.(type) {
		case float64, string, bool, nil:
			e.Extracted[x.name] = r
		default:
			b, err := json.Marshal(r)
			if err != nil {
				continue
			}
			e.Extracted[x.name] = string(b)
		}
	}
	return true
}

func (s *jsonStage) reads() []string { return sourceReads(s.cfg.Source) }
func (s *jsonStage) writes() []string {
	out := make([]string, len(s.exprs))
	for i, x := range s.exprs {
		out[i] = x.name
	}
	return out
}

// ---- regex ----

type regexConfig struct {
	Expression string  `yaml:"expression"`
	Source     *string `yaml:"source"`
}

// regexStage matches an RE2 expression against the line (or source) and sets
// one extracted key per named group (an unmatched optional group sets "").
type regexStage struct {
	source *string
	re     *regexp.Regexp
}

func newRegexStage(_ *builder, _ *builtStage, n *yaml.Node) (any, error) {
	var cfg regexConfig
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	return compileRegexStage(cfg)
}

func compileRegexStage(cfg regexConfig) (*regexStage, error) {
	if cfg.Expression == "" {
		return nil, errors.New("expression is required")
	}
	if err := checkSource(cfg.Source); err != nil {
		return nil, err
	}
	re, err := regexp.Compile(cfg.Expression)
	if err != nil {
		return nil, fmt.Errorf("could not compile regular expression: %w", err)
	}
	return &regexStage{source: cfg.Source, re: re}, nil
}

func (s *regexStage) process(e *Entry) bool {
	in, ok := sourceText(e, s.source)
	if !ok {
		return true
	}
	m := s.re.FindStringSubmatch(in)
	if m == nil {
		return true
	}
	for i, name := range s.re.SubexpNames() {
		if i != 0 && name != "" {
			e.Extracted[name] = m[i]
		}
	}
	return true
}

func (s *regexStage) reads() []string { return sourceReads(s.source) }
func (s *regexStage) writes() []string {
	var out []string
	for i, name := range s.re.SubexpNames() {
		if i != 0 && name != "" {
			out = append(out, name)
		}
	}
	return out
}

// ---- logfmt ----

type logfmtConfig struct {
	Mapping map[string]string `yaml:"mapping"`
	Source  *string           `yaml:"source"`
}

// logfmtStage parses logfmt key=value pairs and sets the mapped keys.
type logfmtStage struct {
	source  *string
	inverse map[string]string // logfmt key -> extracted key
	names   []string
}

func newLogfmtStage(_ *builder, _ *builtStage, n *yaml.Node) (any, error) {
	var cfg logfmtConfig
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	if len(cfg.Mapping) == 0 {
		return nil, errors.New("logfmt mapping is required")
	}
	if err := checkSource(cfg.Source); err != nil {
		return nil, err
	}
	s := &logfmtStage{source: cfg.Source, inverse: make(map[string]string, len(cfg.Mapping))}
	for _, name := range sortedKeys(cfg.Mapping) {
		key := cfg.Mapping[name]
		if key == "" {
			key = name
		}
		// As in Promtail, one logfmt key feeds one extracted key; with two
		// names for the same key the last (here: in sorted order) wins.
		s.inverse[key] = name
		s.names = append(s.names, name)
	}
	return s, nil
}

func (s *logfmtStage) process(e *Entry) bool {
	in, ok := sourceText(e, s.source)
	if !ok {
		return true
	}
	d := logfmt.NewDecoder(strings.NewReader(in))
	for d.ScanRecord() {
		for d.ScanKeyval() {
			if name, ok := s.inverse[string(d.Key())]; ok {
				e.Extracted[name] = string(d.Value())
			}
		}
	}
	// A decode error keeps the pairs read before it, as Promtail does.
	return true
}

func (s *logfmtStage) reads() []string  { return sourceReads(s.source) }
func (s *logfmtStage) writes() []string { return slices.Clone(s.names) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
