package block

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
	llobjstore "github.com/ledgerlog/ledgerlog/internal/storage/objstore"
)

func newBucket(t testing.TB) (*llobjstore.Filesystem, string) {
	t.Helper()
	dir := t.TempDir()
	bkt, err := llobjstore.NewFilesystem(dir)
	require.NoError(t, err)
	return bkt, dir
}

func mustLabels(t testing.TB, s string) model.Labels {
	t.Helper()
	ls, err := model.ParseLabels(s)
	require.NoError(t, err)
	return ls
}

func matchers(t testing.TB, ss ...string) []*model.Matcher {
	t.Helper()
	var out []*model.Matcher
	for _, s := range ss {
		var op model.MatchType
		var i int
		switch {
		case strings.Contains(s, "=~"):
			op, i = model.MatchRegexp, strings.Index(s, "=~")
		case strings.Contains(s, "!~"):
			op, i = model.MatchNotRegexp, strings.Index(s, "!~")
		case strings.Contains(s, "!="):
			op, i = model.MatchNotEqual, strings.Index(s, "!=")
		default:
			op, i = model.MatchEqual, strings.Index(s, "=")
		}
		value := s[i+1:]
		if op != model.MatchEqual {
			value = s[i+2:]
		}
		m, err := model.NewMatcher(op, s[:i], strings.Trim(value, `"`))
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

// fakeChunk returns opaque chunk bytes and a meta for entries at the given
// times; the block layer never looks inside.
func fakeChunk(r *rand.Rand, minT, maxT int64, entries int) ChunkData {
	data := make([]byte, 16+r.IntN(200))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return ChunkData{
		Meta: ChunkMeta{MinTime: minT, MaxTime: maxT, Entries: entries, UncompressedBytes: entries * 100, CompressedBytes: len(data)},
		Data: data,
	}
}

type written struct {
	labels model.Labels
	chunks []ChunkData
}

// writeBlock writes streams (stream selector -> chunk time spans) and returns
// the meta and what was written.
func writeBlock(t testing.TB, bkt objstore.Bucket, tenant string, opts WriterOptions, streams map[string][][2]int64) (Meta, map[string]written) {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(len(streams)), 7))
	w, err := NewWriter(bkt, tenant, opts)
	require.NoError(t, err)
	defer func() { require.NoError(t, w.Close()) }()
	out := map[string]written{}
	keys := make([]string, 0, len(streams))
	for k := range streams {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ls := mustLabels(t, k)
		var cs []ChunkData
		for _, span := range streams[k] {
			cs = append(cs, fakeChunk(r, span[0], span[1], 3))
		}
		require.NoError(t, w.AddStream(ls, cs))
		out[ls.String()] = written{labels: ls, chunks: cs}
	}
	meta, err := w.Flush(context.Background())
	require.NoError(t, err)
	return meta, out
}

var testStreams = map[string][][2]int64{
	`{app="api", env="prod"}`:               {{100, 200}, {201, 400}},
	`{app="api", env="dev", pod="api-1"}`:   {{150, 160}},
	`{app="web", env="prod", pod="web-1"}`:  {{300, 900}, {50, 99}},
	`{job="cron"}`:                          {{1000, 1999}},
	`{app="db", env="prod", region="eu-1"}`: {{0, 10}, {11, 20}, {21, 30}},
}

func TestWriteOpenQuery(t *testing.T) {
	for _, mode := range []string{"memory", "tempdir"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			bkt, _ := newBucket(t)
			opts := WriterOptions{MaxSegmentSize: 300, Window: model.TimeRange{Min: 0, Max: 7200e9}}
			if mode == "tempdir" {
				opts.TempDir = t.TempDir()
			}
			meta, in := writeBlock(t, bkt, "team-a", opts, testStreams)

			require.Equal(t, MetaVersion1, meta.Version)
			require.Equal(t, "team-a", meta.Tenant)
			require.Equal(t, int64(0), meta.MinTime)
			require.Equal(t, int64(2000), meta.MaxTime, "maxTime is the last entry + 1")
			require.Equal(t, Window{MinTime: 0, MaxTime: 7200e9}, meta.Window)
			require.Equal(t, 5, meta.Stats.Streams)
			require.Equal(t, 9, meta.Stats.Chunks)
			require.Equal(t, int64(27), meta.Stats.Entries)
			require.Equal(t, int64(2700), meta.Stats.Bytes)
			require.Equal(t, 1, meta.Compaction.Level)
			require.Equal(t, []ulid.ULID{meta.ULID}, meta.Compaction.Sources)
			require.Greater(t, len(meta.Files), 2, "small segments force several segment files")

			if mode == "tempdir" {
				left, err := os.ReadDir(opts.TempDir)
				require.NoError(t, err)
				require.Empty(t, left, "spooled segments are removed")
			}

			metas, err := ListMetas(ctx, bkt, "team-a")
			require.NoError(t, err)
			require.Len(t, metas, 1)
			require.Equal(t, meta.ULID, metas[0].ULID)
			tenants, err := ListTenants(ctx, bkt)
			require.NoError(t, err)
			require.Equal(t, []string{"team-a"}, tenants)

			b, err := Open(ctx, bkt, "team-a", meta.ULID)
			require.NoError(t, err)
			require.Equal(t, meta.ULID, b.Meta().ULID)

			// Every stream and every chunk round-trips.
			refs := b.Streams(nil, model.AllTime)
			require.Len(t, refs, 5)
			var compressed int64
			for i, ref := range refs {
				if i > 0 {
					require.Negative(t, labels.Compare(refs[i-1].Labels, ref.Labels), "sorted")
				}
				w := in[ref.Labels.String()]
				require.Equal(t, ref.Labels.Hash(), ref.Fingerprint)
				require.Len(t, ref.Chunks, len(w.chunks))
				for _, c := range ref.Chunks {
					data, err := b.ReadChunk(ctx, c)
					require.NoError(t, err)
					idx := slices.IndexFunc(w.chunks, func(cd ChunkData) bool { return cd.Meta.MinTime == c.MinTime })
					require.GreaterOrEqual(t, idx, 0)
					require.Equal(t, w.chunks[idx].Data, data)
					require.Equal(t, w.chunks[idx].Meta.MaxTime, c.MaxTime)
					require.Equal(t, 3, c.Entries)
					compressed += int64(len(data))
				}
				for j := 1; j < len(ref.Chunks); j++ {
					require.LessOrEqual(t, ref.Chunks[j-1].MinTime, ref.Chunks[j].MinTime)
				}
			}
			require.Equal(t, meta.Stats.CompressedBytes, compressed)

			// Matchers and time ranges.
			names := func(refs []StreamRef) []string {
				var out []string
				for _, r := range refs {
					out = append(out, fmt.Sprintf("%s:%d", r.Labels, len(r.Chunks)))
				}
				return out
			}
			require.Equal(t, []string{`{app="api", env="dev", pod="api-1"}:1`, `{app="api", env="prod"}:1`},
				names(b.Streams(matchers(t, `app="api"`), model.TimeRange{Min: 150, Max: 201})))
			require.Equal(t, []string{`{app="api", env="prod"}:2`},
				names(b.Streams(matchers(t, `app="api"`), model.TimeRange{Min: 200, Max: 202})))
			require.Empty(t, b.Streams(matchers(t, `app="api"`), model.TimeRange{Min: 2000, Max: 3000}))
			require.Equal(t, []string{`{job="cron"}:1`}, names(b.Streams(matchers(t, `app=""`), model.AllTime)))
			require.Equal(t, []string{`{app="db", env="prod", region="eu-1"}:1`, `{app="web", env="prod", pod="web-1"}:1`},
				names(b.Streams(matchers(t, `env="prod"`, `app!="api"`), model.TimeRange{Min: 25, Max: 60})))
			require.Equal(t, []string{"app", "env", "pod"}, b.LabelNames(matchers(t, `app="api"`)))
			require.Equal(t, []string{"app", "env", "job", "pod", "region"}, b.LabelNames(nil))
			require.Equal(t, []string{"db", "web"}, b.LabelValues("app", matchers(t, `env="prod"`, `app!~"a.*"`)))
		})
	}
}

func TestWriterCombinesAndValidates(t *testing.T) {
	ctx := context.Background()
	bkt, _ := newBucket(t)
	r := rand.New(rand.NewPCG(1, 2))
	w, err := NewWriter(bkt, "t", WriterOptions{})
	require.NoError(t, err)
	ls := mustLabels(t, `{a="1"}`)
	require.NoError(t, w.AddStream(ls, []ChunkData{fakeChunk(r, 10, 20, 1)}))
	// The same stream again (and with an empty-valued label) combines.
	require.NoError(t, w.AddStream(model.LabelsFromStrings("a", "1", "b", ""), []ChunkData{fakeChunk(r, 0, 5, 1)}))
	require.Error(t, w.AddStream(model.LabelsFromStrings("b", ""), []ChunkData{fakeChunk(r, 0, 5, 1)}))
	require.Error(t, w.AddStream(ls, []ChunkData{{Meta: ChunkMeta{MinTime: 5, MaxTime: 4, Entries: 1}, Data: []byte{1}}}))
	require.Error(t, w.AddStream(ls, []ChunkData{{Meta: ChunkMeta{Entries: 0}, Data: []byte{1}}}))
	meta, err := w.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, meta.Stats.Streams)
	require.Equal(t, 2, meta.Stats.Chunks)
	require.Equal(t, WindowFor(0, DefaultWindow), meta.Window.Range())
	_, err = w.Flush(ctx)
	require.Error(t, err)
	require.Error(t, w.AddStream(ls, nil))

	w, err = NewWriter(bkt, "t", WriterOptions{})
	require.NoError(t, err)
	_, err = w.Flush(ctx)
	require.ErrorIs(t, err, ErrEmpty)

	_, err = NewWriter(bkt, "a/b", WriterOptions{})
	require.Error(t, err)
	_, err = NewWriter(bkt, "", WriterOptions{})
	require.Error(t, err)
}

func TestWindowFor(t *testing.T) {
	h := int64(time.Hour)
	f := func(ts int64, want model.TimeRange) {
		t.Helper()
		require.Equal(t, want, WindowFor(ts, 2*time.Hour))
	}
	f(0, model.TimeRange{Min: 0, Max: 2 * h})
	f(2*h-1, model.TimeRange{Min: 0, Max: 2 * h})
	f(2*h, model.TimeRange{Min: 2 * h, Max: 4 * h})
	f(-1, model.TimeRange{Min: -2 * h, Max: 0})
	f(-2*h, model.TimeRange{Min: -2 * h, Max: 0})
}

// recordingBucket records the order of uploads and deletes.
type recordingBucket struct {
	objstore.Bucket
	mu  sync.Mutex
	ops []string
}

func (b *recordingBucket) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	b.mu.Lock()
	b.ops = append(b.ops, "upload "+name[strings.LastIndex(name, "/")+1:])
	b.mu.Unlock()
	return b.Bucket.Upload(ctx, name, r, opts...)
}

func (b *recordingBucket) Delete(ctx context.Context, name string) error {
	b.mu.Lock()
	b.ops = append(b.ops, "delete "+name[strings.LastIndex(name, "/")+1:])
	b.mu.Unlock()
	return b.Bucket.Delete(ctx, name)
}

func TestUploadOrderMetaLast(t *testing.T) {
	fs, _ := newBucket(t)
	bkt := &recordingBucket{Bucket: fs}
	writeBlock(t, bkt, "t", WriterOptions{MaxSegmentSize: 300}, testStreams)
	require.Greater(t, len(bkt.ops), 3)
	require.Equal(t, "upload meta.json", bkt.ops[len(bkt.ops)-1])
	require.Equal(t, "upload index", bkt.ops[len(bkt.ops)-2])
	for _, op := range bkt.ops[:len(bkt.ops)-2] {
		require.True(t, strings.HasPrefix(op, "upload 0000"), op)
	}
}

func TestPartialBlockIgnored(t *testing.T) {
	ctx := context.Background()
	bkt, _ := newBucket(t)
	complete, _ := writeBlock(t, bkt, "t", WriterOptions{}, testStreams)
	partial, _ := writeBlock(t, bkt, "t", WriterOptions{}, testStreams)
	require.NoError(t, bkt.Delete(ctx, Dir("t", partial.ULID)+MetaFilename))
	// A directory that is not a ULID is ignored too.
	require.NoError(t, bkt.Upload(ctx, "t/not-a-block/meta.json", strings.NewReader("{}")))

	metas, err := ListMetas(ctx, bkt, "t")
	require.NoError(t, err)
	require.Len(t, metas, 1)
	require.Equal(t, complete.ULID, metas[0].ULID)
	s, err := ScanTenant(ctx, bkt, "t", nil)
	require.NoError(t, err)
	require.Equal(t, []ulid.ULID{partial.ULID}, s.Partial)
	_, err = Open(ctx, bkt, "t", partial.ULID)
	require.ErrorIs(t, err, ErrNotFound)
}

func TestDeletionProtocol(t *testing.T) {
	ctx := context.Background()
	fs, dir := newBucket(t)
	bkt := &recordingBucket{Bucket: fs}
	keep, _ := writeBlock(t, bkt, "t", WriterOptions{}, testStreams)
	gone, _ := writeBlock(t, bkt, "t", WriterOptions{MaxSegmentSize: 300}, testStreams)

	opened, err := Open(ctx, bkt, "t", gone.ULID)
	require.NoError(t, err)

	require.NoError(t, WriteDeletionMark(ctx, bkt, "t", DeletionMark{ID: gone.ULID, DeletionTime: 1000, Details: DeletionCompacted}))
	// A second mark keeps the first one's time.
	require.NoError(t, MarkForDeletion(ctx, bkt, "t", gone.ULID))
	mark, err := ReadDeletionMark(ctx, bkt, "t", gone.ULID)
	require.NoError(t, err)
	require.Equal(t, int64(1000), mark.DeletionTime)
	require.Equal(t, DeletionCompacted, mark.Details)

	metas, err := ListMetas(ctx, bkt, "t")
	require.NoError(t, err)
	require.Equal(t, []ulid.ULID{keep.ULID}, ids(metas))
	s, err := ScanTenant(ctx, bkt, "t", nil)
	require.NoError(t, err)
	require.Len(t, s.Marked, 1)
	require.Equal(t, int64(1000), s.Marked[0].Mark.DeletionTime)
	require.NotNil(t, s.Marked[0].Meta)

	// A reader that opened the block before the mark can still read it.
	ref := opened.Streams(nil, model.AllTime)[0]
	_, err = opened.ReadChunk(ctx, ref.Chunks[0])
	require.NoError(t, err)

	bkt.ops = nil
	require.NoError(t, Delete(ctx, bkt, "t", gone.ULID))
	require.Equal(t, "delete meta.json", bkt.ops[0])
	require.Equal(t, "delete deletion-mark.json", bkt.ops[len(bkt.ops)-1])
	_, err = os.Stat(filepath.Join(dir, "t", gone.ULID.String()))
	require.True(t, os.IsNotExist(err), "block directory removed")
	require.NoError(t, Delete(ctx, bkt, "t", gone.ULID), "deleting twice is fine")

	s, err = ScanTenant(ctx, bkt, "t", nil)
	require.NoError(t, err)
	require.Empty(t, s.Marked)
	require.Equal(t, []ulid.ULID{keep.ULID}, ids(s.Live))
}

func ids(ms []Meta) []ulid.ULID {
	var out []ulid.ULID
	for _, m := range ms {
		out = append(out, m.ULID)
	}
	return out
}

func TestCorruptIndexQuarantine(t *testing.T) {
	ctx := context.Background()
	damage := map[string]func(b []byte) []byte{
		"flip":     func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b },
		"truncate": func(b []byte) []byte { return b[:len(b)-10] },
		"empty":    func(b []byte) []byte { return nil },
	}
	for name, fn := range damage {
		t.Run(name, func(t *testing.T) {
			bkt, dir := newBucket(t)
			good, _ := writeBlock(t, bkt, "t", WriterOptions{}, testStreams)
			bad, _ := writeBlock(t, bkt, "t", WriterOptions{}, testStreams)
			path := filepath.Join(dir, "t", bad.ULID.String(), IndexFilename)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, fn(b), 0o644))

			_, err = Open(ctx, bkt, "t", bad.ULID)
			var ce *iter.CorruptionError
			require.ErrorAs(t, err, &ce)
			require.Contains(t, ce.Object, bad.ULID.String()+"/index")

			require.NoError(t, Quarantine(ctx, bkt, "t", bad.ULID, err.Error()))
			metas, err := ListMetas(ctx, bkt, "t")
			require.NoError(t, err)
			require.Equal(t, []ulid.ULID{good.ULID}, ids(metas))
			s, err := ScanTenant(ctx, bkt, "t", nil)
			require.NoError(t, err)
			require.Len(t, s.Quarantined, 1)
			require.Equal(t, bad.ULID, s.Quarantined[0].ID)

			// The other block is still readable.
			gb, err := Open(ctx, bkt, "t", good.ULID)
			require.NoError(t, err)
			for _, ref := range gb.Streams(nil, model.AllTime) {
				for _, c := range ref.Chunks {
					_, err := gb.ReadChunk(ctx, c)
					require.NoError(t, err)
				}
			}
		})
	}
}

func TestCorruptMetaSkipped(t *testing.T) {
	ctx := context.Background()
	bkt, dir := newBucket(t)
	good, _ := writeBlock(t, bkt, "t", WriterOptions{}, testStreams)
	bad, _ := writeBlock(t, bkt, "t", WriterOptions{}, testStreams)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t", bad.ULID.String(), MetaFilename), []byte(`{"ulid": "nope`), 0o644))

	metas, err := ListMetas(ctx, bkt, "t")
	require.NoError(t, err)
	require.Equal(t, []ulid.ULID{good.ULID}, ids(metas))
	s, err := ScanTenant(ctx, bkt, "t", nil)
	require.NoError(t, err)
	require.Len(t, s.Unreadable, 1)
	_, err = Open(ctx, bkt, "t", bad.ULID)
	var ce *iter.CorruptionError
	require.ErrorAs(t, err, &ce)
}

func TestCorruptChunk(t *testing.T) {
	ctx := context.Background()
	bkt, dir := newBucket(t)
	meta, _ := writeBlock(t, bkt, "t", WriterOptions{}, testStreams)
	b, err := Open(ctx, bkt, "t", meta.ULID)
	require.NoError(t, err)
	ref := b.Streams(nil, model.AllTime)[0].Chunks[0]

	path := filepath.Join(dir, "t", meta.ULID.String(), SegmentName(ref.Segment))
	seg, err := os.ReadFile(path)
	require.NoError(t, err)
	seg[ref.Offset+1] ^= 0xff
	require.NoError(t, os.WriteFile(path, seg, 0o644))
	_, err = b.ReadChunk(ctx, ref)
	var ce *iter.CorruptionError
	require.ErrorAs(t, err, &ce)

	require.NoError(t, os.WriteFile(path, seg[:ref.Offset+2], 0o644))
	_, err = b.ReadChunk(ctx, ref)
	require.ErrorAs(t, err, &ce)
}

func TestSupersededBlocksHidden(t *testing.T) {
	ctx := context.Background()
	bkt, _ := newBucket(t)
	a, _ := writeBlock(t, bkt, "t", WriterOptions{}, testStreams)
	b, _ := writeBlock(t, bkt, "t", WriterOptions{}, testStreams)
	other, _ := writeBlock(t, bkt, "t", WriterOptions{}, testStreams)

	// A compacted block from a and b, uploaded but not yet complete, hides
	// nothing.
	c, _ := writeBlock(t, bkt, "t", WriterOptions{Level: 2, Sources: []ulid.ULID{b.ULID, a.ULID}}, testStreams)
	require.Equal(t, []ulid.ULID{a.ULID, b.ULID}, c.Compaction.Sources, "sources are sorted")
	require.NoError(t, bkt.Delete(ctx, Dir("t", c.ULID)+MetaFilename))
	metas, err := ListMetas(ctx, bkt, "t")
	require.NoError(t, err)
	require.ElementsMatch(t, []ulid.ULID{a.ULID, b.ULID, other.ULID}, ids(metas))

	// Once complete, it hides its sources, though they are not marked yet.
	c, _ = writeBlock(t, bkt, "t", WriterOptions{Level: 2, Sources: []ulid.ULID{a.ULID, b.ULID}}, testStreams)
	metas, err = ListMetas(ctx, bkt, "t")
	require.NoError(t, err)
	require.ElementsMatch(t, []ulid.ULID{c.ULID, other.ULID}, ids(metas))
	s, err := ScanTenant(ctx, bkt, "t", nil)
	require.NoError(t, err)
	require.ElementsMatch(t, []ulid.ULID{a.ULID, b.ULID}, ids(s.Superseded))

	// A rewrite with the same sources and level and a newer ULID wins.
	later := func() time.Time { return time.Now().Add(time.Hour) }
	c2, _ := writeBlock(t, bkt, "t", WriterOptions{Level: 2, Sources: []ulid.ULID{a.ULID, b.ULID}, Now: later}, testStreams)
	metas, err = ListMetas(ctx, bkt, "t")
	require.NoError(t, err)
	require.ElementsMatch(t, []ulid.ULID{c2.ULID, other.ULID}, ids(metas))

	// A quarantined block hides nothing.
	require.NoError(t, Quarantine(ctx, bkt, "t", c2.ULID, "test"))
	require.NoError(t, Quarantine(ctx, bkt, "t", c.ULID, "test"))
	metas, err = ListMetas(ctx, bkt, "t")
	require.NoError(t, err)
	require.ElementsMatch(t, []ulid.ULID{a.ULID, b.ULID, other.ULID}, ids(metas))
}

func TestReadChunkConcurrent(t *testing.T) {
	ctx := context.Background()
	bkt, _ := newBucket(t)
	meta, in := writeBlock(t, bkt, "t", WriterOptions{MaxSegmentSize: 300}, testStreams)
	b, err := Open(ctx, bkt, "t", meta.ULID)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ref := range b.Streams(nil, model.AllTime) {
				for _, c := range ref.Chunks {
					data, err := b.ReadChunk(ctx, c)
					if err != nil {
						errs <- err
						return
					}
					found := false
					for _, cd := range in[ref.Labels.String()].chunks {
						found = found || bytes.Equal(cd.Data, data)
					}
					if !found {
						errs <- errors.New("chunk data mismatch")
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestInMemBucket(t *testing.T) {
	ctx := context.Background()
	bkt := llobjstore.NewInMem()
	meta, _ := writeBlock(t, bkt, "t", WriterOptions{}, testStreams)
	metas, err := ListMetas(ctx, bkt, "t")
	require.NoError(t, err)
	require.Equal(t, []ulid.ULID{meta.ULID}, ids(metas))
	b, err := Open(ctx, bkt, "t", meta.ULID)
	require.NoError(t, err)
	c := b.Streams(nil, model.AllTime)[0].Chunks[0]
	_, err = b.ReadChunk(ctx, c)
	require.NoError(t, err)
	require.NoError(t, MarkForDeletion(ctx, bkt, "t", meta.ULID))
	require.NoError(t, Delete(ctx, bkt, "t", meta.ULID))
	s, err := ScanTenant(ctx, bkt, "t", nil)
	require.NoError(t, err)
	require.Empty(t, s.Live)
	require.Empty(t, s.Marked)
	require.Empty(t, s.Partial)
}
