package block

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/chunk"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
	llobjstore "github.com/ledgerlog/ledgerlog/internal/storage/objstore"
)

const needle = "4bf92f3577b34da6a3ce929d0e0e4736"

// realChunks encodes streams of JSON lines as real chunks; the line at
// index 777 of stream 2 carries the needle.
func realChunks(t testing.TB, streams, lines int) map[string][]ChunkData {
	r := rand.New(rand.NewPCG(4, 4))
	out := map[string][]ChunkData{}
	for s := range streams {
		b := chunk.NewBuilder(chunk.EncZstd, 8<<10)
		for i := range lines {
			trace := fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
			if s == 2 && i == 777 {
				trace = needle
			}
			line := fmt.Sprintf(`{"level":"INFO","fields":{"message":"Payment authorised","transaction_id":"tx-%08x-%08x","trace_id":"%s"}}`, r.Uint32(), r.Uint32(), trace)
			require.True(t, b.Append(model.Entry{Timestamp: int64(i * 1000), Line: line, Metadata: model.EmptyLabels()}))
		}
		data, m, err := b.Encode()
		require.NoError(t, err)
		out[fmt.Sprintf(`{app="a", stream="%d"}`, s)] = []ChunkData{{Meta: ChunkMeta(m), Data: data}}
	}
	return out
}

func writeRealBlock(t testing.TB, bkt objstore.Bucket, streams map[string][]ChunkData) Meta {
	w, err := NewWriter(bkt, "t", WriterOptions{})
	require.NoError(t, err)
	for k, cs := range streams {
		require.NoError(t, w.AddStream(mustLabels(t, k), cs))
	}
	meta, err := w.Flush(context.Background())
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return meta
}

// countingBucket counts ranged GETs and the bytes they return.
type countingBucket struct {
	objstore.Bucket
	gets, bytes atomic.Int64
}

func (b *countingBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	b.gets.Add(1)
	b.bytes.Add(length)
	return b.Bucket.GetRange(ctx, name, off, length)
}

func (b *countingBucket) reset() { b.gets.Store(0); b.bytes.Store(0) }

// query runs a needle query over every chunk of b through OpenChunk.
func query(t testing.TB, b *Block, f *iter.Filter) []model.Entry {
	ctx := context.Background()
	var out []model.Entry
	for _, s := range b.Streams(nil, model.AllTime) {
		for _, ref := range s.Chunks {
			c, err := b.OpenChunk(ctx, ref)
			require.NoError(t, err)
			it := c.Iterator(model.AllTime, model.Forward, f)
			for it.Next() {
				out = append(out, it.At())
			}
			require.NoError(t, it.Err())
			require.NoError(t, it.Close())
		}
	}
	return out
}

func TestOpenChunkCache(t *testing.T) {
	ctx := context.Background()
	fs, _ := newBucket(t)
	bkt := &countingBucket{Bucket: fs}
	streams := realChunks(t, 4, 2000)
	meta := writeRealBlock(t, bkt, streams)
	cache := NewChunkCache(DefaultChunkCacheBytes)
	opened, err := Open(ctx, bkt, "t", meta.ULID)
	require.NoError(t, err)
	b := opened.WithChunkCache(cache)
	f := &iter.Filter{Needles: [][]byte{[]byte(needle)}}

	// Cold: header and tail of every chunk, plus the page holding the needle.
	bkt.reset()
	got := query(t, b, f)
	require.Len(t, got, 1)
	require.Contains(t, got[0].Line, needle)
	cold := bkt.bytes.Load()
	require.Less(t, cold, meta.Stats.CompressedBytes/3, "cold needle query read %d of %d bytes", cold, meta.Stats.CompressedBytes)
	require.LessOrEqual(t, bkt.gets.Load(), int64(4*3+1))
	s := cache.Stats()
	require.Equal(t, 4, s.Entries)
	require.Equal(t, int64(4), s.Misses)
	require.Positive(t, s.Bytes)

	// Warm: only the page that may hold the needle.
	bkt.reset()
	got = query(t, b, f)
	require.Len(t, got, 1)
	require.LessOrEqual(t, bkt.gets.Load(), int64(2))
	require.Less(t, bkt.bytes.Load(), int64(16<<10))
	require.Equal(t, int64(4), cache.Stats().Hits)

	// An unfiltered read returns exactly what ReadChunk + chunk.Open do.
	for _, sr := range b.Streams(nil, model.AllTime) {
		for _, ref := range sr.Chunks {
			data, err := b.ReadChunk(ctx, ref)
			require.NoError(t, err)
			full, err := chunk.Open(data)
			require.NoError(t, err)
			lazy, err := b.OpenChunk(ctx, ref)
			require.NoError(t, err)
			require.Equal(t, full.Meta(), lazy.Meta())
			for _, dir := range []model.Direction{model.Forward, model.Backward} {
				want := drain(t, full.Iterator(model.AllTime, dir, nil))
				require.Equal(t, want, drain(t, lazy.Iterator(model.AllTime, dir, nil)))
			}
		}
	}

	// No cache: still correct, every open reads the tail again.
	nocache := opened.WithChunkCache(nil)
	bkt.reset()
	require.Len(t, query(t, nocache, f), 1)
	require.GreaterOrEqual(t, bkt.gets.Load(), int64(4*2))
}

func drain(t testing.TB, it iter.EntryIterator) []model.Entry {
	var out []model.Entry
	for it.Next() {
		out = append(out, it.At())
	}
	require.NoError(t, it.Err())
	require.NoError(t, it.Close())
	return out
}

func TestChunkCacheBound(t *testing.T) {
	ctx := context.Background()
	bkt, _ := newBucket(t)
	meta := writeRealBlock(t, bkt, realChunks(t, 6, 300))
	opened, err := Open(ctx, bkt, "t", meta.ULID)
	require.NoError(t, err)
	one := int64(0)
	{
		c := NewChunkCache(1 << 30)
		query(t, opened.WithChunkCache(c), nil)
		one = c.Stats().Bytes / 6
	}
	cache := NewChunkCache(3*one + one/2)
	b := opened.WithChunkCache(cache)
	for range 3 {
		query(t, b, nil)
		s := cache.Stats()
		require.LessOrEqual(t, s.Bytes, 3*one+one/2)
		require.Equal(t, 3, s.Entries)
	}
	require.Positive(t, cache.Stats().Evictions)
	cache.SetMaxBytes(0)
	require.Zero(t, cache.Stats().Entries)
	require.Zero(t, cache.Stats().Bytes)
	require.NotNil(t, SharedChunkCache())
}

func TestOpenChunkConcurrent(t *testing.T) {
	ctx := context.Background()
	bkt, _ := newBucket(t)
	meta := writeRealBlock(t, bkt, realChunks(t, 4, 1000))
	opened, err := Open(ctx, bkt, "t", meta.ULID)
	require.NoError(t, err)
	b := opened.WithChunkCache(NewChunkCache(DefaultChunkCacheBytes))
	f := &iter.Filter{Needles: [][]byte{[]byte(needle)}}
	var wg sync.WaitGroup
	var found atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				for _, s := range b.Streams(nil, model.AllTime) {
					for _, ref := range s.Chunks {
						c, err := b.OpenChunk(ctx, ref)
						if err != nil {
							t.Error(err)
							return
						}
						it := c.Iterator(model.AllTime, model.Backward, f)
						for it.Next() {
							found.Add(1)
						}
						if err := it.Err(); err != nil {
							t.Error(err)
						}
						_ = it.Close()
					}
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int64(8*5), found.Load())
}

// TestOpenChunkCorruption damages a page and then the page table in the
// segment file: the page surfaces from the iterator, the table from
// OpenChunk, both as corruption.
func TestOpenChunkCorruption(t *testing.T) {
	ctx := context.Background()
	bkt, dir := newBucket(t)
	meta := writeRealBlock(t, bkt, realChunks(t, 1, 500))
	b, err := Open(ctx, bkt, "t", meta.ULID)
	require.NoError(t, err)
	ref := b.Streams(nil, model.AllTime)[0].Chunks[0]
	path := filepath.Join(dir, "t", meta.ULID.String(), SegmentName(ref.Segment))
	seg, err := os.ReadFile(path)
	require.NoError(t, err)

	bad := append([]byte(nil), seg...)
	bad[ref.Offset+100] ^= 0xff // inside the first page
	require.NoError(t, os.WriteFile(path, bad, 0o644))
	c, err := b.WithChunkCache(nil).OpenChunk(ctx, ref)
	require.NoError(t, err)
	_, err = collectErr(c.Iterator(model.AllTime, model.Forward, nil))
	var ce *iter.CorruptionError
	require.True(t, errors.As(err, &ce), "%v", err)

	bad = append([]byte(nil), seg...)
	bad[ref.Offset+int64(ref.Length)-20] ^= 0xff // inside the page table
	require.NoError(t, os.WriteFile(path, bad, 0o644))
	_, err = b.WithChunkCache(nil).OpenChunk(ctx, ref)
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Equal(t, Dir("t", meta.ULID)+SegmentName(ref.Segment), ce.Object)
	require.Greater(t, ce.Offset, ref.Offset)

	// A truncated segment: a short read is corruption too.
	require.NoError(t, os.WriteFile(path, seg[:ref.Offset+int64(ref.Length)/2], 0o644))
	_, err = b.WithChunkCache(nil).OpenChunk(ctx, ref)
	require.True(t, errors.As(err, &ce), "%v", err)
}

func collectErr(it iter.EntryIterator) (int, error) {
	n := 0
	for it.Next() {
		n++
	}
	err := it.Err()
	_ = it.Close()
	return n, err
}

// BenchmarkOpenChunkNeedle runs a needle query over every chunk of a block
// through OpenChunk with a warm cache (the steady state of repeated
// searches) and cold (no cache: every chunk's tail is read).
func BenchmarkOpenChunkNeedle(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	bkt, err := llobjstore.NewFilesystem(dir)
	if err != nil {
		b.Fatal(err)
	}
	streams := realChunks(b, 32, 3000)
	meta := writeRealBlock(b, bkt, streams)
	opened, err := Open(ctx, bkt, "t", meta.ULID)
	if err != nil {
		b.Fatal(err)
	}
	f := &iter.Filter{Needles: [][]byte{[]byte(needle)}}
	for _, mode := range []string{"warm", "cold", "readchunk"} {
		b.Run(mode, func(b *testing.B) {
			blk := opened.WithChunkCache(NewChunkCache(DefaultChunkCacheBytes))
			if mode != "warm" {
				blk = opened.WithChunkCache(nil)
			}
			b.SetBytes(meta.Stats.Bytes)
			for b.Loop() {
				n := 0
				for _, s := range blk.Streams(nil, model.AllTime) {
					for _, ref := range s.Chunks {
						var c *chunk.Chunk
						if mode == "readchunk" {
							data, err := blk.ReadChunk(ctx, ref)
							if err == nil {
								c, err = chunk.Open(data)
							}
							if err != nil {
								b.Fatal(err)
							}
						} else if c, err = blk.OpenChunk(ctx, ref); err != nil {
							b.Fatal(err)
						}
						k, err := collectErr(c.Iterator(model.AllTime, model.Backward, f))
						if err != nil {
							b.Fatal(err)
						}
						n += k
					}
				}
				if n != 1 {
					b.Fatalf("found %d lines", n)
				}
			}
		})
	}
}
