package syntax

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPrettify(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		e, err := ParseExpr(in)
		require.NoError(t, err)
		require.Equal(t, want, Prettify(e))
		requireRoundTrip(t, e)
	}
	f(`sum by (a)(rate({a="b"}|="x"[5m]))`, `sum by (a) (rate({a="b"} |= "x" [5m]))`)
	f(`{cluster="ops-tools1", name="querier", namespace="loki-dev"} |= "metrics.go" != "loki-canary" | logfmt | query != "" | line_format "{{ .ts }}"`,
		`{cluster="ops-tools1", name="querier", namespace="loki-dev"}
  |= "metrics.go"
  != "loki-canary"
  | logfmt
  | query!=""
  | line_format "{{ .ts }}"`)
	f(`sum by (org_id) (sum_over_time({cluster="ops-tools1",container="loki-dev"} |= "metrics.go" | logfmt | unwrap bytes_processed | __error__="" [1m] offset 5m))`,
		`sum by (org_id) (
  sum_over_time(
    {cluster="ops-tools1", container="loki-dev"}
      |= "metrics.go"
      | logfmt
      | unwrap bytes_processed
      | __error__="" [1m] offset 5m
  )
)`)
	f(`quantile_over_time(0.99, {cluster="ops-tools1",container="ingress-nginx"} | json | unwrap request_time [1m]) by (path) / on (path) group_left topk(10, sum by (path) (rate({cluster="ops-tools1"}[1m])))`,
		`quantile_over_time(
  0.99,
  {cluster="ops-tools1", container="ingress-nginx"} | json | unwrap request_time [1m]
) by (path)
/ on (path) group_left
topk(10, sum by (path) (rate({cluster="ops-tools1"}[1m])))`)
	f(`label_replace(sum by (service) (rate({job="api-server",service="a:c"} |= "err" [1m])), "foo", "$1", "service", "(.*):.*") * (vector(1) + vector(2) + vector(3) + vector(4) + vector(5) + vector(6))`,
		`label_replace(
  sum by (service) (rate({job="api-server", service="a:c"} |= "err" [1m])),
  "foo",
  "$1",
  "service",
  "(.*):.*"
)
*
(
  vector(1) + vector(2) + vector(3) + vector(4) + vector(5) + vector(6)
)`)
}
