package stages

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/Masterminds/sprig/v3"
	"go.yaml.in/yaml/v3"
)

// templateFuncs is Promtail's template function set: all of sprig's text
// functions plus Promtail's own (which win on name clashes).
var templateFuncs = func() template.FuncMap {
	m := sprig.TxtFuncMap()
	for k, v := range promtailFuncs {
		m[k] = v
	}
	return m
}()

var promtailFuncs = template.FuncMap{
	"ToLower":    strings.ToLower,
	"ToUpper":    strings.ToUpper,
	"Replace":    strings.Replace,
	"Trim":       strings.Trim,
	"TrimLeft":   strings.TrimLeft,
	"TrimRight":  strings.TrimRight,
	"TrimPrefix": strings.TrimPrefix,
	"TrimSuffix": strings.TrimSuffix,
	"TrimSpace":  strings.TrimSpace,
	// Hash is SHA3-256 of salt+input, hex encoded (Promtail's argument order).
	"Hash": func(salt, input string) string {
		h := sha3.Sum256([]byte(salt + input))
		return hex.EncodeToString(h[:])
	},
	"Sha2Hash": func(salt, input string) string {
		h := sha256.Sum256([]byte(salt + input))
		return hex.EncodeToString(h[:])
	},
	"regexReplaceAll": func(expr, s, repl string) (string, error) {
		re, err := regexp.Compile(expr)
		if err != nil {
			return "", err
		}
		return re.ReplaceAllString(s, repl), nil
	},
	"regexReplaceAllLiteral": func(expr, s, repl string) (string, error) {
		re, err := regexp.Compile(expr)
		if err != nil {
			return "", err
		}
		return re.ReplaceAllLiteralString(s, repl), nil
	},
}

func parseTemplate(text string) (*template.Template, error) {
	t, err := template.New("pipeline_template").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	return t, nil
}

// templateData is what a template sees: every extracted value convertible to
// a string under its key. Values that are not (nil from an unmatched JSON
// expression, say) are left out, so "{{ .key }}" renders "<no value>".
func templateData(extracted map[string]any, extra int) map[string]any {
	td := make(map[string]any, len(extracted)+extra)
	for k, v := range extracted {
		if s, ok := toString(v); ok {
			td[k] = s
		}
	}
	return td
}

// templateFields lists the extracted keys a template reads from its root
// (".key", "$.key", "index . \"key\""), leaving out Value and Entry.
func templateFields(t *template.Template) []string {
	seen := map[string]bool{}
	var out []string
	addField := func(name string) {
		if name == "Value" || name == "Entry" || seen[name] {
			return
		}
		seen[name] = true
		out = append(out, name)
	}
	var walk func(n parse.Node, rootDot bool)
	walkPipe := func(p *parse.PipeNode, rootDot bool) {
		if p == nil {
			return
		}
		for _, c := range p.Cmds {
			walk(c, rootDot)
		}
	}
	walk = func(n parse.Node, rootDot bool) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c, rootDot)
			}
		case *parse.ActionNode:
			walkPipe(n.Pipe, rootDot)
		case *parse.IfNode:
			walkPipe(n.Pipe, rootDot)
			walk(n.List, rootDot)
			walk(n.ElseList, rootDot)
		case *parse.RangeNode:
			walkPipe(n.Pipe, rootDot)
			walk(n.List, false) // dot is the element inside range
			walk(n.ElseList, rootDot)
		case *parse.WithNode:
			walkPipe(n.Pipe, rootDot)
			walk(n.List, false)
			walk(n.ElseList, rootDot)
		case *parse.TemplateNode:
			walkPipe(n.Pipe, rootDot)
		case *parse.PipeNode:
			walkPipe(n, rootDot)
		case *parse.CommandNode:
			for i, a := range n.Args {
				// index . "key"
				if id, ok := a.(*parse.IdentifierNode); ok && id.Ident == "index" && i == 0 && len(n.Args) >= 3 {
					if _, isDot := n.Args[1].(*parse.DotNode); isDot && rootDot {
						if s, ok := n.Args[2].(*parse.StringNode); ok {
							addField(s.Text)
						}
					}
				}
				walk(a, rootDot)
			}
		case *parse.FieldNode:
			if rootDot && len(n.Ident) > 0 {
				addField(n.Ident[0])
			}
		case *parse.VariableNode:
			if len(n.Ident) > 1 && n.Ident[0] == "$" {
				addField(n.Ident[1])
			}
		case *parse.ChainNode:
			walk(n.Node, rootDot)
		}
	}
	if t.Tree != nil {
		walk(t.Tree.Root, true)
	}
	return out
}

// ---- template ----

type templateConfig struct {
	Source   string `yaml:"source"`
	Template string `yaml:"template"`
}

// templateStage renders a Go template over the extracted values (plus .Value,
// the source's current value, and .Entry, the line) and stores the result
// under source; an empty result deletes source.
type templateStage struct {
	source string
	tmpl   *template.Template
	fields []string
	simple []simplePart // non-nil when the template is only text and {{ .key }}
	buf    []byte       // scratch for simple; process runs one entry at a time
}

// simplePart is a piece of a template made only of text and root field
// references: the text, or the field name when isField.
type simplePart struct {
	text    string
	isField bool
}

// simpleTemplate returns the parts of a template made only of text and
// {{ .key }} actions, or nil. Such a template renders without reflection.
func simpleTemplate(t *template.Template) []simplePart {
	if t.Tree == nil || t.Tree.Root == nil || len(t.Tree.Root.Nodes) == 0 || len(t.Templates()) > 1 {
		return nil
	}
	parts := []simplePart{}
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			parts = append(parts, simplePart{text: string(n.Text)})
		case *parse.ActionNode:
			p := n.Pipe
			if p == nil || p.IsAssign || len(p.Decl) > 0 || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
				return nil
			}
			f, ok := p.Cmds[0].Args[0].(*parse.FieldNode)
			if !ok || len(f.Ident) != 1 {
				return nil
			}
			parts = append(parts, simplePart{text: f.Ident[0], isField: true})
		default:
			return nil
		}
	}
	return parts
}

// renderSimple renders a simple template with what Execute would print:
// the field's string form, or "<no value>" when templateData would not
// hold the key.
func (s *templateStage) renderSimple(e *Entry) string {
	b := s.buf[:0]
	for _, p := range s.simple {
		if !p.isField {
			b = append(b, p.text...)
			continue
		}
		var v string
		ok := false
		switch p.text {
		case "Entry":
			v, ok = e.Line, true
		case "Value":
			if v, ok = toStringKey(e.Extracted, s.source); !ok {
				v, ok = toStringKey(e.Extracted, "Value")
			}
		default:
			v, ok = toStringKey(e.Extracted, p.text)
		}
		if !ok {
			v = "<no value>"
		}
		b = append(b, v...)
	}
	s.buf = b
	return string(b)
}

func toStringKey(m map[string]any, k string) (string, bool) {
	v, ok := m[k]
	if !ok {
		return "", false
	}
	return toString(v)
}

func newTemplateStage(_ *builder, _ *builtStage, n *yaml.Node) (any, error) {
	var cfg templateConfig
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	if cfg.Source == "" {
		return nil, errors.New("template source value is required")
	}
	t, err := parseTemplate(cfg.Template)
	if err != nil {
		return nil, err
	}
	return &templateStage{source: cfg.Source, tmpl: t, fields: templateFields(t), simple: simpleTemplate(t)}, nil
}

func (s *templateStage) process(e *Entry) bool {
	if s.simple != nil {
		if out := s.renderSimple(e); out == "" {
			delete(e.Extracted, s.source)
		} else {
			e.Extracted[s.source] = out
		}
		return true
	}
	td := templateData(e.Extracted, 2)
	if v, ok := td[s.source]; ok {
		td["Value"] = v
	}
	td["Entry"] = e.Line
	var buf bytes.Buffer
	if err := s.tmpl.Execute(&buf, td); err != nil {
		return true // Promtail leaves the entry unchanged
	}
	if buf.Len() == 0 {
		delete(e.Extracted, s.source)
	} else {
		e.Extracted[s.source] = buf.String()
	}
	return true
}

func (s *templateStage) reads() []string  { return s.fields }
func (s *templateStage) writes() []string { return []string{s.source} }

// ---- replace ----

type replaceConfig struct {
	Expression string  `yaml:"expression"`
	Source     *string `yaml:"source"`
	Replace    string  `yaml:"replace"`
}

// replaceStage replaces every capture group of every match of expression in
// the line (or source) with the rendered replace template, in which .Value is
// the captured text. Named groups are also extracted with their replaced
// value. Text outside capture groups is kept.
type replaceStage struct {
	source *string
	re     *regexp.Regexp
	tmpl   *template.Template
	fields []string
}

func newReplaceStage(_ *builder, _ *builtStage, n *yaml.Node) (any, error) {
	var cfg replaceConfig
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
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
	// Promtail parses the template per entry and silently skips the stage when
	// it is invalid; an invalid template is rejected here instead.
	t, err := parseTemplate(cfg.Replace)
	if err != nil {
		return nil, err
	}
	return &replaceStage{source: cfg.Source, re: re, tmpl: t, fields: templateFields(t)}, nil
}

func (s *replaceStage) process(e *Entry) bool {
	in, ok := sourceText(e, s.source)
	if !ok {
		return true
	}
	all := s.re.FindAllStringSubmatchIndex(in, -1)
	if all == nil {
		return true
	}
	td := templateData(e.Extracted, 1)
	var result strings.Builder
	prevEnd := 0
	replaced := make(map[string]string)
	var buf bytes.Buffer
	for _, m := range all {
		for i := 2; i+1 < len(m); i += 2 {
			if m[i] == -1 {
				continue
			}
			captured := in[m[i]:m[i+1]]
			td["Value"] = captured
			buf.Reset()
			if err := s.tmpl.Execute(&buf, td); err != nil {
				return true
			}
			// Promtail's rule: a group is replaced only when it starts after
			// the previous replaced group ended (or nothing was replaced yet),
			// so nested and directly adjacent groups keep their text.
			if prevEnd == 0 || prevEnd < m[i] {
				result.WriteString(in[prevEnd:m[i]])
				result.Write(buf.Bytes())
				prevEnd = m[i+1]
			}
			replaced[captured] = buf.String()
		}
	}
	result.WriteString(in[prevEnd:])
	if s.source != nil {
		e.Extracted[*s.source] = result.String()
	} else {
		e.Line = result.String()
	}
	first := s.re.FindStringSubmatch(in)
	for i, name := range s.re.SubexpNames() {
		if i != 0 && name != "" && first != nil {
			if v, ok := replaced[first[i]]; ok {
				e.Extracted[name] = v
			}
		}
	}
	return true
}

func (s *replaceStage) reads() []string { return append(sourceReads(s.source), s.fields...) }
func (s *replaceStage) writes() []string {
	var out []string
	if s.source != nil {
		out = append(out, *s.source)
	}
	for i, name := range s.re.SubexpNames() {
		if i != 0 && name != "" {
			out = append(out, name)
		}
	}
	return out
}
