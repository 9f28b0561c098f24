package syntax

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"text/template"
)

// Labels with a fixed meaning in pipelines (LQ-E1, LQ-E2).
const (
	errorLabel        = "__error__"
	errorDetailsLabel = "__error_details__"
)

// TemplateFuncNames lists the functions line_format and label_format
// templates may call (LQ-T3), besides text/template's built-ins. Templates
// are checked against this list at parse time; the engine must provide an
// implementation for each name.
var TemplateFuncNames = []string{
	// strings
	"ToLower", "ToUpper", "Replace", "Trim", "TrimLeft", "TrimRight", "TrimPrefix",
	"TrimSuffix", "TrimSpace", "lower", "upper", "title", "trunc", "substr", "contains",
	"hasPrefix", "hasSuffix", "indent", "nindent", "replace", "repeat", "trim", "trimAll",
	"trimPrefix", "trimSuffix", "alignLeft", "alignRight", "b64enc", "b64dec",
	"urlencode", "urldecode", "default", "fromJson",
	// regexps
	"regexReplaceAll", "regexReplaceAllLiteral", "count",
	// math
	"int", "float64", "add", "sub", "mul", "div", "mod", "addf", "subf", "mulf", "divf",
	"max", "min", "maxf", "minf", "ceil", "floor", "round",
	// time
	"date", "toDate", "toDateInZone", "now", "unixEpoch", "unixEpochMillis",
	"unixEpochNanos", "unixToTime", "duration", "duration_seconds",
	// misc
	"bytes",
	// line and timestamp of the entry being formatted (LQ-E3)
	"__line__", "__timestamp__",
}

var (
	templateStubsOnce sync.Once
	templateStubs     template.FuncMap
)

// validateTemplate parses a line_format (name "line") or label_format (name
// "label") template the way the engine will, so unknown functions and bad
// syntax are parse errors (`template: line:1: function "foo" not defined`).
func validateTemplate(name, text string) error {
	templateStubsOnce.Do(func() {
		templateStubs = make(template.FuncMap, len(TemplateFuncNames))
		for _, n := range TemplateFuncNames {
			templateStubs[n] = func(...any) any { return nil }
		}
	})
	_, err := template.New(name).Funcs(templateStubs).Parse(text)
	return err
}

// validateRegexpParser checks the regexp of `| regexp`: it must compile and
// have at least one named capture, each a valid label name (LQ-P4).
func validateRegexpParser(re string) error {
	r, err := regexp.Compile(re)
	if err != nil {
		return err
	}
	named := 0
	for _, n := range r.SubexpNames() {
		if n == "" {
			continue
		}
		if !IsValidLabelName(n) {
			return fmt.Errorf("invalid extracted label name '%s'", n)
		}
		named++
	}
	if named == 0 {
		return errors.New("at least one named capture must be supplied")
	}
	return nil
}

// validateIPPattern checks an ip("…") argument: one address, a CIDR prefix
// or an inclusive range "a-b" of addresses of one family (LQ-F7).
func validateIPPattern(s string) error {
	if _, _, err := ParseIPPattern(s); err != nil {
		return err
	}
	return nil
}

// ParseIPPattern parses an ip("…") argument into the inclusive address
// range it covers.
func ParseIPPattern(s string) (first, last netip.Addr, err error) {
	invalid := fmt.Errorf("invalid ip pattern %q: expecting an address, a CIDR or a range a-b", s)
	switch {
	case strings.Contains(s, "/"):
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return first, last, invalid
		}
		pfx = pfx.Masked()
		first = pfx.Addr()
		last = lastAddr(pfx)
		return first, last, nil
	case strings.Contains(s, "-"):
		a, b, _ := strings.Cut(s, "-")
		first, err1 := netip.ParseAddr(strings.TrimSpace(a))
		last, err2 := netip.ParseAddr(strings.TrimSpace(b))
		if err1 != nil || err2 != nil || first.Is4() != last.Is4() || last.Less(first) {
			return netip.Addr{}, netip.Addr{}, invalid
		}
		return first, last, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return first, last, invalid
	}
	return a, a, nil
}

func lastAddr(pfx netip.Prefix) netip.Addr {
	b := pfx.Addr().AsSlice()
	bits := pfx.Bits()
	for i := range b {
		for bit := 0; bit < 8; bit++ {
			if i*8+bit >= bits {
				b[i] |= 0x80 >> bit
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
