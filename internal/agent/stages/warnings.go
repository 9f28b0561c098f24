package stages

import (
	"fmt"
	"regexp"
	"strings"
)

// Stages describe the extracted keys they use so NewPipeline can check the
// data flow statically.
type (
	keyReader interface{ reads() []string }
	keyWriter interface{ writes() []string }
)

// tracingTopLevel are the top-level keys of tracing-subscriber's JSON
// format (Rust); everything an event records sits under "fields".
var tracingTopLevel = map[string]bool{
	"timestamp": true, "level": true, "fields": true, "target": true, "span": true,
	"spans": true, "threadId": true, "threadName": true, "filename": true, "line_number": true,
}

var bareJMESField = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

type keyUse struct {
	stage *builtStage
	key   string
}

type analysis struct {
	targets  map[string]bool
	haveTgts bool
	reads    []keyUse // every read, in stage order, for forward lookups
	warnings []string
	seen     map[string]bool
}

// analyze walks the stages in order, tracking which extracted keys an
// earlier stage can have set, and reports reads of keys nothing sets plus
// known shape mistakes.
func analyze(stages []*builtStage, targetLabels []string) []string {
	a := &analysis{targets: map[string]bool{}, seen: map[string]bool{}, haveTgts: targetLabels != nil}
	for _, l := range targetLabels {
		a.targets[l] = true
	}
	a.collectReads(stages)
	a.walk(stages, map[string]bool{})
	return a.warnings
}

func (a *analysis) warn(s *builtStage, format string, args ...any) {
	msg := fmt.Sprintf("stage %s (%s): %s", s.pos, s.name, fmt.Sprintf(format, args...))
	if !a.seen[msg] {
		a.seen[msg] = true
		a.warnings = append(a.warnings, msg)
	}
}

func (a *analysis) collectReads(stages []*builtStage) {
	for _, s := range stages {
		if r, ok := s.impl.(keyReader); ok {
			for _, k := range r.reads() {
				a.reads = append(a.reads, keyUse{s, k})
			}
		}
		if m, ok := s.impl.(*matchStage); ok {
			a.collectReads(m.children)
		}
	}
}

// readersAfter names the stages after s that read key.
func (a *analysis) readersAfter(s *builtStage, key string) []string {
	var out []string
	for _, r := range a.reads {
		if r.stage.seq > s.seq && r.key == key {
			out = append(out, fmt.Sprintf("stage %s (%s)", r.stage.pos, r.stage.name))
		}
	}
	return out
}

func (a *analysis) walk(stages []*builtStage, produced map[string]bool) {
	for _, s := range stages {
		if r, ok := s.impl.(keyReader); ok {
			for _, k := range r.reads() {
				if produced[k] || a.targets[k] {
					continue
				}
				if a.haveTgts {
					a.warn(s, "reads extracted key %q, which no earlier stage extracts and no target label provides", k)
				} else {
					a.warn(s, "reads extracted key %q, which no earlier stage extracts; it is set only if the target carries a label named %q", k, k)
				}
			}
		}
		switch impl := s.impl.(type) {
		case *jsonStage:
			a.checkTracingShape(s, impl)
		case *samplingStage:
			if impl.rate == 0 {
				a.warn(s, "rate is 0 (or unset): every line is dropped")
			}
		case *matchStage:
			inner := make(map[string]bool, len(produced))
			for k := range produced {
				inner[k] = true
			}
			a.walk(impl.children, inner)
			for k := range inner { // keys the nested stages may have set
				produced[k] = true
			}
		}
		if w, ok := s.impl.(keyWriter); ok {
			for _, k := range w.writes() {
				produced[k] = true
			}
		}
	}
}

// checkTracingShape flags json expressions that read a key at the top level
// while sibling expressions read under "fields." — the shape of Rust
// tracing-subscriber JSON, where an event's message and fields are nested
// ({"level":…,"fields":{"message":…,"event":…},…}). Such a key stays nil
// (a template renders it "<no value>", a labels stage skips it).
func (a *analysis) checkTracingShape(s *builtStage, j *jsonStage) {
	var nestedExample string
	for _, x := range j.exprs {
		if strings.HasPrefix(x.expr, "fields.") {
			nestedExample = fmt.Sprintf("%s: %s", x.name, x.expr)
			break
		}
	}
	if nestedExample == "" {
		return
	}
	for _, x := range j.exprs {
		if !bareJMESField.MatchString(x.expr) || tracingTopLevel[x.expr] {
			continue
		}
		msg := fmt.Sprintf("JMESPath %q for key %q reads the top-level field only, but sibling expressions read under \"fields.\" (%s) "+
			"as in tracing JSON, which nests %q under fields; the key will be nil for such lines — write %s: fields.%s",
			x.expr, x.name, nestedExample, x.expr, x.name, x.expr)
		if readers := a.readersAfter(s, x.name); len(readers) > 0 {
			msg += "; read by " + strings.Join(readers, ", ")
		}
		a.warn(s, "%s", msg)
	}
}
