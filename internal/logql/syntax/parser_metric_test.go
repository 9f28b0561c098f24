package syntax

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseMetricQuery_RoundTrip(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		e, err := ParseExpr(in)
		require.NoError(t, err, in)
		require.Equal(t, want, e.String(), in)
		_, ok := e.(SampleExpr)
		require.True(t, ok, "%q is a metric query", in)
		requireRoundTrip(t, e)
	}
	// range aggregations (LQ-R1…R11)
	f(`count_over_time({job="mysql"}[5m])`, `count_over_time({job="mysql"}[5m])`)
	f(`rate({job="mysql"}[1h30m])`, `rate({job="mysql"}[1h30m])`)
	f(`bytes_over_time({job="mysql"}[90s])`, `bytes_over_time({job="mysql"}[1m30s])`)
	f(`bytes_rate({job="mysql"} |= "x" [1d])`, `bytes_rate({job="mysql"} |= "x" [1d])`)
	f(`absent_over_time({job="mysql"}[1w])`, `absent_over_time({job="mysql"}[1w])`)
	f(`count_over_time({job="mysql"}[5m] offset 5m)`, `count_over_time({job="mysql"}[5m] offset 5m)`)
	f(`count_over_time({job="mysql"}[5m] | json)`, `count_over_time({job="mysql"} | json [5m])`)
	f(`count_over_time({job="mysql"}[5m] offset 1h | json | x="y")`, `count_over_time({job="mysql"} | json | x="y" [5m] offset 1h)`)
	f(`count_over_time({job="mysql"} | json [5m] offset 1h)`, `count_over_time({job="mysql"} | json [5m] offset 1h)`)
	f(`rate(({job="nginx"} |= "GET" | json | path="/home")[10s])`, `rate({job="nginx"} |= "GET" | json | path="/home" [10s])`)
	f(`rate((({job="nginx"}))[10s])`, `rate({job="nginx"}[10s])`)
	f(`rate(({job="nginx"}[10s]))`, `rate({job="nginx"}[10s])`)
	f(`rate({a="b"} | unwrap x [5m])`, `rate({a="b"} | unwrap x [5m])`)
	f(`rate_counter({a="b"} | unwrap x [5m])`, `rate_counter({a="b"} | unwrap x [5m])`)
	f(`sum_over_time({a="b"} | logfmt | unwrap bytes(size) [1m])`, `sum_over_time({a="b"} | logfmt | unwrap bytes(size) [1m])`)
	f(`avg_over_time({a="b"} | unwrap duration(d) | __error__="" [1m]) by (x)`, `avg_over_time({a="b"} | unwrap duration(d) | __error__="" [1m]) by (x)`)
	f(`max_over_time({a="b"} | unwrap duration_seconds(d) [1m]) without (y, z)`, `max_over_time({a="b"} | unwrap duration_seconds(d) [1m]) without (y, z)`)
	f(`min_over_time({a="b"}[1m] | json | unwrap latency | a > 1 or b < 2 | c="d")`, `min_over_time({a="b"} | json | unwrap latency | a > 1 or b < 2 | c="d" [1m])`)
	f(`stddev_over_time({a="b"} | unwrap x [1m])`, `stddev_over_time({a="b"} | unwrap x [1m])`)
	f(`stdvar_over_time({a="b"} | unwrap x [1m])`, `stdvar_over_time({a="b"} | unwrap x [1m])`)
	f(`first_over_time({a="b"} | unwrap x [1m]) by ()`, `first_over_time({a="b"} | unwrap x [1m]) by ()`)
	f(`last_over_time({a="b"} | unwrap x [1m])`, `last_over_time({a="b"} | unwrap x [1m])`)
	f(`absent_over_time({a="b"} | unwrap x [1m])`, `absent_over_time({a="b"} | unwrap x [1m])`)
	f(`quantile_over_time(0.99, {a="b"} | json | __error__ = "" | unwrap request_time [1m]) by (path)`,
		`quantile_over_time(0.99, {a="b"} | json | __error__="" | unwrap request_time [1m]) by (path)`)
	f(`quantile_over_time(-1.5, {a="b"} | unwrap x [1m])`, `quantile_over_time(-1.5, {a="b"} | unwrap x [1m])`)

	// vector aggregations (LQ-V1…V7)
	f(`sum(rate({a="b"}[5m]))`, `sum(rate({a="b"}[5m]))`)
	f(`sum by (host) (rate({a="b"}[5m]))`, `sum by (host) (rate({a="b"}[5m]))`)
	f(`sum(rate({a="b"}[5m])) by (host, x)`, `sum by (host, x) (rate({a="b"}[5m]))`)
	f(`sum without(app) (rate({a="b"}[5m]))`, `sum without (app) (rate({a="b"}[5m]))`)
	f(`sum by () (rate({a="b"}[5m]))`, `sum by () (rate({a="b"}[5m]))`)
	for _, op := range []string{"avg", "min", "max", "stddev", "stdvar", "count", "sort", "sort_desc"} {
		f(op+`(rate({a="b"}[5m]))`, op+`(rate({a="b"}[5m]))`)
	}
	f(`topk(10,sum(rate({region="us-east1"}[5m])) by (name))`, `topk(10, sum by (name) (rate({region="us-east1"}[5m])))`)
	f(`bottomk by (a) (3, rate({a="b"}[5m]))`, `bottomk by (a) (3, rate({a="b"}[5m]))`)
	f(`topk(3, rate({a="b"}[5m])) without (a)`, `topk without (a) (3, rate({a="b"}[5m]))`)
	f(`approx_topk(5, sum by (x) (rate({a="b"}[5m])))`, `approx_topk(5, sum by (x) (rate({a="b"}[5m])))`)
	f(`label_replace(rate({job="api-server",service="a:c"} |= "err" [1m]), "foo", "$1", "service", "(.*):.*")`,
		`label_replace(rate({job="api-server", service="a:c"} |= "err" [1m]), "foo", "$1", "service", "(.*):.*")`)
	f(`vector(0)`, `vector(0)`)
	f(`vector(-1.5)`, `vector(-1.5)`)
	f(`1`, `1`)
	f(`-2.5`, `-2.5`)
	f(`+3`, `3`)
	f(`1e3`, `1000`)
	f(`1.5e-7`, `1.5e-07`)
	f(`0x1F`, `31`)
	f(`(((1)))`, `1`)

	// binary operators (LQ-B1…B5)
	f(`1 + 1`, `1 + 1`)
	f(`sum(rate({app="foo"}[1m])) * 2`, `sum(rate({app="foo"}[1m])) * 2`)
	f(`sum(rate({app="foo", level="warn"}[1m])) / sum(rate({app="foo", level="error"}[1m]))`,
		`sum(rate({app="foo", level="warn"}[1m])) / sum(rate({app="foo", level="error"}[1m]))`)
	f(`rate({app=~"foo|bar"}[1m]) and rate({app="bar"}[1m])`, `rate({app=~"foo|bar"}[1m]) and rate({app="bar"}[1m])`)
	f(`rate({app="a"}[1m]) unless rate({app="b"}[1m])`, `rate({app="a"}[1m]) unless rate({app="b"}[1m])`)
	f(`count_over_time({foo="bar"}[1m]) > 10`, `count_over_time({foo="bar"}[1m]) > 10`)
	f(`count_over_time({foo="bar"}[1m]) > bool 10`, `count_over_time({foo="bar"}[1m]) > bool 10`)
	f(`1 == bool 1`, `1 == bool 1`)
	f(`max by(machine) (count_over_time({app="foo"}[1m])) > bool ignoring(machine) avg(count_over_time({app="foo"}[1m]))`,
		`max by (machine) (count_over_time({app="foo"}[1m])) > bool ignoring (machine) avg(count_over_time({app="foo"}[1m]))`)
	f(`sum by(machine) (count_over_time({app="foo"}[1m])) / on() sum(count_over_time({app="foo"}[1m]))`,
		`sum by (machine) (count_over_time({app="foo"}[1m])) / on () sum(count_over_time({app="foo"}[1m]))`)
	f(`sum by (a) (rate({j="h"}[5m])) / on (app) group_left sum by (app) (rate({j="h"}[5m]))`,
		`sum by (a) (rate({j="h"}[5m])) / on (app) group_left sum by (app) (rate({j="h"}[5m]))`)
	f(`sum by (a) (rate({j="h"}[5m])) * on (user) group_left(organization) max_over_time({j="c"} | logfmt | unwrap cost [5m]) by (user, organization)`,
		`sum by (a) (rate({j="h"}[5m])) * on (user) group_left (organization) max_over_time({j="c"} | logfmt | unwrap cost [5m]) by (user, organization)`)
	f(`rate({j="h"}[5m]) - ignoring (a, b) group_right (c) rate({j="h"}[5m])`, `rate({j="h"}[5m]) - ignoring (a, b) group_right (c) rate({j="h"}[5m])`)
	f(`rate({j="h"}[5m]) or on (x) rate({j="i"}[5m])`, `rate({j="h"}[5m]) or on (x) rate({j="i"}[5m])`)
	f("sum(count_over_time({namespace=\"traefik\"}[5m])) # will return nothing\n  or\nvector(0) # will return 0",
		`sum(count_over_time({namespace="traefik"}[5m])) or vector(0)`)
	f(`1 - -1`, `1 - -1`)
	f(`2 ^ -1`, `2 ^ -1`)
	f(`1 % 2 + 3 / 4 - 5`, `1 % 2 + 3 / 4 - 5`)
	f(`1 / (2 * 3)`, `1 / (2 * 3)`)
	f(`1 - (2 - 3)`, `1 - (2 - 3)`)
	f(`(2 ^ 3) ^ 2`, `(2 ^ 3) ^ 2`)
	f(`sum(1 + 2)`, `sum(1 + 2)`)
	f(`topk(2, vector(1) + vector(2))`, `topk(2, vector(1) + vector(2))`)
	f(`label_replace(vector(1) * 2, "dst", "", "src", ".*")`, `label_replace(vector(1) * 2, "dst", "", "src", ".*")`)
}

// TestPrecedence checks the tree shape, not only the printed form.
func TestPrecedence(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		e, err := ParseExpr(in)
		require.NoError(t, err, in)
		require.Equal(t, want, shape(e.(SampleExpr)), in)
	}
	f(`1 + 2 * 3`, `(1 + (2 * 3))`)
	f(`1 * 2 + 3`, `((1 * 2) + 3)`)
	f(`2 ^ 3 ^ 2`, `(2 ^ (3 ^ 2))`)
	f(`1 - 2 - 3`, `((1 - 2) - 3)`)
	f(`1 / 2 % 3 * 4`, `(((1 / 2) % 3) * 4)`)
	f(`-1 ^ 2`, `(-1 ^ 2)`)
	f(`2 * 3 ^ 2`, `(2 * (3 ^ 2))`)
	f(`1 + 2 > 3 - 1`, `((1 + 2) > (3 - 1))`)
	f(`vector(1) or vector(2) and vector(3)`, `(v or (v and v))`)
	f(`vector(1) and vector(2) or vector(3)`, `((v and v) or v)`)
	f(`vector(1) unless vector(2) and vector(3)`, `((v unless v) and v)`)
	f(`vector(1) or vector(2) > 1`, `(v or (v > 1))`)
	f(`vector(1) > 1 and vector(2) < 1 + 1`, `((v > 1) and (v < (1 + 1)))`)
	f(`(1 + 2) * 3`, `((1 + 2) * 3)`)
}

// shape prints a binary tree fully parenthesised; vector(…) prints as v.
func shape(e SampleExpr) string {
	switch x := e.(type) {
	case *BinOpExpr:
		return "(" + shape(x.Left) + " " + x.Op.String() + " " + shape(x.Right) + ")"
	case *VectorExpr:
		return "v"
	}
	return e.String()
}

func TestParseMetricQuery_Values(t *testing.T) {
	e, err := ParseExpr(`quantile_over_time(0.95, {a="b"}[1h30m] offset 2d | unwrap bytes(x)) by (y)`)
	require.NoError(t, err)
	r := e.(*RangeAggregationExpr)
	require.Equal(t, RangeQuantile, r.Op)
	require.Equal(t, 0.95, *r.Param)
	require.Equal(t, 90*time.Minute, r.Left.Range)
	require.Equal(t, 48*time.Hour, r.Left.Offset)
	require.Equal(t, UnwrapBytes, r.Left.Unwrap.Conv)
	require.Equal(t, "x", r.Left.Unwrap.Label)
	require.Equal(t, []string{"y"}, r.Grouping.Labels)

	e, err = ParseExpr(`topk by (a) (7, rate({a="b"}[5m])) / on (a) group_right (c, d) vector(1)`)
	require.NoError(t, err)
	b := e.(*BinOpExpr)
	require.Equal(t, 7, b.Left.(*VectorAggregationExpr).Param)
	require.Equal(t, &VectorMatching{On: true, Labels: []string{"a"}, Card: OneToMany, Include: []string{"c", "d"}}, b.Matching)

	var kinds []string
	Walk(e, func(x Expr) bool {
		switch x.(type) {
		case *BinOpExpr:
			kinds = append(kinds, "bin")
		case *VectorAggregationExpr:
			kinds = append(kinds, "vagg")
		case *RangeAggregationExpr:
			kinds = append(kinds, "ragg")
		case *LogRangeExpr:
			kinds = append(kinds, "range")
		case *LogExpr:
			kinds = append(kinds, "log")
		case *VectorExpr:
			kinds = append(kinds, "vector")
		}
		return true
	})
	require.Equal(t, []string{"bin", "vagg", "ragg", "range", "log", "vector"}, kinds)
	require.Len(t, Selectors(e), 1)
}

func TestParseSampleExpr(t *testing.T) {
	_, err := ParseSampleExpr(`rate({a="b"}[5m])`)
	require.NoError(t, err)
	_, err = ParseSampleExpr(`{a="b"}`)
	require.EqualError(t, err, `parse error : only sample expression supported`)
	_, err = ParseLogSelector(`rate({a="b"}[5m])`, true)
	require.EqualError(t, err, `parse error : only log selector is supported`)
}

func TestParseMetricErrors(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		_, err := ParseExpr(in)
		require.EqualError(t, err, want, in)
	}
	f(`count_over_time({job="mysql"}[5m]) offset 5m`, `parse error at line 1, col 36: syntax error: unexpected IDENTIFIER "offset", expecting $end or binary operator`)
	f(`rate({a="b"}[5m]) and 1`, `parse error : unexpected literal for right leg of logical/set binary operation (and): 1`)
	f(`1 or rate({a="b"}[5m])`, `parse error : unexpected literal for left leg of logical/set binary operation (or): 1`)
	f(`sum(rate({a="b"}[5m])) by (x) by (y)`, `parse error at line 1, col 31: syntax error: unexpected IDENTIFIER "by", expecting $end or binary operator`)
	f(`topk(rate({a="b"}[5m]))`, `parse error : parameter required for operation topk`)
	f(`topk(1.5, rate({a="b"}[5m]))`, `parse error : invalid parameter topk(1.5,: must be a positive integer`)
	f(`bottomk(0, rate({a="b"}[5m]))`, `parse error : invalid parameter bottomk(0,: must be a positive integer`)
	f(`sum(1, rate({a="b"}[5m]))`, `parse error : unsupported parameter for operation sum(1,`)
	f(`approx_topk by (a) (5, rate({a="b"}[5m]))`, `parse error : grouping not allowed for approx_topk aggregation`)
	for _, op := range []string{"rate", "count_over_time", "bytes_over_time", "bytes_rate", "absent_over_time"} {
		f(op+`({a="b"}[5m]) by (a)`, `parse error : grouping not allowed for `+op+` aggregation`)
	}
	for _, op := range []string{"sum_over_time", "rate_counter"} {
		f(op+`({a="b"} | unwrap x [5m]) by (a)`, `parse error : grouping not allowed for `+op+` aggregation`)
	}
	f(`count_over_time({a="b"} | unwrap x [5m])`, `parse error : invalid aggregation count_over_time with unwrap`)
	f(`bytes_rate({a="b"} | unwrap x [5m])`, `parse error : invalid aggregation bytes_rate with unwrap`)
	for _, op := range []string{"sum_over_time", "avg_over_time", "max_over_time", "min_over_time", "stddev_over_time", "stdvar_over_time", "first_over_time", "last_over_time", "rate_counter"} {
		f(op+`({a="b"}[5m])`, `parse error : invalid aggregation `+op+` without unwrap`)
	}
	f(`quantile_over_time({a="b"} | unwrap x [5m])`, `parse error : parameter required for operation quantile_over_time`)
	f(`rate(1, {a="b"}[5m])`, `parse error : unsupported parameter for operation rate`)
	f(`abs(rate({a="b"}[5m]))`, `parse error at line 1, col 1: syntax error: unknown function "abs"`)
	f(`histogram_quantile(0.9, rate({a="b"}[5m]))`, `parse error at line 1, col 1: syntax error: unknown function "histogram_quantile"`)
	f(`rate({a="b"})`, `parse error at line 1, col 13: syntax error: unexpected ), expecting [ or pipeline stage`)
	f(`rate({a="b"}[5m:1m])`, `parse error at line 1, col 16: syntax error: unexpected :, expecting ]`)
	f(`rate({a="b"}[5m] @ 1)`, `parse error at line 1, col 18: syntax error: unexpected @, expecting )`)
	f(`rate({a="b"}[5])`, `parse error at line 1, col 14: syntax error: unexpected NUMBER "5", expecting DURATION`)
	f(`rate({a="b"}[-5m])`, `parse error at line 1, col 14: syntax error: unexpected -, expecting DURATION`)
	f(`rate({a="b"}[5m] offset -5m)`, `parse error at line 1, col 25: syntax error: unexpected -, expecting DURATION`)
	f(`rate(({a="b"}[5m])[5m])`, `parse error at line 1, col 19: syntax error: unexpected [, expecting )`)
	f(`rate({a="b"}[5m] | json [5m])`, `parse error at line 1, col 25: syntax error: unexpected [, expecting )`)
	f(`sum({a="b"})`, `parse error at line 1, col 5: syntax error: unexpected {, expecting metric expression`)
	f(`{a="b"}[5m]`, `parse error at line 1, col 8: syntax error: unexpected [, expecting $end or | or line filter`)
	f(`{a="b"} + 1`, `parse error at line 1, col 9: syntax error: unexpected +, expecting $end or | or line filter`)
	f(`rate({a="b"}[5m]) + bool 1`, `parse error at line 1, col 21: bool modifier can only be used on comparison operators`)
	f(`rate({a="b"}[5m]) and on (x) group_left rate({a="b"}[5m])`, `parse error at line 1, col 30: no grouping allowed for "and" operation`)
	f(`rate({a="b"}[5m]) + group_left rate({a="b"}[5m])`, `parse error at line 1, col 21: syntax error: unexpected IDENTIFIER "group_left", expecting metric expression`)
	f(`sum_over_time({a="b"} | unwrap foo(x) [5m])`, `parse error at line 1, col 32: syntax error: unknown unwrap conversion "foo", expecting duration, duration_seconds or bytes`)
	f(`sum_over_time({a="b"} | unwrap x | json [5m])`, `parse error at line 1, col 36: syntax error: unexpected json after unwrap, only label filters are allowed after unwrap`)
	f(`sum_over_time({a="b"} | unwrap x |= "y" [5m])`, `parse error at line 1, col 34: syntax error: unexpected |=, expecting [ or pipeline stage`)
	f(`label_replace(rate({a="b"}[5m]), "1dst", "", "src", "x")`, `parse error at line 1, col 34: invalid destination label name in label_replace(): 1dst`)
	f(`label_replace(rate({a="b"}[5m]), "dst", "", "src", "(")`, `parse error at line 1, col 52: invalid regular expression in label_replace(): (`)
	f(`label_replace(rate({a="b"}[5m]), "dst")`, `parse error at line 1, col 39: syntax error: unexpected ), expecting ,`)
	f(`sum by (a (rate({a="b"}[5m]))`, `parse error at line 1, col 11: syntax error: unexpected (, expecting ) or ,`)
	f(`-rate({a="b"}[5m])`, `parse error at line 1, col 2: syntax error: unexpected IDENTIFIER "rate", expecting NUMBER`)
	f(`vector(x)`, `parse error at line 1, col 8: syntax error: unexpected IDENTIFIER "x", expecting NUMBER`)
	f(`1 +`, `parse error at line 1, col 4: syntax error: unexpected $end, expecting metric expression`)
	f(`(1 + 2`, `parse error at line 1, col 7: syntax error: unexpected $end, expecting ) or binary operator`)
	f(`SUM(rate({a="b"}[5m]))`, `parse error at line 1, col 1: syntax error: unknown function "SUM"`)
	f(`1e400`, `parse error at line 1, col 1: syntax error: number out of range: 1e400`)
	f(`sum(rate({a=~".*"}[5m]))`, `parse error : `+errEmptyCompatible)
}
