package stages

import (
	"container/list"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

type multilineConfig struct {
	FirstLine   *string `yaml:"firstline"`
	MaxLines    *uint64 `yaml:"max_lines"`
	MaxWaitTime *string `yaml:"max_wait_time"`
}

const (
	defaultMultilineMaxLines = 128
	defaultMultilineMaxWait  = 3 * time.Second
)

// multilineStage merges lines into blocks per stream. A line matching
// firstline starts a block; following lines that do not match are appended
// with "\n". A block is released when the next first line arrives, when it
// reaches max_lines, when its stream has been quiet for max_wait_time, or at
// the end of input. The block carries the labels, timestamp, extracted data,
// structured metadata and tenant of its first line, except that extracted
// keys starting with ReservedPrefix (the agent's bookkeeping, such as the
// file position to acknowledge) come from its newest line. Until a stream's
// first block starts, its lines pass through unchanged.
type multilineStage struct {
	re       *regexp.Regexp
	maxLines uint64
	maxWait  time.Duration
	next     emitFunc

	// Guarded by the pipeline lock.
	streams map[model.Fingerprint]*mlStream
	pending *list.List // streams with a non-empty block, least recently appended first
}

type mlStream struct {
	start Entry          // first line of the current block; owned by the stage
	tail  map[string]any // reserved keys (ReservedPrefix) of the block's newest line
	buf   strings.Builder
	lines uint64
	last  time.Time     // when the last line was appended
	elem  *list.Element // in pending, nil when the block is empty
}

func newMultilineStage(_ *builder, _ *builtStage, n *yaml.Node) (any, error) {
	var cfg multilineConfig
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	if cfg.FirstLine == nil {
		return nil, errors.New("multiline stage config must define `firstline` regular expression")
	}
	re, err := regexp.Compile(*cfg.FirstLine)
	if err != nil {
		return nil, fmt.Errorf("multiline stage first line regex compilation error: %w", err)
	}
	s := &multilineStage{
		re:       re,
		maxLines: defaultMultilineMaxLines,
		maxWait:  defaultMultilineMaxWait,
		streams:  map[model.Fingerprint]*mlStream{},
		pending:  list.New(),
	}
	if cfg.MaxLines != nil {
		s.maxLines = *cfg.MaxLines
	}
	if cfg.MaxWaitTime != nil {
		d, err := time.ParseDuration(*cfg.MaxWaitTime)
		if err != nil {
			return nil, fmt.Errorf("multiline stage `max_wait_time` parse error: %w", err)
		}
		s.maxWait = d
	}
	return s, nil
}

func (s *multilineStage) link(next emitFunc, l *linkState, self *builtStage) emitFunc {
	s.next = next
	l.addFlusher(self, s)
	return s.process
}

func (s *multilineStage) process(e *Entry) {
	key := e.Labels.FastFingerprint()
	first := s.re.MatchString(e.Line)
	st, ok := s.streams[key]
	if !ok {
		if !first {
			s.next(e)
			return
		}
		st = &mlStream{}
		s.streams[key] = st
	}
	if first {
		s.flush(st)
		st.start = *e
	}
	if st.lines > 0 {
		st.buf.WriteByte('\n')
	}
	st.buf.WriteString(e.Line)
	st.lines++
	if !first {
		for k, v := range e.Extracted {
			if strings.HasPrefix(k, ReservedPrefix) {
				if st.tail == nil {
					st.tail = map[string]any{}
				}
				st.tail[k] = v
			}
		}
	}
	st.last = time.Now()
	if st.elem == nil {
		st.elem = s.pending.PushBack(st)
	} else {
		s.pending.MoveToBack(st.elem)
	}
	if st.lines == s.maxLines {
		s.flush(st)
	}
}

// flush releases st's block, if any. A block is counted in lines, so a
// block of one empty line is released as an empty line (Promtail, which
// checks the buffer's length, loses it).
func (s *multilineStage) flush(st *mlStream) {
	if st.lines == 0 {
		return
	}
	out := Entry{
		Labels:             maps.Clone(st.start.Labels),
		Extracted:          maps.Clone(st.start.Extracted),
		Timestamp:          st.start.Timestamp,
		Line:               st.buf.String(),
		StructuredMetadata: maps.Clone(st.start.StructuredMetadata),
		Tenant:             st.start.Tenant,
	}
	for k, v := range st.tail {
		if out.Extracted == nil {
			out.Extracted = map[string]any{}
		}
		out.Extracted[k] = v
	}
	clear(st.tail)
	st.buf.Reset()
	st.lines = 0
	if st.elem != nil {
		s.pending.Remove(st.elem)
		st.elem = nil
	}
	s.next(&out)
}

func (s *multilineStage) deadline() (time.Time, bool) {
	front := s.pending.Front()
	if front == nil {
		return time.Time{}, false
	}
	return front.Value.(*mlStream).last.Add(s.maxWait), true
}

func (s *multilineStage) flushDue(now time.Time) {
	for front := s.pending.Front(); front != nil; front = s.pending.Front() {
		st := front.Value.(*mlStream)
		if st.last.Add(s.maxWait).After(now) {
			return
		}
		s.flush(st)
	}
}

func (s *multilineStage) flushAll() {
	for front := s.pending.Front(); front != nil; front = s.pending.Front() {
		s.flush(front.Value.(*mlStream))
	}
}
