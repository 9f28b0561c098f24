package syntax

import (
	"errors"
	"testing"
)

// FuzzParseExpr checks that the parser never panics, that every error is a
// positioned *ParseError, and that accepted input round-trips through
// String() and Prettify().
func FuzzParseExpr(f *testing.F) {
	for _, c := range readCorpus(f) {
		f.Add(c.query)
	}
	for _, s := range []string{
		`{a="b"} | x > 1e3 | y < 0x10 | z == 1h30m | w != 20MiB`,
		`2 ^ 3 ^ 2 - -1 * (4 % 5) / 6 > bool 1 + 1`,
		`{a="b"} |= "x" or "y" or ip("1.2.3.4") | pattern "<a> <b>" |> "<_> c"`,
		"{a=`b`} | json a=`x`, b | logfmt --strict --keep-empty c | label_format d=`{{.a}}`, e=f",
		`sum by (a) (rate({a="b"}[5m] offset 1h | json | unwrap bytes(x) | __error__="")) / on (a) group_left (b) vector(1)`,
		`topk(3, label_replace(sum(rate({a="b"}[1m])), "d", "$1", "s", "(.*)"))`,
		"{a=\"b\"} # comment\n | x=\"y\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Options{AllowEmptyCompatible: true}.ParseExpr(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error of %q is %T, not *ParseError: %v", s, err, err)
			}
			if pe.Line < 1 || pe.Col < 1 || pe.Offset < 0 || pe.Offset > len(s) {
				t.Fatalf("error of %q has a bad position: %+v", s, pe)
			}
			return
		}
		requireRoundTrip(t, e)
		if l, ok := e.(LogSelectorExpr); ok {
			_ = Needles(l)
			_ = LineFilters(l)
		}
	})
}
