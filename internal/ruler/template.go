package ruler

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Templates in labels and annotations use Prometheus' alert templating:
// text/template with $labels, $externalLabels, $externalURL and $value
// defined, and Prometheus' functions (humanize*, match, reReplaceAll,
// title, toUpper, query with first/label/value/sortByLabel, ...). The
// query function runs a LogQL metric query for the rule's tenant.

const templatePrefix = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"

// templateData is what a template sees.
type templateData struct {
	Labels         map[string]string
	ExternalLabels map[string]string
	ExternalURL    string
	Value          float64
}

// templateQuery runs a query for the `query` template function.
type templateQuery func(q string) (Vector, error)

// querySample is one element of a `query` result in a template.
type querySample struct {
	Labels map[string]string
	Value  float64
}

type queryResult []*querySample

// checkTemplate reports whether text parses as an alert template.
func checkTemplate(name, text string) error {
	if !strings.Contains(text, "{{") {
		return nil
	}
	_, err := template.New(name).Funcs(templateFuncs(nil)).Option("missingkey=zero").Parse(templatePrefix + text)
	if err != nil {
		return fmt.Errorf("template %s: %w", name, err)
	}
	return nil
}

// expandTemplate expands text once (tests and one-off use).
func expandTemplate(name, text string, data templateData, q templateQuery) string {
	c := newTemplateCache()
	c.query = q
	return c.expand(name, text, data)
}

// templateCache holds the parsed templates of one rule, so that each is
// parsed once, not once per alert. It is not safe for concurrent use: a
// rule is evaluated by its group's goroutine only.
type templateCache struct {
	// query serves the `query` function during the evaluation in
	// progress.
	query  templateQuery
	funcs  template.FuncMap
	byText map[string]*template.Template
}

func newTemplateCache() *templateCache {
	c := &templateCache{byText: map[string]*template.Template{}}
	c.funcs = templateFuncs(func(s string) (Vector, error) {
		if c.query == nil {
			return nil, errors.New("query is not available here")
		}
		return c.query(s)
	})
	return c
}

// expand expands text. As in Prometheus, an error becomes the result text
// so that the alert still goes out.
func (c *templateCache) expand(name, text string, data templateData) string {
	if !strings.Contains(text, "{{") {
		return text
	}
	t, ok := c.byText[text]
	if !ok {
		var err error
		t, err = template.New(name).Funcs(c.funcs).Option("missingkey=zero").Parse(templatePrefix + text)
		if err != nil {
			return fmt.Sprintf("<error expanding template: %v>", err)
		}
		c.byText[text] = t
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return fmt.Sprintf("<error expanding template: %v>", err)
	}
	return buf.String()
}

func templateFuncs(q templateQuery) template.FuncMap {
	return template.FuncMap{
		"query": func(s string) (queryResult, error) {
			if q == nil {
				return nil, errors.New("query is not available here")
			}
			v, err := q(s)
			if err != nil {
				return nil, err
			}
			out := make(queryResult, 0, len(v))
			for _, smp := range v {
				out = append(out, &querySample{Labels: smp.Labels.Map(), Value: smp.Value})
			}
			return out, nil
		},
		"first": func(r queryResult) (*querySample, error) {
			if len(r) > 0 {
				return r[0], nil
			}
			return nil, errors.New("first() called on vector with no elements")
		},
		"label": func(name string, s *querySample) string {
			if s == nil {
				return ""
			}
			return s.Labels[name]
		},
		"value": func(s *querySample) float64 {
			if s == nil {
				return math.NaN()
			}
			return s.Value
		},
		"strvalue": func(s *querySample) string {
			if s == nil {
				return ""
			}
			return s.Labels["__value__"]
		},
		"sortByLabel": func(name string, r queryResult) queryResult {
			out := append(queryResult(nil), r...)
			sort.SliceStable(out, func(i, j int) bool { return out[i].Labels[name] < out[j].Labels[name] })
			return out
		},
		"args": func(args ...any) map[string]any {
			m := map[string]any{}
			for i, a := range args {
				m["arg"+strconv.Itoa(i)] = a
			}
			return m
		},
		"match":   regexp.MatchString,
		"title":   title,
		"toUpper": strings.ToUpper,
		"toLower": strings.ToLower,
		"reReplaceAll": func(pattern, repl, text string) (string, error) {
			re, err := regexp.Compile(pattern)
			if err != nil {
				return "", err
			}
			return re.ReplaceAllString(text, repl), nil
		},
		"safeHtml":  func(s string) string { return s },
		"stripPort": stripPort,
		"stripDomain": func(hostPort string) string {
			host, port, err := net.SplitHostPort(hostPort)
			if err != nil {
				host = hostPort
			}
			if ip := net.ParseIP(host); ip != nil {
				return hostPort
			}
			if i := strings.IndexByte(host, '.'); i >= 0 {
				host = host[:i]
			}
			if port != "" {
				return net.JoinHostPort(host, port)
			}
			return host
		},
		"humanize":         func(v any) (string, error) { return withFloat(v, humanize) },
		"humanize1024":     func(v any) (string, error) { return withFloat(v, humanize1024) },
		"humanizeDuration": func(v any) (string, error) { return withFloat(v, humanizeDuration) },
		"humanizePercentage": func(v any) (string, error) {
			return withFloat(v, func(f float64) string { return fmt.Sprintf("%.4g%%", f*100) })
		},
		"humanizeTimestamp": func(v any) (string, error) { return withFloat(v, humanizeTimestamp) },
		"toTime": func(v any) (time.Time, error) {
			f, err := toFloat(v)
			if err != nil {
				return time.Time{}, err
			}
			return floatTime(f), nil
		},
		"parseDuration": func(s string) (float64, error) {
			d, err := time.ParseDuration(s)
			if err != nil {
				return 0, err
			}
			return d.Seconds(), nil
		},
	}
}

func stripPort(hostPort string) string {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return hostPort
	}
	return host
}

func title(s string) string {
	prev := ' '
	return strings.Map(func(r rune) rune {
		defer func() { prev = r }()
		if unicode.IsSpace(prev) || unicode.IsPunct(prev) {
			return unicode.ToTitle(r)
		}
		return r
	}, s)
}

func withFloat(v any, f func(float64) string) (string, error) {
	x, err := toFloat(v)
	if err != nil {
		return "", err
	}
	return f(x), nil
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case time.Duration:
		return x.Seconds(), nil
	case string:
		return strconv.ParseFloat(x, 64)
	}
	return 0, fmt.Errorf("can't convert %T to float", v)
}

func humanize(v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v)
	}
	if math.Abs(v) >= 1 {
		prefix := ""
		for _, p := range []string{"k", "M", "G", "T", "P", "E", "Z", "Y"} {
			if math.Abs(v) < 1000 {
				break
			}
			prefix = p
			v /= 1000
		}
		return fmt.Sprintf("%.4g%s", v, prefix)
	}
	prefix := ""
	for _, p := range []string{"m", "u", "n", "p", "f", "a", "z", "y"} {
		if math.Abs(v) >= 1 {
			break
		}
		prefix = p
		v *= 1000
	}
	return fmt.Sprintf("%.4g%s", v, prefix)
}

func humanize1024(v float64) string {
	if math.Abs(v) <= 1 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v)
	}
	prefix := ""
	for _, p := range []string{"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"} {
		if math.Abs(v) < 1024 {
			break
		}
		prefix = p
		v /= 1024
	}
	return fmt.Sprintf("%.4g%s", v, prefix)
}

func humanizeDuration(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v)
	}
	if v == 0 {
		return fmt.Sprintf("%.4gs", v)
	}
	if math.Abs(v) >= 1 {
		sign := ""
		if v < 0 {
			sign = "-"
			v = -v
		}
		d := int64(v)
		seconds := d % 60
		minutes := (d / 60) % 60
		hours := (d / 3600) % 24
		days := d / 86400
		switch {
		case days != 0:
			return fmt.Sprintf("%s%dd %dh %dm %ds", sign, days, hours, minutes, seconds)
		case hours != 0:
			return fmt.Sprintf("%s%dh %dm %ds", sign, hours, minutes, seconds)
		case minutes != 0:
			return fmt.Sprintf("%s%dm %ds", sign, minutes, seconds)
		}
		return fmt.Sprintf("%s%.4gs", sign, v)
	}
	prefix := ""
	for _, p := range []string{"m", "u", "n", "p", "f", "a", "z", "y"} {
		if math.Abs(v) >= 1 {
			break
		}
		prefix = p
		v *= 1000
	}
	return fmt.Sprintf("%.4g%ss", v, prefix)
}

func humanizeTimestamp(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v)
	}
	return floatTime(v).String()
}

func floatTime(v float64) time.Time {
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

// labelMap is the $labels view of a sample's labels.
func labelMap(l model.Labels) map[string]string { return l.Map() }
