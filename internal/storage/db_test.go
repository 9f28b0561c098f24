package storage

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/chunk"
	"github.com/ledgerlog/ledgerlog/internal/storage/head"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
	"github.com/ledgerlog/ledgerlog/internal/storage/objstore"
	"github.com/ledgerlog/ledgerlog/internal/storage/wal"
)

type testDB struct {
	*DB
	dir string
	reg *prometheus.Registry
}

func openTestDB(t testing.TB, dir string) *testDB {
	t.Helper()
	bkt, err := objstore.NewFilesystem(filepath.Join(dir, "blocks"))
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	ho := head.DefaultOptions()
	ho.PageSize = 4 << 10
	ho.ChunkTargetSize = 16 << 10
	wo := wal.DefaultOptions(filepath.Join(dir, "wal"))
	wo.Registerer = reg
	db, err := Open(context.Background(), Options{
		Head:            ho,
		WAL:             wo,
		Bucket:          bkt,
		BlockWindow:     2 * time.Hour,
		MaxHeadBytes:    1 << 30,
		FlushOnShutdown: true,
		Logger:          slog.New(slog.DiscardHandler),
		Registerer:      reg,
	})
	require.NoError(t, err)
	return &testDB{DB: db, dir: dir, reg: reg}
}

func (db *testDB) close(t testing.TB) {
	t.Helper()
	require.NoError(t, db.Close(context.Background()))
}

var base = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).UnixNano()

func genStreams(n, perStream int, seed uint64) []model.Stream {
	r := rand.New(rand.NewPCG(seed, seed))
	var out []model.Stream
	for s := 0; s < n; s++ {
		st := model.Stream{Labels: model.LabelsFromStrings("app", fmt.Sprintf("app-%d", s), "env", "prod")}
		ts := base + int64(s)
		for i := 0; i < perStream; i++ {
			ts += int64(r.IntN(5_000_000) + 1)
			st.Entries = append(st.Entries, model.Entry{Timestamp: ts, Line: fmt.Sprintf(`{"level":"info","seq":%d,"trace_id":"%016x%016x","msg":"payment processed"}`, i, r.Uint64(), r.Uint64())})
		}
		out = append(out, st)
	}
	return out
}

func selectAll(t testing.TB, db *DB, tenantID string, f *iter.Filter, warn func(string)) []string {
	t.Helper()
	it, err := db.SelectLogs(context.Background(), SelectParams{Tenant: tenantID, Range: model.AllTime, Direction: model.Forward, Filter: f, Warn: warn})
	require.NoError(t, err)
	var out []string
	for it.Next() {
		out = append(out, fmt.Sprintf("%s %d %s", it.Labels().String(), it.At().Timestamp, it.At().Line))
	}
	require.NoError(t, it.Err())
	require.NoError(t, it.Close())
	return out
}

func TestPushFlushReopen(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir)
	streams := genStreams(5, 400, 1)
	require.NoError(t, db.Push("t1", streams, head.Limits{UnorderedWrites: true}))
	before := selectAll(t, db.DB, "t1", nil, nil)
	require.Len(t, before, 2000)

	// Half flushed into blocks, half still in the head: reads see each entry once.
	require.NoError(t, db.Flush(context.Background(), false))
	require.Equal(t, before, selectAll(t, db.DB, "t1", nil, nil))
	require.NoError(t, db.Flush(context.Background(), true))
	require.Equal(t, before, selectAll(t, db.DB, "t1", nil, nil))
	require.Empty(t, selectAll(t, db.DB, "t2", nil, nil), "tenants never see each other's data")

	more := genStreams(2, 100, 2)
	for i := range more {
		more[i].Labels = model.LabelsFromStrings("app", fmt.Sprintf("late-%d", i))
	}
	require.NoError(t, db.Push("t1", more, head.Limits{UnorderedWrites: true}))
	all := selectAll(t, db.DB, "t1", nil, nil)
	require.Len(t, all, 2200)
	db.close(t)

	// Reopen: blocks and WAL replay give the same answer.
	db = openTestDB(t, dir)
	require.Equal(t, all, selectAll(t, db.DB, "t1", nil, nil))
	st, err := db.Stats(context.Background(), "t1", nil, model.AllTime)
	require.NoError(t, err)
	require.Equal(t, int64(7), st.Streams)
	require.Equal(t, int64(2200), st.Entries)
	names, err := db.LabelNames(context.Background(), "t1", nil, model.AllTime)
	require.NoError(t, err)
	require.Equal(t, []string{"app", "env"}, names)
	db.close(t)
}

func TestReplayAfterCheckpoint(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir)
	require.NoError(t, db.Push("t", genStreams(3, 300, 3), head.Limits{UnorderedWrites: true}))
	require.NoError(t, db.Checkpoint())
	require.NoError(t, db.Push("t", genStreams(3, 50, 4), head.Limits{UnorderedWrites: true}))
	want := selectAll(t, db.DB, "t", nil, nil)
	// Simulate a crash: do not flush, just release the WAL.
	require.NoError(t, db.wal.Close())
	db2 := openTestDB(t, dir)
	require.Equal(t, want, selectAll(t, db2.DB, "t", nil, nil))
	db2.close(t)
}

func TestCorruptChunkIsSkippedWithWarning(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir)
	require.NoError(t, db.Push("t", genStreams(4, 500, 5), head.Limits{UnorderedWrites: true}))
	require.NoError(t, db.Flush(context.Background(), true))
	require.Len(t, selectAll(t, db.DB, "t", nil, nil), 2000)

	// Flip a byte in the middle of a chunk segment file.
	var seg string
	require.NoError(t, filepath.Walk(filepath.Join(dir, "blocks"), func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.Contains(p, string(filepath.Separator)+"chunks"+string(filepath.Separator)) && seg == "" {
			seg = p
		}
		return nil
	}))
	require.NotEmpty(t, seg)
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	for i := len(b) / 4; i < len(b)*3/4; i += 97 {
		b[i] ^= 0xff // damages pages, tables and filters alike
	}
	require.NoError(t, os.WriteFile(seg, b, 0o644))

	var warnings []string
	got := selectAll(t, db.DB, "t", nil, func(m string) { warnings = append(warnings, m) })
	require.NotEmpty(t, warnings, "a corrupt chunk must be reported (got %d lines)", len(got))
	t.Logf("warnings: %v", warnings)
	require.Less(t, len(got), 2000, "the corrupt chunk is skipped")
	require.Greater(t, len(got), 0, "other chunks are still served")
	require.Greater(t, testutil.ToFloat64(db.metrics.corruptions.WithLabelValues("chunk")), 0.0)
	db.close(t)
}

func TestCorruptIndexIsQuarantinedOnStart(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir)
	require.NoError(t, db.Push("t", genStreams(2, 100, 6), head.Limits{UnorderedWrites: true}))
	require.NoError(t, db.Flush(context.Background(), true))
	require.NoError(t, db.Push("t", genStreams(2, 100, 7), head.Limits{UnorderedWrites: true}))
	db.close(t) // flushes the second batch into a second block

	var index []string
	require.NoError(t, filepath.Walk(filepath.Join(dir, "blocks"), func(p string, info os.FileInfo, err error) error {
		if err == nil && filepath.Base(p) == "index" {
			index = append(index, p)
		}
		return nil
	}))
	require.GreaterOrEqual(t, len(index), 2)
	require.NoError(t, os.WriteFile(index[0], []byte("garbage"), 0o644))

	db = openTestDB(t, dir)
	got := selectAll(t, db.DB, "t", nil, nil)
	require.NotEmpty(t, got, "the healthy block is still served")
	require.Less(t, len(got), 400)
	require.Greater(t, testutil.ToFloat64(db.metrics.corruptions.WithLabelValues("block")), 0.0)
	db.close(t)
	// The quarantined block does not stop later starts either.
	db = openTestDB(t, dir)
	require.Equal(t, got, selectAll(t, db.DB, "t", nil, nil))
	db.close(t)
}

func TestRecordRoundTrip(t *testing.T) {
	streams := genStreams(3, 10, 8)
	streams[0].Entries[0].Metadata = model.LabelsFromStrings("trace_id", "abc")
	rec := appendEntriesRecord(nil, "tenant-a", streams)
	d, err := decodeRecord(rec)
	require.NoError(t, err)
	require.Equal(t, "tenant-a", d.tenant)
	require.Equal(t, len(streams), len(d.streams))
	for i := range streams {
		require.Equal(t, streams[i].Labels.String(), d.streams[i].Labels.String())
		require.Equal(t, len(streams[i].Entries), len(d.streams[i].Entries))
		for j := range streams[i].Entries {
			require.Equal(t, streams[i].Entries[j].Timestamp, d.streams[i].Entries[j].Timestamp)
			require.Equal(t, streams[i].Entries[j].Line, d.streams[i].Entries[j].Line)
			require.Equal(t, streams[i].Entries[j].Metadata.String(), d.streams[i].Entries[j].Metadata.String())
		}
	}
	for cut := 0; cut < len(rec); cut += 7 {
		_, _ = decodeRecord(rec[:cut]) // never panics
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendEntriesRecord(nil, "t", genStreams(2, 3, 9)))
	f.Add(appendChunkRecord(nil, "t", model.LabelsFromStrings("a", "b"), []byte("chunk")))
	f.Add([]byte{1, 0, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeRecord(b)
		if err != nil {
			return
		}
		if d.kind == recordEntries {
			again := appendEntriesRecord(nil, d.tenant, d.streams)
			d2, err := decodeRecord(again)
			if err != nil || len(d2.streams) != len(d.streams) {
				t.Fatalf("re-encoded record does not decode: %v", err)
			}
		}
	})
}

// benchStreams returns the streams of the first 200,000 lines of the
// benchmark dataset named by LEDGERLOG_BENCH_DATA (gen's NDJSON), or
// synthetic streams when it is unset.
func benchStreams(b *testing.B) []model.Stream {
	path := os.Getenv("LEDGERLOG_BENCH_DATA")
	if path == "" {
		return genStreams(20, 5000, 10)
	}
	f, err := os.Open(path)
	require.NoError(b, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	byLabels := map[string]*model.Stream{}
	var order []string
	for n := 0; n < 200000 && sc.Scan(); n++ {
		var g struct {
			Labels string `json:"labels"`
			TS     int64  `json:"ts"`
			Line   string `json:"line"`
		}
		require.NoError(b, json.Unmarshal(sc.Bytes(), &g))
		s := byLabels[g.Labels]
		if s == nil {
			ls, err := model.ParseLabels(g.Labels)
			require.NoError(b, err)
			s = &model.Stream{Labels: ls}
			byLabels[g.Labels] = s
			order = append(order, g.Labels)
		}
		s.Entries = append(s.Entries, model.Entry{Timestamp: g.TS, Line: g.Line})
	}
	out := make([]model.Stream, 0, len(order))
	for _, k := range order {
		out = append(out, *byLabels[k])
	}
	return out
}

// BenchmarkBlockScan measures a line-filter scan over stored blocks: the
// needle occurs in no line, so every page is decompressed and searched
// (set LEDGERLOG_BENCH_DATA to a gen dataset for realistic lines).
func BenchmarkBlockScan(b *testing.B) {
	dir := b.TempDir()
	db := openTestDB(b, dir)
	streams := benchStreams(b)
	var raw, lines int64
	for _, s := range streams {
		lines += int64(len(s.Entries))
		for _, e := range s.Entries {
			raw += int64(len(e.Line))
		}
	}
	require.NoError(b, db.Push("t", streams, head.Limits{UnorderedWrites: true}))
	require.NoError(b, db.Flush(context.Background(), true))
	for _, c := range []struct{ name, needle string }{
		// A short needle the token blooms cannot prune: every page is
		// decompressed and searched.
		{"scan", "zqxj"},
		// A needle the blooms rule out: pages are skipped unread.
		{"bloom", "COMPLIANCE_VIOLATION"},
	} {
		b.Run(c.name, func(b *testing.B) {
			f := &iter.Filter{Needles: [][]byte{[]byte(c.needle)}}
			b.SetBytes(raw)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if got := selectAll(b, db.DB, "t", f, nil); len(got) != 0 {
					b.Fatal("unexpected match")
				}
			}
			b.ReportMetric(float64(lines*int64(b.N))/b.Elapsed().Seconds(), "lines/s")
		})
	}
	b.StopTimer()
	db.close(b)
}

var _ = chunk.EncZstd
