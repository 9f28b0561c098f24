package stages

import (
	"errors"
	"fmt"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// ---- output ----

type outputConfig struct {
	Source string `yaml:"source"`
}

// outputStage replaces the line with an extracted value.
type outputStage struct{ source string }

func newOutputStage(_ *builder, _ *builtStage, n *yaml.Node) (any, error) {
	var cfg outputConfig
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	if cfg.Source == "" {
		return nil, errors.New("output source value is required if output is specified")
	}
	return &outputStage{source: cfg.Source}, nil
}

func (s *outputStage) process(e *Entry) bool {
	if v, ok := e.Extracted[s.source]; ok {
		if str, ok := toString(v); ok {
			e.Line = str
		}
	}
	return true
}

func (s *outputStage) reads() []string { return []string{s.source} }

// ---- labels / structured_metadata ----

// labelSources maps a label (or metadata) name to the extracted key it is
// read from; a null or empty value means the same name.
type labelSources map[string]*string

type labelPair struct{ name, source string }

func resolveLabelSources(n *yaml.Node, what string) ([]labelPair, error) {
	var cfg labelSources
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, fmt.Errorf("%s stage config cannot be empty", what)
	}
	pairs := make([]labelPair, 0, len(cfg))
	for _, name := range sortedKeys(cfg) {
		if !model.LegacyValidation.IsValidLabelName(name) {
			return nil, fmt.Errorf("invalid label name: %s", name)
		}
		src := name
		if p := cfg[name]; p != nil && *p != "" {
			src = *p
		}
		pairs = append(pairs, labelPair{name: name, source: src})
	}
	return pairs, nil
}

// labelValue converts an extracted value to a label value; ok is false for
// values that are not convertible or not valid UTF-8 (the label is skipped).
func labelValue(v any) (model.LabelValue, bool) {
	s, ok := toString(v)
	if !ok {
		return "", false
	}
	lv := model.LabelValue(s)
	return lv, lv.IsValid()
}

// labelsStage sets stream labels from extracted values.
type labelsStage struct{ pairs []labelPair }

func newLabelsStage(_ *builder, _ *builtStage, n *yaml.Node) (any, error) {
	pairs, err := resolveLabelSources(n, "label")
	if err != nil {
		return nil, err
	}
	return &labelsStage{pairs: pairs}, nil
}

func (s *labelsStage) process(e *Entry) bool {
	for _, p := range s.pairs {
		if v, ok := e.Extracted[p.source]; ok {
			if lv, ok := labelValue(v); ok {
				e.Labels[model.LabelName(p.name)] = lv
			}
		}
	}
	return true
}

func (s *labelsStage) reads() []string { return pairSources(s.pairs) }

func pairSources(pairs []labelPair) []string {
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = p.source
	}
	return out
}

// structuredMetadataStage attaches extracted values as structured metadata.
// A source that is also a stream label is moved out of the labels into the
// metadata (so high-cardinality target labels stop creating streams).
type structuredMetadataStage struct{ pairs []labelPair }

func newStructuredMetadataStage(_ *builder, _ *builtStage, n *yaml.Node) (any, error) {
	pairs, err := resolveLabelSources(n, "structured_metadata")
	if err != nil {
		return nil, err
	}
	return &structuredMetadataStage{pairs: pairs}, nil
}

func (s *structuredMetadataStage) process(e *Entry) bool {
	for _, p := range s.pairs {
		if v, ok := e.Extracted[p.source]; ok {
			if lv, ok := labelValue(v); ok {
				if e.StructuredMetadata == nil {
					e.StructuredMetadata = make(map[string]string, len(s.pairs))
				}
				e.StructuredMetadata[p.name] = string(lv)
			}
		}
	}
	for _, p := range s.pairs {
		ln := model.LabelName(p.source)
		if lv, ok := e.Labels[ln]; ok {
			if e.StructuredMetadata == nil {
				e.StructuredMetadata = make(map[string]string, len(s.pairs))
			}
			e.StructuredMetadata[p.name] = string(lv)
			delete(e.Labels, ln)
		}
	}
	return true
}

func (s *structuredMetadataStage) reads() []string { return pairSources(s.pairs) }

// ---- labelallow / labeldrop ----

type labelListStage struct {
	names map[model.LabelName]struct{}
	allow bool
}

func newLabelList(n *yaml.Node, allow bool) (any, error) {
	var names []string
	if err := decodeStrict(n, &names); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		what := "labeldrop"
		if allow {
			what = "labelallow"
		}
		return nil, fmt.Errorf("%s stage config cannot be empty", what)
	}
	s := &labelListStage{names: make(map[model.LabelName]struct{}, len(names)), allow: allow}
	for _, name := range names {
		s.names[model.LabelName(name)] = struct{}{}
	}
	return s, nil
}

func newLabelAllowStage(_ *builder, _ *builtStage, n *yaml.Node) (any, error) {
	return newLabelList(n, true)
}

func newLabelDropStage(_ *builder, _ *builtStage, n *yaml.Node) (any, error) {
	return newLabelList(n, false)
}

func (s *labelListStage) process(e *Entry) bool {
	for name := range e.Labels {
		if _, listed := s.names[name]; listed != s.allow {
			delete(e.Labels, name)
		}
	}
	return true
}

// ---- static_labels ----

type staticLabelsStage struct {
	names  []model.LabelName
	values []model.LabelValue
}

func newStaticLabelsStage(_ *builder, _ *builtStage, n *yaml.Node) (any, error) {
	var cfg map[string]*string
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, errors.New("static_labels stage config cannot be empty")
	}
	s := &staticLabelsStage{}
	for _, name := range sortedKeys(cfg) {
		if !model.UTF8Validation.IsValidLabelName(name) {
			return nil, fmt.Errorf("invalid label name: %s", name)
		}
		v := cfg[name]
		if v == nil || *v == "" || !model.LabelValue(*v).IsValid() {
			continue // Promtail skips empty values
		}
		s.names = append(s.names, model.LabelName(name))
		s.values = append(s.values, model.LabelValue(*v))
	}
	return s, nil
}

func (s *staticLabelsStage) process(e *Entry) bool {
	for i, n := range s.names {
		e.Labels[n] = s.values[i]
	}
	return true
}

// ---- tenant ----

type tenantConfig struct {
	Label  string `yaml:"label"`
	Source string `yaml:"source"`
	Value  string `yaml:"value"`
}

// tenantStage sets the entry's tenant from a label, an extracted value or a
// constant. A missing or empty tenant leaves the entry's tenant unchanged.
type tenantStage struct{ cfg tenantConfig }

func newTenantStage(_ *builder, _ *builtStage, n *yaml.Node) (any, error) {
	var cfg tenantConfig
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	set := 0
	for _, v := range []string{cfg.Label, cfg.Source, cfg.Value} {
		if v != "" {
			set++
		}
	}
	switch {
	case set == 0:
		return nil, errors.New("label, source or value config are required")
	case set > 1:
		return nil, errors.New("label, source and value are mutually exclusive: set only one")
	}
	return &tenantStage{cfg: cfg}, nil
}

func (s *tenantStage) process(e *Entry) bool {
	var t string
	switch {
	case s.cfg.Source != "":
		if v, ok := e.Extracted[s.cfg.Source]; ok {
			t, _ = toString(v)
		}
	case s.cfg.Label != "":
		t = string(e.Labels[model.LabelName(s.cfg.Label)])
	default:
		t = s.cfg.Value
	}
	if t != "" {
		e.Tenant = t
	}
	return true
}

func (s *tenantStage) reads() []string {
	if s.cfg.Source != "" {
		return []string{s.cfg.Source}
	}
	return nil
}
