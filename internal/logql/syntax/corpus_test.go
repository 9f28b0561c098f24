package syntax

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

type corpusCase struct {
	line   int
	accept bool
	want   string // accept: source; reject: error substring
	query  string
}

// readCorpus loads testdata/queries.txt (format described in its header).
func readCorpus(t testing.TB) []corpusCase {
	t.Helper()
	f, err := os.Open("testdata/queries.txt")
	require.NoError(t, err)
	defer f.Close()
	var cases []corpusCase
	var cur *corpusCase
	var body []string
	flush := func() {
		if cur != nil {
			cur.query = strings.TrimRight(strings.Join(body, "\n"), "\n")
			cases = append(cases, *cur)
		}
		body = body[:0]
	}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "=== "); ok {
			flush()
			kind, arg, _ := strings.Cut(rest, " ")
			require.Contains(t, []string{"accept", "reject"}, kind, "line %d", n)
			cur = &corpusCase{line: n, accept: kind == "accept", want: arg}
			continue
		}
		if cur != nil {
			body = append(body, line)
		}
	}
	require.NoError(t, sc.Err())
	flush()
	return cases
}

func TestConformanceCorpus(t *testing.T) {
	cases := readCorpus(t)
	require.Greater(t, len(cases), 100)
	accepted := 0
	for _, c := range cases {
		e, err := ParseExpr(c.query)
		if !c.accept {
			require.Error(t, err, "queries.txt:%d must be rejected: %s", c.line, c.query)
			require.Contains(t, err.Error(), c.want, "queries.txt:%d", c.line)
			var pe *ParseError
			require.True(t, errors.As(err, &pe))
			continue
		}
		require.NoError(t, err, "queries.txt:%d: %s", c.line, c.query)
		requireRoundTrip(t, e)
		accepted++
	}
	t.Logf("%d accepted, %d rejected", accepted, len(cases)-accepted)
}
