package stages

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigErrors(t *testing.T) {
	f := func(cfg, want string) {
		t.Helper()
		_, err := NewPipeline(stageNodes(t, cfg), Options{})
		require.Error(t, err)
		require.Equal(t, want, err.Error())
	}
	// Unknown keys name the stage and the key's line:column.
	f(`
- json:
    expressions: {a: }
- regex:
    expresion: '(?P<a>.)'
`, `pipeline stage 2 (regex) at line 5:5: unknown key "expresion" (known keys: expression, source)`)
	f(`
- metrics:
    m:
      type: Counter
      config: {action: inc, buckets: [1]}
`, `pipeline stage 1 (metrics) at line 5:29: unknown key "buckets" (known keys: action, count_entry_bytes, match_all, value)`)
	f(`
- match:
    selector: '{a="b"}'
    stages:
      - labels: {x: }
      - timestamp: {source: x, fromat: RFC3339}
`, `pipeline stage 1.2 (timestamp) at line 6:32: unknown key "fromat" (known keys: action_on_failure, fallback_formats, format, location, source)`)
	// Unsupported and unknown stages.
	f(`[{geoip: {db: /x.mmdb, source: ip}}]`, `pipeline stage 1 (geoip) at line 1:3: not supported: geoip (it needs MaxMind databases; enrich at query time or upstream)`)
	f(`[{eventlogmessage: {}}]`, `pipeline stage 1 (eventlogmessage) at line 1:3: not supported: eventlogmessage (it parses Windows Event Log messages, which this agent does not read)`)
	f(`[{jsn: {}}]`, `pipeline stage 1 (jsn) at line 1:3: not supported: jsn`)
	// Shapes.
	f(`[docker]`, `pipeline stage 1 at line 1:2: a stage must be a YAML mapping whose only key is the stage name (write "docker: {}")`)
	f("- json:\n  expressions: {a: }\n", `pipeline stage 1 at line 1:3: a stage must contain exactly one key, the stage name; found 2: [json expressions] (indent the stage's options under its name)`)
	// Validation errors.
	f(`[{json: {}}]`, `pipeline stage 1 (json) at line 1:3: JMES expression is required: set expressions`)
	f(`[{json: {expressions: {a: "a["}}}]`, `pipeline stage 1 (json) at line 1:3: could not compile JMES expression "a[" for "a": SyntaxError: Expected tStar, received: tEOF`)
	f(`[{timestamp: {source: t, format: RFC3339, action_on_failure: retry}}]`, `pipeline stage 1 (timestamp) at line 1:3: invalid action on failure "retry" (supported values are [skip fudge])`)
	f(`[{limit: {rate: 1, burst: 1, by_label_name: app}}]`, `pipeline stage 1 (limit) at line 1:3: when ratelimiting by label, drop must be true`)
	f(`[{sampling: {rate: 2}}]`, `pipeline stage 1 (sampling) at line 1:3: sampling stage failed to parse rate, sampling rate must be between 0.0 and 1.0, received 2.000000`)
	f(`[{match: {selector: '{a="b"}'}}]`, `pipeline stage 1 (match) at line 1:3: match stage requires at least one additional stage to be defined in '- stages'`)
	f(`[{match: {selector: '{a="b"', action: drop}}]`, `pipeline stage 1 (match) at line 1:3: invalid selector syntax for match stage: parse error at line 1, col 7: syntax error: unexpected $end, expecting } or ,`)
	f(`[{match: {selector: '{a="b"} | json', action: drop}}]`, `pipeline stage 1 (match) at line 1:3: invalid selector syntax for match stage: only stream matchers and line filters are supported, found "| json"`)
	f(`[{match: {selector: '{a="b"} |> "<_> x"', action: drop}}]`, `pipeline stage 1 (match) at line 1:3: invalid selector syntax for match stage: pattern line filters are not supported in a match stage: "|> \"<_> x\""`)
	f(`[{drop: {value: x}}]`, `pipeline stage 1 (drop) at line 1:3: drop stage config must contain at least one of `+"`source`, `expression`, `older_than` or `longer_than`")
	f(`[{tenant: {source: a, value: b}}]`, `pipeline stage 1 (tenant) at line 1:3: label, source and value are mutually exclusive: set only one`)
	f(`[{labels: {"bad-name": }}]`, `pipeline stage 1 (labels) at line 1:3: invalid label name: bad-name`)
	f(`[{replace: {expression: '(a)', replace: '{{ .Value '}}]`, `pipeline stage 1 (replace) at line 1:3: parse template: template: pipeline_template:1: unclosed action`)
	f(`[{metrics: {m: {type: summary}}}]`, `pipeline stage 1 (metrics) at line 1:3: invalid metric type 'summary', metric type must be one of 'counter', 'gauge', or 'histogram'`)
	f(`[{multiline: {max_lines: 3}}]`, "pipeline stage 1 (multiline) at line 1:3: multiline stage config must define `firstline` regular expression")
}

func TestNotSupportedIsSentinel(t *testing.T) {
	_, err := NewPipeline(stageNodes(t, `[{geoip: {}}]`), Options{})
	require.True(t, errors.Is(err, ErrNotSupported))
	var ce *ConfigError
	require.True(t, errors.As(err, &ce))
	require.Equal(t, "geoip", ce.Name)
}

func TestWarnings(t *testing.T) {
	f := func(cfg string, targets []string, want ...string) {
		t.Helper()
		p := newTestPipeline(t, cfg, Options{TargetLabels: targets})
		require.Equal(t, want, p.Warnings(), strings.Join(p.Warnings(), "\n"))
	}
	f(`
- json: {expressions: {msg: message}}
- template: {source: out, template: '{{ .msg }} {{ .mgs }} {{ .Value }} {{ .Entry }}'}
- labels: {level: , out: }
- output: {source: out}
`, nil,
		`stage 2 (template): reads extracted key "mgs", which no earlier stage extracts; it is set only if the target carries a label named "mgs"`,
		`stage 3 (labels): reads extracted key "level", which no earlier stage extracts; it is set only if the target carries a label named "level"`)
	// Known target labels silence the warning; others are definite.
	f(`[{labels: {level: , job: }}]`, []string{"job", "filename"},
		`stage 1 (labels): reads extracted key "level", which no earlier stage extracts and no target label provides`)
	// Every reading stage is checked, including nested ones; keys set inside a
	// match count as produced after it.
	f(`
- timestamp: {source: ts, format: RFC3339}
- match:
    selector: '{a="b"}'
    stages:
      - regex: {expression: '(?P<x>.)'}
      - tenant: {source: y}
- structured_metadata: {x: }
- metrics: {lines: {type: counter, config: {match_all: true, action: inc}}, sizes: {type: histogram, source: size, config: {buckets: [1]}}}
- drop: {source: [x, z]}
- sampling: {}
`, []string{},
		`stage 1 (timestamp): reads extracted key "ts", which no earlier stage extracts and no target label provides`,
		`stage 2.2 (tenant): reads extracted key "y", which no earlier stage extracts and no target label provides`,
		`stage 4 (metrics): reads extracted key "size", which no earlier stage extracts and no target label provides`,
		`stage 5 (drop): reads extracted key "z", which no earlier stage extracts and no target label provides`,
		`stage 6 (sampling): rate is 0 (or unset): every line is dropped`)
	// A clean pipeline has none.
	f(`
- docker: {}
- cri: {}
- labels: {stream: , flags: }
- template: {source: x, template: '{{ range $k, $v := .nope }}{{ .inner }}{{ end }}{{ with .timestamp }}{{ .deeper }}{{ end }}'}
`, nil, `stage 4 (template): reads extracted key "nope", which no earlier stage extracts; it is set only if the target carries a label named "nope"`)
}
