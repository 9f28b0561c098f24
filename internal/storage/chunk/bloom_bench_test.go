package chunk

import (
	"slices"
	"testing"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

// BenchmarkTokenize measures the seal-time cost of the bloom filters:
// tokenising and hashing every line (items), and building one page's
// filter from its entries (bloom).
func BenchmarkTokenize(b *testing.B) {
	es, raw := benchData(b)
	b.Run("items", func(b *testing.B) {
		b.SetBytes(raw)
		b.ReportAllocs()
		var items []uint64
		n := 0
		cpu := cpuTime()
		for b.Loop() {
			n = 0
			for _, e := range es {
				items = appendLineItems(items[:0], stringBytes(e.Line))
				n += len(items)
			}
		}
		reportLineCPU(b, cpu, len(es))
		b.ReportMetric(float64(n)/float64(len(es)), "items/line")
	})
	b.Run("bloom", func(b *testing.B) {
		b.SetBytes(raw)
		b.ReportAllocs()
		size := 0
		cpu := cpuTime()
		for b.Loop() {
			size = 0
			// Pages of about DefaultPageSize, as the builder seals them.
			for i := 0; i < len(es); {
				j, n := i, 0
				for j < len(es) && n < DefaultPageSize {
					n += len(es[j].Line)
					j++
				}
				size += len(buildBloom(es[i:j], n/7, uint32(i)))
				i = j
			}
		}
		reportLineCPU(b, cpu, len(es))
		b.ReportMetric(float64(size)*8/float64(len(es)), "bits/line")
	})
}

// reportLineCPU reports CPU nanoseconds per line since start: on a shared
// machine it varies less than wall-clock time.
func reportLineCPU(b *testing.B, start time.Duration, lines int) {
	b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N)/float64(lines), "cpu-ns/line")
}

// BenchmarkNeedleScan runs line filters over the benchmark stream's chunk
// (zstd, 256 KiB pages) and reports how many pages the bloom filters let
// the iterator skip; MB/s is the effective rate over the stream's raw
// bytes. "nobloom" is the same chunk with its filters ignored: the cost of
// decompressing and searching every page.
func BenchmarkNeedleScan(b *testing.B) {
	_, raw := benchData(b)
	c := benchChunk(b, EncZstd)
	bare := *c
	bare.pages = slices.Clone(c.pages)
	for i := range bare.pages {
		bare.pages[i].bloom = pageBloom{}
	}
	for _, bc := range []struct {
		name   string
		c      *Chunk
		needle string
	}{
		{"trace-id", c, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"trace-id/nobloom", &bare, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"COMPLIANCE_VIOLATION", c, "COMPLIANCE_VIOLATION"},
		{"quoted-account", c, `"acc-03853492"`},
		{"common", c, "Payment"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := &iter.Filter{Needles: [][]byte{[]byte(bc.needle)}}
			b.SetBytes(raw)
			b.ReportAllocs()
			skipped, matches := 0, 0
			for b.Loop() {
				it := bc.c.Iterator(model.AllTime, model.Backward, f)
				skipped = it.(*iterator).skipped
				matches = 0
				for it.Next() {
					matches++
				}
				if it.Err() != nil {
					b.Fatal(it.Err())
				}
				_ = it.Close()
			}
			b.ReportMetric(float64(bc.c.Pages()), "pages")
			b.ReportMetric(float64(skipped), "skipped")
			b.ReportMetric(float64(matches), "matches")
		})
	}
}
