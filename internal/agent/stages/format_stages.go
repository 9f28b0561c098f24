package stages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/units"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// ---- pack ----

type packConfig struct {
	Labels          []string `yaml:"labels"`
	IngestTimestamp *bool    `yaml:"ingest_timestamp"`
}

// packStage wraps the line and the listed extracted values (labels are
// extracted values too) in a JSON object {"k":"v",…,"_entry":"line"}, keys
// sorted with _entry last, and removes those labels; LogQL's unpack reverses
// it. With ingest_timestamp (default true) the timestamp becomes now.
type packStage struct {
	labels          []string
	ingestTimestamp bool
}

func newPackStage(_ *builder, _ *builtStage, n *yaml.Node) (any, error) {
	var cfg packConfig
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	s := &packStage{labels: slices.Clone(cfg.Labels), ingestTimestamp: true}
	slices.Sort(s.labels)
	s.labels = slices.Compact(s.labels)
	if cfg.IngestTimestamp != nil {
		s.ingestTimestamp = *cfg.IngestTimestamp
	}
	return s, nil
}

func (s *packStage) process(e *Entry) bool {
	var buf bytes.Buffer
	buf.WriteByte('{')
	var found []string
	for _, name := range s.labels {
		v, ok := e.Extracted[name]
		if !ok {
			continue
		}
		str, ok := toString(v)
		if !ok {
			continue
		}
		writeJSONString(&buf, name)
		buf.WriteByte(':')
		writeJSONString(&buf, str)
		buf.WriteByte(',')
		found = append(found, name)
	}
	buf.WriteString(`"_entry":`)
	writeJSONString(&buf, e.Line)
	buf.WriteByte('}')
	for _, name := range found {
		delete(e.Labels, model.LabelName(name))
	}
	e.Line = buf.String()
	if s.ingestTimestamp {
		e.Timestamp = time.Now()
	}
	return true
}

func (s *packStage) reads() []string { return s.labels }

func writeJSONString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // a string always marshals
	buf.Write(b)
}

// ---- decolorize ----

// ansiPattern matches ANSI escape sequences (colours, cursor movement), the
// widely used pattern of the stripansi package that Loki's decolorize uses.
var ansiPattern = regexp.MustCompile("[\u001B\u009B][[\\]()#;?]*(?:(?:(?:[a-zA-Z\\d]*(?:;[a-zA-Z\\d]*)*)?\u0007)|(?:(?:\\d{1,4}(?:;\\d{0,4})*)?[\\dA-PRZcf-ntqry=><~]))")

type decolorizeStage struct{}

func newDecolorizeStage(_ *builder, _ *builtStage, n *yaml.Node) (any, error) {
	var cfg struct{}
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	return decolorizeStage{}, nil
}

func (decolorizeStage) process(e *Entry) bool {
	e.Line = ansiPattern.ReplaceAllString(e.Line, "")
	return true
}

// ---- docker ----

// newDockerStage builds Promtail's docker stage: parse a Docker json-file
// line {"log","stream","time"}, set label stream, the timestamp from time and
// the line to log (its trailing newline kept).
func newDockerStage(b *builder, s *builtStage, n *yaml.Node) (any, error) {
	var cfg struct{}
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	return newComposite(b, s, "docker", `
- json:
    expressions:
      output: log
      stream: stream
      timestamp: time
- labels:
    stream:
- timestamp:
    source: timestamp
    format: RFC3339Nano
- output:
    source: output
`)
}

// composite is a fixed sub-pipeline built from YAML (docker, the first half
// of cri). Its inner stages are processors and run back to back.
type composite struct {
	name     string
	procs    []processor
	produced []string
}

func newComposite(b *builder, parent *builtStage, name, text string) (*composite, error) {
	var nodes []yaml.Node
	if err := yaml.Unmarshal([]byte(text), &nodes); err != nil {
		panic(fmt.Sprintf("BUG: %s stage definition: %v", name, err))
	}
	c := &composite{name: name}
	for i := range nodes {
		st, err := b.buildOne(&nodes[i], fmt.Sprintf("%s.%d", parent.pos, i+1))
		if err != nil {
			panic(fmt.Sprintf("BUG: %s stage definition: %v", name, err))
		}
		p, ok := st.impl.(processor)
		if !ok {
			panic(fmt.Sprintf("BUG: %s stage part %s is not a processor", name, st.name))
		}
		c.procs = append(c.procs, p)
		if w, ok := st.impl.(interface{ writes() []string }); ok {
			c.produced = append(c.produced, w.writes()...)
		}
	}
	return c, nil
}

func (c *composite) process(e *Entry) bool {
	for _, p := range c.procs {
		if !p.process(e) {
			return false
		}
	}
	return true
}

func (c *composite) writes() []string { return c.produced }

// ---- cri ----

type criConfig struct {
	MaxPartialLines            int             `yaml:"max_partial_lines"`
	MaxPartialLineSize         *units.ByteSize `yaml:"max_partial_line_size"`
	MaxPartialLineSizeTruncate bool            `yaml:"max_partial_line_size_truncate"`
}

// criStage parses CRI log lines "<RFC3339Nano time> <stdout|stderr> <flags>
// <content>": label stream, timestamp from time, line = content, extracted
// time/stream/flags/content. Partial lines (flags P) are held per stream and
// joined (concatenated, no separator) with the following lines up to and
// including the next full line (F). When more than max_partial_lines streams
// hold partial lines, the held lines are released as they are.
type criStage struct {
	base      *composite
	cfg       criConfig
	maxSize   int
	partial   map[model.Fingerprint]*Entry // guarded by the pipeline lock
	order     []model.Fingerprint          // first-seen order of partial, for deterministic release
	logger    *slog.Logger
	next      emitFunc
	threshold int
}

func newCRIStage(b *builder, s *builtStage, n *yaml.Node) (any, error) {
	var cfg criConfig
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	if cfg.MaxPartialLines <= 0 {
		cfg.MaxPartialLines = 100
	}
	base, err := newComposite(b, s, "cri", `
- regex:
    expression: "^(?s)(?P<time>\\S+?) (?P<stream>stdout|stderr) (?P<flags>\\S+?) (?P<content>.*)$"
- labels:
    stream:
- timestamp:
    source: time
    format: RFC3339Nano
- output:
    source: content
`)
	if err != nil {
		return nil, err
	}
	c := &criStage{base: base, cfg: cfg, partial: map[model.Fingerprint]*Entry{}, logger: b.logger, threshold: cfg.MaxPartialLines}
	if cfg.MaxPartialLineSize != nil {
		c.maxSize = int(*cfg.MaxPartialLineSize)
	}
	return c, nil
}

func (c *criStage) link(next emitFunc, l *linkState, self *builtStage) emitFunc {
	c.next = next
	l.addFlusher(self, c)
	if l.inspect != nil {
		in := l.inspect
		return func(e *Entry) {
			before := e.clone()
			c.base.process(e)
			in.report("cri", &before, e, true)
			c.join(e)
		}
	}
	return func(e *Entry) {
		c.base.process(e)
		c.join(e)
	}
}

func (c *criStage) truncate(e *Entry) {
	if c.cfg.MaxPartialLineSizeTruncate && c.maxSize > 0 && len(e.Line) > c.maxSize {
		e.Line = e.Line[:c.maxSize]
	}
}

func (c *criStage) join(e *Entry) {
	fp := e.Labels.FastFingerprint()
	if e.Extracted["flags"] == "P" {
		if len(c.partial) >= c.threshold {
			c.logger.Warn("cri stage: partial lines upperbound exceeded, releasing them unmerged", "threshold", c.threshold)
			held := c.takeAll()
			c.truncate(e)
			c.hold(fp, e)
			for _, h := range held {
				c.next(h)
			}
			return
		}
		if prev, ok := c.partial[fp]; ok {
			e.Line = prev.Line + e.Line
		}
		c.truncate(e)
		c.hold(fp, e)
		return
	}
	if prev, ok := c.partial[fp]; ok {
		e.Line = prev.Line + e.Line
		c.truncate(e)
		delete(c.partial, fp)
		c.order = slices.DeleteFunc(c.order, func(x model.Fingerprint) bool { return x == fp })
	}
	c.next(e)
}

func (c *criStage) hold(fp model.Fingerprint, e *Entry) {
	if _, ok := c.partial[fp]; !ok {
		c.order = append(c.order, fp)
	}
	held := e.clone()
	c.partial[fp] = &held
}

func (c *criStage) takeAll() []*Entry {
	out := make([]*Entry, 0, len(c.order))
	for _, fp := range c.order {
		out = append(out, c.partial[fp])
	}
	c.partial = make(map[model.Fingerprint]*Entry, c.threshold)
	c.order = c.order[:0]
	return out
}

func (c *criStage) deadline() (time.Time, bool) { return time.Time{}, false }
func (c *criStage) flushDue(time.Time)          {}

// flushAll releases held partial lines when the input ends.
func (c *criStage) flushAll() {
	for _, e := range c.takeAll() {
		c.next(e)
	}
}

func (c *criStage) writes() []string { return c.base.produced }
