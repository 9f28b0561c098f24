package model

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseLabels parses a Prometheus-style label string such as
// `{app="api", env="prod"}` as Loki push clients send it. Errors follow the
// Prometheus parser's wording (`1:2: parse error: …`) because clients grep
// for it. Duplicate names are an error.
func ParseLabels(s string) (Labels, error) {
	p := labelParser{s: s}
	return p.parse()
}

type labelParser struct {
	s   string
	pos int
}

func (p *labelParser) errorf(format string, args ...any) error {
	return fmt.Errorf("1:%d: parse error: %s", p.pos+1, fmt.Sprintf(format, args...))
}

func (p *labelParser) skipSpace() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *labelParser) parse() (Labels, error) {
	p.skipSpace()
	if p.pos >= len(p.s) || p.s[p.pos] != '{' {
		if p.pos >= len(p.s) {
			return EmptyLabels(), p.errorf("unexpected end of input")
		}
		return EmptyLabels(), p.errorf("unexpected character: %q", p.s[p.pos])
	}
	p.pos++
	b := NewScratch()
	for {
		p.skipSpace()
		if p.pos >= len(p.s) {
			return EmptyLabels(), p.errorf("unexpected end of input inside braces")
		}
		if p.s[p.pos] == '}' {
			p.pos++
			break
		}
		name, err := p.name()
		if err != nil {
			return EmptyLabels(), err
		}
		p.skipSpace()
		if p.pos >= len(p.s) || p.s[p.pos] != '=' {
			return EmptyLabels(), p.errorf("unexpected character inside braces, expected \"=\"")
		}
		p.pos++
		p.skipSpace()
		value, err := p.value()
		if err != nil {
			return EmptyLabels(), err
		}
		b.Add(name, value)
		p.skipSpace()
		if p.pos < len(p.s) && p.s[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.s) && p.s[p.pos] == '}' {
			p.pos++
			break
		}
		if p.pos >= len(p.s) {
			return EmptyLabels(), p.errorf("unexpected end of input inside braces")
		}
		return EmptyLabels(), p.errorf("unexpected character inside braces: %q", p.s[p.pos])
	}
	p.skipSpace()
	if p.pos != len(p.s) {
		return EmptyLabels(), p.errorf("unexpected character after labels: %q", p.s[p.pos])
	}
	ls, dup := b.Labels()
	if dup != "" {
		return EmptyLabels(), fmt.Errorf("duplicate label name %q", dup)
	}
	return ls, nil
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNameChar(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }

func (p *labelParser) name() (string, error) {
	start := p.pos
	if p.pos < len(p.s) && p.s[p.pos] == '"' {
		// Quoted (UTF-8) label names, as Prometheus 3 allows.
		return p.value()
	}
	if p.pos >= len(p.s) || !isNameStart(p.s[p.pos]) {
		return "", p.errorf("unexpected character inside braces: '%c'", p.s[p.pos])
	}
	for p.pos < len(p.s) && isNameChar(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos], nil
}

func (p *labelParser) value() (string, error) {
	if p.pos >= len(p.s) {
		return "", p.errorf("unexpected end of input, expected label value")
	}
	q := p.s[p.pos]
	if q != '"' && q != '\'' && q != '`' {
		return "", p.errorf("unexpected character inside braces: '%c', expected string", q)
	}
	start := p.pos
	p.pos++
	escaped := false
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if c == '\\' && q != '`' {
			escaped = true
			p.pos += 2
			continue
		}
		if c == q {
			p.pos++
			raw := p.s[start:p.pos]
			if !escaped {
				return raw[1 : len(raw)-1], nil
			}
			if q == '\'' {
				raw = `"` + strings.ReplaceAll(raw[1:len(raw)-1], `"`, `\"`) + `"`
			}
			v, err := strconv.Unquote(raw)
			if err != nil {
				return "", p.errorf("invalid quoted string %s: %v", raw, err)
			}
			return v, nil
		}
		p.pos++
	}
	return "", p.errorf("unterminated quoted string")
}
