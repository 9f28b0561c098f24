package pipeline

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// templateSeeds are documented template examples plus ones that try to
// grow their output without bound.
var templateSeeds = []string{
	`{{ .path | replace " " "_" | trunc 5 | upper }}`,
	`{{ if and (contains "he" "hello") (contains "llo" "hello") }} yes {{end}}`,
	`{{ if contains .err "ErrTimeout" }} timeout {{else if contains "he" "hello"}} yes {{else}} no {{end}}`,
	`{{ __line__ | lower }}`, `{{ __timestamp__ | date "2006-01-02T15:04:05.00Z-07:00" }}`, `{{ __timestamp__ | unixEpoch }}`,
	`{{ date "2006-01-02" now }}`, `{{ .foo | duration }}`, `{{ toDateInZone "2006-01-02" "UTC" "2021-11-02" }}`,
	`{{ date "2006-01-02" (unixToTime .from) }}`, `{{ alignLeft 5 "hello world"}}`, `{{ alignRight 5 "hi"}}`,
	`{{ .foo | b64enc }}`, `{{ b64dec .foo }}`, `{{ .foo | bytes }}`, `{{ default "-" .foo }}`,
	`{{ fromJson "{\"foo\": 55}" }}`, `{{ range $q := fromJson .queries }} {{ $q.query }} {{ end }}`,
	`{{ indent 4 .query }}`, `{{ nindent 4 .query }}`, `{{ repeat 3 "hello" }}`,
	`{{ printf "%-40.40s" .request_uri}} {{printf "%-5.5s" .request_method}}`, `{{ substr 6 11 "hello world"}}`,
	`{{ trimAll "$" "$5.00" }}`, `{{ trunc -5 "hello world"}}`, `{{ urlencode .a }} {{ urldecode .a }}`,
	`{{ add 3 2 5 }} {{ addf 3.5 2 5 }} {{ div 10 0 }} {{ divf 10 2 4}} {{ mod 10 0 }} {{ round 123.555555 3 }}`,
	`{{ count "a|b" "abab" }} {{ regexReplaceAll "(a*)bc" .a "${1}a" }} {{ regexReplaceAllLiteral "(" .a "x" }}`,
	`{{ Replace .a "" "xx" -1 }} {{ ToUpper .a }} {{ TrimLeft .a "ab" }}`,
	// Growth: each must stop at the output bound with TemplateFormatErr.
	`{{ repeat 1000000000 "hello" }}`, `{{ repeat 2147483647 __line__ }}`, `{{ indent 999999999 "x" }}`,
	`{{ alignLeft 999999999 "x" }}`, `{{ printf "%999999d%999999d%999999d%999999d%999999d" 1 2 3 4 5 }}`,
	`{{ "xy" | replace "" "xyxy" | replace "" "xyxy" | replace "" "xyxy" | replace "" "xyxy" | replace "" "xyxy" | replace "" "xyxy" | replace "" "xyxy" | replace "" "xyxy" | replace "" "xyxy" | replace "" "xyxy" | replace "" "xyxy" | replace "" "xyxy" }}`,
	`{{ regexReplaceAll "" (repeat 4000 "ab") "$0$0$0$0$0$0$0$0" | regexReplaceAll "" "$0$0$0$0$0$0$0$0" }}`,
	`{{ range $i, $c := __line__ }}{{ __line__ }}{{ __line__ }}{{ end }}`,
	`{{ js (repeat 600000 "<") }} {{ html (repeat 600000 "<") }} {{ urlquery (repeat 600000 "<") }}`,
	`{{ print (repeat 3000000 "x") (repeat 3000000 "x") }}`,
	`{{ b64dec "/w==" }}{{ substr 0 1 "é" }}`,
}

// checkTemplateOutput asserts the bound on a template's output.
func checkTemplateOutput(t *testing.T, out []byte) {
	t.Helper()
	if len(out) > maxTemplateOutput {
		t.Fatalf("template output of %d bytes over the %d bound", len(out), maxTemplateOutput)
	}
}

// FuzzLineFormat: any line_format template the parser accepts renders
// without panicking, on any line and label values, within the output
// bound; a failing template leaves the line as it was.
func FuzzLineFormat(f *testing.F) {
	for _, s := range templateSeeds {
		f.Add(s, "line \xff with {\"queries\":[{\"query\":\"x\"}]}", "a b", `[{"query":"q"}]`)
	}
	f.Fuzz(func(t *testing.T, tmpl, line, v1, v2 string) {
		e, err := lql.ParseLogSelector(`{app="x"} | line_format `+strconv.Quote(tmpl), false)
		if err != nil {
			return
		}
		p, err := New(e.Pipeline())
		if err != nil {
			t.Fatalf("accepted template %q does not compile: %v", tmpl, err)
		}
		// Stream labels and metadata are valid UTF-8 (ingest checks them).
		v1, v2 = strings.ToValidUTF8(v1, "?"), strings.ToValidUTF8(v2, "?")
		stream := model.LabelsFromStrings("a", v1, "app", "x", "queries", v2)
		out, l, keep := p.ForStream(stream).Process(1e18, []byte(line), model.LabelsFromStrings("path", v1))
		if !keep {
			t.Fatal("line_format never drops entries")
		}
		checkTemplateOutput(t, out)
		if l.Err() != "" && string(out) != line {
			t.Fatalf("failed template changed the line: %q", out)
		}
		checkLabels(t, l)
	})
}

// FuzzLabelFormat: the same for label_format templates and renames; the
// new label value is within the output bound.
func FuzzLabelFormat(f *testing.F) {
	for _, s := range templateSeeds {
		f.Add(s, "line", "a b", "c")
	}
	f.Fuzz(func(t *testing.T, tmpl, line, v1, v2 string) {
		e, err := lql.ParseLogSelector(`{app="x"} | label_format dst=`+strconv.Quote(tmpl)+`, renamed=a`, false)
		if err != nil {
			return
		}
		p, err := New(e.Pipeline())
		if err != nil {
			t.Fatalf("accepted template %q does not compile: %v", tmpl, err)
		}
		v1, v2 = strings.ToValidUTF8(v1, "?"), strings.ToValidUTF8(v2, "?")
		stream := model.LabelsFromStrings("a", v1, "app", "x", "b", v2)
		out, l, keep := p.ForStream(stream).Process(1e18, []byte(line), model.EmptyLabels())
		if !keep {
			t.Fatal("label_format never drops entries")
		}
		if string(out) != line {
			t.Fatal("label_format changed the line")
		}
		if v, ok := l.Get("dst"); ok {
			checkTemplateOutput(t, []byte(v))
		}
		if v, ok := l.Get("renamed"); v1 != "" && (!ok || v != v1) {
			t.Fatalf("renamed=%q, want %q", v, v1)
		}
		if _, ok := l.Get("a"); ok {
			t.Fatal("a rename keeps its source")
		}
		checkLabels(t, l)
	})
}

// FuzzRegexpParser: any regexp the parser accepts extracts its named groups
// as Go's regexp finds them, never panics, and yields valid labels.
func FuzzRegexpParser(f *testing.F) {
	for _, s := range [][2]string{
		{`(?P<method>\w+) (?P<path>[\w|/]+) \((?P<status>\d+?)\) (?P<duration>.*)`, `POST /api/prom/api/v1/query_range (200) 1.5s`},
		{`(?P<a>a*)(?P<b>b)?`, `aaa`},
		{`(?P<app>.)(?P<x>\xff)`, "z\xff"},
		{`(?i)(?P<lvl>error|warn)`, `WARN x`},
		{`(?P<a>.*)(?P<a_b>.*)`, ``},
	} {
		f.Add(s[0], s[1])
	}
	stream := model.LabelsFromStrings("app", "x")
	f.Fuzz(func(t *testing.T, re, line string) {
		e, err := lql.ParseLogSelector(`{app="x"} | regexp `+strconv.Quote(re), false)
		if err != nil {
			return
		}
		p, err := New(e.Pipeline())
		if err != nil {
			t.Fatalf("accepted regexp %q does not compile: %v", re, err)
		}
		_, l, keep := p.ForStream(stream).Process(0, []byte(line), model.EmptyLabels())
		if !keep {
			t.Fatal("parsers never drop entries")
		}
		checkLabels(t, l)
		goRE, err := regexp.Compile(re)
		if err != nil {
			return
		}
		m := goRE.FindStringSubmatch(line)
		if m == nil {
			return
		}
		seen := map[string]bool{}
		for i, name := range goRE.SubexpNames() {
			if name == "" || seen[name] || name == "app" || !utf8.ValidString(m[i]) {
				continue
			}
			seen[name] = true
			if v, ok := l.Get(name); ok && v != m[i] {
				t.Fatalf("%s=%q, regexp found %q", name, v, m[i])
			}
		}
	})
}

// FuzzUnpack: | unpack never panics, yields valid labels, and replaces the
// line by a string _entry of a JSON object.
func FuzzUnpack(f *testing.F) {
	for _, s := range []string{
		`{"container":"myapp","pod":"pod-3223f","_entry":"original log message"}`,
		`{"_entry":"a\nb\u00e9","level":"info","n":1,"o":{"p":"q"}}`,
		`{"_entry":1}`, `{"_entry":"x","_entry":"y"}`, `{"app":"clash","_entry":""}`,
		`[1]`, `{`, ``, `{"a":"\ud800"}`,
	} {
		f.Add(s)
	}
	p := mustPipeline(f, `| unpack`)
	stream := model.LabelsFromStrings("app", "x")
	f.Fuzz(func(t *testing.T, line string) {
		out, l, keep := p.ForStream(stream).Process(0, []byte(line), model.EmptyLabels())
		if !keep {
			t.Fatal("parsers never drop entries")
		}
		checkLabels(t, l)
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(line), &obj) != nil || l.Err() != "" {
			return
		}
		var entry string
		if raw, ok := obj["_entry"]; ok && json.Unmarshal(raw, &entry) == nil && utf8.ValidString(line) {
			if string(out) != entry {
				t.Fatalf("line %q, _entry %q", out, entry)
			}
		}
	})
}
