package stages

import (
	"maps"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// f runs cfg over the inputs with Process+Flush and compares the outputs.
func stageCase(t *testing.T) func(cfg string, in []Entry, want ...Entry) {
	return func(cfg string, in []Entry, want ...Entry) {
		t.Helper()
		p := newTestPipeline(t, cfg, Options{})
		requireEntries(t, want, processAll(p, in...))
	}
}

func one(e Entry) []Entry { return []Entry{e} }

func TestJSONStage(t *testing.T) {
	f := stageCase(t)
	base := ls("job", "app")
	line := `{"level":"INFO","fields":{"message":"hi","n":12.5,"ok":true,"nil":null},"span":{"name":"x"},"tags":["a","b"]}`
	cfg := `
- json:
    expressions:
      level:
      msg: fields.message
      n: fields.n
      ok: fields.ok
      nil: fields.nil
      span:
      tags:
      missing: nope
`
	f(cfg, one(entry(line, base)), Entry{Labels: base, Timestamp: ts0, Line: line,
		Extracted: extractedWith(base, "level", "INFO", "msg", "hi", "n", 12.5, "ok", true, "nil", nil,
			"span", `{"name":"x"}`, "tags", `["a","b"]`, "missing", nil)})

	// Malformed JSON passes through unless drop_malformed.
	f(cfg, one(entry("not json", base)), Entry{Labels: base, Timestamp: ts0, Line: "not json", Extracted: extractedWith(base)})
	f(`[{json: {expressions: {a: }, drop_malformed: true}}]`, one(entry("not json", base)))

	// source reads an extracted value instead of the line.
	f(`
- json: {expressions: {inner: }}
- json: {expressions: {x: a.b}, source: inner}
`, one(entry(`{"inner":"{\"a\":{\"b\":7}}"}`, nil)), Entry{Timestamp: ts0, Line: `{"inner":"{\"a\":{\"b\":7}}"}`,
		Extracted: map[string]any{"inner": `{"a":{"b":7}}`, "x": 7.0}})
}

func TestRegexStage(t *testing.T) {
	f := stageCase(t)
	f(`[{regex: {expression: '^(?P<level>\w+) (?P<msg>.*?)(?P<opt> x)?$'}}]`, one(entry("INFO hello world", nil)),
		Entry{Timestamp: ts0, Line: "INFO hello world", Extracted: map[string]any{"level": "INFO", "msg": "hello world", "opt": ""}})
	// No match leaves everything as it was.
	f(`[{regex: {expression: '^(?P<n>\d+)$'}}]`, one(entry("abc", nil)), Entry{Timestamp: ts0, Line: "abc", Extracted: map[string]any{}})
	// source
	f(`
- regex: {expression: '^(?P<path>\S+) (?P<rest>.*)$'}
- regex: {expression: '^/api/(?P<version>v\d)/', source: path}
`, one(entry("/api/v2/users GET", nil)), Entry{Timestamp: ts0, Line: "/api/v2/users GET",
		Extracted: map[string]any{"path": "/api/v2/users", "rest": "GET", "version": "v2"}})
}

func TestLogfmtStage(t *testing.T) {
	f := stageCase(t)
	f(`[{logfmt: {mapping: {lvl: level, msg: , dur: duration}}}]`,
		one(entry(`level=warn msg="disk full" duration=1.5s other=1`, nil)),
		Entry{Timestamp: ts0, Line: `level=warn msg="disk full" duration=1.5s other=1`,
			Extracted: map[string]any{"lvl": "warn", "msg": "disk full", "dur": "1.5s"}})
}

func TestReplaceStage(t *testing.T) {
	f := stageCase(t)
	// Promtail docs: mask a password.
	f(`[{replace: {expression: 'password (\S+)', replace: '****'}}]`,
		one(entry("User creation with password secret123 done", nil)),
		Entry{Timestamp: ts0, Line: "User creation with password **** done"})
	// Every match is replaced; a named group is extracted with its new value.
	f(`[{replace: {expression: '(?P<ip>\d+\.\d+\.\d+\.\d+)', replace: '{{ .Value | Sha2Hash "s" | trunc 8 }}'}}]`,
		one(entry("from 10.0.0.1 to 10.0.0.2", nil)),
		Entry{Timestamp: ts0, Line: "from 7a05cb63 to d48bc765", Extracted: map[string]any{"ip": "7a05cb63"}})
	// An empty replacement removes the group's text; text outside groups stays.
	f(`[{replace: {expression: '^(\S+) (?:\S+) (\S+)', replace: ''}}]`, one(entry("a b c d", nil)),
		Entry{Timestamp: ts0, Line: " b  d"})
	// With source, the extracted value is replaced and the line kept.
	f(`
- regex: {expression: '^(?P<user>\S+)'}
- replace: {expression: '(.+)', source: user, replace: '{{ ToUpper .Value }}'}
`, one(entry("alice logged in", nil)), Entry{Timestamp: ts0, Line: "alice logged in", Extracted: map[string]any{"user": "ALICE"}})
}

func TestMultilineStage(t *testing.T) {
	f := stageCase(t)
	a, b := ls("app", "a"), ls("app", "b")
	cfg := `[{multiline: {firstline: '^\[\d+\]'}}]`
	t1, t2, t3 := ts0.Add(time.Second), ts0.Add(2*time.Second), ts0.Add(3*time.Second)
	f(cfg, []Entry{
		{Labels: a, Timestamp: ts0, Line: "orphan"}, // before the first block: passes through
		{Labels: a, Timestamp: t1, Line: "[1] start"},
		{Labels: b, Timestamp: t1, Line: "[9] other stream"},
		{Labels: a, Timestamp: t2, Line: "  at one"},
		{Labels: a, Timestamp: t3, Line: "[2] next"},
		{Labels: a, Timestamp: t3, Line: "  at two"},
	},
		Entry{Labels: a, Timestamp: ts0, Line: "orphan"},
		Entry{Labels: a, Timestamp: t1, Line: "[1] start\n  at one"},
		Entry{Labels: b, Timestamp: t1, Line: "[9] other stream"}, // flushed at the end, in stage order
		Entry{Labels: a, Timestamp: t3, Line: "[2] next\n  at two"},
	)
	// max_lines releases a block early; the next lines start a new block with
	// the first line's labels and timestamp, as in Promtail.
	f(`[{multiline: {firstline: '^start', max_lines: 2}}]`, []Entry{
		{Labels: a, Timestamp: t1, Line: "start"},
		{Labels: a, Timestamp: t2, Line: "x"},
		{Labels: a, Timestamp: t3, Line: "y"},
	},
		Entry{Labels: a, Timestamp: t1, Line: "start\nx"},
		Entry{Labels: a, Timestamp: t1, Line: "y"},
	)
}

func TestPackStage(t *testing.T) {
	f := stageCase(t)
	f(`[{pack: {labels: [level, pod, absent], ingest_timestamp: false}}]`,
		one(entry(`say "hi"`, ls("app", "a", "level", "info", "pod", "p-1"))),
		Entry{Labels: ls("app", "a"), Timestamp: ts0, Line: `{"level":"info","pod":"p-1","_entry":"say \"hi\""}`})
	f(`[{pack: {labels: [], ingest_timestamp: false}}]`, one(entry("x", nil)),
		Entry{Timestamp: ts0, Line: `{"_entry":"x"}`})
}

func TestDecolorizeStage(t *testing.T) {
	f := stageCase(t)
	f(`[{decolorize: }]`, one(entry("\x1b[31mred\x1b[0m and \x1b[1;32mgreen\x1b[0m", nil)),
		Entry{Timestamp: ts0, Line: "red and green"})
}

func TestTemplateStage(t *testing.T) {
	f := stageCase(t)
	base := ls("app", "LOKI")
	f(`[{template: {source: app, template: '{{ ToLower .Value }}_x'}}]`, one(entry("l", base)),
		Entry{Labels: base, Timestamp: ts0, Line: "l", Extracted: map[string]any{"app": "loki_x"}})
	// A new key from several values and the line.
	f(`
- regex: {expression: '^(?P<level>\w+)'}
- template: {source: out, template: '{{ .level }} for {{ .app }}: {{ .Entry }}'}
`, one(entry("warn disk", base)), Entry{Labels: base, Timestamp: ts0, Line: "warn disk",
		Extracted: map[string]any{"app": "LOKI", "level": "warn", "out": "warn for LOKI: warn disk"}})
	// A missing key renders "<no value>", as in Promtail.
	f(`[{template: {source: out, template: '{{ .nothing }}'}}]`, one(entry("l", nil)),
		Entry{Timestamp: ts0, Line: "l", Extracted: map[string]any{"out": "<no value>"}})
	// An empty result deletes the key.
	f(`[{template: {source: app, template: '{{ if eq .Value "x" }}y{{ end }}'}}]`, one(entry("l", base)),
		Entry{Labels: base, Timestamp: ts0, Line: "l", Extracted: map[string]any{}})
	// Promtail's extra functions.
	f(`[{template: {source: h, template: '{{ Hash "salt" "v" }} {{ regexReplaceAll "(a+)" "caab" "<$1>" }} {{ Replace "aaa" "a" "b" 2 }} {{ TrimPrefix "--x" "--" }}'}}]`,
		one(entry("l", nil)), Entry{Timestamp: ts0, Line: "l",
			Extracted: map[string]any{"h": "22ecb452c5b7b7dd31cadf6edb1300f6cabc9f1a887befb2f25717a9ca0dbd47 c<aa>b bba x"}})
}

func TestOutputStage(t *testing.T) {
	f := stageCase(t)
	f(`
- json: {expressions: {msg: message, n: count, nothing: absent}}
- output: {source: msg}
`, one(entry(`{"message":"hello","count":3}`, nil)), Entry{Timestamp: ts0, Line: "hello"})
	f(`
- json: {expressions: {n: count}}
- output: {source: n}
`, one(entry(`{"count":3}`, nil)), Entry{Timestamp: ts0, Line: "3"})
	// A nil value (no match) leaves the line.
	f(`
- json: {expressions: {nothing: absent}}
- output: {source: nothing}
`, one(entry(`{"count":3}`, nil)), Entry{Timestamp: ts0, Line: `{"count":3}`})
}

func TestLabelStages(t *testing.T) {
	f := stageCase(t)
	f(`
- json: {expressions: {level: , code: status, bad: absent}}
- labels: {level: , status_code: code, bad: }
`, one(entry(`{"level":"error","status":500}`, ls("job", "j"))),
		Entry{Labels: ls("job", "j", "level", "error", "status_code", "500"), Timestamp: ts0, Line: `{"level":"error","status":500}`})
	f(`[{labelallow: [job, level]}]`, one(entry("l", ls("job", "j", "level", "x", "pod", "p"))),
		Entry{Labels: ls("job", "j", "level", "x"), Timestamp: ts0, Line: "l"})
	f(`[{labeldrop: [pod]}]`, one(entry("l", ls("job", "j", "pod", "p"))),
		Entry{Labels: ls("job", "j"), Timestamp: ts0, Line: "l"})
	f(`[{static_labels: {env: prod, empty: "", job: override}}]`, one(entry("l", ls("job", "j"))),
		Entry{Labels: ls("job", "override", "env", "prod"), Timestamp: ts0, Line: "l"})
}

func TestStructuredMetadataStage(t *testing.T) {
	f := stageCase(t)
	// From extracted data, and a target label moved out of the stream labels.
	f(`
- json: {expressions: {traceID: trace}}
- structured_metadata: {traceID: , pod_uid: }
`, one(entry(`{"trace":"abc"}`, ls("job", "j", "pod_uid", "u-1"))),
		Entry{Labels: ls("job", "j"), Timestamp: ts0, Line: `{"trace":"abc"}`,
			StructuredMetadata: map[string]string{"traceID": "abc", "pod_uid": "u-1"}})
}

func TestTimestampStage(t *testing.T) {
	f := func(format, value string, want time.Time, extra ...string) {
		t.Helper()
		cfg := "- regex: {expression: '^(?P<ts>.*)$'}\n- timestamp: {source: ts, format: '" + format + "'"
		for _, e := range extra {
			cfg += ", " + e
		}
		cfg += "}\n"
		p := newTestPipeline(t, cfg, Options{})
		requireEntries(t, []Entry{{Timestamp: want, Line: value}}, processAll(p, entry(value, nil)))
	}
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	f("ANSIC", "Mon Jan  2 15:04:05 2006", utc(2006, 1, 2, 15, 4, 5, 0))
	f("UnixDate", "Mon Jan  2 15:04:05 UTC 2006", utc(2006, 1, 2, 15, 4, 5, 0))
	f("RubyDate", "Mon Jan 02 15:04:05 +0000 2006", utc(2006, 1, 2, 15, 4, 5, 0))
	f("RFC822", "02 Jan 06 15:04 UTC", utc(2006, 1, 2, 15, 4, 0, 0))
	f("RFC822Z", "02 Jan 06 15:04 +0100", utc(2006, 1, 2, 14, 4, 0, 0))
	f("RFC850", "Monday, 02-Jan-06 15:04:05 UTC", utc(2006, 1, 2, 15, 4, 5, 0))
	f("RFC1123", "Mon, 02 Jan 2006 15:04:05 UTC", utc(2006, 1, 2, 15, 4, 5, 0))
	f("RFC1123Z", "Mon, 02 Jan 2006 15:04:05 -0700", utc(2006, 1, 2, 22, 4, 5, 0))
	f("RFC3339", "2026-11-25T00:00:00+02:00", utc(2026, 11, 24, 22, 0, 0, 0))
	f("RFC3339Nano", "2026-11-25T00:00:00.123456Z", utc(2026, 11, 25, 0, 0, 0, 123456000))
	f("Unix", "1562708916", time.Unix(1562708916, 0))
	f("Unix", "1562708916.414", time.Unix(1562708916, 414000000))
	f("Unix", "1562708916.000000123", time.Unix(1562708916, 123))
	f("UnixMs", "1562708916414", time.Unix(0, 1562708916414*int64(time.Millisecond)))
	f("UnixUs", "1562708916414123", time.Unix(0, 1562708916414123*int64(time.Microsecond)))
	f("UnixNs", "1562708916000000123", time.Unix(0, 1562708916000000123))
	f("2006-01-02 15:04:05.000", "2026-03-04 05:06:07.890", utc(2026, 3, 4, 5, 6, 7, 890000000))
	f("2006-01-02 15:04:05", "2026-03-04 05:06:07", time.Date(2026, 3, 4, 5, 6, 7, 0, mustLoc(t, "America/New_York")), "location: America/New_York")
	f("RFC3339", "2026-03-04 05:06:07", utc(2026, 3, 4, 5, 6, 7, 0), "fallback_formats: ['UnixMs', '2006-01-02 15:04:05']")
	// Failure: skip leaves the read time.
	f("RFC3339", "garbage", ts0, "action_on_failure: skip")
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone data unavailable: %v", err)
	}
	return l
}

func TestTimestampWithoutYear(t *testing.T) {
	layout := "Jan _2 15:04:05"
	f := func(value string, now, want time.Time) {
		t.Helper()
		got, err := parseWithoutYear(layout, nil, value, now)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want) {
			t.Fatalf("%s at %v: want %v got %v", value, now, want, got)
		}
	}
	f("Nov 25 10:00:00", time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	f("Dec 31 23:59:59", time.Date(2027, 1, 1, 0, 0, 1, 0, time.UTC), time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC))
	f("Jan  1 00:00:01", time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 1, 0, time.UTC))
}

func TestTimestampFudge(t *testing.T) {
	p := newTestPipeline(t, `
- regex: {expression: '^(?P<ts>\S+)'}
- timestamp: {source: ts, format: RFC3339}
`, Options{})
	a, b := ls("s", "a"), ls("s", "b")
	good := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	requireEntries(t, []Entry{
		{Labels: a, Timestamp: good, Line: "2026-01-02T03:04:05Z ok"},
		{Labels: a, Timestamp: good.Add(1), Line: "bad"},
		{Labels: a, Timestamp: good.Add(2), Line: "worse"},
		{Labels: b, Timestamp: ts0, Line: "bad"}, // no good timestamp yet for b: read time kept
	}, processAll(p,
		entry("2026-01-02T03:04:05Z ok", a), entry("bad", a), entry("worse", a), entry("bad", b)))
}

func TestTenantStage(t *testing.T) {
	f := stageCase(t)
	f(`
- json: {expressions: {customer_id: }}
- tenant: {source: customer_id}
`, one(entry(`{"customer_id":"1"}`, nil)), Entry{Timestamp: ts0, Line: `{"customer_id":"1"}`, Tenant: "1"})
	f(`[{tenant: {value: team-api}}]`, one(entry("l", nil)), Entry{Timestamp: ts0, Line: "l", Tenant: "team-api"})
	f(`[{tenant: {label: namespace}}]`, one(entry("l", ls("namespace", "ns1"))),
		Entry{Labels: ls("namespace", "ns1"), Timestamp: ts0, Line: "l", Tenant: "ns1"})
	// A missing source keeps the default tenant.
	f(`[{tenant: {source: absent}}]`, one(entry("l", nil)), Entry{Timestamp: ts0, Line: "l"})
	// Promtail's reserved label also sets the tenant.
	f(`[{static_labels: {__tenant_id__: t2}}]`, one(entry("l", nil)), Entry{Timestamp: ts0, Line: "l", Tenant: "t2"})
}

func TestMatchStage(t *testing.T) {
	f := stageCase(t)
	cfg := `
- match:
    selector: '{app="api"} |= "error" != "ignore"'
    stages:
      - static_labels: {matched: "yes"}
- match:
    selector: '{app=~"db|cache"}'
    action: drop
`
	f(cfg, []Entry{
		entry("an error here", ls("app", "api")),
		entry("an error to ignore", ls("app", "api")),
		entry("fine", ls("app", "api")),
		entry("error", ls("app", "web")),
		entry("x", ls("app", "db")),
		entry("x", ls("app", "cache")),
	},
		Entry{Labels: ls("app", "api", "matched", "yes"), Timestamp: ts0, Line: "an error here"},
		Entry{Labels: ls("app", "api"), Timestamp: ts0, Line: "an error to ignore"},
		Entry{Labels: ls("app", "api"), Timestamp: ts0, Line: "fine"},
		Entry{Labels: ls("app", "web"), Timestamp: ts0, Line: "error"},
	)
	// Regex line filters, alternatives, absent labels match "".
	f(`
- match:
    selector: '{env!="prod"} |~ "(?i)timeout|refused" or "reset"'
    stages: [{static_labels: {net: "1"}}]
`, []Entry{entry("Connection REFUSED", nil), entry("conn reset", ls("env", "dev")), entry("ok", nil), entry("timeout", ls("env", "prod"))},
		Entry{Labels: ls("net", "1"), Timestamp: ts0, Line: "Connection REFUSED"},
		Entry{Labels: ls("env", "dev", "net", "1"), Timestamp: ts0, Line: "conn reset"},
		Entry{Timestamp: ts0, Line: "ok"},
		Entry{Labels: ls("env", "prod"), Timestamp: ts0, Line: "timeout"},
	)
	// Nested stages may buffer (multiline inside match).
	f(`
- match:
    selector: '{app="java"}'
    stages:
      - multiline: {firstline: '^\d'}
`, []Entry{entry("1 a", ls("app", "java")), entry(" b", ls("app", "java")), entry("plain", ls("app", "go"))},
		Entry{Labels: ls("app", "go"), Timestamp: ts0, Line: "plain"},
		Entry{Labels: ls("app", "java"), Timestamp: ts0, Line: "1 a\n b"},
	)
}

func TestDropStage(t *testing.T) {
	f := stageCase(t)
	json := "- json: {expressions: {level: , msg: }}\n"
	errLine := `{"level":"error","msg":"POST /loki/api/push/ 200"}`
	infoLine := `{"level":"info","msg":"ok"}`
	f(`[{drop: {expression: ".*debug.*"}}]`, []Entry{entry("a debug line", nil), entry("info", nil)},
		Entry{Timestamp: ts0, Line: "info"})
	f(json+`- drop: {source: level, value: error}`, []Entry{entry(errLine, nil), entry(infoLine, nil)},
		Entry{Timestamp: ts0, Line: infoLine})
	f(json+`- drop: {source: [level, msg], separator: "#", expression: '(error|ERROR)#.*/loki/api/push.*'}`,
		[]Entry{entry(errLine, nil), entry(infoLine, nil)}, Entry{Timestamp: ts0, Line: infoLine})
	// source alone: drop when every source key is present.
	f(json+`- drop: {source: [level, absent]}`, []Entry{entry(infoLine, nil)}, Entry{Timestamp: ts0, Line: infoLine})
	f(json+`- drop: {source: level}`, []Entry{entry(infoLine, nil)})
	f(`[{drop: {longer_than: 8}}]`, []Entry{entry("123456789", nil), entry("12345678", nil)},
		Entry{Timestamp: ts0, Line: "12345678"})
	f(`[{drop: {longer_than: 1kb}}]`, []Entry{entry(string(make([]byte, 1025)), nil), entry("short", nil)},
		Entry{Timestamp: ts0, Line: "short"})
	old := Entry{Timestamp: time.Now().Add(-48 * time.Hour), Line: "old"}
	recent := Entry{Timestamp: time.Now(), Line: "recent"}
	f(`[{drop: {older_than: 24h}}]`, []Entry{old, recent}, recent)
	// Conditions are ANDed.
	f(`[{drop: {expression: "debug", longer_than: 10}}]`, []Entry{entry("debug", nil), entry("debug but long", nil)},
		Entry{Timestamp: ts0, Line: "debug"})
}

func TestSamplingStage(t *testing.T) {
	f := stageCase(t)
	in := []Entry{entry("a", nil), entry("b", nil)}
	f(`[{sampling: {rate: 1}}]`, in, in...)
	f(`[{sampling: {rate: 0}}]`, in)
	// rate 0.5 keeps about half.
	p := newTestPipeline(t, `[{sampling: {rate: 0.5}}]`, Options{})
	kept := 0
	for range 4000 {
		kept += len(p.Process(entry("x", nil)))
	}
	if kept < 1700 || kept > 2300 {
		t.Fatalf("rate 0.5 kept %d of 4000", kept)
	}
}

func TestLimitStageDrop(t *testing.T) {
	f := stageCase(t)
	in := []Entry{entry("1", nil), entry("2", nil), entry("3", nil)}
	// burst 2: the third line within the same instant is dropped.
	f(`[{limit: {rate: 0.001, burst: 2, drop: true}}]`, in, in[0], in[1])
	// by label: one bucket per value.
	f(`[{limit: {rate: 0.001, burst: 1, drop: true, by_label_name: app}}]`,
		[]Entry{entry("1", ls("app", "a")), entry("2", ls("app", "a")), entry("3", ls("app", "b")), entry("4", nil)},
		entry("1", ls("app", "a")), entry("3", ls("app", "b")), entry("4", nil))
}

func TestDockerStage(t *testing.T) {
	f := stageCase(t)
	line := `{"log":"log message\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}`
	f(`[{docker: {}}]`, one(entry(line, ls("job", "d"))),
		Entry{Labels: ls("job", "d", "stream", "stderr"), Timestamp: time.Date(2019, 4, 30, 2, 12, 41, 844351500, time.UTC),
			Line: "log message\n"})
	// Not Docker JSON: unchanged.
	f(`[{docker: }]`, one(entry("plain", nil)), Entry{Timestamp: ts0, Line: "plain"})
}

func TestCRIStage(t *testing.T) {
	f := stageCase(t)
	tm := time.Date(2019, 1, 1, 1, 0, 0, 1, time.UTC)
	f(`[{cri: {}}]`, one(entry("2019-01-01T01:00:00.000000001Z stderr F test\ngood", nil)),
		Entry{Labels: ls("stream", "stderr"), Timestamp: tm, Line: "test\ngood",
			Extracted: map[string]any{"time": "2019-01-01T01:00:00.000000001Z", "stream": "stderr", "flags": "F", "content": "test\ngood"}})
	// Partial lines are joined per stream up to the full line.
	a := func() model.LabelSet { return ls("pod", "a") } // each entry owns its labels
	f(`[{cri: {}}]`, []Entry{
		entry("2019-01-01T01:00:00.000000001Z stdout P part one ", a()),
		entry("2019-01-01T01:00:00.000000001Z stderr F other stream", a()),
		entry("2019-01-01T01:00:00.000000002Z stdout P part two ", a()),
		entry("2019-01-01T01:00:00.000000003Z stdout F end", a()),
	},
		Entry{Labels: ls("pod", "a", "stream", "stderr"), Timestamp: tm, Line: "other stream"},
		Entry{Labels: ls("pod", "a", "stream", "stdout"), Timestamp: tm.Add(2), Line: "part one part two end"},
	)
	// Truncation of held partial lines.
	f(`[{cri: {max_partial_line_size: 5, max_partial_line_size_truncate: true}}]`, []Entry{
		entry("2019-01-01T01:00:00.000000001Z stdout P 0123456789", nil),
		entry("2019-01-01T01:00:00.000000001Z stdout F abc", nil),
	}, Entry{Labels: ls("stream", "stdout"), Timestamp: tm, Line: "01234"})
	// Not CRI: unchanged.
	f(`[{cri: }]`, one(entry("plain", nil)), Entry{Timestamp: ts0, Line: "plain"})
}

func TestCRIPartialOverflow(t *testing.T) {
	p := newTestPipeline(t, `[{cri: {max_partial_lines: 2}}]`, Options{})
	mk := func(pod string) Entry {
		return entry("2019-01-01T01:00:00.000000001Z stdout P "+pod, ls("pod", pod))
	}
	tm := time.Date(2019, 1, 1, 1, 0, 0, 1, time.UTC)
	var out []Entry
	for _, pod := range []string{"a", "b", "c"} {
		out = append(out, p.Process(mk(pod))...)
	}
	// The third stream overflows the buffer: a and b are released unmerged.
	requireEntries(t, []Entry{
		{Labels: ls("pod", "a", "stream", "stdout"), Timestamp: tm, Line: "a"},
		{Labels: ls("pod", "b", "stream", "stdout"), Timestamp: tm, Line: "b"},
	}, out)
	requireEntries(t, []Entry{{Labels: ls("pod", "c", "stream", "stdout"), Timestamp: tm, Line: "c"}}, p.Flush())
}

func TestLabelValueValidity(t *testing.T) {
	// Invalid UTF-8 values are skipped by labels.
	f := stageCase(t)
	f(`
- regex: {expression: '^(?P<v>.*)$'}
- labels: {v: }
`, one(entry("\xff", nil)), Entry{Timestamp: ts0, Line: "\xff"})
}

func TestMultilineReservedKeysFromNewestLine(t *testing.T) {
	p := newTestPipeline(t, `[{multiline: {firstline: '^\['}}]`, Options{})
	mk := func(line string, ack int) Entry {
		return Entry{Labels: ls("app", "a"), Timestamp: ts0, Line: line,
			Extracted: map[string]any{ReservedPrefix + "ack": ack, "n": ack}}
	}
	out := processAll(p, mk("[1] a", 1), mk(" b", 2), mk(" c", 3), mk("[2] d", 4))
	requireEntries(t, []Entry{
		{Labels: ls("app", "a"), Timestamp: ts0, Line: "[1] a\n b\n c", Extracted: map[string]any{"app": "a", ReservedPrefix + "ack": 3, "n": 1}},
		{Labels: ls("app", "a"), Timestamp: ts0, Line: "[2] d", Extracted: map[string]any{"app": "a", ReservedPrefix + "ack": 4, "n": 4}},
	}, out)
}

// TestTemplateSimpleMatchesExecute checks that templates made only of text
// and {{ .key }} render without text/template exactly as Execute does.
func TestTemplateSimpleMatchesExecute(t *testing.T) {
	datas := []map[string]any{
		{},
		{"message": "payment processed", "level": "INFO", "output": "old", "n": 12.5, "b": true, "nil": nil},
		{"Value": "v", "Entry": "e", "message": ""},
		{"output": 3.0, "Value": nil},
	}
	f := func(tmpl string, simple bool) {
		t.Helper()
		st, err := parseTemplate(tmpl)
		require.NoError(t, err)
		s := &templateStage{source: "output", tmpl: st, simple: simpleTemplate(st)}
		require.Equal(t, simple, s.simple != nil, "simple: %q", tmpl)
		for _, d := range datas {
			a := Entry{Line: "the line", Extracted: maps.Clone(d)}
			b := Entry{Line: "the line", Extracted: maps.Clone(d)}
			s.process(&a)
			s.simple = nil
			s.process(&b)
			s.simple = simpleTemplate(st)
			require.Equal(t, b.Extracted, a.Extracted, "template %q over %v", tmpl, d)
		}
	}
	f(`{{ .message }}`, true)
	f(`{{.level}} {{ .message }} ({{ .n }}/{{ .b }}/{{ .nil }}/{{ .missing }})`, true)
	f(`{{ .Value }}|{{ .Entry }}|{{- .output -}}|`, true)
	f(`plain text`, true)
	f(`{{ .message | ToUpper }}`, false)
	f(`{{ ToUpper .message }}`, false)
	f(`{{ if .level }}x{{ end }}`, false)
	f(`{{ $.message }}`, false)
	f(`{{ .a.b }}`, false)
	f(``, false)
}
