package pipeline

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// dropped is the wanted line of an entry the pipeline filters out.
const dropped = "<dropped>"

func mustPipeline(t testing.TB, stages string) *Pipeline {
	t.Helper()
	e, err := lql.ParseLogSelector(`{__stream__="x"} `+stages, false)
	require.NoError(t, err, stages)
	p, err := New(e.Pipeline())
	require.NoError(t, err, stages)
	return p
}

func mustLabels(t testing.TB, s string) model.Labels {
	t.Helper()
	ls, err := model.ParseLabels(s)
	require.NoError(t, err, s)
	return ls
}

// check runs one line through a pipeline and compares the resulting line
// and all labels (or that the line was dropped).
func check(t *testing.T, stream, stages, line, wantLine, wantLabels string) {
	t.Helper()
	p := mustPipeline(t, stages)
	sp := p.ForStream(mustLabels(t, stream))
	out, lbls, keep := sp.Process(1, []byte(line), model.EmptyLabels())
	if wantLine == dropped {
		require.False(t, keep, "%s on %q: want dropped, got %q %s", stages, line, out, labelsOf(lbls))
		return
	}
	require.True(t, keep, "%s on %q: dropped", stages, line)
	require.Equal(t, wantLine, string(out), stages)
	require.Equal(t, wantLabels, lbls.All().String(), stages)
	// A second run on the same StreamPipeline gives the same answer
	// (buffers are reused correctly).
	out2, lbls2, _ := sp.Process(1, []byte(line), model.EmptyLabels())
	require.Equal(t, wantLine, string(out2), stages)
	require.Equal(t, wantLabels, lbls2.All().String(), stages)
}

func labelsOf(l *Labels) string {
	if l == nil {
		return "<nil>"
	}
	return l.All().String()
}

func TestLineFilters(t *testing.T) {
	f := func(stages, line string, keep bool) {
		t.Helper()
		want := line
		if !keep {
			want = dropped
		}
		check(t, `{app="a"}`, stages, line, want, `{app="a"}`)
	}
	// LQ-F1/F2: contains, case-sensitive.
	f(`|= "error"`, "an error here", true)
	f(`|= "error"`, "an ERROR here", false)
	f(`!= "kafka.server:type=ReplicaManager"`, "kafka.server:type=ReplicaManager x", false)
	f(`!= "kafka.server:type=ReplicaManager"`, "other", true)
	f(`|= "error" != "timeout"`, "error: timeout", false)
	f(`|= "error" != "timeout"`, "error: refused", true)
	// LQ-F3: unanchored RE2; "." matches newlines.
	f(`|~ "tsdb-ops.*io:2003"`, "x tsdb-ops-1.io:2003 y", true)
	f("|~ `error=\\w+`", "level=x error=disk", true)
	f("|~ `error=\\w+`", "error= none", false)
	f(`|~ "(?i)error"`, "An ErRoR", true)
	f(`|~ "(?i)err|warn"`, "WARNING", true)
	f(`|~ "(?i)err|warn"`, "INFO", false)
	f(`|~ "a.b"`, "a\nb", true)
	f(`!~ "debug|trace"`, "TRACE x", true)
	f(`!~ "debug|trace"`, "a trace", false)
	f(`|~ "^start"`, "start here", true)
	f(`|~ "^start"`, "not start", false)
	f(`|~ "(?i)kelvin"`, "\u212Aelvin", true) // Kelvin sign folds to k
	// LQ-F4: pattern filters.
	f(`|> "<_> foo <_>"`, "a foo b", true)
	f(`|> "<_> bar"`, "foo bar baz", false)
	f(`|> "<_> baz"`, "foo bar baz", true)
	f(`|> "foo <_>"`, "foo bar baz", true)
	f(`|> "<_> bar <_>"`, " bar ", false)
	f(`|> "<_>bar<_>"`, " bar ", true)
	f(`!> "<_> bar"`, "foo bar baz", true)
	// LQ-F5: or-chains; negated or means none of them.
	f(`|= "a" or "b"`, "xbx", true)
	f(`|= "a" or "b"`, "xcx", false)
	f(`!= "a" or "b"`, "xbx", false)
	f(`!= "a" or "b"`, "xcx", true)
	f(`|~ "x+y" or "zz"`, "a zz", true)
	// LQ-F7: ip().
	f(`|= ip("192.168.0.1")`, "from 192.168.0.1:8080", true)
	f(`|= ip("192.168.0.1")`, "from 192.168.0.10", false)
	f(`|= ip("192.168.4.5-192.168.4.20")`, "addr=192.168.4.7 x", true)
	f(`|= ip("192.168.4.5-192.168.4.20")`, "addr=192.168.4.21 x", false)
	f(`|= ip("10.0.0.0/8")`, "10.255.1.2", true)
	f(`!= ip("10.0.0.0/8")`, "10.255.1.2", false)
	f(`|= ip("2001:db8::/32")`, "remote [2001:db8::1]", true)
	f(`|= ip("::1")`, "host ::1 x", true)
	f(`|= "nope" or ip("10.0.0.1")`, "via 10.0.0.1", true)
	// LQ-F8: empty filters.
	f(`|= ""`, "anything", true)
	f(`!= ""`, "anything", false)
}

func TestLineFilterAfterLineFormat(t *testing.T) {
	// LQ-F6: filters after line_format see the rewritten line.
	check(t, `{app="a"}`, `| logfmt | line_format "{{.msg}}" |= "hello"`, `msg="hello world" x=1`, "hello world",
		`{app="a", msg="hello world", x="1"}`)
	check(t, `{app="a"}`, `| logfmt | line_format "{{.msg}}" |= "x=1"`, `msg="hello world" x=1`, dropped, "")
}

func TestJSONParser(t *testing.T) {
	f := func(stream, stages, line, wantLabels string) {
		t.Helper()
		check(t, stream, stages, line, line, wantLabels)
	}
	// The documented example (LQ-P1): nested objects flattened with "_",
	// arrays skipped, keys sanitised.
	doc := `{"protocol":"HTTP/2.0","servers":["129.0.1.1","10.2.1.3"],"request":{"time":"6.032","method":"GET","host":"foo.grafana.net","size":"55","headers":{"Accept":"*/*","User-Agent":"curl/7.68.0"}},"response":{"status":401,"size":"228","latency_seconds":"6.031"}}`
	f(`{app="a"}`, `| json`, doc, `{app="a", protocol="HTTP/2.0", request_headers_Accept="*/*", request_headers_User_Agent="curl/7.68.0", request_host="foo.grafana.net", request_method="GET", request_size="55", request_time="6.032", response_latency_seconds="6.031", response_size="228", response_status="401"}`)
	// LQ-P2: expressions.
	f(`{app="a"}`, "| json first_server=\"servers[0]\", ua=`request.headers[\"User-Agent\"]`", doc,
		`{app="a", first_server="129.0.1.1", ua="curl/7.68.0"}`)
	f(`{app="a"}`, `| json servers, headers="request.headers", nope="x.y", st="response.status"`, doc,
		`{app="a", headers="{\"Accept\":\"*/*\",\"User-Agent\":\"curl/7.68.0\"}", nope="", servers="[\"129.0.1.1\",\"10.2.1.3\"]", st="401"}`)
	f(`{app="a"}`, `| json`, `{"a.b":{"c":"d"},"e":"f"}`, `{a_b_c="d", app="a", e="f"}`)
	// Collisions with stream labels get _extracted (LQ-P1, LQ-P8).
	f(`{app="a", level="info"}`, `| json`, `{"level":"INFO","msg":"x"}`, `{app="a", level="info", level_extracted="INFO", msg="x"}`)
	f(`{app="a", level="info"}`, `| json level`, `{"level":"INFO"}`, `{app="a", level="info", level_extracted="INFO"}`)
	// Value types: numbers raw, booleans, null and arrays skipped, escapes
	// decoded, invalid UTF-8 dropped.
	f(`{app="a"}`, `| json`, `{"n":-1.5e3,"t":true,"f":false,"z":null,"arr":[{"x":1}],"s":"a\"b\\c\u00e9\n","e":""}`,
		`{app="a", e="", f="false", n="-1.5e3", s="a\"b\\cé\n", t="true"}`)
	f(`{app="a"}`, `| json`, "{\"bad\":\"a\xffb\"}", `{app="a", bad="ab"}`)
	// Keys: sanitised, digits prefixed, the first of duplicate keys wins.
	f(`{app="a"}`, `| json`, `{"1st":"a","we ird-key":"b","a":{"2b":"c"}, "dup":"1", "dup":"2"}`,
		`{_1st="a", a__2b="c", app="a", dup="1", we_ird_key="b"}`)
	f(`{app="a"}`, `| json`, ` {"a" : { } , "b" : 1 } trailing`, `{app="a", b="1"}`)
	// Errors keep the entry and the labels found before the error (LQ-P7).
	f(`{app="a"}`, `| json`, `not json`, `{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", app="a"}`)
	f(`{app="a"}`, `| json`, `{"a":"b","c":`, `{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", a="b", app="a"}`)
	f(`{app="a"}`, `| json`, `{"a":"b`, `{__error__="JSONParserErr", __error_details__="Value is string, but can't find closing '\"' symbol", app="a"}`)
	f(`{app="a"}`, `| json`, `{"a":tru}`, `{__error__="JSONParserErr", __error_details__="Value looks like Number/Boolean/None, but can't find its end", app="a"}`)
	f(`{app="a"}`, `| json x="a"`, `plain`, `{__error__="JSONParserErr", app="a"}`)
	// A parse error can be filtered out with __error__="".
	check(t, `{app="a"}`, `| json | __error__=""`, `oops`, dropped, "")
	check(t, `{app="a"}`, `| json | __error__!=""`, `oops`, `oops`, `{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", app="a"}`)
}

func TestLogfmtParser(t *testing.T) {
	f := func(stages, line, wantLabels string) {
		t.Helper()
		check(t, `{app="a"}`, stages, line, line, wantLabels)
	}
	f(`| logfmt`, `at=info method=GET path=/ host=grafana.net fwd="124.133.124.161" service=8ms status=200`,
		`{app="a", at="info", fwd="124.133.124.161", host="grafana.net", method="GET", path="/", service="8ms", status="200"}`)
	f(`| logfmt`, `msg="a \"quoted\" \u00e9 value" k-ey=1 bare empty= 9x=2`, `{_9x="2", app="a", k_ey="1", msg="a \"quoted\" é value"}`)
	f(`| logfmt --keep-empty`, `bare empty= a=1`, `{a="1", app="a", bare="", empty=""}`)
	// Malformed pairs are skipped without --strict.
	f(`| logfmt`, `a=1 b="unterminated c=3`, `{a="1", app="a"}`)
	f(`| logfmt`, `a=1 =x b=2 c"d=3 e=4`, `{a="1", app="a", b="2", e="4"}`)
	// --strict stops at the first error and reports it (LQ-P3).
	f(`| logfmt --strict`, `a=1 =x b=2`, `{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at pos 5 : unexpected '='", a="1", app="a"}`)
	f(`| logfmt --strict`, `a=1 b="x`, `{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at pos 9 : unterminated quoted value", a="1", app="a"}`)
	// Expressions: only the listed keys, renamed; missing ones empty.
	f(`| logfmt m="method", status, missing`, `method=GET status=200 path=/`, `{app="a", m="GET", missing="", status="200"}`)
	// Collision with a stream label.
	check(t, `{app="a"}`, `| logfmt`, `app=b x=1`, `app=b x=1`, `{app="a", app_extracted="b", x="1"}`)
}

func TestRegexpAndPatternParsers(t *testing.T) {
	f := func(stages, line, wantLabels string) {
		t.Helper()
		check(t, `{app="a"}`, stages, line, line, wantLabels)
	}
	// Documented regexp example (LQ-P4).
	f("| regexp `(?P<method>\\w+) (?P<path>[\\w|/]+) \\((?P<status>\\d+?)\\) (?P<duration>.*)`",
		`POST /api/prom/api/v1/query_range (200) 1.5s`,
		`{app="a", duration="1.5s", method="POST", path="/api/prom/api/v1/query_range", status="200"}`)
	f("| regexp `(?P<a>x)(?P<b>y)?`", `zx`, `{a="x", app="a", b=""}`)
	f("| regexp `(?P<a>q)`", `zx`, `{app="a"}`)
	// Documented pattern example (LQ-P5).
	f("| pattern `<ip> - - <_> \"<method> <uri> <_>\" <status> <size> <_> \"<agent>\" <_>`",
		`0.191.12.2 - - [10/Jun/2021:09:14:29 +0000] "GET /api/plugins/versioncheck HTTP/1.1" 200 2 "-" "Go-http-client/2.0" "13.76.247.102, 34.120.177.193" "TLSv1.2" "US" ""`,
		`{agent="Go-http-client/2.0", app="a", ip="0.191.12.2", method="GET", size="2", status="200", uri="/api/plugins/versioncheck"}`)
	f(`| pattern "<a> <b>"`, `one`, `{a="one", app="a"}`)
	f(`| pattern "x=<a> y=<b>"`, `nope x=1 y=2`, `{app="a"}`)
	f(`| pattern "<app> <b>"`, `1 2`, `{app="a", app_extracted="1", b="2"}`)
}

func TestUnpackAndDecolorize(t *testing.T) {
	check(t, `{app="a"}`, `| unpack`, `{"container":"myapp","pod":"pod-3223f","_entry":"original log message"}`,
		`original log message`, `{app="a", container="myapp", pod="pod-3223f"}`)
	check(t, `{app="a"}`, `| unpack`, `{"app":"x","_entry":"{\"k\":1}"}`, `{"k":1}`, `{app="a", app_extracted="x"}`)
	check(t, `{app="a"}`, `| unpack | json`, `{"_entry":"{\"k\":1}"}`, `{"k":1}`, `{app="a", k="1"}`)
	check(t, `{app="a"}`, `| unpack`, `{"a":"b"}`, `{"a":"b"}`, `{app="a"}`)
	check(t, `{app="a"}`, `| unpack`, `plain`, `plain`, `{__error__="JSONParserErr", __error_details__="expecting json object(6), but it is not", app="a"}`)
	check(t, `{app="a"}`, `| decolorize`, "\x1b[31mred\x1b[0m and \x1b[1;32mgreen\x1b[0m", "red and green", `{app="a"}`)
	check(t, `{app="a"}`, `| decolorize`, "plain", "plain", `{app="a"}`)
}

func TestLabelFilters(t *testing.T) {
	f := func(stages, line, wantLine, wantLabels string) {
		t.Helper()
		check(t, `{app="a", cluster="us"}`, stages, line, wantLine, wantLabels)
	}
	base := `{app="a", cluster="us"}`
	// LQ-LF1: strings on stream labels; a missing label is "".
	f(`| cluster="us"`, "x", "x", base)
	f(`| cluster!="us"`, "x", dropped, "")
	f(`| cluster=~"u.*"`, "x", "x", base)
	f(`| missing=""`, "x", "x", base)
	f(`| missing!=""`, "x", dropped, "")
	// LQ-LF2…LF4: typed filters, documented example.
	line := `duration=20ms size=20KB method=GET throughput_mb=300`
	all := `{app="a", cluster="us", duration="20ms", method="GET", size="20KB", throughput_mb="300"}`
	f(`| logfmt | duration >= 20ms or size == 20KB and method!~"2.."`, line, line, all)
	f(`| logfmt | duration > 10s and throughput_mb < 500`, line, dropped, "")
	f(`| logfmt | duration > 10ms and throughput_mb < 500`, line, line, all)
	f(`| logfmt | size > 20MB`, line, dropped, "")
	f(`| logfmt | size = 20KB`, line, line, all)
	// A bare number is a numeric filter, and 20KB is not a number.
	f(`| logfmt | size <= 20000`, line, line, `{__error__="LabelFilterErr", __error_details__="strconv.ParseFloat: parsing \"20KB\": invalid syntax", app="a", cluster="us", duration="20ms", method="GET", size="20KB", throughput_mb="300"}`)
	// LQ-LF5: precedence and parentheses.
	f(`| logfmt | duration >= 1s or method="GET" and size <= 1KB`, line, dropped, "")
	f(`| logfmt | duration >= 1s or (method="GET" and size <= 100KB)`, line, line, all)
	// Conversion errors keep the line with LabelFilterErr; missing labels
	// do not match.
	f(`| logfmt | method > 1`, line, line, `{__error__="LabelFilterErr", __error_details__="strconv.ParseFloat: parsing \"GET\": invalid syntax", app="a", cluster="us", duration="20ms", method="GET", size="20KB", throughput_mb="300"}`)
	f(`| logfmt | method > 1 | __error__=""`, line, dropped, "")
	f(`| logfmt | nope > 1`, line, dropped, "")
	f(`| logfmt | method > 1s`, line, line, `{__error__="LabelFilterErr", __error_details__="time: invalid duration \"GET\"", app="a", cluster="us", duration="20ms", method="GET", size="20KB", throughput_mb="300"}`)
	// The first error is kept.
	f(`| json | app > 1`, `x`, `x`, `{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", app="a", cluster="us"}`)
	// LQ-LF6: ip label filters.
	f(`| logfmt | addr = ip("10.0.0.0/8")`, `addr=10.1.2.3`, `addr=10.1.2.3`, `{addr="10.1.2.3", app="a", cluster="us"}`)
	f(`| logfmt | addr != ip("10.0.0.0/8")`, `addr=10.1.2.3`, dropped, "")
	f(`| logfmt | addr = ip("10.0.0.0/8")`, `addr=11.1.2.3`, dropped, "")
	// LQ-LF7: filtering by __error__.
	f(`| logfmt --strict | __error__="LogfmtParserErr"`, `a="x`, `a="x`, `{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at pos 5 : unterminated quoted value", app="a", cluster="us"}`)
}

func TestLineFormat(t *testing.T) {
	f := func(tmpl, line, wantLine string) {
		t.Helper()
		check(t, `{app="a"}`, "| logfmt | line_format `"+tmpl+"`", line, wantLine, labelsAfterLogfmt(t, line))
	}
	f(`{{.query}} {{.duration}}`, `query="sum(x)" duration=2s`, `sum(x) 2s`)
	f(`{{ .path | replace " " "_" | trunc 5 | upper }}`, `path="ab cdefg"`, `AB_CD`)
	f(`{{ if and (contains "he" "hello") (contains "llo" "hello") }} yes {{end}}`, `a=1`, ` yes `)
	f(`{{ if contains .err "ErrTimeout" }} timeout {{else if contains "he" "hello"}} yes {{else}} no {{end}}`, `err=Timeout`, ` timeout `)
	f(`{{ __line__ | lower }}`, `A=B`, `a=b`)
	f(`{{ __timestamp__ | unixEpochNanos }}`, `a=1`, `1`)
	f(`{{ .missing }}|{{ .app }}`, `a=1`, `|a`)
	f(`{{ alignLeft 5 "hello world"}}|{{ alignLeft 5 "hi"}}|{{ alignRight 5 "hello world"}}|{{ alignRight 5 "hi"}}`, `a=1`, `hello|hi   |world|   hi`)
	f(`{{ default "-" "" }} {{ default "-" "foo" }}`, `a=1`, `- foo`)
	f(`{{ repeat 3 "hello" }}`, `a=1`, `hellohellohello`)
	f(`{{ printf "The IP address was %s" .remote_addr }}`, `remote_addr=129.168.1.1`, `The IP address was 129.168.1.1`)
	f(`{{ replace "hello" "world" "hello world" }}`, `a=1`, `world world`)
	f(`{{ substr 0 5 "hello world"}}{{ substr 6 11 "hello world"}}`, `a=1`, `helloworld`)
	f(`{{ title "hello world"}} {{ trim "   hello    " }} {{ trimAll "$" "$5.00" }}`, `a=1`, `Hello World hello 5.00`)
	f(`{{ trimPrefix "-" "-hello" }}{{ trimSuffix "-" "hello-" }}`, `a=1`, `hellohello`)
	f(`{{ trunc 5 "hello world"}} {{ trunc -5 "hello world"}}`, `a=1`, `hello world`)
	f(`{{ add 3 2 5 }} {{ addf 3.5 2 5 }} {{ div 10 2}} {{ divf 10 2 4}} {{ "3.5" | float64 }} {{ ceil 123.001 }}`, `a=1`, `10 10.5 5 1.25 3.5 124`)
	f(`{{ sub 5 2 }} {{ mul 2 3 }} {{ mod 7 3 }} {{ max 1 5 3 }} {{ min 4 2 }} {{ round 3.14159 2 }} {{ floor 1.9 }}`, `a=1`, `3 6 1 5 2 3.14 1`)
	f(`{{ .foo | duration }} {{ .foo | duration_seconds }} {{ .size | bytes }}`, `foo=1m30s size=1KiB`, `90 90 1024`)
	f(`{{ .a | b64enc }} {{ "aGVsbG8=" | b64dec }} {{ .u | urlencode }} {{ "a%20b" | urldecode }}`, `a=hi u="a b&c"`, `aGk= hello a+b%26c a b`)
	f(`{{ regexReplaceAll "(\\d+)" .s "<${1}>" }} {{ regexReplaceAllLiteral "\\d" .s "#" }} {{ count "a" "banana" }}`, `s=a1b22`, `a<1>b<22> a#b## 3`)
	f(`{{ ToUpper .a }} {{ ToLower "X" }} {{ Replace "aaa" "a" "b" 2 }} {{ TrimSpace " q " }} {{ lower "HELLO" }} {{ upper "hello" }}`, `a=x`, `X x bba q hello HELLO`)
	f(`{{ date "2006-01-02" (unixToTime .from) }}`, `from=1679577215`, `2023-03-23`)
	f(`{{ toDateInZone "2006-01-02" "UTC" "2021-11-02" | unixEpoch }} {{ toDateInZone "2006-01-02" "UTC" "2021-11-02" | unixEpochMillis }}`, `a=1`, `1635811200 1635811200000`)
	f(`{{ hasPrefix "he" "hello" }} {{ hasSuffix "lo" "hello" }} {{ indent 2 "a" }}{{ nindent 1 "b" }}`, `a=1`, "true true   a\n b")
	f(`{{ range $q := fromJson .queries }}[{{ $q.query }}]{{ end }}`, `queries="[{\"query\":\"up\"},{\"query\":\"x\"}]"`, `[up][x]`)
	f(`{{ if eq "hello" "hello" }} yes {{end}}`, `a=1`, ` yes `)
	// A template error leaves the line and sets TemplateFormatErr.
	check(t, `{app="a"}`, "| line_format `{{ div 1 0 }}`", `x`, `x`,
		`{__error__="TemplateFormatErr", __error_details__="template: line:1:3: executing \"line\" at <div 1 0>: error calling div: runtime error: integer divide by zero", app="a"}`)
	// Errors are visible to templates.
	check(t, `{app="a"}`, "| json | line_format `{{.__error__}}`", `x`, `JSONParserErr`,
		`{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", app="a"}`)
}

func labelsAfterLogfmt(t *testing.T, line string) string {
	t.Helper()
	sp := mustPipeline(t, `| logfmt`).ForStream(mustLabels(t, `{app="a"}`))
	_, l, _ := sp.Process(1, []byte(line), model.EmptyLabels())
	return l.All().String()
}

func TestLabelFormat(t *testing.T) {
	f := func(stages, line, wantLabels string) {
		t.Helper()
		check(t, `{app="a", level="info"}`, stages, line, line, wantLabels)
	}
	f(`| logfmt | label_format dst=src`, `src=1`, `{app="a", dst="1", level="info"}`)
	f(`| label_format lvl=level`, `x`, `{app="a", lvl="info"}`)
	f(`| label_format level="{{.level | upper}}"`, `x`, `{app="a", level="INFO"}`)
	f(`| logfmt | label_format v="{{.a}}-{{.b}}", a=b`, `a=1 b=2`, `{a="2", app="a", level="info", v="1-2"}`)
	f(`| label_format nope=missing`, `x`, `{app="a", level="info"}`)
	f("| label_format ts=`{{ __timestamp__ | unixEpoch }}`, l=`{{ __line__ }}`", `x`, `{app="a", l="x", level="info", ts="0"}`)
	// Rename keeps the category: a renamed stream label stays a stream label.
	p := mustPipeline(t, `| logfmt | label_format lvl=level, v=x`)
	_, l, _ := p.ForStream(mustLabels(t, `{app="a", level="info"}`)).Process(1, []byte("x=1"), model.EmptyLabels())
	require.Equal(t, `{app="a", lvl="info"}`, l.Stream().String())
	require.Equal(t, `{v="1"}`, l.Parsed().String())
	// A template error continues with the next format.
	f("| label_format a=`{{ div 1 0 }}`, b=`ok`", `x`, `{__error__="TemplateFormatErr", __error_details__="template: label:1:3: executing \"label\" at <div 1 0>: error calling div: runtime error: integer divide by zero", app="a", b="ok", level="info"}`)
}

func TestDropKeep(t *testing.T) {
	f := func(stages, line, wantLabels string) {
		t.Helper()
		check(t, `{app="a", level="info", pod="p1"}`, stages, line, line, wantLabels)
	}
	f(`| drop level, pod`, `x`, `{app="a"}`)
	f(`| drop level="info", pod="other"`, `x`, `{app="a", pod="p1"}`)
	f(`| drop pod=~"p.*"`, `x`, `{app="a", level="info"}`)
	f(`| json | drop __error__, __error_details__`, `x`, `{app="a", level="info", pod="p1"}`)
	f(`| json | drop __error__="JSONParserErr"`, `x`, `{__error_details__="Value looks like object, but can't find closing '}' symbol", app="a", level="info", pod="p1"}`)
	f(`| logfmt | keep app, b`, `a=1 b=2`, `{app="a", b="2"}`)
	f(`| keep level="warn", app`, `x`, `{app="a"}`)
	f(`| keep level="info"`, `x`, `{level="info"}`)
	f(`| json | keep app`, `x`, `{__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", app="a"}`)
}

func TestStructuredMetadata(t *testing.T) {
	p := mustPipeline(t, `| json | trace_id="abc"`)
	sp := p.ForStream(mustLabels(t, `{app="a", level="info"}`))
	md := model.LabelsFromStrings("trace_id", "abc", "level", "debug", "bad-name", "v")
	out, l, keep := sp.Process(1, []byte(`{"k":"v"}`), md)
	require.True(t, keep)
	require.Equal(t, `{"k":"v"}`, string(out))
	require.Equal(t, `{app="a", level="info"}`, l.Stream().String())
	require.Equal(t, `{bad_name="v", level_extracted="debug", trace_id="abc"}`, l.StructuredMetadata().String())
	require.Equal(t, `{k="v"}`, l.Parsed().String())
	require.Equal(t, `{app="a", bad_name="v", k="v", level="info", level_extracted="debug", trace_id="abc"}`, l.All().String())
	v, ok := l.Get("trace_id")
	require.True(t, ok)
	require.Equal(t, "abc", v)
	_, _, keep = sp.Process(1, []byte(`{"k":"v"}`), model.LabelsFromStrings("trace_id", "zzz"))
	require.False(t, keep)
	// A parsed label overrides structured metadata of the same name.
	p = mustPipeline(t, `| json`)
	_, l, _ = p.ForStream(mustLabels(t, `{app="a"}`)).Process(1, []byte(`{"trace_id":"p"}`), model.LabelsFromStrings("trace_id", "m"))
	require.Equal(t, `{app="a", trace_id="p"}`, l.All().String())
	require.Equal(t, `{}`, l.StructuredMetadata().String())
}

func TestNoopAndFilter(t *testing.T) {
	require.True(t, mustPipeline(t, ``).IsNoop())
	require.True(t, mustPipeline(t, `|= "a" !~ "b"`).IsNoop())
	require.False(t, mustPipeline(t, `|= "a" | json`).IsNoop())

	needles, match := mustPipeline(t, `|= "error" | json |~ "time.*out" | line_format "x" |= "late"`).Filter()
	require.Equal(t, [][]byte{[]byte("error"), []byte("time"), []byte("out")}, needles)
	require.True(t, match([]byte("error timeout")))
	require.False(t, match([]byte("error")))
	require.True(t, match([]byte("error time  out"))) // late is after line_format
	needles, match = mustPipeline(t, `| json`).Filter()
	require.Empty(t, needles)
	require.Nil(t, match)
}

func TestNewErrors(t *testing.T) {
	f := func(stages []lql.Stage, want string) {
		t.Helper()
		_, err := New(stages)
		require.Error(t, err)
		require.Contains(t, err.Error(), want)
	}
	f([]lql.Stage{&lql.LineFilterExpr{Op: lql.LineRegexp, Values: []lql.LineFilterValue{{Value: "a("}}}}, `line filter regexp "a(": error parsing regexp: missing closing )`)
	f([]lql.Stage{&lql.LineFormatExpr{Template: "{{.a"}}, `invalid line template`)
	f([]lql.Stage{&lql.LineFormatExpr{Template: "{{ nosuchfunc }}"}}, `function "nosuchfunc" not defined`)
	f([]lql.Stage{&lql.RegexpParserExpr{Regexp: "(a)"}}, `at least one named capture must be supplied`)
	f([]lql.Stage{&lql.PatternParserExpr{Pattern: "<a><b>"}}, `consecutive capture`)
	f([]lql.Stage{&lql.LineFilterExpr{Op: lql.LineContains, Values: []lql.LineFilterValue{{Value: "x", IP: true}}}}, `invalid ip pattern`)
	f([]lql.Stage{&lql.LabelFormatExpr{Formats: []lql.LabelFormat{{Name: "a", Value: "b", Rename: true}, {Name: "a", Value: "c", Rename: true}}}}, `multiple label name 'a'`)
	f([]lql.Stage{&lql.JSONParserExpr{Params: []lql.LabelExtraction{{Label: "a", Expr: "x[y]"}}}}, `cannot parse expression [x[y]]`)
}

func TestTemplateFuncsComplete(t *testing.T) {
	fm := templateFuncs()
	for _, n := range lql.TemplateFuncNames {
		require.Contains(t, fm, n)
	}
}

// TestConcurrentStreams runs StreamPipelines of one Pipeline in parallel
// (go test -race checks the shared state).
func TestConcurrentStreams(t *testing.T) {
	p := mustPipeline(t, "| json | line_format `{{.a}} {{ __line__ | len }}` | label_format b=`{{ regexReplaceAll \"x\" .a \"y\" }}` | b=~\"y.*\"")
	done := make(chan error, 4)
	for g := range 4 {
		go func() {
			sp := p.ForStream(model.LabelsFromStrings("g", string(rune('a'+g))))
			for i := range 200 {
				out, l, keep := sp.Process(int64(i), []byte(`{"a":"x`+string(rune('0'+i%10))+`"}`), model.EmptyLabels())
				if !keep || string(out) != "x"+string(rune('0'+i%10))+" 10" || l.All().Get("b") != "y"+string(rune('0'+i%10)) {
					done <- fmt.Errorf("goroutine %d line %d: %q %v", g, i, out, keep)
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		require.NoError(t, <-done)
	}
}
