package pipeline

import (
	"strings"
	"testing"

	"github.com/grafana/regexp"
	"github.com/stretchr/testify/require"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// TestTemplateOutputBound: templates that would build strings over the
// bound fail with TemplateFormatErr and leave the line alone; the same
// functions under the bound answer as the unbounded ones.
func TestTemplateOutputBound(t *testing.T) {
	f := func(tmpl, want string) {
		t.Helper()
		p := mustPipeline(t, "| line_format `"+tmpl+"`")
		out, l, _ := p.ForStream(model.LabelsFromStrings("a", "x-y")).Process(0, []byte("line"), model.EmptyLabels())
		if want == "" {
			require.Equal(t, ErrTemplateFormat, l.Err(), tmpl)
			require.Equal(t, "line", string(out), tmpl)
			return
		}
		require.Empty(t, l.Err(), "%s: %s", tmpl, l.ErrDetails())
		require.Equal(t, want, string(out), tmpl)
	}
	f(`{{ repeat 3 "ab" }}`, "ababab")
	f(`{{ repeat 100000000 "ab" }}`, "")
	f(`{{ repeat -1 "ab" }}`, "")
	f(`{{ indent 2 "a\nb" }}|{{ nindent 1 "c" }}`, "  a\n  b|\n c")
	f(`{{ indent 5000000 "a" }}`, "")
	f(`{{ alignLeft 3 "a" }}|{{ alignRight 3 "a" }}`, "a  |  a")
	f(`{{ alignLeft 5000000 "a" }}`, "")
	f(`{{ replace "-" "+" .a }} {{ Replace .a "-" "++" 1 }}`, "x+y x++y")
	f(`{{ "ab" | replace "" "abab" | replace "" "abab" | replace "" "abab" | replace "" "abab" | replace "" "abab" | replace "" "abab" | replace "" "abab" | replace "" "abab" | replace "" "abab" | replace "" "abab" }}`, "")
	f(`{{ regexReplaceAll "(a)" "banana" "[$1]" }} {{ regexReplaceAllLiteral "a" "banana" "$1" }}`, "b[a]n[a]n[a] b$1n$1n$1")
	f(`{{ regexReplaceAll "." (repeat 100000 "ab") "$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0" }}`, "")
	f(`{{ printf "%05d|%-3s|%.2f" 7 "x" 1.5 }}`, "00007|x  |1.50")
	f(`{{ printf "%999999d%999999d%999999d%999999d%999999d" 1 2 3 4 5 }}`, "")
	f(`{{ printf "%*d" 999999 1 | len }}`, "999999")
	f(`{{ print (repeat 3000000 "x") (repeat 3000000 "x") }}`, "")
	f(`{{ html "<a>" }} {{ js "'" }} {{ urlquery "a b" }}`, "&lt;a&gt; \\' a+b")
}

// TestRegexpReplaceMatchesGo: the bounded replacement answers exactly as
// Regexp.ReplaceAllString and ReplaceAllLiteralString.
func TestRegexpReplaceMatchesGo(t *testing.T) {
	for _, re := range []string{``, `a*`, `a*?`, `b*`, `^`, `$`, `\b`, `(a)|b`, `x*|a`, `(?m)^`, `.`, `é?`, `(?P<x>n)(a)?`} {
		r := regexp.MustCompile(re)
		for _, src := range []string{"", "banana", "aaa", "abba", "é é", "a\nb\n"} {
			for _, repl := range []string{"", "[$0]", "${1}x", "$x$2"} {
				got, err := regexpReplace(r, src, repl, true)
				require.NoError(t, err)
				require.Equal(t, r.ReplaceAllString(src, repl), got, "%q %q %q", re, src, repl)
				got, err = regexpReplace(r, src, repl, false)
				require.NoError(t, err)
				require.Equal(t, r.ReplaceAllLiteralString(src, repl), got, "%q %q %q", re, src, repl)
			}
		}
	}
	_, err := regexpReplace(regexp.MustCompile(`.`), strings.Repeat("ab", 1<<20), "$0$0$0", true)
	require.ErrorIs(t, err, errTemplateOutput)
}
