package syntax

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseErrors(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		_, err := ParseExpr(in)
		require.EqualError(t, err, want, in)
		var pe *ParseError
		require.True(t, errors.As(err, &pe))
	}
	// Loki's observed text for an unterminated selector.
	f(`{service="x"`, `parse error at line 1, col 13: syntax error: unexpected $end, expecting } or ,`)
	f(`{}`, `parse error : `+errEmptyCompatible)
	f(`{a=~".*"}`, `parse error : `+errEmptyCompatible)
	f(`{a="b",}`, `parse error at line 1, col 8: syntax error: unexpected }, expecting IDENTIFIER`)
	f(`{"a"="b"}`, `parse error at line 1, col 2: syntax error: unexpected STRING "a", expecting IDENTIFIER`)
	f(`{a='b'}`, `parse error at line 1, col 4: syntax error: unexpected character '\''`)
	f(`{a="b}`, `parse error at line 1, col 4: syntax error: literal not terminated`)
	f(`{a=~"("}`, "parse error at line 1, col 5: error parsing regexp: missing closing ): `(`")
	f(`{a="b"} |= `, `parse error at line 1, col 12: syntax error: unexpected $end, expecting STRING or ip`)
	f(`{a="b"} |~ "("`, "parse error at line 1, col 12: error parsing regexp: missing closing ): `(`")
	f(`{a="b"} |~ ip("1.2.3.4")`, `parse error at line 1, col 12: syntax error: unexpected IDENTIFIER "ip", expecting STRING`)
	f(`{a="b"} |= ip("1.2.3")`, `parse error at line 1, col 15: invalid ip pattern "1.2.3": expecting an address, a CIDR or a range a-b`)
	f(`{a="b"} | logfmt --foo`, `parse error at line 1, col 18: syntax error: unexpected FLAG "--foo", expecting --strict or --keep-empty`)
	f(`{a="b"} | regexp "(a)"`, `parse error at line 1, col 18: at least one named capture must be supplied`)
	f(`{a="b"} | pattern "<a><b>"`, `parse error at line 1, col 19: found consecutive capture: captures must be separated by a literal`)
	f(`{a="b"} | pattern "foo"`, `parse error at line 1, col 19: at least one capture is required`)
	f(`{a="b"} | line_format "{{ foo }}"`, `parse error at line 1, col 23: template: line:1: function "foo" not defined`)
	f(`{a="b"} | label_format a=b, a="c"`, `parse error : multiple label name 'a' not allowed in a single format operation`)
	f(`{a="b"} | label_format a=c, b=c`, `parse error : label 'c' renamed more than once in a single format operation`)
	f(`{a="b"} | label_format __error__="x"`, `parse error at line 1, col 24: __error__ cannot be the target of label_format`)
	f(`{a="b"} | x > "a"`, `parse error at line 1, col 15: syntax error: unexpected STRING "a", expecting NUMBER or DURATION or BYTES`)
	f(`{a="b"} | x =~ 5`, `parse error at line 1, col 16: syntax error: unexpected NUMBER "5", expecting STRING`)
	f(`{a="b"} | unwrap x`, `parse error : unwrap is only allowed in a range aggregation with unwrap (e.g. sum_over_time)`)
	f(`{a="b"} | x = 5m5`, `parse error at line 1, col 15: syntax error: invalid number, duration or byte size "5m5"`)
	f("{a=\"b\"}\n | json\n | x >", `parse error at line 3, col 7: syntax error: unexpected $end, expecting NUMBER or DURATION or BYTES`)
	f("{a=\"b\"}\n\t| json ✓", `parse error at line 2, col 9: syntax error: unexpected character '✓'`)
	f(`{a="b"} | 5`, `parse error at line 1, col 11: syntax error: unexpected NUMBER "5", expecting parser or formatter or label filter`)
	f(`{a="b"} @ 5`, `parse error at line 1, col 9: syntax error: unexpected @, expecting $end or | or line filter`)
	f(`{a="b"} | (x="1"`, `parse error at line 1, col 17: syntax error: unexpected $end, expecting )`)
	f(`{a="b"} | a="1" or`, `parse error at line 1, col 19: syntax error: unexpected $end, expecting IDENTIFIER or (`)
	f(`{a="b"} | json a="b" | x > 5 y`, `parse error at line 1, col 31: syntax error: unexpected $end, expecting = or != or =~ or !~ or == or > or >= or < or <=`)
}

func TestParseErrorFields(t *testing.T) {
	_, err := ParseExpr("{a=\"b\"}\n  |~ \"(\"")
	var pe *ParseError
	require.True(t, errors.As(err, &pe))
	require.Equal(t, 2, pe.Line)
	require.Equal(t, 6, pe.Col)
	require.Equal(t, 13, pe.Offset)

	_, err = ParseExpr(`{a="b"`)
	require.True(t, errors.As(err, &pe))
	require.Equal(t, "$end", pe.Found)
	require.Equal(t, []string{"}", ","}, pe.Expected)

	// Validation errors render without a position but still record it.
	_, err = ParseExpr(`{a="b"} | label_format a=b, a="c"`)
	require.True(t, errors.As(err, &pe))
	require.Equal(t, 1, pe.Line)
	require.Equal(t, 11, pe.Col)
}
