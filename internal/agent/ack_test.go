package agent

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAckSourceCommitsPrefix acknowledges entries out of order (as
// per-tenant batches and several clients do) and checks that the
// committed position never passes an entry still in flight, and that
// tickets of entries a stage dropped are covered by the next entry out.
func TestAckSourceCommitsPrefix(t *testing.T) {
	p, err := OpenPositions(PositionsConfig{Filename: t.TempDir() + "/positions.yaml"}, discardLogger())
	require.NoError(t, err)
	r := newAckRegistry()
	src := r.newSource("a.log", p)
	for i := int64(1); i <= 6; i++ {
		src.ticket(Position{Offset: i * 10})
	}
	committed := func() int64 {
		pos, _ := p.Get("a.log")
		return pos.Offset
	}
	// 1 and 3 are dropped by a stage, 2, 4 and 5 leave the pipeline; 6 is
	// still inside it
	for _, seq := range []uint64{2, 4, 5} {
		_, ok := src.out(seq)
		require.True(t, ok)
	}
	src.ack(5)
	require.EqualValues(t, 10, committed(), "1 was dropped; 2 and 4 are in flight")
	src.ack(2)
	require.EqualValues(t, 30, committed(), "1 to 3 done, 4 in flight")
	src.ack(4)
	require.EqualValues(t, 50, committed())
	require.False(t, src.idle())
	pos, ok := src.resume()
	require.True(t, ok)
	require.EqualValues(t, 60, pos.Offset)

	// a forgotten source removes its position once the last entry is done
	src.setForget(true)
	_, ok = p.Get("a.log")
	require.True(t, ok)
	_, ok = src.out(6)
	require.True(t, ok)
	src.ack(6)
	require.True(t, src.idle())
	_, ok = p.Get("a.log")
	require.False(t, ok)
}
