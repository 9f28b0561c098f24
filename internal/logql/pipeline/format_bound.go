package pipeline

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"

	"github.com/grafana/regexp"
)

// maxTemplateOutput bounds what one line_format or label_format template
// may produce, and every string a template function builds on the way: a
// query cannot make the engine allocate without bound (`repeat`, chained
// `replace`, `printf` widths). Beyond it the template fails with
// __error__=TemplateFormatErr, as any template error does. It is 16 times
// Loki's default max_line_size.
const maxTemplateOutput = 4 << 20

var errTemplateOutput = errors.New("template output exceeds " + strconv.Itoa(maxTemplateOutput>>20) + " MiB")

// boundedBuffer is the output of a template execution; writes beyond
// maxTemplateOutput fail, which stops the execution.
type boundedBuffer struct {
	b []byte
}

func (w *boundedBuffer) Write(p []byte) (int, error) {
	if len(w.b)+len(p) > maxTemplateOutput {
		return 0, errTemplateOutput
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *boundedBuffer) Reset()        { w.b = w.b[:0] }
func (w *boundedBuffer) Bytes() []byte { return w.b }

// checked returns s, or an error when it is over the bound.
func checked(s string) (string, error) {
	if len(s) > maxTemplateOutput {
		return "", errTemplateOutput
	}
	return s, nil
}

// boundedStringFunc wraps a string function whose output is at most a
// small multiple of its input: the result is checked afterwards.
func boundedStringFunc(f func(string) string) func(string) (string, error) {
	return func(s string) (string, error) { return checked(f(s)) }
}

// boundedFuncs replaces the template functions whose output may grow
// without bound by versions that refuse to build a result over the bound
// (and return what the originals return otherwise).
func boundedFuncs(fm template.FuncMap) {
	fm["repeat"] = func(count int, s string) (string, error) {
		if count < 0 {
			return "", errors.New("negative repeat count")
		}
		if count > 0 && len(s) > maxTemplateOutput/count {
			return "", errTemplateOutput
		}
		return strings.Repeat(s, count), nil
	}
	indent := func(spaces int, v string) (string, error) {
		if spaces < 0 {
			return "", errors.New("negative indent")
		}
		lines := strings.Count(v, "\n") + 1
		if spaces > maxTemplateOutput/lines || len(v)+spaces*lines > maxTemplateOutput {
			return "", errTemplateOutput
		}
		pad := strings.Repeat(" ", spaces)
		return pad + strings.ReplaceAll(v, "\n", "\n"+pad), nil
	}
	fm["indent"] = indent
	fm["nindent"] = func(spaces int, v string) (string, error) {
		s, err := indent(spaces, v)
		if err != nil {
			return "", err
		}
		return checked("\n" + s)
	}
	fm["alignLeft"] = func(count int, src string) (string, error) {
		if count > maxTemplateOutput {
			return "", errTemplateOutput
		}
		return alignLeft(count, src), nil
	}
	fm["alignRight"] = func(count int, src string) (string, error) {
		if count > maxTemplateOutput {
			return "", errTemplateOutput
		}
		return alignRight(count, src), nil
	}
	fm["replace"] = func(old, repl, src string) (string, error) {
		return boundedReplace(src, old, repl, -1)
	}
	fm["Replace"] = boundedReplace
	fm["regexReplaceAll"] = func(re, s, repl string) (string, error) {
		r, err := cachedRegexp(re)
		if err != nil {
			return "", err
		}
		return regexpReplace(r, s, repl, true)
	}
	fm["regexReplaceAllLiteral"] = func(re, s, repl string) (string, error) {
		r, err := cachedRegexp(re)
		if err != nil {
			return "", err
		}
		return regexpReplace(r, s, repl, false)
	}
	fm["printf"] = func(format string, args ...any) (string, error) {
		if printSize(args)+formatWidths(format) > maxTemplateOutput {
			return "", errTemplateOutput
		}
		return checked(fmt.Sprintf(format, args...))
	}
	fm["print"] = func(args ...any) (string, error) {
		if printSize(args) > maxTemplateOutput {
			return "", errTemplateOutput
		}
		return checked(fmt.Sprint(args...))
	}
	fm["println"] = func(args ...any) (string, error) {
		if printSize(args) > maxTemplateOutput {
			return "", errTemplateOutput
		}
		return checked(fmt.Sprintln(args...))
	}
	fm["html"] = func(args ...any) (string, error) {
		if printSize(args) > maxTemplateOutput {
			return "", errTemplateOutput
		}
		return checked(template.HTMLEscaper(args...))
	}
	fm["js"] = func(args ...any) (string, error) {
		if printSize(args) > maxTemplateOutput {
			return "", errTemplateOutput
		}
		return checked(template.JSEscaper(args...))
	}
	fm["urlquery"] = func(args ...any) (string, error) {
		if printSize(args) > maxTemplateOutput {
			return "", errTemplateOutput
		}
		return checked(template.URLQueryEscaper(args...))
	}
	for _, n := range []string{"ToUpper", "ToLower", "upper", "lower", "title", "b64enc", "urlencode"} {
		if f, ok := fm[n].(func(string) string); ok {
			fm[n] = boundedStringFunc(f)
		}
	}
}

// boundedReplace is strings.Replace that refuses results over the bound.
func boundedReplace(s, old, repl string, n int) (string, error) {
	if len(repl) > len(old) {
		m := strings.Count(s, old)
		if n >= 0 && n < m {
			m = n
		}
		if m > 0 && len(repl)-len(old) > (maxTemplateOutput-len(s))/m {
			return "", errTemplateOutput
		}
	}
	return strings.Replace(s, old, repl, n), nil
}

// regexpReplace is Regexp.ReplaceAllString (expand) or
// ReplaceAllLiteralString, built match by match so that it stops at the
// bound. FindAll's matches are ReplaceAll's: successive, non-overlapping,
// no empty match right after a match.
func regexpReplace(re *regexp.Regexp, src, repl string, expand bool) (string, error) {
	var out []byte
	last := 0
	for _, m := range re.FindAllStringSubmatchIndex(src, -1) {
		out = append(out, src[last:m[0]]...)
		if expand {
			out = re.ExpandString(out, repl, src, m)
		} else {
			out = append(out, repl...)
		}
		if len(out) > maxTemplateOutput {
			return "", errTemplateOutput
		}
		last = m[1]
	}
	if last == 0 && out == nil {
		return src, nil
	}
	out = append(out, src[last:]...)
	return checked(string(out))
}

// printSize estimates what fmt prints for args: string and byte-slice
// lengths, and a small size for anything else.
func printSize(args []any) int {
	n := 0
	for _, a := range args {
		switch v := a.(type) {
		case string:
			n += len(v)
		case []byte:
			n += len(v)
		case fmt.Stringer, error:
			n += 64
		default:
			n += 32
		}
		n++
	}
	return n
}

// formatWidths adds up the widths and precisions of a printf format (a
// `*` counts as fmt's largest, 10^6) and its length.
func formatWidths(format string) int {
	n := len(format)
	num := 0
	inVerb := false
	for i := 0; i < len(format); i++ {
		c := format[i]
		if !inVerb {
			inVerb = c == '%'
			continue
		}
		switch {
		case c >= '0' && c <= '9':
			num = min(num*10+int(c-'0'), 1e6)
		case c == '*':
			n += 1e6
		case c == '.' || c == '+' || c == '-' || c == '#' || c == ' ' || c == '[' || c == ']':
			n += num
			num = 0
		default: // the verb
			n += num
			num = 0
			inVerb = false
		}
	}
	return n + num
}
