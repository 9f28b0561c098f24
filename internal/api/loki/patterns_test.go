package loki

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerlog/ledgerlog/internal/logql/pipeline"
	"github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

func joinTokens(toks []patternToken) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteString(t.text)
		if t.delim != 0 {
			b.WriteByte(t.delim)
		}
	}
	return b.String()
}

func TestTokenizePattern(t *testing.T) {
	f := func(line string, max int, want ...string) {
		t.Helper()
		toks := tokenizePattern(line, max)
		var got []string
		for _, tk := range toks {
			s := tk.text
			if tk.delim != 0 {
				s += string(tk.delim)
			}
			got = append(got, s)
		}
		require.Equal(t, want, got)
		require.Equal(t, line, joinTokens(toks))
	}
	f("", 8, "")
	f("a", 8, "a")
	f("level=info msg=hi", 8, "level=", "info ", "msg=", "hi")
	f("a  b", 8, "a ", " ", "b")
	f("x,y\tz ", 8, "x,", "y\t", "z ", "")
	f("a b c d e", 3, "a ", "b ", "c d e")
}

// matches reports whether line passes the pattern filter `|> "pattern"`,
// evaluated by the real LogQL pipeline.
func matches(t *testing.T, pattern, line string) bool {
	t.Helper()
	expr, err := syntax.ParseLogSelector(`{a="b"} |> `+fmt.Sprintf("%q", pattern), false)
	require.NoError(t, err, "pattern %q", pattern)
	p, err := pipeline.New(expr.Pipeline())
	require.NoError(t, err)
	_, _, ok := p.ForStream(model.LabelsFromStrings("a", "b")).ProcessString(0, line, model.EmptyLabels())
	return ok
}

func TestDrainClustersTemplates(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 7))
	templates := []func() string{
		func() string {
			return fmt.Sprintf("level=info msg=\"request done\" method=GET path=/api/%d status=200 duration=%dms", rnd.IntN(50), rnd.IntN(900))
		},
		func() string {
			return fmt.Sprintf("level=error msg=\"payment declined\" account=%x amount=%d.%02d currency=EUR", rnd.Uint64(), rnd.IntN(1000), rnd.IntN(100))
		},
		func() string {
			return fmt.Sprintf("connection from 10.0.%d.%d closed after %d bytes", rnd.IntN(255), rnd.IntN(255), rnd.IntN(1<<20))
		},
	}
	d := newDrain()
	counts := []int64{300, 120, 45}
	var lines [][]string
	for ti, n := range counts {
		var ls []string
		for i := int64(0); i < n; i++ {
			l := templates[ti]()
			ls = append(ls, l)
			d.add("", l, i%10)
		}
		lines = append(lines, ls)
	}
	res := d.results(100)
	require.Len(t, res, 3, "%+v", res)
	for i, r := range res {
		require.Equal(t, counts[i], r.count, r.pattern)
		var sum int64
		for _, s := range r.samples {
			sum += s.count
		}
		require.Equal(t, counts[i], sum)
		require.Len(t, r.samples, 10)
		for _, l := range lines[i] {
			require.True(t, matches(t, r.pattern, l), "pattern %q line %q", r.pattern, l)
		}
		for j, other := range lines {
			if j != i {
				require.False(t, matches(t, r.pattern, other[0]), "pattern %q line %q", r.pattern, other[0])
			}
		}
	}
	require.Equal(t, `level=info msg="request done" method=GET path=<_> status=200 duration=<_>`, res[0].pattern)
	require.Equal(t, `connection from <_> closed after <_> bytes`, res[2].pattern)
}

func TestDrainPatternRendering(t *testing.T) {
	f := func(want string, lines ...string) {
		t.Helper()
		d := newDrain()
		for _, l := range lines {
			d.add("info", l, 0)
		}
		res := d.results(10)
		if want == "" {
			require.Empty(t, res)
			return
		}
		require.Len(t, res, 1)
		require.Equal(t, want, res[0].pattern)
		require.Equal(t, "info", res[0].level)
		for _, l := range lines {
			require.True(t, matches(t, res[0].pattern, l), "pattern %q line %q", res[0].pattern, l)
		}
	}
	f("GET /a took 5ms", "GET /a took 5ms")
	f("user <_> logged in", "user 1 logged in", "user 2 logged in")
	// Adjacent wildcards with no literal between them are merged.
	f("job <_> done", "job a=1 done", "job b,2 done")
	// A literal that reads as a capture becomes a wildcard.
	f("render <_> ok", "render <div> ok")
	// Only wildcards: no pattern.
	f("", "<a>")
}

func FuzzPatternTokenize(f *testing.F) {
	for _, s := range []string{"", "level=info msg=hi", "a  b\tc,d=e", "<_> <x>", "\x00=\xff"} {
		f.Add(s, "other line here")
	}
	f.Fuzz(func(t *testing.T, line, other string) {
		toks := tokenizePattern(line, patternMaxTokens)
		if len(toks) == 0 || len(toks) > patternMaxTokens {
			t.Fatalf("%d tokens", len(toks))
		}
		if got := joinTokens(toks); got != line {
			t.Fatalf("rejoined %q != %q", got, line)
		}
		d := newDrain()
		d.add("", line, 0)
		if res := d.results(10); len(res) == 1 && !strings.Contains(line, "<") && res[0].pattern != line {
			t.Fatalf("single line pattern %q != %q", res[0].pattern, line)
		}
		d.add("", other, 1)
		d.add("", line, 2)
		for _, r := range d.results(10) {
			if strings.Contains(r.pattern, patternWildcard+patternWildcard) {
				t.Fatalf("adjacent wildcards in %q", r.pattern)
			}
		}
	})
}

func BenchmarkDrainAdd(b *testing.B) {
	rnd := rand.New(rand.NewPCG(1, 1))
	lines := make([]string, 1024)
	var n int64
	for i := range lines {
		lines[i] = fmt.Sprintf("level=info ts=2026-03-01T10:00:%02dZ caller=handler.go:%d msg=\"request done\" path=/api/v1/%d status=%d duration=%dms", i%60, rnd.IntN(300), rnd.IntN(20), 200+rnd.IntN(4)*100, rnd.IntN(900))
		n += int64(len(lines[i]))
	}
	b.SetBytes(n / int64(len(lines)))
	b.ReportAllocs()
	d := newDrain()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.add("", lines[i%len(lines)], int64(i%100))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
