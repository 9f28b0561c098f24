package compactor

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"go.uber.org/goleak"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/block"
	"github.com/ledgerlog/ledgerlog/internal/storage/chunk"
	llobjstore "github.com/ledgerlog/ledgerlog/internal/storage/objstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

var t0 = time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newBucket(t testing.TB) (*llobjstore.Filesystem, string) {
	t.Helper()
	dir := t.TempDir()
	bkt, err := llobjstore.NewFilesystem(dir)
	require.NoError(t, err)
	return bkt, dir
}

func testConfig(t testing.TB) Config {
	cfg := DefaultConfig()
	cfg.WorkingDirectory = t.TempDir()
	cfg.ChunkTargetSize = 4 << 10
	return cfg
}

func newCompactor(t testing.TB, cfg Config, bkt objstore.Bucket, retention func(string) time.Duration, clk *clock) (*Compactor, *prometheus.Registry) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	reg := prometheus.NewRegistry()
	c := New(cfg, bkt, retention, nil, reg)
	c.now = clk.now
	return c, reg
}

// streams maps a stream selector to its entries.
type streams map[string][]model.Entry

// writeBlock writes a level 1 block with entries split into chunks of at
// most perChunk entries each, created at created.
func writeBlock(t testing.TB, bkt objstore.Bucket, tenant string, window model.TimeRange, created time.Time, in streams, perChunk int) block.Meta {
	t.Helper()
	w, err := block.NewWriter(bkt, tenant, block.WriterOptions{Window: window, Now: func() time.Time { return created }})
	require.NoError(t, err)
	defer func() { require.NoError(t, w.Close()) }()
	for sel, entries := range in {
		ls, err := model.ParseLabels(sel)
		require.NoError(t, err)
		var chunks []block.ChunkData
		for start := 0; start < len(entries); start += perChunk {
			b := chunk.NewBuilder(chunk.EncSnappy, 0)
			for _, e := range entries[start:min(start+perChunk, len(entries))] {
				require.True(t, b.Append(e), "test input must not repeat an entry within one chunk")
			}
			data, m, err := b.Encode()
			require.NoError(t, err)
			chunks = append(chunks, block.ChunkData{
				Meta: block.ChunkMeta{MinTime: m.MinTime, MaxTime: m.MaxTime, Entries: m.Entries, UncompressedBytes: m.UncompressedBytes, CompressedBytes: m.CompressedBytes},
				Data: data,
			})
		}
		require.NoError(t, w.AddStream(ls, chunks))
	}
	meta, err := w.Flush(context.Background())
	require.NoError(t, err)
	return meta
}

// readAll returns every entry readers see for tenant, per stream, in the
// order stored (blocks by MinTime, chunks by time).
func readAll(t testing.TB, bkt objstore.Bucket, tenant string) (map[string][]model.Entry, []block.Meta) {
	t.Helper()
	ctx := context.Background()
	metas, err := block.ListMetas(ctx, bkt, tenant)
	require.NoError(t, err)
	out := map[string][]model.Entry{}
	for _, m := range metas {
		b, err := block.Open(ctx, bkt, tenant, m.ULID)
		require.NoError(t, err)
		for _, ref := range b.Streams(nil, model.AllTime) {
			for _, c := range ref.Chunks {
				data, err := b.ReadChunk(ctx, c)
				require.NoError(t, err)
				ch, err := chunk.Open(data)
				require.NoError(t, err)
				it := ch.Iterator(model.AllTime, model.Forward, nil)
				for it.Next() {
					out[ref.Labels.String()] = append(out[ref.Labels.String()], it.At())
				}
				require.NoError(t, it.Err())
				require.NoError(t, it.Close())
			}
		}
	}
	return out, metas
}

// unique returns the distinct (timestamp, line) pairs of the inputs per
// stream, sorted by timestamp then line, keeping only ts >= cutoff.
func unique(t testing.TB, cutoff int64, ins ...streams) map[string][]string {
	t.Helper()
	sets := map[string]map[string]bool{}
	for _, in := range ins {
		for sel, entries := range in {
			ls, err := model.ParseLabels(sel)
			require.NoError(t, err)
			k := ls.String()
			if sets[k] == nil {
				sets[k] = map[string]bool{}
			}
			for _, e := range entries {
				if e.Timestamp >= cutoff {
					sets[k][fmt.Sprintf("%020d %s", e.Timestamp, e.Line)] = true
				}
			}
		}
	}
	out := map[string][]string{}
	for k, set := range sets {
		for v := range set {
			out[k] = append(out[k], v)
		}
		sort.Strings(out[k])
		if len(out[k]) == 0 {
			delete(out, k)
		}
	}
	return out
}

// flatten renders read entries like unique does, checking that each
// stream's entries are in timestamp order.
func flatten(t testing.TB, got map[string][]model.Entry) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for k, entries := range got {
		for i, e := range entries {
			if i > 0 {
				require.LessOrEqual(t, entries[i-1].Timestamp, e.Timestamp, "stream %s out of order", k)
			}
			out[k] = append(out[k], fmt.Sprintf("%020d %s", e.Timestamp, e.Line))
		}
		sort.Strings(out[k])
	}
	return out
}

func countEntries(ins ...streams) int {
	n := 0
	for _, in := range ins {
		for _, es := range in {
			n += len(es)
		}
	}
	return n
}

// genEntries returns n entries from start, step apart, with lines that
// compress like logs.
func genEntries(r *rand.Rand, start time.Time, step time.Duration, n int, tag string) []model.Entry {
	out := make([]model.Entry, n)
	for i := range out {
		out[i] = model.Entry{
			Timestamp: start.Add(time.Duration(i) * step).UnixNano(),
			Line:      fmt.Sprintf(`level=info msg="request served" tag=%s path=/api/v1/item/%d status=200 took=%dms`, tag, r.IntN(1000), r.IntN(300)),
		}
	}
	return out
}

func TestCompactionMergesAndDedups(t *testing.T) {
	ctx := context.Background()
	bkt, dir := newBucket(t)
	clk := &clock{t: t0.Add(10 * time.Hour)}
	r := rand.New(rand.NewPCG(1, 2))
	window := block.WindowFor(t0.Add(8*time.Hour).UnixNano(), 2*time.Hour)
	base := t0.Add(8 * time.Hour)

	s1 := genEntries(r, base, time.Second, 600, "a")
	s2 := genEntries(r, base.Add(time.Minute), 2*time.Second, 400, "b")
	s3 := genEntries(r, base.Add(30*time.Minute), time.Second, 300, "c")

	a := streams{`{app="api"}`: s1[:400], `{app="web", env="prod"}`: s2}
	// b repeats part of s1 (exact duplicates), adds the rest, and adds
	// entries with the timestamps of s1 but different lines (kept).
	sameTs := make([]model.Entry, 50)
	for i := range sameTs {
		sameTs[i] = model.Entry{Timestamp: s1[i].Timestamp, Line: s1[i].Line + " (other)"}
	}
	bIn := streams{`{app="api"}`: append(slices.Clone(s1[300:]), sameTs...), `{job="cron"}`: s3}
	slices.SortFunc(bIn[`{app="api"}`], func(x, y model.Entry) int { return int(x.Timestamp - y.Timestamp) })
	c3 := streams{`{app="web", env="prod"}`: s2[100:200]}

	created := clk.t.Add(-time.Hour)
	ma := writeBlock(t, bkt, "team-a", window, created, a, 70)
	mb := writeBlock(t, bkt, "team-a", window, created, bIn, 90)
	mc := writeBlock(t, bkt, "team-a", window, created, c3, 1000)
	// Another tenant's single block is left alone.
	other := writeBlock(t, bkt, "team-b", window, created, a, 100)

	cfg := testConfig(t)
	c, reg := newCompactor(t, cfg, bkt, nil, clk)
	require.NoError(t, c.RunOnce(ctx))

	got, metas := readAll(t, bkt, "team-a")
	require.Len(t, metas, 1)
	m := metas[0]
	require.Equal(t, 2, m.Compaction.Level)
	want := []ulid.ULID{ma.ULID, mb.ULID, mc.ULID}
	slices.SortFunc(want, ulid.ULID.Compare)
	require.Equal(t, want, m.Compaction.Sources)
	require.Len(t, m.Compaction.Parents, 3)
	require.Equal(t, window, m.Window.Range())

	wantEntries := unique(t, math.MinInt64, a, bIn, c3)
	require.Equal(t, wantEntries, flatten(t, got))
	total := 0
	for _, es := range wantEntries {
		total += len(es)
	}
	require.Equal(t, int64(total), m.Stats.Entries)
	dups := countEntries(a, bIn, c3) - total
	require.Equal(t, 100+100, dups, "100 repeated api entries and 100 repeated web entries")
	require.Equal(t, float64(dups), value(c.m.duplicates))
	require.Equal(t, 1.0, value(c.m.compactions))

	// Chunks were re-cut near the target size.
	blk, err := block.Open(ctx, bkt, "team-a", m.ULID)
	require.NoError(t, err)
	for _, ref := range blk.Streams(nil, model.AllTime) {
		for i, ch := range ref.Chunks {
			if i < len(ref.Chunks)-1 {
				require.GreaterOrEqual(t, ch.Length, int(cfg.ChunkTargetSize)/2, "stream %s chunk %d", ref.Labels, i)
			}
			require.Less(t, ch.Length, 2*int(cfg.ChunkTargetSize))
		}
	}

	// The sources are marked, not yet deleted.
	scan, err := block.ScanTenant(ctx, bkt, "team-a", nil)
	require.NoError(t, err)
	require.Len(t, scan.Marked, 3)
	for _, mb := range scan.Marked {
		require.Equal(t, block.DeletionCompacted, mb.Mark.Details)
	}
	otherMetas, err := block.ListMetas(ctx, bkt, "team-b")
	require.NoError(t, err)
	require.Equal(t, []ulid.ULID{other.ULID}, []ulid.ULID{otherMetas[0].ULID})

	// Before the delay nothing is deleted; after it the sources go.
	clk.t = clk.t.Add(time.Hour)
	require.NoError(t, c.RunOnce(ctx))
	scan, err = block.ScanTenant(ctx, bkt, "team-a", nil)
	require.NoError(t, err)
	require.Len(t, scan.Marked, 3)
	clk.t = clk.t.Add(2 * time.Hour)
	require.NoError(t, c.RunOnce(ctx))
	scan, err = block.ScanTenant(ctx, bkt, "team-a", nil)
	require.NoError(t, err)
	require.Empty(t, scan.Marked)
	require.Len(t, scan.Live, 1)
	for _, id := range want {
		_, err := os.Stat(filepath.Join(dir, "team-a", id.String()))
		require.True(t, os.IsNotExist(err))
	}
	require.Equal(t, 3.0, value(c.m.deleted))
	families, err := reg.Gather()
	require.NoError(t, err)
	require.NotEmpty(t, families)

	got2, _ := readAll(t, bkt, "team-a")
	require.Equal(t, wantEntries, flatten(t, got2))
}

func TestCompactionCrashBeforeMarkingSources(t *testing.T) {
	ctx := context.Background()
	bkt, dir := newBucket(t)
	clk := &clock{t: t0.Add(10 * time.Hour)}
	r := rand.New(rand.NewPCG(3, 4))
	window := block.WindowFor(t0.Add(8*time.Hour).UnixNano(), 2*time.Hour)
	s := genEntries(r, t0.Add(8*time.Hour), time.Second, 500, "x")
	a := streams{`{app="api"}`: s[:300]}
	b := streams{`{app="api"}`: s[200:]}
	created := clk.t.Add(-time.Hour)
	ma := writeBlock(t, bkt, "t", window, created, a, 100)
	mb := writeBlock(t, bkt, "t", window, created, b, 100)

	c, _ := newCompactor(t, testConfig(t), bkt, nil, clk)
	// Write the merged block but "crash" before marking the sources.
	srcs, err := c.openSources(ctx, "t", []block.Meta{ma, mb})
	require.NoError(t, err)
	sources := []ulid.ULID{ma.ULID, mb.ULID}
	merged, _, err := c.mergeBlocks(ctx, "t", srcs, mergeOptions{window: window, level: 2, sources: sources, cutoff: math.MinInt64})
	require.NoError(t, err)

	// Readers already see only the merged block: no duplicates.
	want := unique(t, math.MinInt64, a, b)
	got, metas := readAll(t, bkt, "t")
	require.Len(t, metas, 1)
	require.Equal(t, merged.ULID, metas[0].ULID)
	require.Equal(t, want, flatten(t, got))
	require.Len(t, got[`{app="api"}`], 500)

	// The next run marks the superseded sources and merges nothing new.
	require.NoError(t, c.RunOnce(ctx))
	require.NoError(t, c.RunOnce(ctx))
	scan, err := block.ScanTenant(ctx, bkt, "t", nil)
	require.NoError(t, err)
	require.Len(t, scan.Live, 1)
	require.Equal(t, merged.ULID, scan.Live[0].ULID)
	require.Len(t, scan.Marked, 2)
	for _, m := range scan.Marked {
		require.Equal(t, block.DeletionSuperseded, m.Mark.Details)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "t"))
	require.NoError(t, err)
	require.Len(t, entries, 3, "no further block was written")
	got, _ = readAll(t, bkt, "t")
	require.Equal(t, want, flatten(t, got))
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	bkt, _ := newBucket(t)
	now := t0.Add(100 * time.Hour)
	clk := &clock{t: now}
	r := rand.New(rand.NewPCG(5, 6))
	cutoff := now.Add(-48 * time.Hour)

	w := func(ts time.Time) model.TimeRange { return block.WindowFor(ts.UnixNano(), 2*time.Hour) }
	oldStart := cutoff.Add(-10 * time.Hour)
	old := streams{`{app="api"}`: genEntries(r, oldStart, time.Second, 200, "old")}
	// straddle's window is [cutoff-1h, cutoff+1h): half of it expires.
	strStart := cutoff.Add(-30 * time.Minute)
	straddle := streams{
		`{app="api"}`:  genEntries(r, strStart, 10*time.Second, 360, "s"), // 30m before, 30m after
		`{app="gone"}`: genEntries(r, strStart, time.Second, 100, "g"),    // all before the cutoff
	}
	fresh := streams{`{app="api"}`: genEntries(r, now.Add(-5*time.Hour), time.Second, 100, "f")}
	created := now.Add(-time.Hour)
	mOld := writeBlock(t, bkt, "t", w(oldStart), created, old, 50)
	mStr := writeBlock(t, bkt, "t", w(strStart), created, straddle, 50)
	mFresh := writeBlock(t, bkt, "t", w(now.Add(-5*time.Hour)), created, fresh, 50)
	// Tenant u keeps data forever.
	uOld := writeBlock(t, bkt, "u", w(oldStart), created, old, 50)

	cfg := testConfig(t)
	cfg.RetentionEnabled = true
	cfg.SmallBlockMergeRange = 0
	retention := func(tenant string) time.Duration {
		if tenant == "t" {
			return 48 * time.Hour
		}
		return 0
	}
	c, _ := newCompactor(t, cfg, bkt, retention, clk)
	require.NoError(t, c.RunOnce(ctx))

	got, metas := readAll(t, bkt, "t")
	require.Len(t, metas, 2)
	require.Equal(t, unique(t, cutoff.UnixNano(), old, straddle, fresh), flatten(t, got))
	require.Len(t, got[`{app="api"}`], 180+100, "the straddling block keeps its last 30 minutes")
	require.NotContains(t, got, `{app="gone"}`)
	var rewritten block.Meta
	for _, m := range metas {
		if m.ULID != mFresh.ULID {
			rewritten = m
		}
	}
	require.Equal(t, mStr.Compaction.Sources, rewritten.Compaction.Sources)
	require.Equal(t, mStr.Window, rewritten.Window)
	require.GreaterOrEqual(t, rewritten.MinTime, cutoff.UnixNano())
	require.Equal(t, 1.0, value(c.m.rewrites))
	require.Equal(t, float64(180+100), value(c.m.expired))

	scan, err := block.ScanTenant(ctx, bkt, "t", nil)
	require.NoError(t, err)
	var marked []ulid.ULID
	for _, m := range scan.Marked {
		require.Equal(t, block.DeletionRetention, m.Mark.Details)
		marked = append(marked, m.ID)
	}
	require.ElementsMatch(t, []ulid.ULID{mOld.ULID, mStr.ULID}, marked)

	uMetas, err := block.ListMetas(ctx, bkt, "u")
	require.NoError(t, err)
	require.Len(t, uMetas, 1)
	require.Equal(t, uOld.ULID, uMetas[0].ULID)

	// A run a minute later changes nothing: the cutoff moves in whole hours.
	clk.t = clk.t.Add(time.Minute)
	require.NoError(t, c.RunOnce(ctx))
	got2, metas2 := readAll(t, bkt, "t")
	require.Equal(t, ids(metas), ids(metas2))
	require.Equal(t, flatten(t, got), flatten(t, got2))

	// retention_delete_delay later the marked blocks are gone, and the
	// rewritten block, by then entirely past retention, is marked.
	clk.t = clk.t.Add(cfg.RetentionDeleteDelay.D())
	require.NoError(t, c.RunOnce(ctx))
	scan, err = block.ScanTenant(ctx, bkt, "t", nil)
	require.NoError(t, err)
	require.Len(t, scan.Marked, 1)
	require.Equal(t, rewritten.ULID, scan.Marked[0].ID)
	require.Equal(t, []ulid.ULID{mFresh.ULID}, ids(scan.Live))
	require.Equal(t, 2.0, value(c.m.deleted))
}

func ids(ms []block.Meta) []ulid.ULID {
	var out []ulid.ULID
	for _, m := range ms {
		out = append(out, m.ULID)
	}
	return out
}

func TestCompactionQuarantinesCorruptBlocks(t *testing.T) {
	for _, what := range []string{"index", "chunk"} {
		t.Run(what, func(t *testing.T) {
			ctx := context.Background()
			bkt, dir := newBucket(t)
			clk := &clock{t: t0.Add(10 * time.Hour)}
			r := rand.New(rand.NewPCG(7, 8))
			window := block.WindowFor(t0.Add(8*time.Hour).UnixNano(), 2*time.Hour)
			created := clk.t.Add(-time.Hour)
			var ins []streams
			var metas []block.Meta
			for i := range 3 {
				in := streams{fmt.Sprintf(`{app="a%d"}`, i%2): genEntries(r, t0.Add(8*time.Hour+time.Duration(i)*time.Minute), time.Second, 100, fmt.Sprint(i))}
				ins = append(ins, in)
				metas = append(metas, writeBlock(t, bkt, "t", window, created, in, 50))
			}
			bad := metas[1]
			switch what {
			case "index":
				path := filepath.Join(dir, "t", bad.ULID.String(), block.IndexFilename)
				b, err := os.ReadFile(path)
				require.NoError(t, err)
				b[len(b)/2] ^= 0x10
				require.NoError(t, os.WriteFile(path, b, 0o644))
			case "chunk":
				path := filepath.Join(dir, "t", bad.ULID.String(), block.SegmentName(1))
				b, err := os.ReadFile(path)
				require.NoError(t, err)
				b[len(b)-10] ^= 0x10
				require.NoError(t, os.WriteFile(path, b, 0o644))
			}

			c, _ := newCompactor(t, testConfig(t), bkt, nil, clk)
			require.NoError(t, c.RunOnce(ctx))
			require.Equal(t, 1.0, value(c.m.quarantined))

			scan, err := block.ScanTenant(ctx, bkt, "t", nil)
			require.NoError(t, err)
			require.Len(t, scan.Quarantined, 1)
			require.Equal(t, bad.ULID, scan.Quarantined[0].ID)
			require.Len(t, scan.Live, 1)
			require.ElementsMatch(t, []ulid.ULID{metas[0].ULID, metas[2].ULID}, scan.Live[0].Compaction.Sources)
			got, _ := readAll(t, bkt, "t")
			require.Equal(t, unique(t, math.MinInt64, ins[0], ins[2]), flatten(t, got))
		})
	}
}

func TestCleanupPartialAndUnreadable(t *testing.T) {
	ctx := context.Background()
	bkt, dir := newBucket(t)
	clk := &clock{t: t0.Add(100 * time.Hour)}
	r := rand.New(rand.NewPCG(9, 10))
	in := streams{`{app="api"}`: genEntries(r, t0, time.Second, 10, "p")}
	window := block.WindowFor(t0.UnixNano(), 2*time.Hour)
	oldPartial := writeBlock(t, bkt, "t", window, clk.t.Add(-72*time.Hour), in, 50)
	newPartial := writeBlock(t, bkt, "t", window, clk.t.Add(-time.Hour), in, 50)
	unreadable := writeBlock(t, bkt, "t", block.WindowFor(t0.Add(4*time.Hour).UnixNano(), 2*time.Hour), clk.t.Add(-time.Hour), in, 50)
	for _, m := range []block.Meta{oldPartial, newPartial} {
		require.NoError(t, os.Remove(filepath.Join(dir, "t", m.ULID.String(), block.MetaFilename)))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t", unreadable.ULID.String(), block.MetaFilename), []byte("{"), 0o644))

	c, _ := newCompactor(t, testConfig(t), bkt, nil, clk)
	require.NoError(t, c.RunOnce(ctx))
	scan, err := block.ScanTenant(ctx, bkt, "t", nil)
	require.NoError(t, err)
	require.Equal(t, []ulid.ULID{newPartial.ULID}, scan.Partial)
	require.Len(t, scan.Quarantined, 1)
	require.Equal(t, unreadable.ULID, scan.Quarantined[0].ID)
	_, err = os.Stat(filepath.Join(dir, "t", oldPartial.ULID.String()))
	require.True(t, os.IsNotExist(err))
}

func TestRunStopsWithContext(t *testing.T) {
	bkt, _ := newBucket(t)
	cfg := testConfig(t)
	cfg.CompactionInterval = 10 * 1e6 // 10ms
	c, _ := newCompactor(t, cfg, bkt, nil, &clock{t: t0})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	time.Sleep(30 * time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.GreaterOrEqual(t, value(c.m.runs), 1.0)
}
