package compactor

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/storage/block"
)

// BenchmarkMerge merges two blocks of 20 streams with 2000 entries each,
// half of them duplicated across the blocks, into one zstd block.
func BenchmarkMerge(b *testing.B) {
	ctx := context.Background()
	bkt, _ := newBucket(b)
	clk := &clock{t: t0.Add(10 * time.Hour)}
	r := rand.New(rand.NewPCG(1, 1))
	window := block.WindowFor(t0.Add(8*time.Hour).UnixNano(), 2*time.Hour)
	in1, in2 := streams{}, streams{}
	var lines, bytes int64
	for i := range 20 {
		es := genEntries(r, t0.Add(8*time.Hour), 100*time.Millisecond, 3000, fmt.Sprint(i))
		sel := fmt.Sprintf(`{app="app-%d", env="prod"}`, i)
		in1[sel], in2[sel] = es[:2000], es[1000:]
		for _, e := range es[:2000] {
			bytes += int64(len(e.Line))
		}
		for _, e := range es[1000:] {
			bytes += int64(len(e.Line))
		}
		lines += 4000
	}
	m1 := writeBlock(b, bkt, "t", window, clk.t, in1, 500)
	m2 := writeBlock(b, bkt, "t", window, clk.t, in2, 500)
	cfg := DefaultConfig()
	cfg.WorkingDirectory = b.TempDir()
	c := New(cfg, bkt, nil, nil, nil)
	c.now = clk.now
	srcs, err := c.openSources(ctx, "t", []block.Meta{m1, m2})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.mergeBlocks(ctx, "t", srcs, mergeOptions{window: window, level: 2, cutoff: math.MinInt64}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
