package block

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/thanos-io/objstore"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// benchBlockStreams returns n label sets of a typical shape.
func benchBlockStreams(n int) []model.Labels {
	out := make([]model.Labels, n)
	for i := range out {
		out[i] = model.LabelsFromStrings(
			"app", fmt.Sprintf("app-%d", i%20),
			"env", []string{"prod", "dev", "staging"}[i%3],
			"namespace", fmt.Sprintf("ns-%d", i%7),
			"pod", fmt.Sprintf("pod-%d-%x", i, i*7919),
			"service_name", fmt.Sprintf("svc-%d", i%20),
		)
	}
	return out
}

// writeBenchBlock writes n streams with k chunks of size bytes each and
// returns the meta and the chunk bytes written.
func writeBenchBlock(tb testing.TB, bkt objstore.Bucket, n, k, size int) (Meta, int64) {
	tb.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	w, err := NewWriter(bkt, "bench", WriterOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	var total int64
	for _, ls := range benchBlockStreams(n) {
		chunks := make([]ChunkData, k)
		for j := range chunks {
			chunks[j] = ChunkData{Meta: ChunkMeta{MinTime: int64(j) * 1e9, MaxTime: int64(j)*1e9 + 9e8, Entries: 500, UncompressedBytes: 10 * size}, Data: data}
			total += int64(size)
		}
		if err := w.AddStream(ls, chunks); err != nil {
			tb.Fatal(err)
		}
	}
	meta, err := w.Flush(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return meta, total
}

// BenchmarkOpen opens a block of 400 streams with 8 chunks each from the
// filesystem bucket: meta.json and index GETs, CRC checks, decoding.
func BenchmarkOpen(b *testing.B) {
	bkt, _ := newBucket(b)
	meta, _ := writeBenchBlock(b, bkt, 400, 8, 64)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(ctx, bkt, "bench", meta.ULID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreams selects streams of an opened 400-stream block with three
// matchers and a time range.
func BenchmarkStreams(b *testing.B) {
	bkt, _ := newBucket(b)
	meta, _ := writeBenchBlock(b, bkt, 400, 8, 64)
	blk, err := Open(context.Background(), bkt, "bench", meta.ULID)
	if err != nil {
		b.Fatal(err)
	}
	m1, _ := model.NewMatcher(model.MatchEqual, "env", "prod")
	m2, _ := model.NewMatcher(model.MatchRegexp, "app", "app-1.*")
	m3, _ := model.NewMatcher(model.MatchNotEqual, "namespace", "ns-3")
	ms := []*model.Matcher{m1, m2, m3}
	r := model.TimeRange{Min: 2e9, Max: 5e9}
	var streams int
	b.ReportAllocs()
	for b.Loop() {
		streams = len(blk.Streams(ms, r))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "selects/s")
	b.ReportMetric(float64(streams), "streams/op")
}

// BenchmarkWriter builds and uploads a block of 400 streams with 4 chunks of
// 8 KiB each to the filesystem bucket (fsynced uploads).
func BenchmarkWriter(b *testing.B) {
	bkt, _ := newBucket(b)
	_, total := writeBenchBlock(b, bkt, 400, 4, 8<<10)
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		writeBenchBlock(b, bkt, 400, 4, 8<<10)
	}
}
