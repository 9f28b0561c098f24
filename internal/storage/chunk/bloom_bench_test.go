package chunk

import (
	"testing"
	"time"
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
