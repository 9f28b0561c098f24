package ingest

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
)

// benchStreams builds a realistic push: ~1 MiB of ~380-byte JSON lines (as a
// Rust service with tracing's JSON formatter prints them) over 20 streams.
// withLevel adds a level stream label, as Promtail pipelines usually do.
func benchStreams(withLevel bool) (streams []model.Stream, lines, lineBytes int) {
	rng := rand.New(rand.NewPCG(1, 2))
	services := []string{"payment-processor", "payment-gateway", "fraud-detection", "kyc-service", "ledger"}
	levels := []string{"INFO", "DEBUG", "WARN", "ERROR"}
	base := testNow.Add(-time.Minute).UnixNano()
	for i := range 20 {
		lvl := levels[i%len(levels)]
		ls := []string{"service", services[i%len(services)], "environment", "prod", "region", fmt.Sprintf("eu-%d", i/5)}
		if withLevel {
			ls = append(ls, "level", lvl)
		}
		s := model.Stream{Labels: model.LabelsFromStrings(ls...)}
		for j := 0; lineBytes < (1<<20)*(i+1)/20; j++ {
			line := fmt.Sprintf(`{"timestamp":"2026-01-01T00:00:%02d.%06dZ","level":"%s","fields":{"message":"processed payment","event":"payment.settled","amount":%.2f,"currency":"EUR","account_id":"acc-%08d","risk_score":%.3f},"target":"payment_processor","span":{"trace_id":"%016x%016x","name":"process_payment"},"threadId":"ThreadId(%d)"}`,
				j%60, rng.IntN(1e6), lvl, rng.Float64()*10000, rng.IntN(1e8), rng.Float64(), rng.Uint64(), rng.Uint64(), rng.IntN(16))
			e := model.Entry{Timestamp: base + int64(lines)*1000, Line: line}
			if j%4 == 0 {
				e.Metadata = model.LabelsFromStrings("trace_id", fmt.Sprintf("%032x", rng.Uint64()))
			}
			s.Entries = append(s.Entries, e)
			lines++
			lineBytes += len(line)
		}
		streams = append(streams, s)
	}
	return streams, lines, lineBytes
}

func reportLines(b *testing.B, lines int) {
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkDecodeProto(b *testing.B) {
	streams, lines, lineBytes := benchStreams(true)
	body := snappy.Encode(nil, AppendProto(nil, streams))
	b.SetBytes(int64(lineBytes))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeProto(body, 0); err != nil {
			b.Fatal(err)
		}
	}
	reportLines(b, lines)
}

func BenchmarkDecodeJSON(b *testing.B) {
	streams, lines, lineBytes := benchStreams(true)
	body := encodeJSON(streams)
	b.SetBytes(int64(lineBytes))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeJSON(body); err != nil {
			b.Fatal(err)
		}
	}
	reportLines(b, lines)
}

func BenchmarkValidate(b *testing.B) {
	for _, withLevel := range []bool{true, false} {
		name := "level-label"
		if !withLevel {
			name = "level-from-line"
		}
		b.Run(name, func(b *testing.B) {
			streams, lines, lineBytes := benchStreams(withLevel)
			v := NewValidator(prometheus.NewRegistry(), nil)
			l := tenant.Defaults()
			l.IngestionRateMB, l.IngestionBurstSizeMB = 1e6, 1e6
			l.PerStreamRateLimit, l.PerStreamRateLimitBurst = 1<<40, 1<<40
			req := &Request{Streams: make([]model.Stream, len(streams))}
			entries := make([][]model.Entry, len(streams))
			for i := range streams {
				entries[i] = make([]model.Entry, len(streams[i].Entries))
			}
			b.SetBytes(int64(lineBytes))
			b.ReportAllocs()
			for b.Loop() {
				// Validate rewrites the request in place: start from a copy.
				req.Streams = req.Streams[:len(streams)]
				for i := range streams {
					copy(entries[i], streams[i].Entries)
					req.Streams[i] = model.Stream{Labels: streams[i].Labels, Entries: entries[i]}
				}
				out, err := v.Validate("fake", &l, req, testNow)
				if err != nil || len(out) != len(streams) {
					b.Fatal(err, len(out))
				}
			}
			reportLines(b, lines)
		})
	}
}
