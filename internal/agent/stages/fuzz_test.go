package stages

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
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
