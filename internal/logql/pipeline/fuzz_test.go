package pipeline

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	lql "github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// checkLabels asserts that every label of a processed entry is a valid
// label name with a valid UTF-8 value.
func checkLabels(t *testing.T, l *Labels) {
	t.Helper()
	l.All().Range(func(lb model.Label) {
		if !isLabelName(lb.Name) {
			t.Fatalf("invalid label name %q", lb.Name)
		}
		if !utf8.ValidString(lb.Value) {
			t.Fatalf("invalid UTF-8 value %q=%q", lb.Name, lb.Value)
		}
	})
}

func FuzzJSONParser(f *testing.F) {
	for _, s := range []string{
		`{"a":"b","n":1,"o":{"p":[1,{"q":2}],"r":null,"t":true}}`,
		`{"a\u00e9\"":"x\ud83d\ude00y","":"e","1":"d"}`,
		`{"a":`, `[1,2]`, `"str"`, ``, `{"a":{"b":{"c":{}}}}`,
		`{"timestamp":"2026-11-25T00:00:01Z","level":"INFO","fields":{"message":"m","amount":"1.5"},"span":{"name":"s"}}`,
	} {
		f.Add(s)
	}
	ps := []*Pipeline{
		mustPipeline(f, `| json`),
		mustPipeline(f, `| json a="a", b="o.p[1].q", c="fields[\"message\"]"`),
		mustPipeline(f, `| unpack`),
	}
	stream := model.LabelsFromStrings("app", "x", "level", "info")
	f.Fuzz(func(t *testing.T, line string) {
		for i, p := range ps {
			_, l, keep := p.ForStream(stream).Process(0, []byte(line), model.EmptyLabels())
			if !keep {
				t.Fatal("parsers never drop entries")
			}
			checkLabels(t, l)
			// A valid JSON object never gets a parse error from | json.
			var obj map[string]any
			if i == 0 && json.Unmarshal([]byte(line), &obj) == nil && l.Err() != "" {
				t.Fatalf("valid JSON %q: %s %s", line, l.Err(), l.ErrDetails())
			}
		}
	})
}

func FuzzLogfmtParser(f *testing.F) {
	for _, s := range []string{
		`a=1 b="two words" c= d`,
		`msg="esc \" \\ \n \u00e9" =x "y z=`,
		`k=v k=w`, "\xff=1 a=\xfe", ``, `a="unterminated`,
	} {
		f.Add(s)
	}
	ps := []*Pipeline{
		mustPipeline(f, `| logfmt`),
		mustPipeline(f, `| logfmt --strict --keep-empty`),
		mustPipeline(f, `| logfmt x="a", b`),
	}
	stream := model.LabelsFromStrings("app", "x")
	f.Fuzz(func(t *testing.T, line string) {
		for _, p := range ps {
			_, l, keep := p.ForStream(stream).Process(0, []byte(line), model.EmptyLabels())
			if !keep {
				t.Fatal("parsers never drop entries")
			}
			checkLabels(t, l)
		}
	})
}

func FuzzPatternParser(f *testing.F) {
	for _, s := range [][2]string{
		{`<ip> - - <_> "<method> <uri> <_>" <status>`, `1.2.3.4 - - [x] "GET / HTTP/1.1" 200`},
		{`<_> foo <bar>`, `a foo b`},
		{`x<a>y<b>`, `xxyy`},
		{`<a>`, ``},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, line string) {
		parts, err := lql.ParsePattern(pattern)
		if err != nil {
			return
		}
		m := newPatternMatcher(parts)
		m.test([]byte(line))
		caps := m.matches(nil, []byte(line))
		if len(caps) > len(m.names) {
			t.Fatalf("%d captures for %d names", len(caps), len(m.names))
		}
		if len(m.names) == 0 {
			return
		}
		p, err := New([]lql.Stage{&lql.PatternParserExpr{Pattern: pattern}})
		if err != nil {
			return
		}
		_, l, keep := p.ForStream(model.LabelsFromStrings("app", "x")).Process(0, []byte(line), model.EmptyLabels())
		if !keep {
			t.Fatal("parsers never drop entries")
		}
		for i, c := range caps {
			if v, ok := l.Get(m.names[i]); ok && validLabelValue(c) && v != string(c) && !l.baseHas(m.names[i]) {
				// An earlier capture of the same name wins.
				if j := indexOf(m.names, m.names[i]); j == i {
					t.Fatalf("capture %s=%q, label %q", m.names[i], c, v)
				}
			}
		}
	})
}

func indexOf(ss []string, s string) int {
	for i, x := range ss {
		if x == s {
			return i
		}
	}
	return -1
}
