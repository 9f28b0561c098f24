package index

import (
	"fmt"
	"testing"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// benchStreams returns n streams over a few labels of varying cardinality,
// each with k chunks.
func benchStreams(n, k int) []Stream {
	out := make([]Stream, 0, n)
	for i := 0; i < n; i++ {
		ls := model.LabelsFromStrings(
			"app", fmt.Sprintf("app-%d", i%20),
			"env", []string{"prod", "dev", "staging"}[i%3],
			"namespace", fmt.Sprintf("ns-%d", i%7),
			"pod", fmt.Sprintf("pod-%d-%x", i, i*7919),
			"service_name", fmt.Sprintf("svc-%d", i%20),
		)
		chunks := make([]ChunkRef, k)
		for j := range chunks {
			chunks[j] = ChunkRef{Segment: 1, Offset: int64((i*k + j) * 1000), Length: 1000, MinTime: int64(j) * 1e9, MaxTime: int64(j)*1e9 + 9e8, Entries: 500, UncompressedBytes: 50000}
		}
		out = append(out, Stream{Labels: ls, Chunks: chunks})
	}
	return out
}

func BenchmarkDecode(b *testing.B) {
	data, err := Encode(benchStreams(400, 8))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSelect(b *testing.B) {
	data, err := Encode(benchStreams(400, 8))
	if err != nil {
		b.Fatal(err)
	}
	ix, err := Decode(data)
	if err != nil {
		b.Fatal(err)
	}
	m1, _ := model.NewMatcher(model.MatchEqual, "env", "prod")
	m2, _ := model.NewMatcher(model.MatchRegexp, "app", "app-1.*")
	m3, _ := model.NewMatcher(model.MatchNotEqual, "namespace", "ns-3")
	ms := []*model.Matcher{m1, m2, m3}
	b.ReportAllocs()
	for b.Loop() {
		ix.Select(ms)
	}
}
