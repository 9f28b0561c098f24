package pipeline

import (
	"fmt"
	"unsafe"

	"github.com/grafana/regexp"

	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
)

// proc is one stage instantiated for one stream. process returns the
// (possibly rewritten) line and false when the entry is filtered out. A proc
// is used by one goroutine at a time.
type proc interface {
	process(ts int64, line []byte, l *Labels) ([]byte, bool)
}

// stage is a compiled pipeline stage, shared by every stream of a Pipeline.
type stage interface {
	// newProc instantiates the stage for a stream.
	newProc(h *hints, l *Labels) proc
	// needs appends the labels the stage reads; ok is false when that is
	// not known statically.
	needs(dst []string) ([]string, bool)
}

// statelessProc adapts a func to proc for stages without per-stream state.
type statelessProc func(ts int64, line []byte, l *Labels) ([]byte, bool)

func (f statelessProc) process(ts int64, line []byte, l *Labels) ([]byte, bool) {
	return f(ts, line, l)
}

type lineFilterStage struct {
	match lineMatcher
}

func (s *lineFilterStage) newProc(*hints, *Labels) proc { return s }
func (s *lineFilterStage) process(_ int64, line []byte, _ *Labels) ([]byte, bool) {
	return line, s.match(line)
}
func (s *lineFilterStage) needs(dst []string) ([]string, bool) { return dst, true }

type labelFilterStage struct {
	pred labelPredicate
}

func (s *labelFilterStage) newProc(*hints, *Labels) proc { return s }
func (s *labelFilterStage) process(_ int64, line []byte, l *Labels) ([]byte, bool) {
	return line, s.pred.eval(l)
}
func (s *labelFilterStage) needs(dst []string) ([]string, bool) { return s.pred.names(dst), true }

type jsonStage struct{}

func (jsonStage) newProc(h *hints, l *Labels) proc    { return newJSONProc(h, l) }
func (jsonStage) needs(dst []string) ([]string, bool) { return dst, true }

type jsonExprStage struct {
	ids   []string
	paths [][]jsonPathElem
}

func (s *jsonExprStage) newProc(_ *hints, l *Labels) proc {
	p := &jsonExprProc{ids: s.ids, paths: s.paths}
	for _, id := range s.ids {
		if l.baseHas(id) {
			id += extractedSuffix
		}
		p.names = append(p.names, id)
	}
	return p
}
func (s *jsonExprStage) needs(dst []string) ([]string, bool) { return dst, true }

type logfmtStage struct {
	strict, keepEmpty bool
}

func (s *logfmtStage) newProc(h *hints, _ *Labels) proc {
	return &logfmtProc{strict: s.strict, keepEmpty: s.keepEmpty, h: h, keys: map[string]*logfmtKey{}}
}
func (s *logfmtStage) needs(dst []string) ([]string, bool) { return dst, true }

type logfmtExprStage struct {
	strict bool
	ids    []string
	byKey  map[string]string
}

func (s *logfmtExprStage) newProc(*hints, *Labels) proc {
	return &logfmtExprProc{strict: s.strict, ids: s.ids, byKey: s.byKey}
}
func (s *logfmtExprStage) needs(dst []string) ([]string, bool) { return dst, true }

// regexpStage is `| regexp "(?P<name>…)"` (LQ-P4): named groups of the first
// match become labels; a line that does not match is kept unchanged.
type regexpStage struct {
	re    *regexp.Regexp
	names []string // per subexpression; "" for unnamed
}

type regexpProc struct {
	s     *regexpStage
	h     *hints
	names []string // final label names ("" when not extracted)
	req   []bool
}

func (s *regexpStage) newProc(h *hints, l *Labels) proc {
	p := &regexpProc{s: s, h: h, names: make([]string, len(s.names)), req: make([]bool, len(s.names))}
	for i, n := range s.names {
		if n == "" {
			continue
		}
		if l.baseHas(n) {
			n += extractedSuffix
		}
		if h.shouldExtract(n) {
			p.names[i] = n
			p.req[i] = h.isRequired(n)
		}
	}
	return p
}
func (s *regexpStage) needs(dst []string) ([]string, bool) { return dst, true }

func (p *regexpProc) process(_ int64, line []byte, l *Labels) ([]byte, bool) {
	if p.h != nil && p.h.none {
		return line, true
	}
	m := p.s.re.FindSubmatchIndex(line)
	if m == nil {
		return line, true
	}
	for i, name := range p.names {
		if name == "" {
			continue
		}
		v := ""
		if m[2*i] >= 0 {
			v = l.rawValue(line[m[2*i]:m[2*i+1]])
		}
		if l.extract(name, v) && p.req[i] {
			l.extractedRequired++
		}
	}
	return line, true
}

// patternStage is `| pattern "<ip> <_> <status>"` (LQ-P5).
type patternStage struct {
	m *patternMatcher
}

type patternProc struct {
	s     *patternStage
	h     *hints
	names []string
	req   []bool
	buf   [][]byte
}

func (s *patternStage) newProc(h *hints, l *Labels) proc {
	p := &patternProc{s: s, h: h}
	for _, n := range s.m.names {
		if l.baseHas(n) {
			n += extractedSuffix
		}
		if !h.shouldExtract(n) {
			n = ""
		}
		p.names = append(p.names, n)
		p.req = append(p.req, n != "" && h.isRequired(n))
	}
	return p
}
func (s *patternStage) needs(dst []string) ([]string, bool) { return dst, true }

func (p *patternProc) process(_ int64, line []byte, l *Labels) ([]byte, bool) {
	if p.h != nil && p.h.none {
		return line, true
	}
	p.buf = p.s.m.matches(p.buf[:0], line)
	for i, v := range p.buf {
		if p.names[i] == "" {
			continue
		}
		if l.extract(p.names[i], l.rawValue(v)) && p.req[i] {
			l.extractedRequired++
		}
	}
	return line, true
}

// unpackStage is `| unpack` (LQ-P6): the line is a JSON object written by
// Promtail's pack stage; its "_entry" string becomes the line and its other
// string values become labels. Lines without "_entry" are left as they are.
type unpackStage struct{}

type unpackProc struct {
	h     *hints
	pairs []string
	out   []byte
}

func (unpackStage) newProc(h *hints, _ *Labels) proc    { return &unpackProc{h: h} }
func (unpackStage) needs(dst []string) ([]string, bool) { return dst, true }

func (p *unpackProc) process(_ int64, line []byte, l *Labels) ([]byte, bool) {
	if len(line) == 0 || (p.h != nil && p.h.none) {
		return line, true
	}
	if line[0] != '{' {
		l.setErr(ErrJSON, "expecting json object(6), but it is not")
		return line, true
	}
	p.pairs = p.pairs[:0]
	s := jsonScanner{data: line}
	var entry []byte
	packed := false
	err := func() error {
		s.pos++
		s.skipWS()
		if s.peek() == '}' {
			return nil
		}
		for {
			if s.peek() != '"' {
				return errJSONObject
			}
			rawKey, keyEsc, err := s.readString()
			if err != nil {
				return err
			}
			s.skipWS()
			if s.peek() != ':' {
				return errJSONObject
			}
			s.pos++
			s.skipWS()
			if s.peek() == '"' {
				raw, esc, err := s.readString()
				if err != nil {
					return err
				}
				key := bytesString(rawKey)
				if keyEsc {
					key = l.stringValue(rawKey, true)
				}
				if key == "_entry" {
					dec, err := appendUnescaped(p.out[:0], raw)
					if err != nil {
						return err
					}
					p.out, entry, packed = dec, dec, true
				} else if name := sanitizeKey(key); name != "" {
					if l.baseHas(name) {
						name += extractedSuffix
					}
					if p.h.shouldExtract(name) {
						p.pairs = append(p.pairs, name, l.stringValue(raw, esc))
					}
				}
			} else if err := skipValue(&s); err != nil {
				return err
			}
			s.skipWS()
			switch s.peek() {
			case ',':
				s.pos++
				s.skipWS()
			case '}':
				return nil
			default:
				return errJSONObject
			}
		}
	}()
	if err != nil {
		l.setErr(ErrJSON, err.Error())
		return line, true
	}
	if !packed {
		return line, true
	}
	for i := 0; i < len(p.pairs); i += 2 {
		l.extract(p.pairs[i], p.pairs[i+1])
	}
	return entry, true
}

// dropStage is `| drop a, b="v", c=~"re"` (LQ-T4): removes the named labels,
// or those whose value matches; it can remove the error labels.
type dropStage struct {
	labels []lql.NamedMatcher
}

func (s *dropStage) newProc(*hints, *Labels) proc        { return s }
func (s *dropStage) needs(dst []string) ([]string, bool) { return dst, true }

func (s *dropStage) process(_ int64, line []byte, l *Labels) ([]byte, bool) {
	for _, d := range s.labels {
		name := d.Name
		if d.Matcher != nil {
			name = d.Matcher.Name
			v, _ := l.Get(name)
			if !d.Matcher.Matches(v) {
				continue
			}
		}
		switch name {
		case ErrorLabel:
			l.err = ""
			l.dirty = true
		case ErrorDetailsLabel:
			l.errDetails = ""
			l.dirty = true
		default:
			l.del(name)
		}
	}
	return line, true
}

// keepStage is `| keep a, b="v"` (LQ-T5): removes every label not listed
// (or whose value does not match); the error labels are always kept.
type keepStage struct {
	labels []lql.NamedMatcher
}

func (s *keepStage) newProc(*hints, *Labels) proc        { return s }
func (s *keepStage) needs(dst []string) ([]string, bool) { return dst, true }

func (s *keepStage) process(_ int64, line []byte, l *Labels) ([]byte, bool) {
	if len(s.labels) == 0 {
		return line, true
	}
	for i := 0; i < len(l.entries); {
		e := &l.entries[i]
		keep := false
		for _, k := range s.labels {
			if k.Matcher == nil {
				if k.Name == e.name {
					keep = true
					break
				}
				continue
			}
			if k.Matcher.Name == e.name && k.Matcher.Matches(e.value) {
				keep = true
				break
			}
		}
		if keep {
			i++
			continue
		}
		l.del(e.name) // moves the last entry to i
	}
	return line, true
}

// decolorizeStage is `| decolorize` (LQ-T6): strips ANSI escape sequences.
type decolorizeStage struct{}

// ansiEscape matches ANSI CSI/OSC sequences (colour codes, cursor moves).
var ansiEscape = regexp.MustCompile("[\u001B\u009B][[\\]()#;?]*(?:(?:(?:[a-zA-Z\\d]*(?:;[a-zA-Z\\d]*)*)?\u0007)|(?:(?:\\d{1,4}(?:;\\d{0,4})*)?[\\dA-PRZcf-ntqry=><~]))")

type decolorizeProc struct{ out []byte }

func (decolorizeStage) newProc(*hints, *Labels) proc        { return &decolorizeProc{} }
func (decolorizeStage) needs(dst []string) ([]string, bool) { return dst, true }

func (p *decolorizeProc) process(_ int64, line []byte, _ *Labels) ([]byte, bool) {
	if !containsEscape(line) {
		return line, true
	}
	p.out = p.out[:0]
	last := 0
	for _, m := range ansiEscape.FindAllIndex(line, -1) {
		p.out = append(p.out, line[last:m[0]]...)
		last = m[1]
	}
	p.out = append(p.out, line[last:]...)
	return p.out, true
}

func containsEscape(b []byte) bool {
	for i, c := range b {
		if c == 0x1b || (c == 0xc2 && i+1 < len(b) && b[i+1] == 0x9b) {
			return true
		}
	}
	return false
}

type lineFormatStage struct {
	t *compiledTemplate
}

func (s *lineFormatStage) newProc(*hints, *Labels) proc {
	return &lineFormatProc{e: newTemplateExec(s.t), data: map[string]string{}}
}
func (s *lineFormatStage) needs(dst []string) ([]string, bool) {
	return append(dst, s.t.fields...), s.t.known
}

type labelFormatStage struct {
	formats []lql.LabelFormat
	tmpls   []*compiledTemplate
}

func (s *labelFormatStage) newProc(*hints, *Labels) proc {
	p := &labelFormatProc{formats: s.formats, execs: make([]*templateExec, len(s.formats)), data: map[string]string{}}
	for i, t := range s.tmpls {
		if t != nil {
			p.execs[i] = newTemplateExec(t)
		}
	}
	return p
}

func (s *labelFormatStage) needs(dst []string) ([]string, bool) {
	known := true
	for i, f := range s.formats {
		if f.Rename {
			dst = append(dst, f.Value)
			continue
		}
		dst = append(dst, s.tmpls[i].fields...)
		known = known && s.tmpls[i].known
	}
	return dst, known
}

// compileStage compiles one syntax stage.
func compileStage(st lql.Stage) (stage, error) {
	switch x := st.(type) {
	case *lql.LineFilterExpr:
		m, err := compileLineFilter(x)
		if err != nil {
			return nil, err
		}
		return &lineFilterStage{match: m}, nil
	case *lql.LabelFilterExpr:
		p, err := compileLabelFilter(x.Filter)
		if err != nil {
			return nil, err
		}
		return &labelFilterStage{pred: p}, nil
	case *lql.JSONParserExpr:
		if len(x.Params) == 0 {
			return jsonStage{}, nil
		}
		s := &jsonExprStage{}
		for _, p := range x.Params {
			path, err := parseJSONPath(p.Expr)
			if err != nil {
				return nil, fmt.Errorf("json: cannot parse expression [%s]: %w", p.Expr, err)
			}
			if !isLabelName(p.Label) {
				return nil, fmt.Errorf("json: invalid extracted label name '%s'", p.Label)
			}
			s.ids = append(s.ids, p.Label)
			s.paths = append(s.paths, path)
		}
		return s, nil
	case *lql.LogfmtParserExpr:
		if len(x.Params) == 0 {
			return &logfmtStage{strict: x.Strict, keepEmpty: x.KeepEmpty}, nil
		}
		s := &logfmtExprStage{strict: x.Strict, byKey: map[string]string{}}
		for _, p := range x.Params {
			if !isLabelName(p.Label) {
				return nil, fmt.Errorf("logfmt: invalid extracted label name '%s'", p.Label)
			}
			if p.Expr == "" {
				return nil, fmt.Errorf("logfmt: empty expression for label '%s'", p.Label)
			}
			s.ids = append(s.ids, p.Label)
			s.byKey[sanitizeKey(p.Expr)] = p.Label
			if _, ok := s.byKey[p.Label]; !ok {
				s.byKey[p.Label] = p.Label
			}
		}
		return s, nil
	case *lql.RegexpParserExpr:
		re, err := regexp.Compile(x.Regexp)
		if err != nil {
			return nil, fmt.Errorf("regexp parser: %w", err)
		}
		names := re.SubexpNames()
		named := 0
		seen := map[string]bool{}
		for _, n := range names {
			if n == "" {
				continue
			}
			if !isLabelName(n) {
				return nil, fmt.Errorf("invalid extracted label name '%s'", n)
			}
			if seen[n] {
				return nil, fmt.Errorf("duplicate extracted label name '%s'", n)
			}
			seen[n] = true
			named++
		}
		if named == 0 {
			return nil, fmt.Errorf("regexp parser: at least one named capture must be supplied")
		}
		return &regexpStage{re: re, names: names}, nil
	case *lql.PatternParserExpr:
		parts, err := lql.ParsePattern(x.Pattern)
		if err != nil {
			return nil, fmt.Errorf("pattern parser: %w", err)
		}
		m := newPatternMatcher(parts)
		if len(m.names) == 0 {
			return nil, fmt.Errorf("pattern parser: at least one named capture is required")
		}
		return &patternStage{m: m}, nil
	case *lql.UnpackParserExpr:
		return unpackStage{}, nil
	case *lql.LineFormatExpr:
		t, err := compileTemplate("line", x.Template)
		if err != nil {
			return nil, fmt.Errorf("invalid line template: %w", err)
		}
		return &lineFormatStage{t: t}, nil
	case *lql.LabelFormatExpr:
		s := &labelFormatStage{formats: x.Formats, tmpls: make([]*compiledTemplate, len(x.Formats))}
		seen := map[string]bool{}
		for i, f := range x.Formats {
			if f.Name == ErrorLabel || f.Name == ErrorDetailsLabel {
				return nil, fmt.Errorf("%s cannot be formatted", f.Name)
			}
			if seen[f.Name] {
				return nil, fmt.Errorf("multiple label name '%s' not allowed in a single format operation", f.Name)
			}
			seen[f.Name] = true
			if f.Rename {
				continue
			}
			t, err := compileTemplate("label", f.Value)
			if err != nil {
				return nil, fmt.Errorf("invalid template for label '%s': %w", f.Name, err)
			}
			s.tmpls[i] = t
		}
		return s, nil
	case *lql.DropLabelsExpr:
		return &dropStage{labels: x.Labels}, nil
	case *lql.KeepLabelsExpr:
		return &keepStage{labels: x.Labels}, nil
	case *lql.DecolorizeExpr:
		return decolorizeStage{}, nil
	}
	return nil, fmt.Errorf("unsupported pipeline stage %q", st.String())
}

// stringBytes returns the bytes of s without copying; they must not be
// modified.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
