package chunk

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// collect drains an iterator.
func collect(t testing.TB, it iter.EntryIterator) ([]model.Entry, error) {
	t.Helper()
	var out []model.Entry
	for it.Next() {
		out = append(out, it.At())
	}
	err := it.Err()
	require.NoError(t, it.Close())
	return out, err
}

// expected is the reference semantics: entries in range that pass f,
// sorted by timestamp with insertion order for ties, reversed for Backward.
func expected(accepted []model.Entry, r model.TimeRange, dir model.Direction, f *iter.Filter) []model.Entry {
	var out []model.Entry
	for _, e := range accepted {
		if r.Contains(e.Timestamp) && f.Accept([]byte(e.Line)) {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b model.Entry) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
	if dir == model.Backward {
		slices.Reverse(out)
	}
	return out
}

func requireEntries(t testing.TB, want, got []model.Entry, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, len(want), len(got), msgAndArgs...)
	for i := range want {
		require.Equal(t, want[i].Timestamp, got[i].Timestamp, msgAndArgs...)
		require.Equal(t, want[i].Line, got[i].Line, msgAndArgs...)
		require.Equal(t, want[i].Metadata.String(), got[i].Metadata.String(), msgAndArgs...)
	}
}

// randomEntries returns n entries with unique lines, timestamps mostly
// increasing with some out-of-order ones and ties, some with metadata.
func randomEntries(r *rand.Rand, n int) []model.Entry {
	es := make([]model.Entry, 0, n)
	ts := int64(1_795_564_800_000_000_000)
	for i := range n {
		switch r.IntN(10) {
		case 0: // out of order
			ts -= int64(r.IntN(5_000_000))
		case 1: // tie
		default:
			ts += int64(r.IntN(2_000_000))
		}
		line := fmt.Sprintf(`{"level":"INFO","seq":%d,"msg":"%s","trace_id":"%016x"}`, i, strings.Repeat("x", r.IntN(80)), r.Uint64())
		e := model.Entry{Timestamp: ts, Line: line, Metadata: model.EmptyLabels()}
		if r.IntN(4) == 0 {
			e.Metadata = model.LabelsFromStrings("trace_id", fmt.Sprintf("%x", r.Uint32()), "user", fmt.Sprint(r.IntN(10)))
		}
		es = append(es, e)
	}
	return es
}

func build(t testing.TB, enc Encoding, pageSize int, es []model.Entry) (*Builder, []model.Entry) {
	t.Helper()
	b := NewBuilder(enc, pageSize)
	var accepted []model.Entry
	for _, e := range es {
		if b.Append(e) {
			accepted = append(accepted, e)
		}
	}
	return b, accepted
}

func encodeOpen(t testing.TB, b *Builder) *Chunk {
	t.Helper()
	data, meta, err := b.Encode()
	require.NoError(t, err)
	require.Equal(t, len(data), meta.CompressedBytes)
	c, err := Open(data)
	require.NoError(t, err)
	require.Equal(t, meta, c.Meta())
	return c
}

func TestRoundTrip(t *testing.T) {
	for _, enc := range Encodings() {
		t.Run(enc.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(enc)))
			b, accepted := build(t, enc, 2048, randomEntries(r, 2000))
			require.Len(t, accepted, 2000)
			snap := b.Snapshot()
			c := encodeOpen(t, b)
			require.Greater(t, c.Pages(), 20)
			require.Equal(t, enc, c.Encoding())
			m := c.Meta()
			require.Equal(t, 2000, m.Entries)
			require.Equal(t, m.Entries, snap.Meta().Entries)
			require.Equal(t, m.MinTime, snap.Meta().MinTime)
			require.Equal(t, m.MaxTime, snap.Meta().MaxTime)
			require.Equal(t, m.UncompressedBytes, snap.Meta().UncompressedBytes)
			for _, dir := range []model.Direction{model.Forward, model.Backward} {
				want := expected(accepted, model.AllTime, dir, nil)
				got, err := collect(t, c.Iterator(model.AllTime, dir, nil))
				require.NoError(t, err)
				requireEntries(t, want, got, "chunk %s", dir)
				got, err = collect(t, snap.Iterator(model.AllTime, dir, nil))
				require.NoError(t, err)
				requireEntries(t, want, got, "snapshot %s", dir)
			}
		})
	}
}

func TestEmptyChunk(t *testing.T) {
	b := NewBuilder(EncZstd, 0)
	require.Equal(t, 0, b.Meta().Entries)
	c := encodeOpen(t, b)
	require.Equal(t, 0, c.Pages())
	require.Equal(t, Meta{CompressedBytes: headerSize + 2 + footerSize}, c.Meta())
	got, err := collect(t, c.Iterator(model.AllTime, model.Backward, nil))
	require.NoError(t, err)
	require.Empty(t, got)
	got, err = collect(t, b.Snapshot().Iterator(model.AllTime, model.Forward, nil))
	require.NoError(t, err)
	require.Empty(t, got)
}

func entry(ts int64, line string) model.Entry {
	return model.Entry{Timestamp: ts, Line: line, Metadata: model.EmptyLabels()}
}

func lines(es []model.Entry) string {
	var s []string
	for _, e := range es {
		s = append(s, fmt.Sprintf("%d:%s", e.Timestamp, e.Line))
	}
	return strings.Join(s, " ")
}

// TestOrderAndTies checks out-of-order appends, overlapping pages and the
// tie rule: equal timestamps keep insertion order forward and reverse it
// backward, within a page and across pages.
func TestOrderAndTies(t *testing.T) {
	// Page size 1: every entry is its own page, so all merging is across
	// pages. Page size 1 MiB: one page, all ordering by the stable sort.
	for _, pageSize := range []int{1, 3, 1 << 20} {
		t.Run(fmt.Sprint(pageSize), func(t *testing.T) {
			b := NewBuilder(EncSnappy, pageSize)
			for _, e := range []model.Entry{
				entry(30, "a"), entry(10, "b"), entry(20, "c"), entry(10, "d"),
				entry(40, "e"), entry(10, "f"), entry(30, "g"), entry(5, "h"),
			} {
				require.True(t, b.Append(e))
			}
			fwd := "5:h 10:b 10:d 10:f 20:c 30:a 30:g 40:e"
			bwd := "40:e 30:g 30:a 20:c 10:f 10:d 10:b 5:h"
			check := func(name string, it func(model.Direction) iter.EntryIterator) {
				got, err := collect(t, it(model.Forward))
				require.NoError(t, err)
				require.Equal(t, fwd, lines(got), name)
				got, err = collect(t, it(model.Backward))
				require.NoError(t, err)
				require.Equal(t, bwd, lines(got), name)
			}
			snap := b.Snapshot()
			check("snapshot", func(d model.Direction) iter.EntryIterator { return snap.Iterator(model.AllTime, d, nil) })
			c := encodeOpen(t, b)
			check("chunk", func(d model.Direction) iter.EntryIterator { return c.Iterator(model.AllTime, d, nil) })
			require.Equal(t, Meta{MinTime: 5, MaxTime: 40, Entries: 8, UncompressedBytes: 8, CompressedBytes: c.Meta().CompressedBytes}, c.Meta())
		})
	}
}

func TestDuplicates(t *testing.T) {
	b := NewBuilder(EncZstd, 12) // seal after 12 line bytes
	f := func(e model.Entry, want bool) {
		t.Helper()
		require.Equal(t, want, b.Append(e), "%d %q", e.Timestamp, e.Line)
	}
	f(entry(10, "hello"), true)
	f(entry(10, "hello"), false) // exact duplicate in the open page
	f(entry(10, "world"), true)  // same timestamp, other line
	f(entry(11, "hello"), true)  // same line, other timestamp; 15 bytes seal the page
	// The newest sealed entry is 11:hello.
	f(entry(11, "hello"), false)
	f(entry(10, "hello"), true) // older sealed entries are not remembered (as in Loki)
	md := entry(20, "x")
	md.Metadata = model.LabelsFromStrings("k", "v")
	f(md, true)
	f(entry(20, "x"), false) // metadata does not make an entry distinct
	f(entry(5, "x"), true)
	f(entry(5, "x"), false) // duplicate of an out-of-order entry
	c := encodeOpen(t, b)
	got, err := collect(t, c.Iterator(model.AllTime, model.Forward, nil))
	require.NoError(t, err)
	require.Equal(t, "5:x 10:hello 10:world 10:hello 11:hello 20:x", lines(got))
}

func TestTimeRange(t *testing.T) {
	// One page per entry (page pruning matters) and one page for all
	// (timestamps spanning the whole int64 range in one page).
	for _, pageSize := range []int{1, 1 << 20} {
		testTimeRange(t, pageSize)
	}
}

func testTimeRange(t *testing.T, pageSize int) {
	b := NewBuilder(EncLZ4, pageSize)
	for _, ts := range []int64{10, 20, 20, 30, math.MinInt64, math.MaxInt64} {
		require.True(t, b.Append(entry(ts, fmt.Sprint(ts, "-", b.Meta().Entries))))
	}
	snap := b.Snapshot()
	c := encodeOpen(t, b)
	f := func(min, max int64, fwd string) {
		t.Helper()
		r := model.TimeRange{Min: min, Max: max}
		for name, it := range map[string]func(model.Direction) iter.EntryIterator{
			"chunk":    func(d model.Direction) iter.EntryIterator { return c.Iterator(r, d, nil) },
			"snapshot": func(d model.Direction) iter.EntryIterator { return snap.Iterator(r, d, nil) },
		} {
			got, err := collect(t, it(model.Forward))
			require.NoError(t, err)
			var s []string
			for _, e := range got {
				s = append(s, e.Line)
			}
			require.Equal(t, fwd, strings.Join(s, " "), "%s [%d,%d)", name, min, max)
			back, err := collect(t, it(model.Backward))
			require.NoError(t, err)
			require.Len(t, back, len(got))
			for i := range got {
				require.Equal(t, got[i].Line, back[len(back)-1-i].Line)
			}
		}
	}
	f(10, 30, "10-0 20-1 20-2")
	f(11, 30, "20-1 20-2")
	f(10, 31, "10-0 20-1 20-2 30-3")
	f(20, 21, "20-1 20-2")
	f(20, 20, "")
	f(30, 10, "")
	f(0, 10, "")
	f(math.MinInt64, 11, "-9223372036854775808-4 10-0")
	f(math.MinInt64, math.MaxInt64, "-9223372036854775808-4 10-0 20-1 20-2 30-3")
	f(31, math.MaxInt64, "") // Max is exclusive: MaxInt64 itself is never in range
}

func TestFilter(t *testing.T) {
	es := []model.Entry{
		entry(1, "level=info msg=ok"),
		entry(2, "level=error msg=timeout"),
		entry(3, "ab"), entry(4, "cd"), // "bc" spans the boundary: no match
		entry(5, ""),
		entry(6, "level=error msg=disk full"),
		entry(7, "errorerror"),
		entry(8, "level=warn msg=error budget"),
	}
	for _, pageSize := range []int{1, 1 << 20} {
		b, accepted := build(t, EncZstd, pageSize, es)
		snap := b.Snapshot()
		c := encodeOpen(t, b)
		f := func(f *iter.Filter, r model.TimeRange, want string) {
			t.Helper()
			for _, dir := range []model.Direction{model.Forward, model.Backward} {
				exp := expected(accepted, r, dir, f)
				got, err := collect(t, c.Iterator(r, dir, f))
				require.NoError(t, err)
				requireEntries(t, exp, got)
				got, err = collect(t, snap.Iterator(r, dir, f))
				require.NoError(t, err)
				requireEntries(t, exp, got)
			}
			got, _ := collect(t, c.Iterator(r, model.Forward, f))
			var ts []string
			for _, e := range got {
				ts = append(ts, fmt.Sprint(e.Timestamp))
			}
			require.Equal(t, want, strings.Join(ts, ","))
		}
		needles := func(ns ...string) *iter.Filter {
			f := &iter.Filter{}
			for _, n := range ns {
				f.Needles = append(f.Needles, []byte(n))
			}
			return f
		}
		all := model.AllTime
		f(nil, all, "1,2,3,4,5,6,7,8")
		f(&iter.Filter{}, all, "1,2,3,4,5,6,7,8")
		f(needles(""), all, "1,2,3,4,5,6,7,8")
		f(needles("error"), all, "2,6,7,8")
		f(needles("error", "level="), all, "2,6,8")
		f(needles("level=", "error"), all, "2,6,8")
		f(needles("bc"), all, "")
		f(needles("ab"), all, "3")
		f(needles("b"), all, "3,8")
		f(needles("error"), model.TimeRange{Min: 3, Max: 8}, "6,7")
		f(needles("nothing"), all, "")
		isShort := func(l []byte) bool { return len(l) < 3 }
		f(&iter.Filter{Match: isShort}, all, "3,4,5")
		f(&iter.Filter{Needles: [][]byte{[]byte("d")}, Match: isShort}, all, "4")
		f(&iter.Filter{Needles: [][]byte{[]byte("msg=")}, Match: func(l []byte) bool { return bytes.HasSuffix(l, []byte("full")) }}, all, "6")
	}
}

// TestSnapshotWhileAppending takes snapshots while the builder keeps
// receiving out-of-order entries and seals pages, and reads them from other
// goroutines (meaningful under -race).
func TestSnapshotWhileAppending(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	es := randomEntries(r, 3000)
	b := NewBuilder(EncZstd, 4096)
	type snapAt struct {
		s    *Snapshot
		want []model.Entry
	}
	var (
		accepted []model.Entry
		wg       sync.WaitGroup
		errs     = make(chan error, 100)
	)
	check := func(sa snapAt) {
		defer wg.Done()
		for _, dir := range []model.Direction{model.Forward, model.Backward} {
			it := sa.s.Iterator(model.AllTime, dir, nil)
			var got []model.Entry
			for it.Next() {
				got = append(got, it.At())
			}
			if err := it.Err(); err != nil {
				errs <- err
				return
			}
			want := expected(sa.want, model.AllTime, dir, nil)
			if len(got) != len(want) {
				errs <- fmt.Errorf("snapshot of %d entries: got %d", len(want), len(got))
				return
			}
			for i := range want {
				if got[i].Timestamp != want[i].Timestamp || got[i].Line != want[i].Line {
					errs <- fmt.Errorf("snapshot of %d entries: entry %d differs", len(want), i)
					return
				}
			}
		}
	}
	var snaps []snapAt
	for i, e := range es {
		if b.Append(e) {
			accepted = append(accepted, e)
		}
		if i%97 == 0 {
			sa := snapAt{s: b.Snapshot(), want: slices.Clone(accepted)}
			snaps = append(snaps, sa)
			wg.Add(1)
			go check(sa)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// Read every snapshot again after all appends and an Encode.
	_, _, err := b.Encode()
	require.NoError(t, err)
	for _, sa := range snaps {
		for _, dir := range []model.Direction{model.Forward, model.Backward} {
			got, err := collect(t, sa.s.Iterator(model.AllTime, dir, nil))
			require.NoError(t, err)
			requireEntries(t, expected(sa.want, model.AllTime, dir, nil), got)
		}
	}
}

// testChunk is a small chunk with several pages, used by corruption tests.
func testChunk(t testing.TB, enc Encoding) []byte {
	t.Helper()
	b := NewBuilder(enc, 64)
	for i := range 24 {
		e := entry(int64(1000+i*7%30), fmt.Sprintf("line %d of the corruption test", i))
		if i%5 == 0 {
			e.Metadata = model.LabelsFromStrings("trace", fmt.Sprint(i))
		}
		require.True(t, b.Append(e))
	}
	data, _, err := b.Encode()
	require.NoError(t, err)
	return data
}

// readAll opens data and drains iterators in both directions, returning the
// first error, or the chunk's bloom filter damage.
func readAll(data []byte) error {
	c, err := Open(data)
	if err != nil {
		return err
	}
	if err := c.BloomErr(); err != nil {
		return err
	}
	for _, dir := range []model.Direction{model.Forward, model.Backward} {
		it := c.Iterator(model.AllTime, dir, &iter.Filter{Needles: [][]byte{[]byte("e")}})
		for it.Next() {
			_ = it.At()
		}
		if err := it.Err(); err != nil {
			return err
		}
		it = c.Iterator(model.AllTime, dir, nil)
		for it.Next() {
			_ = it.At()
		}
		if err := it.Err(); err != nil {
			return err
		}
	}
	return nil
}

func TestCorruption(t *testing.T) {
	for _, enc := range Encodings() {
		t.Run(enc.String(), func(t *testing.T) {
			data := testChunk(t, enc)
			require.NoError(t, readAll(data))
			var ce *iter.CorruptionError
			for i := range data {
				for _, mask := range []byte{0x01, 0x80, 0xff} {
					bad := slices.Clone(data)
					bad[i] ^= mask
					err := readAll(bad)
					require.Error(t, err, "flip %#x at %d of %d", mask, i, len(data))
					require.True(t, errors.As(err, &ce), "flip at %d: %v", i, err)
				}
			}
			for n := range len(data) {
				err := readAll(data[:n])
				require.Error(t, err, "truncated to %d", n)
				require.True(t, errors.As(err, &ce), "truncated to %d: %v", n, err)
			}
			// Bytes appended after the footer are not a chunk either.
			err := readAll(append(slices.Clone(data), 0))
			require.True(t, errors.As(err, &ce), "%v", err)
		})
	}
}

// TestLazyPages corrupts a page and shows that queries which do not reach
// it, by limit or by time range, never decompress it.
func TestLazyPages(t *testing.T) {
	b := NewBuilder(EncZstd, 100)
	for i := range 100 {
		require.True(t, b.Append(entry(int64(i), fmt.Sprintf("entry %03d %s", i, strings.Repeat("-", 40)))))
	}
	data, _, err := b.Encode()
	require.NoError(t, err)
	c, err := Open(data)
	require.NoError(t, err)
	require.Greater(t, c.Pages(), 10)
	mid := c.pages[c.Pages()/2]
	data[mid.offset+int64(len(mid.data))/2] ^= 0xff // Open keeps data: the chunk sees the damage

	// limit 5 forward and backward: fine.
	for _, dir := range []model.Direction{model.Forward, model.Backward} {
		it := c.Iterator(model.AllTime, dir, nil)
		for range 5 {
			require.True(t, it.Next())
		}
		require.NoError(t, it.Err())
		require.NoError(t, it.Close())
	}
	// A range that excludes the page: fine.
	got, err := collect(t, c.Iterator(model.TimeRange{Min: 0, Max: mid.minT}, model.Forward, nil))
	require.NoError(t, err)
	require.Len(t, got, int(mid.minT))
	got, err = collect(t, c.Iterator(model.TimeRange{Min: mid.maxT + 1, Max: 1000}, model.Backward, nil))
	require.NoError(t, err)
	require.Len(t, got, int(99-mid.maxT))
	// Reading through it reports corruption with the page's offset.
	_, err = collect(t, c.Iterator(model.AllTime, model.Forward, nil))
	var ce *iter.CorruptionError
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Equal(t, mid.offset, ce.Offset)
	require.Contains(t, err.Error(), "crc32c mismatch")
}

// rewrite re-encodes data's header fields, table extensions and checksum,
// following docs/format/chunk.md independently of the writer. The bloom
// flag of data is kept; pageExt nil keeps each page's bloom record.
func rewrite(t testing.TB, data []byte, version byte, enc byte, flags uint16, chunkExt, pageExt []byte) []byte {
	t.Helper()
	c, err := Open(data)
	require.NoError(t, err)
	flags |= binary.BigEndian.Uint16(data[6:]) & FlagBloom
	tableOff := int(binary.BigEndian.Uint64(data[len(data)-16:]))
	out := slices.Clone(data[:tableOff])
	out[4], out[5] = version, enc
	binary.BigEndian.PutUint16(out[6:], flags)
	out = binary.AppendUvarint(out, uint64(len(chunkExt)))
	out = append(out, chunkExt...)
	out = binary.AppendUvarint(out, uint64(len(c.pages)))
	for _, p := range c.pages {
		out = binary.AppendUvarint(out, uint64(p.offset))
		out = binary.AppendUvarint(out, uint64(len(p.data)))
		out = binary.AppendVarint(out, p.minT)
		out = binary.AppendUvarint(out, uint64(p.maxT-p.minT))
		out = binary.AppendUvarint(out, uint64(p.entries))
		out = binary.AppendUvarint(out, uint64(p.payloadSize))
		out = binary.AppendUvarint(out, uint64(p.rawBytes))
		out = binary.BigEndian.AppendUint32(out, p.crc)
		ext := pageExt
		if ext == nil && p.bloomLen > 0 {
			rec := binary.AppendUvarint(nil, uint64(p.bloomOff))
			rec = binary.AppendUvarint(rec, uint64(p.bloomLen))
			rec = binary.BigEndian.AppendUint32(rec, p.bloomCRC)
			ext = append([]byte{1, byte(len(rec))}, rec...) // tag 1
		}
		out = binary.AppendUvarint(out, uint64(len(ext)))
		out = append(out, ext...)
	}
	out = binary.BigEndian.AppendUint64(out, uint64(tableOff))
	crc := crc32.Checksum(out[:headerSize], castagnoli)
	crc = crc32.Update(crc, castagnoli, out[tableOff:])
	out = binary.BigEndian.AppendUint32(out, crc)
	return binary.BigEndian.AppendUint32(out, Magic)
}

func TestFormatVersioning(t *testing.T) {
	data := testChunk(t, EncZstd)
	require.Equal(t, data, rewrite(t, data, Version, byte(EncZstd), 0, nil, nil), "rewrite must match the writer")

	// A newer version is refused with a clear error, not as corruption.
	_, err := Open(rewrite(t, data, Version+1, byte(EncZstd), 0, nil, nil))
	require.ErrorIs(t, err, ErrUnsupportedVersion)
	require.Contains(t, err.Error(), "chunk format version 2 (this build reads 1 to 1)")
	var ce *iter.CorruptionError
	require.False(t, errors.As(err, &ce))
	_, err = Open(rewrite(t, data, 0, byte(EncZstd), 0, nil, nil))
	require.ErrorIs(t, err, ErrUnsupportedVersion)

	// Unknown incompatible feature or encoding: refused.
	_, err = Open(rewrite(t, data, Version, byte(EncZstd), FlagEncrypted, nil, nil))
	require.ErrorIs(t, err, ErrUnsupportedFeature)
	_, err = Open(rewrite(t, data, Version, 9, 0, nil, nil))
	require.ErrorIs(t, err, ErrUnsupportedFeature)

	// Compatible features with extension data are ignored by this reader:
	// unknown flags, unknown chunk and page extension records.
	tlv := []byte{1, 3, 0xaa, 0xbb, 0xcc}  // tag 1, len 3
	ptlv := []byte{7, 3, 0xaa, 0xbb, 0xcc} // tag 7, len 3
	ext := rewrite(t, data, Version, byte(EncZstd), FlagBloom|FlagHashChain|0x8000, tlv, ptlv)
	require.NoError(t, readAll(ext))
	c1, err := Open(data)
	require.NoError(t, err)
	c2, err := Open(ext)
	require.NoError(t, err)
	a, err := collect(t, c1.Iterator(model.AllTime, model.Forward, nil))
	require.NoError(t, err)
	b, err := collect(t, c2.Iterator(model.AllTime, model.Forward, nil))
	require.NoError(t, err)
	requireEntries(t, a, b)
}

func TestParseEncoding(t *testing.T) {
	f := func(s string, want Encoding) {
		t.Helper()
		got, err := ParseEncoding(s)
		require.NoError(t, err, s)
		require.Equal(t, want, got, s)
	}
	f("none", EncNone)
	f("gzip", EncGZIP)
	f("flate", EncGZIP)
	f("snappy", EncSnappy)
	f("lz4", EncLZ4)
	f("lz4-64k", EncLZ4)
	f("lz4-256k", EncLZ4)
	f("lz4-1M", EncLZ4)
	f("lz4-4M", EncLZ4)
	f("zstd", EncZstd)
	f("ZSTD", EncZstd)
	_, err := ParseEncoding("brotli")
	require.ErrorContains(t, err, `invalid encoding "brotli", supported:`)
	for _, e := range Encodings() {
		f(e.String(), e)
	}
	require.Equal(t, "unknown(9)", Encoding(9).String())
}

func TestInvalidEncodingBuilder(t *testing.T) {
	b := NewBuilder(Encoding(42), 0)
	require.False(t, b.Append(entry(1, "x")))
	_, _, err := b.Encode()
	require.ErrorIs(t, err, ErrUnsupportedFeature)
}

func TestBuilderMetaEstimate(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	b, _ := build(t, EncZstd, 8192, randomEntries(r, 1000))
	est := b.Meta()
	data, m, err := b.Encode()
	require.NoError(t, err)
	require.Equal(t, est.Entries, m.Entries)
	require.Equal(t, est.UncompressedBytes, m.UncompressedBytes)
	// The estimate is within 25% of the truth.
	require.InDelta(t, len(data), est.CompressedBytes, float64(len(data))/4)
}

// TestIteratorLinesStayValid keeps lines from many pages while iterating
// with and without filters; recycled buffers must never alias them.
func TestIteratorLinesStayValid(t *testing.T) {
	for _, enc := range Encodings() {
		r := rand.New(rand.NewPCG(5, 5))
		b, accepted := build(t, enc, 1024, randomEntries(r, 3000))
		c := encodeOpen(t, b)
		f := &iter.Filter{Needles: [][]byte{[]byte("seq\":1")}}
		got, err := collect(t, c.Iterator(model.AllTime, model.Forward, f))
		require.NoError(t, err)
		requireEntries(t, expected(accepted, model.AllTime, model.Forward, f), got, enc.String())
		runtime.GC()
		requireEntries(t, expected(accepted, model.AllTime, model.Forward, f), got, enc.String())
	}
}

// TestDuplicatesModel checks Append's duplicate rule against a linear scan
// of the builder's open page and newest sealed entry, with many equal
// timestamps and out-of-order entries (which switch on the dedup index).
func TestDuplicatesModel(t *testing.T) {
	for _, sorted := range []bool{true, false} {
		r := rand.New(rand.NewPCG(11, 12))
		b := NewBuilder(EncSnappy, 2000)
		ts := int64(0)
		for i := range 20000 {
			if sorted {
				if r.IntN(50) == 0 {
					ts++
				}
			} else {
				ts = int64(r.IntN(40))
			}
			e := entry(ts, fmt.Sprintf("line-%d", r.IntN(60)))
			want := b.hasNewest && b.newest.Timestamp == e.Timestamp && b.newest.Line == e.Line
			for _, o := range b.open {
				want = want || (o.Timestamp == e.Timestamp && o.Line == e.Line)
			}
			require.Equal(t, !want, b.Append(e), "append %d", i)
		}
		c := encodeOpen(t, b)
		require.Equal(t, b.Meta().Entries, c.Meta().Entries)
	}
}
