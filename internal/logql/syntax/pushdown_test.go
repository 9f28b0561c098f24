package syntax

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNeedles(t *testing.T) {
	f := func(q string, want ...string) {
		t.Helper()
		e, err := ParseLogSelector(q, true)
		require.NoError(t, err, q)
		var got []string
		for _, n := range Needles(e) {
			got = append(got, string(n))
		}
		require.Equal(t, want, got, q)
	}
	f(`{a="b"}`)
	f(`{a="b"} |= "error"`, "error")
	f(`{a="b"} |= "error" |= "timeout" |= "error"`, "error", "timeout")
	f(`{a="b"} |= ""`)
	f(`{a="b"} != "error"`)
	f(`{a="b"} |= "a" or "b"`)
	f(`{a="b"} |= ip("10.0.0.1")`)
	f(`{a="b"} |~ "COMPLIANCE_VIOLATION"`, "COMPLIANCE_VIOLATION")
	f(`{a="b"} |~ "(?i)compliance"`)
	f(`{a="b"} |~ "foo.*bar"`, "foo", "bar")
	f(`{a="b"} |~ "foo(bar)baz"`, "foobarbaz")
	f(`{a="b"} |~ "(foo|bar)"`)
	f(`{a="b"} |~ "x(foo|bar)+y"`, "x", "y")
	f(`{a="b"} |~ "a+bc"`, "a", "bc")
	f(`{a="b"} |~ "ab?c"`, "a", "c")
	f(`{a="b"} |~ "(ab){2,}c"`, "ab", "c")
	f(`{a="b"} |~ "[a-z]+"`)
	f(`{a="b"} !~ "foo"`)
	f("{a=\"b\"} |> `<_> caller=http.go:194 level=debug <_> msg=\"POST <_>`", " caller=http.go:194 level=debug ", ` msg="POST `)
	f(`{a="b"} !> "<_> x <_>"`)
	// Filters after parsers and label stages still see the raw line.
	f(`{a="b"} | json | level="error" |= "timeout" | drop x |~ "db"`, "timeout", "db")
	// A stage that rewrites the line ends the push-down.
	f(`{a="b"} |= "x" | line_format "{{.msg}}" |= "y"`, "x")
	f(`{a="b"} | decolorize |= "y"`)
	f(`{a="b"} | unpack |= "y"`)
}

func TestLineFilters(t *testing.T) {
	e, err := ParseLogSelector(`{a="b"} |= "x" | logfmt != "y" | line_format "z" |= "w"`, true)
	require.NoError(t, err)
	fs := LineFilters(e)
	require.Len(t, fs, 2)
	require.Equal(t, `|= "x"`, fs[0].String())
	require.Equal(t, `!= "y"`, fs[1].String())
}

func TestParsePattern(t *testing.T) {
	parts, err := ParsePattern(`<ip> - - <_> "<method> <uri> <_>" <status> <not a capture> <-`)
	require.NoError(t, err)
	require.Equal(t, []PatternPart{
		{Capture: true, Text: "ip"}, {Text: " - - "}, {Capture: true, Text: "_"}, {Text: ` "`},
		{Capture: true, Text: "method"}, {Text: " "}, {Capture: true, Text: "uri"}, {Text: " "},
		{Capture: true, Text: "_"}, {Text: `" `}, {Capture: true, Text: "status"}, {Text: " <not a capture> <-"},
	}, parts)
	_, err = ParsePattern("<a><b>")
	require.ErrorIs(t, err, errConsecutiveCapture)
	_, err = ParsePattern("")
	require.Error(t, err)
}

func TestParseIPPattern(t *testing.T) {
	f := func(s, first, last string) {
		t.Helper()
		a, b, err := ParseIPPattern(s)
		require.NoError(t, err, s)
		require.Equal(t, first, a.String())
		require.Equal(t, last, b.String())
	}
	f("192.168.0.1", "192.168.0.1", "192.168.0.1")
	f("192.168.4.5/16", "192.168.0.0", "192.168.255.255")
	f("192.168.0.1-192.189.10.12", "192.168.0.1", "192.189.10.12")
	f("2001:db8::/32", "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")
	f("2001:db8::1-2001:db8::8", "2001:db8::1", "2001:db8::8")
	for _, bad := range []string{"", "1.2.3", "1.2.3.4/33", "1.2.3.4-::1", "1.2.3.9-1.2.3.1", "x"} {
		_, _, err := ParseIPPattern(bad)
		require.Error(t, err, bad)
	}
}

func TestFormatValues(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		e, err := ParseExpr(`{a="b"} | x > ` + in)
		require.NoError(t, err, in)
		require.Equal(t, `{a="b"} | x > `+want, e.String())
	}
	f("1h30m", "1h30m")
	f("90m", "1h30m")
	f("1.5h", "1h30m")
	f("2d12h", "2d12h")
	f("1y2w", "1y2w")
	f("300us", "300µs")
	f("1500ns", "1.5µs")
	f("0s", "0s")
	f("20MB", "20MB")
	f("1024b", "1KiB")
	f("3gb", "3GB")
	f("5k", "5KB")
	f("1.5MiB", "1536KiB")
	f("0.5", "0.5")
	f("1e21", "1e+21")
}
