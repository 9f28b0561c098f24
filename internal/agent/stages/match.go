package stages

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

type matchConfig struct {
	Selector          string      `yaml:"selector"`
	PipelineName      *string     `yaml:"pipeline_name"`
	Action            string      `yaml:"action"`
	DropCounterReason *string     `yaml:"drop_counter_reason"`
	Stages            []yaml.Node `yaml:"stages"`
}

// entryMatcher decides whether an entry matches a match stage's selector
// (stream matchers, then line filters). Implementations are immutable and
// safe for concurrent use.
type entryMatcher interface {
	matches(ls model.LabelSet, line string) bool
}

// matchStage runs its nested stages on entries matching a LogQL selector with
// optional line filters ('{app="api"} |= "error"'); other entries skip them.
// With action: drop, matching entries are dropped and counted in
// logentry_dropped_lines_total{reason=drop_counter_reason}.
type matchStage struct {
	sel      entryMatcher
	drop     bool
	dropped  prometheus.Counter
	children []*builtStage
}

func newMatchStage(b *builder, self *builtStage, n *yaml.Node) (any, error) {
	var cfg matchConfig
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	if cfg.PipelineName != nil && *cfg.PipelineName == "" {
		return nil, errors.New("match stage pipeline name can be omitted but cannot be an empty string")
	}
	if cfg.Selector == "" {
		return nil, errors.New("selector statement required for match stage")
	}
	switch cfg.Action {
	case "":
		cfg.Action = "keep"
	case "keep", "drop":
	default:
		return nil, errors.New("match stage action should be 'keep' or 'drop'")
	}
	if cfg.Action == "keep" && len(cfg.Stages) == 0 {
		return nil, errors.New("match stage requires at least one additional stage to be defined in '- stages'")
	}
	if cfg.Action == "drop" && len(cfg.Stages) != 0 {
		return nil, errors.New("match stage configured to drop entries cannot contains stages")
	}
	sel, err := compileSelector(cfg.Selector)
	if err != nil {
		return nil, fmt.Errorf("invalid selector syntax for match stage: %w", err)
	}
	s := &matchStage{sel: sel, drop: cfg.Action == "drop"}
	if s.drop {
		reason := "match_stage"
		if cfg.DropCounterReason != nil && *cfg.DropCounterReason != "" {
			reason = *cfg.DropCounterReason
		}
		s.dropped = b.droppedLines().WithLabelValues(reason)
		return s, nil
	}
	nodes := make([]*yaml.Node, len(cfg.Stages))
	for i := range cfg.Stages {
		nodes[i] = &cfg.Stages[i]
	}
	s.children, err = b.buildList(nodes, self.pos+".")
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *matchStage) link(next emitFunc, l *linkState, _ *builtStage) emitFunc {
	if s.drop {
		in := l.inspect
		return func(e *Entry) {
			if s.sel.matches(e.Labels, e.Line) {
				s.dropped.Inc()
				if in != nil {
					in.report("match", e, e, false)
				}
				return
			}
			next(e)
		}
	}
	sub := linkChain(s.children, next, l)
	return func(e *Entry) {
		if s.sel.matches(e.Labels, e.Line) {
			sub(e)
			return
		}
		next(e)
	}
}
