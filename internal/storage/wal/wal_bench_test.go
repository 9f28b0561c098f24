package wal

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkAppend measures Append throughput. "parallel" runs four
// appenders at once (the server's concurrent pushers) so that they share
// writes and fsyncs; fsyncs/op shows how many appends one fsync covers.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		for _, sync := range []bool{true, false} {
			for _, mode := range []string{"serial", "parallel"} {
				name := fmt.Sprintf("size=%dKiB/sync=%v/%s", size>>10, sync, mode)
				b.Run(name, func(b *testing.B) {
					opts := DefaultOptions(b.TempDir())
					opts.Sync = sync
					w := openWAL(b, opts)
					rec := testRecord(1, size)
					b.SetBytes(int64(size))
					b.ReportAllocs()
					b.ResetTimer()
					if mode == "serial" {
						for range b.N {
							if err := w.Append(rec); err != nil {
								b.Fatal(err)
							}
						}
					} else {
						b.SetParallelism(max(1, 4/runtime.GOMAXPROCS(0)))
						b.RunParallel(func(pb *testing.PB) {
							for pb.Next() {
								if err := w.Append(rec); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					b.StopTimer()
					b.ReportMetric(float64(histogramCount(b, w.metrics.fsyncDuration))/float64(b.N), "fsyncs/op")
					require.NoError(b, w.Close())
				})
			}
		}
	}
}

// BenchmarkReplay measures reading back 32 MiB of records.
func BenchmarkReplay(b *testing.B) {
	const total = 32 << 20
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
			opts := DefaultOptions(b.TempDir())
			opts.Sync = false
			w := openWAL(b, opts)
			rec := testRecord(1, size)
			perBatch := max(1, min(64, total/size/8))
			batch := make([][]byte, 0, perBatch)
			for range perBatch {
				batch = append(batch, rec)
			}
			for range total / size / perBatch {
				require.NoError(b, w.Append(batch...))
			}
			require.NoError(b, w.Close())
			w = openWAL(b, opts)
			defer func() { require.NoError(b, w.Close()) }()

			b.SetBytes(total)
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				if err := w.Replay(func(rec []byte) error { n += len(rec); return nil }); err != nil {
					b.Fatal(err)
				}
				if n != total {
					b.Fatalf("replayed %d bytes, want %d", n, total)
				}
			}
		})
	}
}
