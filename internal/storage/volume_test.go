package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/head"
	"github.com/ledgerlog/ledgerlog/internal/storage/objstore"
)

// bruteVolume counts what a forward read returns: the reference Volume must
// equal.
func bruteVolume(t *testing.T, db *DB, tenantID string, ms []*model.Matcher, r model.TimeRange, step time.Duration) map[string]StreamVolume {
	t.Helper()
	it, err := db.SelectLogs(context.Background(), SelectParams{Tenant: tenantID, Matchers: ms, Range: r, Direction: model.Forward})
	require.NoError(t, err)
	defer it.Close()
	out := map[string]StreamVolume{}
	for it.Next() {
		k := it.Labels().String()
		v := out[k]
		v.Labels = it.Labels()
		e := it.At()
		n := int64(len(e.Line))
		e.Metadata.Range(func(l model.Label) { n += int64(len(l.Name) + len(l.Value)) })
		v.Entries++
		v.Bytes += n
		if step > 0 {
			start := r.Min + (e.Timestamp-r.Min)/step.Nanoseconds()*step.Nanoseconds()
			if len(v.Steps) == 0 || v.Steps[len(v.Steps)-1].Start != start {
				v.Steps = append(v.Steps, StepVolume{Start: start})
			}
			v.Steps[len(v.Steps)-1].Entries++
			v.Steps[len(v.Steps)-1].Bytes += n
		}
		out[k] = v
	}
	require.NoError(t, it.Err())
	return out
}

func TestVolumeExact(t *testing.T) {
	ctx := context.Background()
	opts := head.DefaultOptions()
	opts.ChunkTargetSize = 2 << 10 // many small chunks
	opts.PageSize = 512
	db, err := Open(ctx, Options{Head: opts, Bucket: objstore.NewInMem()})
	require.NoError(t, err)

	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixNano()
	rnd := rand.New(rand.NewPCG(1, 2))
	push := func(app string, from, to int, tag string) {
		var es []model.Entry
		for i := from; i < to; i++ {
			e := model.Entry{Timestamp: base + int64(i)*int64(time.Second), Line: fmt.Sprintf("%s line %d %s", app, i, tag)}
			if i%7 == 0 {
				e.Metadata = model.LabelsFromStrings("trace_id", fmt.Sprint("t", rnd.IntN(1000)))
			}
			es = append(es, e)
		}
		require.NoError(t, db.Push("t1", []model.Stream{{Labels: model.LabelsFromStrings("app", app), Entries: es}}, head.Limits{UnorderedWrites: true}))
	}
	push("a", 0, 400, "x")
	push("b", 100, 300, "x")
	require.NoError(t, db.Flush(ctx, true)) // into blocks
	push("a", 350, 700, "y")                // overlaps the flushed chunks of a
	push("a", 390, 400, "x")                // exact duplicates of flushed entries
	push("c", 0, 50, "x")

	ms := []*model.Matcher{labels.MustNewMatcher(model.MatchRegexp, "app", ".+")}
	check := func(r model.TimeRange, step time.Duration) {
		t.Helper()
		got, err := db.Volume(ctx, "t1", ms, r, step)
		require.NoError(t, err)
		want := bruteVolume(t, db, "t1", ms, r, step)
		require.Len(t, got, len(want), "range %v step %v", r, step)
		for _, v := range got {
			w := want[v.Labels.String()]
			require.Equal(t, w.Entries, v.Entries, "%s range %v step %v", v.Labels, r, step)
			require.Equal(t, w.Bytes, v.Bytes, "%s range %v step %v", v.Labels, r, step)
			if step > 0 {
				require.Equal(t, w.Steps, v.Steps, "%s range %v step %v", v.Labels, r, step)
			}
		}
	}
	sec := int64(time.Second)
	check(model.TimeRange{Min: base, Max: base + 1000*sec}, 0)
	check(model.TimeRange{Min: base + 37*sec, Max: base + 512*sec}, 0)
	check(model.TimeRange{Min: base, Max: base + 1000*sec}, 60*time.Second)
	check(model.TimeRange{Min: base - 5*sec, Max: base + 777*sec}, 13*time.Second)
	for i := 0; i < 20; i++ {
		lo := base + rnd.Int64N(700*sec)
		hi := lo + 1 + rnd.Int64N(700*sec)
		check(model.TimeRange{Min: lo, Max: hi}, time.Duration(rnd.Int64N(int64(100*time.Second))))
	}

	// The de-duplicated count of a: 400 "x" lines and 350 "y" lines (the
	// re-pushed "x" lines count once), whatever the storage layout.
	got, err := db.Volume(ctx, "t1", []*model.Matcher{labels.MustNewMatcher(model.MatchEqual, "app", "a")}, model.TimeRange{Min: base, Max: base + 1000*sec}, 0)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, int64(750), got[0].Entries)

	// Empty and inverted ranges.
	got, err = db.Volume(ctx, "t1", ms, model.TimeRange{Min: base + 5000*sec, Max: base + 6000*sec}, 0)
	require.NoError(t, err)
	require.Empty(t, got)
	got, err = db.Volume(ctx, "t1", ms, model.TimeRange{Min: base, Max: base}, 0)
	require.NoError(t, err)
	require.Empty(t, got)
	_, err = db.Volume(ctx, "t1", ms, model.TimeRange{Min: base, Max: base + sec}, -time.Second)
	require.Error(t, err)
}

// BenchmarkVolume measures a volume over flushed blocks: "whole" counts
// every chunk from its metadata, "straddling" decodes every chunk (the
// range cuts them all) to count exactly.
func BenchmarkVolume(b *testing.B) {
	ctx := context.Background()
	opts := head.DefaultOptions()
	opts.ChunkTargetSize = 64 << 10
	db, err := Open(ctx, Options{Head: opts, Bucket: objstore.NewInMem()})
	require.NoError(b, err)
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixNano()
	const streams, perStream = 20, 5000
	var lines, bytes int64
	for s := 0; s < streams; s++ {
		es := make([]model.Entry, perStream)
		for i := range es {
			es[i] = model.Entry{Timestamp: base + int64(i)*int64(time.Second), Line: fmt.Sprintf("level=info stream=%d msg=\"request %d done\" duration=%dms", s, i, i%977)}
			lines++
			bytes += int64(len(es[i].Line))
		}
		require.NoError(b, db.Push("t", []model.Stream{{Labels: model.LabelsFromStrings("app", fmt.Sprint("app", s)), Entries: es}}, head.Limits{UnorderedWrites: true}))
	}
	require.NoError(b, db.Flush(ctx, true))
	ms := []*model.Matcher{labels.MustNewMatcher(model.MatchRegexp, "app", ".+")}
	for _, bc := range []struct {
		name string
		r    model.TimeRange
		step time.Duration
	}{
		{"whole", model.TimeRange{Min: base, Max: base + perStream*int64(time.Second)}, 0},
		{"straddling", model.TimeRange{Min: base + 1, Max: base + perStream*int64(time.Second)}, 7 * time.Second},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(bytes)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				vs, err := db.Volume(ctx, "t", ms, bc.r, bc.step)
				if err != nil || len(vs) != streams {
					b.Fatalf("volume: %v, %d streams", err, len(vs))
				}
			}
			b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
