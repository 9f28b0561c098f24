package stages

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// criParts splits a CRI line the way the cri stage's expression
// ^(?s)(\S+?) (stdout|stderr) (\S+?) (.*)$ does.
func criParts(line string) (flags, content string, ok bool) {
	ts, rest, found := strings.Cut(line, " ")
	if !found || ts == "" || strings.IndexFunc(ts, unicode.IsSpace) >= 0 {
		return "", "", false
	}
	stream, rest, found := strings.Cut(rest, " ")
	if !found || (stream != "stdout" && stream != "stderr") {
		return "", "", false
	}
	flags, content, found = strings.Cut(rest, " ")
	if !found || flags == "" || strings.IndexFunc(flags, unicode.IsSpace) >= 0 {
		return "", "", false
	}
	return flags, content, true
}

// FuzzCRI checks the cri stage never panics and neither loses nor invents
// bytes: partial lines are joined, not dropped.
func FuzzCRI(f *testing.F) {
	f.Add("2019-01-01T01:00:00.000000001Z stdout P part ", "2019-01-01T01:00:00.000000002Z stdout F end")
	f.Add("2019-01-01T01:00:00.000000001Z stderr F test\ngood", "not cri")
	f.Add("bad-time stdout P x", "bad-time stderr P y")
	p := newTestPipeline(f, `[{cri: {}}]`, Options{})
	f.Fuzz(func(t *testing.T, l1, l2 string) {
		want := 0
		for _, l := range []string{l1, l2} {
			if _, content, ok := criParts(l); ok {
				want += len(content)
			} else {
				want += len(l)
			}
		}
		out := p.Process(entry(l1, ls("pod", "a")))
		out = append(out, p.Process(entry(l2, ls("pod", "a")))...)
		out = append(out, p.Flush()...)
		if len(out) == 0 || len(out) > 2 {
			t.Fatalf("%d entries out of 2", len(out))
		}
		got := 0
		for _, e := range out {
			got += len(e.Line)
		}
		if got != want {
			t.Fatalf("bytes: want %d got %d (%q)", want, got, out)
		}
	})
}

// FuzzDocker checks the docker stage never panics and outputs the log field
// of any JSON object that has a string log field.
func FuzzDocker(f *testing.F) {
	f.Add(`{"log":"log message\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}`)
	f.Add(`{"log":1,"stream":["x"],"time":null}`)
	f.Add(`not json`)
	p := newTestPipeline(f, `[{docker: {}}]`, Options{})
	f.Fuzz(func(t *testing.T, line string) {
		out := p.Process(entry(line, nil))
		if len(out) != 1 {
			t.Fatalf("%d entries out of 1", len(out))
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			if out[0].Line != line {
				t.Fatalf("not JSON, yet line changed: %q", out[0].Line)
			}
			return
		}
		if log, ok := doc["log"].(string); ok && out[0].Line != log {
			t.Fatalf("want log %q got %q", log, out[0].Line)
		}
		for k, v := range out[0].Labels {
			if !v.IsValid() || !k.IsValid() {
				t.Fatalf("invalid label %q=%q", k, v)
			}
		}
	})
}

// FuzzMultiline checks that within one stream multiline only regroups lines:
// the released blocks, joined with "\n", are the input lines joined with
// "\n", in order.
func FuzzMultiline(f *testing.F) {
	f.Add("[1] a\n b\n[2] c\n d\n e", uint8(0))
	f.Add("x\n[1]\n\n[2] y", uint8(2))
	f.Add("", uint8(1))
	f.Fuzz(func(t *testing.T, text string, maxLines uint8) {
		cfg := `[{multiline: {firstline: '^\[\d+\]', max_lines: ` + string(rune('0'+maxLines%10)) + `}}]`
		p := newTestPipeline(t, cfg, Options{})
		in := strings.Split(text, "\n")
		var out []string
		for _, l := range in {
			for _, e := range p.Process(entry(l, ls("s", "1"))) {
				out = append(out, e.Line)
			}
		}
		for _, e := range p.Flush() {
			out = append(out, e.Line)
		}
		if len(out) > len(in) {
			t.Fatalf("%d blocks from %d lines", len(out), len(in))
		}
		if got, want := strings.Join(out, "\n"), strings.Join(in, "\n"); got != want {
			t.Fatalf("regrouped text differs:\nwant %q\ngot  %q", want, got)
		}
	})
}

// jsonFastPathExprs are the expression sets FuzzJSONFastPath compares the
// fast path with the full decode on: the seed Rust config, the corrected
// tracing config, and paths that exercise quoted keys, deep paths, a path
// that is also the prefix of another and a key that is not an identifier.
var jsonFastPathExprs = []string{
	`{level: level, timestamp: timestamp, message: message, span: span, transaction_id: fields.transaction_id, account_id: fields.account_id, amount: fields.amount, event: event}`,
	`{level: level, timestamp: timestamp, message: fields.message, event: fields.event, span: span.name, target: target, amount: fields.amount}`,
	`{a: a, ab: a.b, abc: a.b.c, q: '"a-b"', qe: '"\u0061"', x: x.y, arr: arr, n: n}`,
}

// FuzzJSONFastPath checks that the json stage's fast path (a scanner that
// extracts only plain field paths) stores exactly what the full decode
// (encoding/json + go-jmespath) stores, and accepts exactly the lines it
// accepts.
func FuzzJSONFastPath(f *testing.F) {
	for _, l := range tracingLines(f)[:8] {
		f.Add(uint8(0), l)
		f.Add(uint8(1), l)
	}
	for _, l := range []string{
		`{"a":{"b":{"c":1}},"a":{"b":2}}`,
		`{"a":{"b":{"c":"x"}},"x":{"y":[1,{"z":null}]},"arr":[true,false,null,"s",1.5e3,{"k":"v"}]}`,
		`{"a-b":"dash","a":"\u0041\ud83d\ude00\ud800x","n":-0.0e-0}`,
		`{"n":1e400}`, `{"n":1e-400}`, `{"n":123456789012345678901234567890}`, `{"n":01}`, `{"n":1.}`, `{"n":-}`,
		` null `, `null`, `nul`, `[]`, `"s"`, `{}`, ``, `{"a":1}x`, `{"a":1,}`, `{,}`, `{"a" 1}`,
		"{\"a\":\"\xff\xfe\"}", "{\"\xffa\":1,\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"tab\there\"}", `{"a":"\x"}`, `{"a":"\u12"}`,
		`{"\u0061":{"b":true},"a":{"b":false,"c":{}}}`, `{"a":{"b":{"c":[]}}}`,
		`{"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
		`{"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
		`{"a":"<html> & \u2028"}`, `{"span":{"k":"\b\f\u0001\u001f\u007f\u2029\"\\","\u00e9":1,"b":[0.000001,1e-7,-0,1E+2]}}`,
		"{\"span\":{\"\xff\":\"\xe2\x80\xa8\",\"k\":{\"k\":2,\"k\":[{\"b\":1,\"a\":2}]}}}", `{"a":{"z":1,"b":{"y":"<"},"a":[1.0,1e21,1e-7,100000000000000000000]}}`,
	} {
		for set := range jsonFastPathExprs {
			f.Add(uint8(set), l)
		}
	}
	var stagesBySet []*jsonStage
	for _, exprs := range jsonFastPathExprs {
		var n yaml.Node
		require.NoError(f, yaml.Unmarshal([]byte(`{expressions: `+exprs+`}`), &n))
		st, err := newJSONStage(nil, nil, n.Content[0])
		require.NoError(f, err)
		s := st.(*jsonStage)
		require.NotNil(f, s.fast, "fast path for %s", exprs)
		stagesBySet = append(stagesBySet, s)
	}
	f.Fuzz(func(t *testing.T, set uint8, line string) {
		s := stagesBySet[int(set)%len(stagesBySet)]
		fast := Entry{Line: line, Extracted: map[string]any{}}
		full := Entry{Line: line, Extracted: map[string]any{}}
		keepFast := s.processFast(&fast, line)
		keepFull := s.processFull(&full, line)
		if keepFast != keepFull {
			t.Fatalf("keep: fast %v, full %v", keepFast, keepFull)
		}
		if !reflect.DeepEqual(fast.Extracted, full.Extracted) {
			t.Fatalf("extracted:\nfast %#v\nfull %#v", fast.Extracted, full.Extracted)
		}
		// malformed lines are told apart the same way
		var m map[string]any
		if accepted := s.fast.extract(line); accepted != (json.Unmarshal([]byte(line), &m) == nil) {
			t.Fatalf("fast path accepts %v, encoding/json accepts %v", accepted, !accepted)
		}
	})
}
