package chunk

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

// Benchmark data: the largest stream of an NDJSON file written by the bench
// generator (/work/shared/bench, `gen -lines 100000 -out
// /tmp/chunkbench.ndjson`), or LEDGERLOG_CHUNK_BENCH_DATA. Without the file
// the benchmarks use synthetic lines of the same shape.
const defaultBenchData = "/tmp/chunkbench.ndjson"

var (
	benchOnce    sync.Once
	benchEntries []model.Entry
	benchRaw     int64
	benchSource  string
)

func benchData(b *testing.B) ([]model.Entry, int64) {
	b.Helper()
	benchOnce.Do(func() {
		path := os.Getenv("LEDGERLOG_CHUNK_BENCH_DATA")
		if path == "" {
			path = defaultBenchData
		}
		streams, err := readNDJSON(path)
		if err == nil && len(streams) > 0 {
			var best string
			for ls, es := range streams {
				if len(es) > len(streams[best]) || (len(es) == len(streams[best]) && ls < best) {
					best = ls
				}
			}
			benchEntries = streams[best]
			benchSource = fmt.Sprintf("%s stream %s", path, best)
		} else {
			benchEntries = syntheticEntries(5000)
			benchSource = "synthetic lines"
		}
		for _, e := range benchEntries {
			benchRaw += int64(len(e.Line))
		}
	})
	b.Logf("data: %s, %d lines, %d bytes", benchSource, len(benchEntries), benchRaw)
	return benchEntries, benchRaw
}

// readNDJSON reads the bench generator's format, grouped by stream.
func readNDJSON(path string) (map[string][]model.Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	streams := map[string][]model.Entry{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var rec struct {
		Labels string `json:"labels"`
		TS     int64  `json:"ts"`
		Line   string `json:"line"`
	}
	for sc.Scan() {
		rec.Line = ""
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		streams[rec.Labels] = append(streams[rec.Labels], model.Entry{Timestamp: rec.TS, Line: rec.Line, Metadata: model.EmptyLabels()})
	}
	return streams, sc.Err()
}

// syntheticEntries imitates the generator's Rust tracing JSON lines.
func syntheticEntries(n int) []model.Entry {
	r := rand.New(rand.NewPCG(42, 42))
	hex := func(k int) string {
		const h = "0123456789abcdef"
		var sb strings.Builder
		for range k {
			sb.WriteByte(h[r.IntN(16)])
		}
		return sb.String()
	}
	msgs := []string{"Payment authorised", "Payment captured", "Card verification completed", "Ledger entry posted"}
	ts := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).UnixNano()
	es := make([]model.Entry, n)
	for i := range es {
		ts += int64(r.ExpFloat64() * 200e6)
		tx := "tx-" + hex(8) + "-" + hex(8)
		line := fmt.Sprintf(`{"timestamp":"%s","level":"INFO","fields":{"message":"%s","event":"payment_%d","transaction_id":"%s","account_id":"acc-%08d","amount":"%.2f","currency":"EUR","latency_ms":%d,"trace_id":"%s"},"target":"payment_processor","span":{"transaction_id":"%s","name":"process_payment"},"threadId":"ThreadId(%d)"}`,
			time.Unix(0, ts).UTC().Format("2006-01-02T15:04:05.000000Z"), msgs[r.IntN(len(msgs))], r.IntN(4), tx, r.IntN(5_000_000), r.ExpFloat64()*300, 1+r.IntN(400), hex(32), tx, 1+r.IntN(16))
		es[i] = model.Entry{Timestamp: ts, Line: line, Metadata: model.EmptyLabels()}
	}
	return es
}

// cpuTime returns the process's user+system CPU time. Benchmarks report
// MB per CPU-second ("cpuMB/s") besides wall-clock MB/s because the machines
// they run on are often shared: it is the per-core throughput, GC included.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports raw bytes per CPU-second since start.
func reportCPU(b *testing.B, start time.Duration, raw int64) {
	if cpu := cpuTime() - start; cpu > 0 {
		b.ReportMetric(float64(raw)*float64(b.N)/cpu.Seconds()/1e6, "cpuMB/s")
	}
}

func BenchmarkBuilderAppend(b *testing.B) {
	es, raw := benchData(b)
	b.SetBytes(raw)
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		bl := NewBuilder(EncZstd, 0)
		for _, e := range es {
			bl.Append(e)
		}
	}
	reportCPU(b, cpu, raw)
	b.ReportMetric(float64(len(es))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

type encCase struct {
	name     string
	enc      Encoding
	level    zstd.EncoderLevel
	pageSize int
}

func encodeCases() []encCase {
	cs := []encCase{}
	for _, enc := range Encodings() {
		cs = append(cs, encCase{enc.String(), enc, zstdLevel, DefaultPageSize})
	}
	return append(cs,
		encCase{"zstd-fastest", EncZstd, zstd.SpeedFastest, DefaultPageSize},
		encCase{"zstd-better", EncZstd, zstd.SpeedBetterCompression, DefaultPageSize},
		encCase{"zstd/page=64KiB", EncZstd, zstdLevel, 64 << 10},
		encCase{"zstd/page=1MiB", EncZstd, zstdLevel, 1 << 20},
		encCase{"zstd-better/page=1MiB", EncZstd, zstd.SpeedBetterCompression, 1 << 20},
		encCase{"zstd-best", EncZstd, zstd.SpeedBestCompression, DefaultPageSize},
		encCase{"zstd-best/page=1MiB", EncZstd, zstd.SpeedBestCompression, 1 << 20},
	)
}

// BenchmarkEncode appends the stream and encodes the chunk; ratio is raw
// line bytes / chunk bytes.
func BenchmarkEncode(b *testing.B) {
	es, raw := benchData(b)
	for _, c := range encodeCases() {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(raw)
			b.ReportAllocs()
			var size int
			cpu := cpuTime()
			for b.Loop() {
				bl := newBuilder(c.enc, c.pageSize, c.level)
				for _, e := range es {
					bl.Append(e)
				}
				data, _, err := bl.Encode()
				if err != nil {
					b.Fatal(err)
				}
				size = len(data)
			}
			reportCPU(b, cpu, raw)
			b.ReportMetric(float64(raw)/float64(size), "ratio")
			b.ReportMetric(float64(len(es))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

func benchChunk(b *testing.B, enc Encoding) *Chunk {
	es, _ := benchData(b)
	bl := NewBuilder(enc, 0)
	for _, e := range es {
		bl.Append(e)
	}
	data, _, err := bl.Encode()
	if err != nil {
		b.Fatal(err)
	}
	c, err := Open(data)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkIterate decodes every entry of the chunk, forward.
func BenchmarkIterate(b *testing.B) {
	_, raw := benchData(b)
	for _, enc := range Encodings() {
		b.Run(enc.String(), func(b *testing.B) {
			c := benchChunk(b, enc)
			b.SetBytes(raw)
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				it := c.Iterator(model.AllTime, model.Forward, nil)
				n := 0
				for it.Next() {
					n += len(it.At().Line)
				}
				if it.Err() != nil || n != int(raw) {
					b.Fatalf("read %d of %d bytes: %v", n, raw, it.Err())
				}
				_ = it.Close()
			}
			reportCPU(b, cpu, raw)
		})
	}
}

// BenchmarkFilterScan runs a line filter whose needle is rare (a trace id
// in a handful of lines, if any) over the whole chunk: decompression plus
// search.
func BenchmarkFilterScan(b *testing.B) {
	_, raw := benchData(b)
	f := &iter.Filter{Needles: [][]byte{[]byte("4bf92f3577b34da6a3ce929d0e0e4736")}}
	for _, enc := range []Encoding{EncZstd, EncLZ4, EncSnappy, EncNone} {
		b.Run(enc.String(), func(b *testing.B) {
			c := benchChunk(b, enc)
			b.SetBytes(raw)
			b.ReportAllocs()
			matches := 0
			cpu := cpuTime()
			for b.Loop() {
				it := c.Iterator(model.AllTime, model.Backward, f)
				matches = 0
				for it.Next() {
					matches++
				}
				if it.Err() != nil {
					b.Fatal(it.Err())
				}
				_ = it.Close()
			}
			reportCPU(b, cpu, raw)
			b.ReportMetric(float64(matches), "matches")
		})
	}
}

// TestDatasetCompression measures a whole generated dataset stored as one
// chunk sequence per stream (a chunk is cut at 16 MiB of raw lines). It
// streams LEDGERLOG_CHUNK_DATASET (an NDJSON file, or a fifo fed by the
// bench generator so that no large file is stored) and is skipped without
// it. LEDGERLOG_CHUNK_DATASET_CASES selects encode cases by name
// (comma-separated; default "zstd").
func TestDatasetCompression(t *testing.T) {
	path := os.Getenv("LEDGERLOG_CHUNK_DATASET")
	if path == "" {
		t.Skip("LEDGERLOG_CHUNK_DATASET not set")
	}
	want := strings.Split(cmpOr(os.Getenv("LEDGERLOG_CHUNK_DATASET_CASES"), "zstd"), ",")
	type state struct {
		c              encCase
		builders       map[string]*Builder
		stored, chunks int
		cpu            time.Duration
	}
	var states []*state
	for _, c := range encodeCases() {
		if slices.Contains(want, c.name) {
			states = append(states, &state{c: c, builders: map[string]*Builder{}})
		}
	}
	if len(states) == 0 {
		t.Fatalf("no encode case in %q", want)
	}
	flush := func(st *state, bl *Builder) {
		data, _, err := bl.Encode()
		if err != nil {
			t.Fatal(err)
		}
		st.stored += len(data)
		st.chunks++
	}
	const cutRaw = 16 << 20
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var rec struct {
		Labels string `json:"labels"`
		TS     int64  `json:"ts"`
		Line   string `json:"line"`
	}
	raw, lines := 0, 0
	streams := map[string]bool{}
	type rec2 struct {
		labels string
		e      model.Entry
	}
	var batch []rec2
	// Feed entries in batches so that CPU time is measured per case
	// without a syscall per entry.
	feed := func() {
		for _, st := range states {
			start := cpuTime()
			for _, r := range batch {
				bl := st.builders[r.labels]
				if bl == nil {
					bl = newBuilder(st.c.enc, st.c.pageSize, st.c.level)
					st.builders[r.labels] = bl
				}
				bl.Append(r.e)
				if bl.Meta().UncompressedBytes >= cutRaw {
					flush(st, bl)
					delete(st.builders, r.labels)
				}
			}
			st.cpu += cpuTime() - start
		}
		batch = batch[:0]
	}
	for sc.Scan() {
		rec.Line = ""
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		raw += len(rec.Line)
		lines++
		streams[rec.Labels] = true
		batch = append(batch, rec2{rec.Labels, model.Entry{Timestamp: rec.TS, Line: rec.Line, Metadata: model.EmptyLabels()}})
		if len(batch) == 20000 {
			feed()
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	feed()
	for _, st := range states {
		start := cpuTime()
		for _, bl := range st.builders {
			flush(st, bl)
		}
		st.cpu += cpuTime() - start
		t.Logf("%-22s %d streams %d lines raw %.1f MB -> %d chunks %.2f MB, ratio %.2f, encode CPU %.1fs (%.0f MB/s per core, incl. GC)",
			st.c.name, len(streams), lines, float64(raw)/1e6, st.chunks, float64(st.stored)/1e6,
			float64(raw)/float64(st.stored), st.cpu.Seconds(), float64(raw)/1e6/st.cpu.Seconds())
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
