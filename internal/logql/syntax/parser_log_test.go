package syntax

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseLogQuery_RoundTrip(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		e, err := ParseExpr(in)
		require.NoError(t, err, in)
		require.Equal(t, want, e.String(), in)
		_, ok := e.(LogSelectorExpr)
		require.True(t, ok, "%q is a log query", in)
		requireRoundTrip(t, e)
	}
	// selectors (LQ-S1, LQ-S4)
	f(`{app="foo"}`, `{app="foo"}`)
	f(`{ app = "foo" , env != "dev",name=~"mysql.+", x!~"a|b" }`, `{app="foo", env!="dev", name=~"mysql.+", x!~"a|b"}`)
	f("{app=\"x\", name !~ `mysql-\\d+`}", `{app="x", name!~"mysql-\\d+"}`)
	f(`({app="foo"})`, `{app="foo"}`)
	f(`(({app="foo"} |= "x"))`, `{app="foo"} |= "x"`)
	f(`{app="a\"b\\c"}`, `{app="a\"b\\c"}`)
	f(`{app="föö ✓"}`, `{app="föö ✓"}`)
	f(`{by="x", offset="y", sum="z"}`, `{by="x", offset="y", sum="z"}`)
	f("{app=\"foo\"} # a comment\n |= \"x\" # another", `{app="foo"} |= "x"`)

	// line filters (LQ-F1…F8)
	f(`{app="foo"} |= "error"`, `{app="foo"} |= "error"`)
	f(`{app="foo"}|="error"!="timeout"`, `{app="foo"} |= "error" != "timeout"`)
	f(`{app="foo"} |~ "tsdb-ops.*io:2003"`, `{app="foo"} |~ "tsdb-ops.*io:2003"`)
	f("{app=\"foo\"} |~ `error=\\w+`", "{app=\"foo\"} |~ `error=\\w+`")
	f(`{app="foo"} !~ "a+"`, `{app="foo"} !~ "a+"`)
	f("{app=\"foo\"} |> `<_> caller=http.go:194 <_>`", "{app=\"foo\"} |> `<_> caller=http.go:194 <_>`")
	f(`{app="foo"} !> "<_> x <_>"`, `{app="foo"} !> "<_> x <_>"`)
	f(`{app="foo"} |= "a" or "b" or `+"`c`", `{app="foo"} |= "a" or "b" or `+"`c`")
	f(`{app="foo"} != "a" or "b"`, `{app="foo"} != "a" or "b"`)
	f(`{app="foo"} |~ "a" or "b"`, `{app="foo"} |~ "a" or "b"`)
	f(`{app="foo"} |= ip("192.168.4.5/16")`, `{app="foo"} |= ip("192.168.4.5/16")`)
	f(`{app="foo"} != ip("192.168.4.5-192.168.4.20")`, `{app="foo"} != ip("192.168.4.5-192.168.4.20")`)
	f(`{app="foo"} |= "x" or ip("::1")`, `{app="foo"} |= "x" or ip("::1")`)
	f(`{app="foo"} |= ""`, `{app="foo"} |= ""`)

	// parsers (LQ-P1…P6)
	f(`{app="foo"} | json`, `{app="foo"} | json`)
	f(`{app="foo"} | json first_server="servers[0]", ua="request.headers[\"User-Agent\"]"`, `{app="foo"} | json first_server="servers[0]", ua="request.headers[\"User-Agent\"]"`)
	f(`{app="foo"} | json servers, headers="request.headers"`, `{app="foo"} | json servers, headers="request.headers"`)
	f(`{app="foo"} | json servers="servers"`, `{app="foo"} | json servers`)
	f("{app=\"foo\"} | json c=`[\"key with space\"]`", "{app=\"foo\"} | json c=`[\"key with space\"]`")
	f(`{app="foo"} | logfmt`, `{app="foo"} | logfmt`)
	f(`{app="foo"} | logfmt --strict`, `{app="foo"} | logfmt --strict`)
	f(`{app="foo"} | logfmt --keep-empty --strict host`, `{app="foo"} | logfmt --strict --keep-empty host`)
	f(`{app="foo"} | logfmt --strict host, fwd_ip="fwd"`, `{app="foo"} | logfmt --strict host, fwd_ip="fwd"`)
	f(`{app="foo"} | regexp "(?P<method>\\w+) (?P<path>[\\w|/]+)"`, `{app="foo"} | regexp "(?P<method>\\w+) (?P<path>[\\w|/]+)"`)
	f("{app=\"foo\"} | regexp `(?P<method>\\w+)`", "{app=\"foo\"} | regexp `(?P<method>\\w+)`")
	f(`{app="foo"} | pattern "<ip> - - <_> \"<method> <uri> <_>\" <status>"`, `{app="foo"} | pattern "<ip> - - <_> \"<method> <uri> <_>\" <status>"`)
	f(`{app="foo"} | unpack`, `{app="foo"} | unpack`)

	// label filters (LQ-LF1…LF7)
	f(`{app="foo"} | level="error"`, `{app="foo"} | level="error"`)
	f(`{app="foo"} | level != "error" | x=~"a.*" | y !~ "b"`, `{app="foo"} | level!="error" | x=~"a.*" | y!~"b"`)
	f(`{app="foo"} | status >= 400`, `{app="foo"} | status >= 400`)
	f(`{app="foo"} | status=400 | s==1.5 | s!=2 | s>3 | s<4 | s<=-5`, `{app="foo"} | status == 400 | s == 1.5 | s != 2 | s > 3 | s < 4 | s <= -5`)
	f(`{app="foo"} | latency > 250ms | d <= 1h30m | d > 1.5s`, `{app="foo"} | latency > 250ms | d <= 1h30m | d > 1s500ms`)
	f(`{app="foo"} | size > 20MB | s < 1.5KiB | s >= 20b`, `{app="foo"} | size > 20MB | s < 1536B | s >= 20B`)
	f(`{app="foo"} | addr = ip("10.0.0.0/8") | b != ip("::1")`, `{app="foo"} | addr = ip("10.0.0.0/8") | b != ip("::1")`)
	f(`{app="foo"} | __error__ = ""`, `{app="foo"} | __error__=""`)
	f(`{app="foo"} | a="1" and b="2"`, `{app="foo"} | a="1" and b="2"`)
	f(`{app="foo"} | a="1", b="2"`, `{app="foo"} | a="1" and b="2"`)
	f(`{app="foo"} | a="1" b="2"`, `{app="foo"} | a="1" and b="2"`)
	f(`{app="foo"} | a="1" or b="2" and c="3"`, `{app="foo"} | a="1" or b="2" and c="3"`)
	f(`{app="foo"} | (a="1" or b="2") and c="3"`, `{app="foo"} | (a="1" or b="2") and c="3"`)
	f(`{app="foo"} | a="1" and (b="2" and c="3")`, `{app="foo"} | a="1" and (b="2" and c="3")`)
	f(`{app="foo"} | ((a="1"))`, `{app="foo"} | a="1"`)
	f(`{app="foo"} | duration >= 20ms or size == 20KB  method!~"2.."`, `{app="foo"} | duration >= 20ms or size == 20KB and method!~"2.."`)
	f(`{app="foo"} | logfmt | count > 2 | by="x" | offset < 1`, `{app="foo"} | logfmt | count > 2 | by="x" | offset < 1`)
	f("{app=\"foo\"} | a=`x`", "{app=\"foo\"} | a=`x`")

	// formatting (LQ-T1…T6)
	f(`{app="foo"} | line_format "{{.query}} {{.duration}}"`, `{app="foo"} | line_format "{{.query}} {{.duration}}"`)
	f("{app=\"foo\"} | line_format `{{ .a | ToUpper }}\t{{ __line__ }}`", "{app=\"foo\"} | line_format `{{ .a | ToUpper }}\t{{ __line__ }}`")
	f(`{app="foo"} | label_format a=b, c="{{.d}}"`, `{app="foo"} | label_format a=b, c="{{.d}}"`)
	f(`{app="foo"} | label_format query="{{ Replace .query \"\\n\" \"\" -1 }}"`, `{app="foo"} | label_format query="{{ Replace .query \"\\n\" \"\" -1 }}"`)
	f(`{app="foo"} | drop level, method="GET", app=~"some-api.*"`, `{app="foo"} | drop level, method="GET", app=~"some-api.*"`)
	f(`{app="foo"} | json | drop __error__, __error_details__`, `{app="foo"} | json | drop __error__, __error_details__`)
	f(`{app="foo"} | keep level, method="GET"`, `{app="foo"} | keep level, method="GET"`)
	f(`{app="foo"} | decolorize`, `{app="foo"} | decolorize`)

	// a whole pipeline
	f(`{container="query-frontend",namespace="loki-dev"} |= "metrics.go" | logfmt | duration > 10s and throughput_mb < 500`,
		`{container="query-frontend", namespace="loki-dev"} |= "metrics.go" | logfmt | duration > 10s and throughput_mb < 500`)
}

func TestParseLogQuery_Values(t *testing.T) {
	e, err := ParseExpr(`{app="foo"} | d > 1h30m | b >= 1.5KiB | n == 0x10 | m < 1e3 | z > -2.5`)
	require.NoError(t, err)
	st := e.(*LogExpr).Stages
	require.Equal(t, 90*time.Minute, st[0].(*LabelFilterExpr).Filter.(*DurationLabelFilter).Value)
	require.Equal(t, uint64(1536), st[1].(*LabelFilterExpr).Filter.(*BytesLabelFilter).Value)
	require.Equal(t, 16.0, st[2].(*LabelFilterExpr).Filter.(*NumericLabelFilter).Value)
	require.Equal(t, 1000.0, st[3].(*LabelFilterExpr).Filter.(*NumericLabelFilter).Value)
	require.Equal(t, -2.5, st[4].(*LabelFilterExpr).Filter.(*NumericLabelFilter).Value)

	// and binds tighter than or; and/or are left-associative.
	e, err = ParseExpr(`{app="foo"} | a="1" or b="2" and c="3" or d="4"`)
	require.NoError(t, err)
	or := e.(*LogExpr).Stages[0].(*LabelFilterExpr).Filter.(*BinaryLabelFilter)
	require.False(t, or.And)
	require.Equal(t, `d="4"`, or.Right.String())
	inner := or.Left.(*BinaryLabelFilter)
	require.False(t, inner.And)
	require.Equal(t, `b="2" and c="3"`, inner.Right.String())
}

func TestParseMatchers(t *testing.T) {
	ms, err := ParseMatchers(`{a="b", c=~"d.*"}`)
	require.NoError(t, err)
	require.Len(t, ms, 2)
	require.Equal(t, `c=~"d.*"`, ms[1].String())

	ms, err = ParseMatchers(`{}`)
	require.NoError(t, err)
	require.Empty(t, ms)
	require.True(t, IsEmptyCompatible(ms))

	_, err = ParseMatchers(`{a="b"} |= "x"`)
	require.EqualError(t, err, `parse error at line 1, col 9: syntax error: unexpected |=, expecting $end`)
}

func TestIsEmptyCompatible(t *testing.T) {
	f := func(sel string, want bool) {
		t.Helper()
		ms, err := ParseMatchers(sel)
		require.NoError(t, err)
		require.Equal(t, want, IsEmptyCompatible(ms), sel)
	}
	f(`{}`, true)
	f(`{a=~".*"}`, true)
	f(`{a=""}`, true)
	f(`{a!="x"}`, true)
	f(`{a=~".*", b!~"y"}`, true)
	f(`{a=~".+"}`, false)
	f(`{a!=""}`, false)
	f(`{a="b", c=~".*"}`, false)
}

func TestParseLogSelector(t *testing.T) {
	e, err := ParseLogSelector(`{a="b"} | json`, true)
	require.NoError(t, err)
	require.Len(t, e.Matchers(), 1)
	require.Len(t, e.Pipeline(), 1)

	_, err = ParseLogSelector(`{a=~".*"}`, true)
	require.Error(t, err)
	e, err = ParseLogSelector(`{a=~".*"}`, false)
	require.NoError(t, err)
	require.Len(t, e.Matchers(), 1)
}
