package engine

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerlog/ledgerlog/internal/tenant"
	"github.com/ledgerlog/ledgerlog/internal/units"
)

func TestSplitSteps(t *testing.T) {
	f := func(start, step int64, n int, interval int64, want ...int) {
		t.Helper()
		require.Equal(t, want, splitSteps(grid{start: start, step: step, n: n}, interval).from)
	}
	// Cuts fall where t/interval changes, whatever the step phase.
	f(0, 10, 6, 20, 0, 2, 4, 6)
	f(5, 10, 6, 20, 0, 2, 4, 6)
	f(15, 10, 6, 20, 0, 1, 3, 5, 6)
	f(0, 10, 3, 100, 0, 3)
	f(0, 10, 3, 1, 0, 1, 2, 3)
	f(-25, 10, 3, 20, 0, 1, 3)
}

// TestSplitPlanner checks the planner rule: few streams and short windows
// split, many streams or a window longer than the interval do not; the
// answers are the same either way.
func TestSplitPlanner(t *testing.T) {
	db := genData(t, 4, 3*3600)
	end := base + 3*3600*int64(time.Second) - int64(time.Second)
	run := func(query string, par int) Result {
		t.Helper()
		l := tenant.Defaults()
		l.SplitQueriesByInterval = units.Duration(time.Hour)
		e := New(db, tenant.NewOverrides(l), Options{Parallelism: par})
		res, err := e.Exec(context.Background(), rangeParams(query, base, end, time.Minute))
		require.NoError(t, err)
		return res
	}
	short := `sum by (level) (count_over_time({app="bench"}[5m]))`
	// 4 streams, parallelism 8: fewer streams than cores, split in 3.
	split := run(short, 8)
	require.Equal(t, int64(3), split.Stats.Splits)
	// Parallelism 2: the streams already keep every core busy.
	one := run(short, 2)
	require.Zero(t, one.Stats.Splits)
	require.Equal(t, one.Matrix, split.Matrix)
	// A window longer than the interval is never split.
	require.Zero(t, run(`sum(count_over_time({app="bench"}[2h]))`, 8).Stats.Splits)
	// One selector with few streams is enough.
	require.Equal(t, int64(3), run(`sum(rate({app="bench", pod="pod-001"}[1m])) / sum(rate({app="bench"}[1m]))`, 4).Stats.Splits)
}
