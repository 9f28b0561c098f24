package stages

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ConfigError is a pipeline configuration error. It names the stage (its
// 1-based position in pipeline_stages, nested positions joined with ".") and,
// where known, the YAML line and column.
type ConfigError struct {
	Stage  string // e.g. "3" or "4.2" for the second stage inside a match at position 4
	Name   string // stage type, e.g. "json"
	Line   int
	Column int
	Err    error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("pipeline stage ")
	b.WriteString(e.Stage)
	if e.Name != "" {
		b.WriteString(" (")
		b.WriteString(e.Name)
		b.WriteString(")")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " at line %d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// posError is an error located at a YAML node; ConfigError takes its position.
type posError struct {
	line, col int
	err       error
}

func (e *posError) Error() string { return fmt.Sprintf("line %d:%d: %v", e.line, e.col, e.err) }
func (e *posError) Unwrap() error { return e.err }

func errAt(n *yaml.Node, format string, args ...any) error {
	return &posError{line: n.Line, col: n.Column, err: fmt.Errorf(format, args...)}
}

// resolve strips document and alias wrappers.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil {
		switch n.Kind {
		case yaml.DocumentNode:
			if len(n.Content) == 0 {
				return nil
			}
			n = n.Content[0]
		case yaml.AliasNode:
			n = n.Alias
		default:
			return n
		}
	}
	return nil
}

// isNull reports whether n is absent or an explicit YAML null ("docker:",
// "docker: ~").
func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// decodeStrict decodes n into out (a pointer) and rejects mapping keys that
// out's type does not declare, naming the key with its line and column. A
// null node leaves out at its zero value.
func decodeStrict(n *yaml.Node, out any) error {
	n = resolve(n)
	if n == nil || isNull(n) {
		return nil
	}
	if err := checkKeys(n, reflect.TypeOf(out)); err != nil {
		return err
	}
	if err := n.Decode(out); err != nil {
		return &posError{line: n.Line, col: n.Column, err: err}
	}
	return nil
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	nodeType        = reflect.TypeFor[yaml.Node]()
)

// checkKeys walks n alongside type t and reports the first unknown key.
func checkKeys(n *yaml.Node, t reflect.Type) error {
	n = resolve(n)
	if n == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		if t.Implements(unmarshalerType) {
			return nil
		}
		t = t.Elem()
	}
	if t == nodeType || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // the decoder reports the type mismatch
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				names := make([]string, 0, len(fields))
				for name := range fields {
					names = append(names, name)
				}
				slices.Sort(names)
				return errAt(k, "unknown key %q (known keys: %s)", k.Value, strings.Join(names, ", "))
			}
			if err := checkKeys(v, f.Type); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 1; i < len(n.Content); i += 2 {
			if err := checkKeys(n.Content[i], t.Elem()); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for _, c := range n.Content {
			if err := checkKeys(c, t.Elem()); err != nil {
				return err
			}
		}
	}
	return nil
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

// stringOrList is a YAML value written either as one string or as a list of
// strings (the drop stage's source).
type stringOrList []string

func (s *stringOrList) UnmarshalYAML(n *yaml.Node) error {
	n = resolve(n)
	switch n.Kind {
	case yaml.ScalarNode:
		*s = stringOrList{n.Value}
		return nil
	case yaml.SequenceNode:
		out := make(stringOrList, 0, len(n.Content))
		for _, c := range n.Content {
			c = resolve(c)
			if c.Kind != yaml.ScalarNode {
				return errAt(c, "source must be a string or a list of strings")
			}
			out = append(out, c.Value)
		}
		*s = out
		return nil
	}
	return errAt(n, "source must be a string or a list of strings")
}
