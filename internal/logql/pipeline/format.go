package pipeline

import (
	"bytes"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"

	"github.com/Masterminds/sprig/v3"
	"github.com/grafana/regexp"

	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
)

const (
	funcLine      = "__line__"
	funcTimestamp = "__timestamp__"
)

// sprigFuncs are the sprig functions LogQL templates may call (LQ-T3).
var sprigFuncs = []string{
	"b64enc", "b64dec", "lower", "upper", "title", "trunc", "substr", "contains",
	"hasPrefix", "hasSuffix", "indent", "nindent", "replace", "repeat", "trim",
	"trimAll", "trimSuffix", "trimPrefix", "int", "float64", "add", "sub", "mul",
	"div", "mod", "addf", "subf", "mulf", "divf", "max", "min", "maxf", "minf",
	"ceil", "floor", "round", "fromJson", "date", "toDate", "now", "unixEpoch",
	"default",
}

// templateFuncs is the function set of line_format and label_format
// templates: Loki's own functions plus the sprig subset. __line__ and
// __timestamp__ are bound per template instance.
var templateFuncs = sync.OnceValue(func() template.FuncMap {
	fm := template.FuncMap{
		"ToLower":    strings.ToLower,
		"ToUpper":    strings.ToUpper,
		"Replace":    strings.Replace,
		"Trim":       strings.Trim,
		"TrimLeft":   strings.TrimLeft,
		"TrimRight":  strings.TrimRight,
		"TrimPrefix": strings.TrimPrefix,
		"TrimSuffix": strings.TrimSuffix,
		"TrimSpace":  strings.TrimSpace,
		"regexReplaceAll": func(re, s, repl string) (string, error) {
			r, err := cachedRegexp(re)
			if err != nil {
				return "", err
			}
			return r.ReplaceAllString(s, repl), nil
		},
		"regexReplaceAllLiteral": func(re, s, repl string) (string, error) {
			r, err := cachedRegexp(re)
			if err != nil {
				return "", err
			}
			return r.ReplaceAllLiteralString(s, repl), nil
		},
		"count": func(re, s string) (int, error) {
			r, err := cachedRegexp(re)
			if err != nil {
				return 0, err
			}
			return len(r.FindAllStringIndex(s, -1)), nil
		},
		"urldecode":        url.QueryUnescape,
		"urlencode":        url.QueryEscape,
		"bytes":            convertBytes,
		"duration":         convertDuration,
		"duration_seconds": convertDuration,
		"unixEpochMillis":  func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) },
		"unixEpochNanos":   func(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) },
		"toDateInZone":     toDateInZone,
		"unixToTime":       unixToTime,
		"alignLeft":        alignLeft,
		"alignRight":       alignRight,
		funcLine:           func() string { return "" },
		funcTimestamp:      func() time.Time { return time.Time{} },
	}
	sp := sprig.GenericFuncMap()
	for _, n := range sprigFuncs {
		if f, ok := sp[n]; ok {
			fm[n] = f
		}
	}
	boundedFuncs(fm)
	for _, n := range lql.TemplateFuncNames {
		if _, ok := fm[n]; !ok {
			panic("BUG: template function " + n + " has no implementation")
		}
	}
	return fm
})

var (
	regexpCacheMu sync.Mutex
	regexpCache   = map[string]*regexp.Regexp{}
)

// cachedRegexp compiles a template's regexp argument once.
func cachedRegexp(expr string) (*regexp.Regexp, error) {
	regexpCacheMu.Lock()
	defer regexpCacheMu.Unlock()
	if r, ok := regexpCache[expr]; ok {
		return r, nil
	}
	r, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	if len(regexpCache) > 1024 {
		clear(regexpCache)
	}
	regexpCache[expr] = r
	return r, nil
}

func convertBytes(v string) (float64, error) {
	b, err := parseBytes(v)
	return float64(b), err
}

func convertDuration(v string) (float64, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, err
	}
	return d.Seconds(), nil
}

func toDateInZone(layout, zone, value string) time.Time {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		loc = time.UTC
	}
	t, _ := time.ParseInLocation(layout, value, loc)
	return t
}

// unixToTime reads a Unix time in days (5 digits), seconds (10),
// milliseconds (13), microseconds (16) or nanoseconds (19).
func unixToTime(epoch string) (time.Time, error) {
	i, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("unable to parse time '%v': %w", epoch, err)
	}
	switch len(epoch) {
	case 5:
		return time.Unix(i*86400, 0), nil
	case 10:
		return time.Unix(i, 0), nil
	case 13:
		return time.Unix(0, i*1e6), nil
	case 16:
		return time.Unix(0, i*1e3), nil
	case 19:
		return time.Unix(0, i), nil
	}
	return time.Time{}, fmt.Errorf("unable to parse time '%v': unsupported length", epoch)
}

func alignLeft(count int, src string) string {
	runes := []rune(src)
	if count < 0 || count == len(runes) {
		return src
	}
	if pad := count - len(runes); pad > 0 {
		return src + strings.Repeat(" ", pad)
	}
	return string(runes[:count])
}

func alignRight(count int, src string) string {
	runes := []rune(src)
	if count < 0 || count == len(runes) {
		return src
	}
	if pad := count - len(runes); pad > 0 {
		return strings.Repeat(" ", pad) + src
	}
	return string(runes[len(runes)-count:])
}

// compiledTemplate is a parsed template shared by a Pipeline's streams.
type compiledTemplate struct {
	t *template.Template
	// fields are the labels the template reads; known is false when it
	// reads labels dynamically (`.` itself, index, range, variables), so no
	// label may be skipped by the parsers.
	fields []string
	known  bool
}

func compileTemplate(name, text string) (*compiledTemplate, error) {
	t, err := template.New(name).Option("missingkey=zero").Funcs(templateFuncs()).Parse(text)
	if err != nil {
		return nil, err
	}
	ct := &compiledTemplate{t: t, known: true}
	ct.walk(t.Root)
	return ct, nil
}

// walk collects the fields a template reads.
func (c *compiledTemplate) walk(n parse.Node) {
	switch x := n.(type) {
	case nil:
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, n := range x.Nodes {
			c.walk(n)
		}
	case *parse.ActionNode:
		c.walk(x.Pipe)
	case *parse.PipeNode:
		if x == nil {
			return
		}
		if len(x.Decl) > 0 {
			c.known = false
		}
		for _, cmd := range x.Cmds {
			c.walk(cmd)
		}
	case *parse.CommandNode:
		for _, a := range x.Args {
			c.walk(a)
		}
	case *parse.IfNode:
		c.walk(x.Pipe)
		c.walk(x.List)
		c.walk(x.ElseList)
	case *parse.WithNode:
		c.known = false
	case *parse.RangeNode:
		c.known = false
	case *parse.TemplateNode:
		c.known = false
	case *parse.FieldNode:
		if len(x.Ident) > 0 {
			c.fields = append(c.fields, x.Ident[0])
		}
	case *parse.ChainNode:
		c.walk(x.Node)
	case *parse.DotNode, *parse.VariableNode:
		c.known = false
	}
}

// templateExec is a per-stream instance of a template with __line__ and
// __timestamp__ bound to the entry being processed.
type templateExec struct {
	t    *template.Template
	line []byte
	ts   int64
	buf  boundedBuffer
}

func newTemplateExec(c *compiledTemplate) *templateExec {
	e := &templateExec{}
	t, err := c.t.Clone()
	if err != nil {
		// Clone fails only for a template that was already executed, which
		// the shared one never is.
		panic("BUG: clone template: " + err.Error())
	}
	e.t = t.Funcs(template.FuncMap{
		funcLine:      func() string { return bytesString(e.line) },
		funcTimestamp: func() time.Time { return time.Unix(0, e.ts) },
	})
	return e
}

func (e *templateExec) exec(ts int64, line []byte, data map[string]string) error {
	e.buf.Reset()
	e.line, e.ts = line, ts
	err := e.t.Execute(&e.buf, data)
	e.line = nil
	return err
}

// fillTemplateData puts every label of the entry, with the error labels, in
// m.
func fillTemplateData(m map[string]string, l *Labels) {
	clear(m)
	for i := range l.entries {
		m[l.entries[i].name] = l.entries[i].value
	}
	if l.err != "" {
		m[ErrorLabel] = l.err
	}
	if l.errDetails != "" {
		m[ErrorDetailsLabel] = l.errDetails
	}
}

// lineFormatProc is `| line_format "…"` (LQ-T1): the line becomes the
// template's output; on a template error the line is unchanged and the entry
// gets __error__=TemplateFormatErr.
type lineFormatProc struct {
	e    *templateExec
	data map[string]string
}

func (p *lineFormatProc) process(ts int64, line []byte, l *Labels) ([]byte, bool) {
	fillTemplateData(p.data, l)
	if err := p.e.exec(ts, line, p.data); err != nil {
		l.setErr(ErrTemplateFormat, err.Error())
		return line, true
	}
	return p.e.buf.Bytes(), true
}

// labelFormatProc is `| label_format dst=src, dst="{{…}}"` (LQ-T2). A rename
// keeps the source's category and removes the source; a template sets a
// parsed label. Templates see the labels as they are when the stage's first
// template runs.
type labelFormatProc struct {
	formats []lql.LabelFormat
	execs   []*templateExec // nil for renames
	data    map[string]string
}

func (p *labelFormatProc) process(ts int64, line []byte, l *Labels) ([]byte, bool) {
	filled := false
	for i, f := range p.formats {
		if f.Rename {
			if v, cat, ok := l.get(f.Value); ok {
				l.set(cat, f.Name, v)
				l.del(f.Value)
			}
			continue
		}
		if !filled {
			fillTemplateData(p.data, l)
			filled = true
		}
		e := p.execs[i]
		if err := e.exec(ts, line, p.data); err != nil {
			l.setErr(ErrTemplateFormat, err.Error())
			continue
		}
		v := e.buf.Bytes()
		if !utf8.Valid(v) {
			// Label values are UTF-8 (b64dec, substr may cut runes).
			v = bytes.ToValidUTF8(v, []byte("\uFFFD"))
		}
		l.set(catParsed, f.Name, l.copyString(v))
	}
	return line, true
}
