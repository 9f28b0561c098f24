package chunk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

// randomLine mixes token runs of every length (short, whole-token and
// long, gram-indexed ones, hex-heavy like ids) with delimiters and UTF-8.
func randomLine(r *rand.Rand) []byte {
	const tokenChars = "abcdef0123456789_XYZ"
	delims := []string{" ", "-", "\"", ":", "\",\"", "=", ".", "é", "\x00"}
	var b []byte
	for range 1 + r.IntN(12) {
		n := r.IntN(40)
		if r.IntN(8) == 0 {
			n = r.IntN(200)
		}
		for range n {
			b = append(b, tokenChars[r.IntN(len(tokenChars))])
		}
		b = append(b, delims[r.IntN(len(delims))]...)
	}
	return b
}

// TestNeedleItemsInLineItems is the no-false-negative property at the item
// level: for random lines and random substrings of them (and of their
// neighbourhood with delimiters), every needle item is a line item.
func TestNeedleItemsInLineItems(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for range 3000 {
		line := randomLine(r)
		set := map[uint64]bool{}
		for _, h := range appendLineItems(nil, line) {
			set[h] = true
		}
		for range 20 {
			i := r.IntN(len(line) + 1)
			j := i + r.IntN(len(line)-i+1)
			needle := line[i:j]
			for _, h := range appendNeedleItems(nil, needle) {
				require.True(t, set[h], "needle %q of line %q", needle, line)
			}
		}
	}
}

// TestBloomNoFalseNegatives is the property end to end: chunks of random
// lines queried with random substrings as needles return exactly what a
// scan returns, through Open, OpenAt and a builder snapshot.
func TestBloomNoFalseNegatives(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for round := range 40 {
		var es []model.Entry
		for i := range 300 {
			es = append(es, entry(int64(i*10+r.IntN(15)), string(randomLine(r))))
		}
		b, accepted := build(t, EncZstd, 200+r.IntN(4000), es)
		snap := b.Snapshot()
		c := encodeOpen(t, b)
		data, _, err := b.Encode()
		require.NoError(t, err)
		lazy, err := OpenAt(bytes.NewReader(data), int64(len(data)))
		require.NoError(t, err)
		for range 30 {
			line := accepted[r.IntN(len(accepted))].Line
			i := r.IntN(len(line) + 1)
			j := i + r.IntN(min(len(line)-i, 60)+1)
			f := &iter.Filter{Needles: [][]byte{[]byte(line[i:j])}}
			if r.IntN(3) == 0 {
				// A needle from another line: the pair is usually absent.
				o := accepted[r.IntN(len(accepted))].Line
				k := r.IntN(len(o) + 1)
				f.Needles = append(f.Needles, []byte(o[k:k+r.IntN(min(len(o)-k, 40)+1)]))
			}
			dir := model.Direction(r.IntN(2))
			want := expected(accepted, model.AllTime, dir, f)
			for name, it := range map[string]iter.EntryIterator{
				"open":     c.Iterator(model.AllTime, dir, f),
				"openat":   lazy.Iterator(model.AllTime, dir, f),
				"snapshot": snap.Iterator(model.AllTime, dir, f),
			} {
				got, err := collect(t, it)
				require.NoError(t, err)
				requireEntries(t, want, got, "round %d %s needles %q", round, name, f.Needles)
			}
		}
	}
}

// needleChunk is a chunk of many pages of JSON lines with unique ids, one
// of which (the 501st line) carries the trace id and a rare message.
func needleChunk(t testing.TB, enc Encoding) ([]byte, []model.Entry) {
	r := rand.New(rand.NewPCG(9, 9))
	var es []model.Entry
	for i := range 1000 {
		trace := fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
		msg := "Payment authorised"
		if i == 500 {
			trace, msg = "4bf92f3577b34da6a3ce929d0e0e4736", "COMPLIANCE_VIOLATION: above threshold"
		}
		es = append(es, entry(int64(i), fmt.Sprintf(`{"level":"INFO","fields":{"message":"%s","transaction_id":"tx-%08x-%08x","account_id":"acc-%08d","trace_id":"%s"}}`,
			msg, r.Uint32(), r.Uint32(), r.IntN(1e8), trace)))
	}
	b, accepted := build(t, enc, 4096, es)
	data, _, err := b.Encode()
	require.NoError(t, err)
	return data, accepted
}

// skipped runs a filtered query and returns how many pages it skipped and
// the entries it found.
func skipped(t *testing.T, c *Chunk, needles ...string) (int, []model.Entry) {
	t.Helper()
	f := &iter.Filter{}
	for _, n := range needles {
		f.Needles = append(f.Needles, []byte(n))
	}
	it := c.Iterator(model.AllTime, model.Forward, f)
	n := it.(*iterator).skipped
	got, err := collect(t, it)
	require.NoError(t, err)
	return n, got
}

func TestBloomSkipsPages(t *testing.T) {
	data, accepted := needleChunk(t, EncZstd)
	c, err := Open(data)
	require.NoError(t, err)
	require.NoError(t, c.BloomErr())
	pages := c.Pages()
	require.Greater(t, pages, 40)
	f := func(needle string, wantLines, minSkipped int) {
		t.Helper()
		n, got := skipped(t, c, needle)
		require.Len(t, got, wantLines, needle)
		require.GreaterOrEqual(t, n, minSkipped, "%q skipped %d of %d pages", needle, n, pages)
	}
	f("4bf92f3577b34da6a3ce929d0e0e4736", 1, pages-3) // a whole long token
	f("f92f3577b34da6a3ce929d0e0e47", 1, pages-3)     // a substring of it: grams
	f(`"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`, 1, pages-3)
	f("COMPLIANCE_VIOLATION", 1, pages-3) // a long token
	f(`"message":"COMPLIANCE`, 1, 0)      // edge token shorter than a window: no pruning required
	f(`"Refund"`, 0, pages-pages/5)       // a delimited short token that no line has
	f(`"Payment"`, 0, 0)                  // every page has the token
	f("Payment", 999, 0)
	f("acc-", 1000, 0) // no usable items
	// Several needles: all of their items must be present.
	n, got := skipped(t, c, "COMPLIANCE", "4bf92f3577b34da6a3ce929d0e0e4736")
	require.Len(t, got, 1)
	require.GreaterOrEqual(t, n, pages-3)
	_ = accepted
}

// TestBloomCorruption damages one page's bloom filter: the chunk still
// opens, BloomErr reports the damage as corruption, and that page is read
// instead of skipped, so the query still finds its line.
func TestBloomCorruption(t *testing.T) {
	data, _ := needleChunk(t, EncZstd)
	c, err := Open(data)
	require.NoError(t, err)
	// The page holding line 500.
	var target int
	for i, p := range c.pages {
		if p.minT <= 500 && 500 <= p.maxT {
			target = i
		}
	}
	p := c.pages[target]
	require.Positive(t, p.bloomLen)
	for _, pos := range []int64{p.bloomOff, p.bloomOff + 1, p.bloomOff + int64(p.bloomLen)/2, p.bloomOff + int64(p.bloomLen) - 1} {
		bad := slices.Clone(data)
		// Clearing every bit of the filter would make it reject the needle.
		clear(bad[p.bloomOff+2 : p.bloomOff+int64(p.bloomLen)])
		bad[pos] ^= 0x40
		bc, err := Open(bad)
		require.NoError(t, err)
		var ce *iter.CorruptionError
		require.True(t, errors.As(bc.BloomErr(), &ce), "%v", bc.BloomErr())
		require.Equal(t, p.bloomOff, ce.Offset)
		require.Contains(t, ce.Error(), fmt.Sprintf("page %d: bloom filter crc32c mismatch", target))
		n, got := skipped(t, bc, "4bf92f3577b34da6a3ce929d0e0e4736")
		require.Len(t, got, 1)
		require.Equal(t, c.Pages()-1, n)
		lazy, err := OpenAt(bytes.NewReader(bad), int64(len(bad)))
		require.NoError(t, err)
		require.Error(t, lazy.BloomErr())
		_, got = skipped(t, lazy, "4bf92f3577b34da6a3ce929d0e0e4736")
		require.Len(t, got, 1)
	}
}

// countingReader counts the reads and bytes an OpenAt chunk makes.
type countingReader struct {
	r            io.ReaderAt
	reads, bytes atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads.Add(1)
	c.bytes.Add(int64(len(p)))
	return c.r.ReadAt(p, off)
}

func TestOpenAt(t *testing.T) {
	for _, enc := range Encodings() {
		t.Run(enc.String(), func(t *testing.T) {
			data, accepted := needleChunk(t, enc)
			full, err := Open(data)
			require.NoError(t, err)
			cr := &countingReader{r: bytes.NewReader(data)}
			c, err := OpenAt(cr, int64(len(data)))
			require.NoError(t, err)
			require.Equal(t, full.Meta(), c.Meta())
			require.LessOrEqual(t, cr.reads.Load(), int64(3))
			require.Less(t, cr.bytes.Load(), int64(len(data))/2, "tail read of %d bytes", len(data))
			require.Positive(t, c.MemSize())
			// A needle query reads only the page that may hold the needle.
			cr.reads.Store(0)
			cr.bytes.Store(0)
			_, got := skipped(t, c, "4bf92f3577b34da6a3ce929d0e0e4736")
			require.Len(t, got, 1)
			require.LessOrEqual(t, cr.reads.Load(), int64(2))
			// A full scan reads adjacent pages together.
			cr.reads.Store(0)
			for _, dir := range []model.Direction{model.Forward, model.Backward} {
				got, err := collect(t, c.Iterator(model.AllTime, dir, nil))
				require.NoError(t, err)
				requireEntries(t, expected(accepted, model.AllTime, dir, nil), got)
			}
			require.LessOrEqual(t, cr.reads.Load(), int64(2*(len(data)/maxRun+1)))
			// WithReader shares the parsed chunk; read errors surface from Err.
			broken := c.WithReader(errReader{})
			_, err = collect(t, broken.Iterator(model.AllTime, model.Forward, nil))
			require.ErrorIs(t, err, errBroken)
			_, err = collect(t, c.WithReader(nil).Iterator(model.AllTime, model.Forward, nil))
			require.ErrorContains(t, err, "no page reader")
			_, err = OpenAt(errReader{}, int64(len(data)))
			require.ErrorIs(t, err, errBroken)
		})
	}
}

var errBroken = errors.New("broken reader")

type errReader struct{}

func (errReader) ReadAt([]byte, int64) (int, error) { return 0, errBroken }

// TestOpenAtCorruption damages every byte of a chunk in turn: OpenAt and
// its iterators report corruption (or a damaged filter) like Open.
func TestOpenAtCorruption(t *testing.T) {
	data := testChunk(t, EncSnappy)
	var ce *iter.CorruptionError
	for i := range data {
		bad := slices.Clone(data)
		bad[i] ^= 0x10
		c, err := OpenAt(bytes.NewReader(bad), int64(len(bad)))
		if err == nil {
			err = c.BloomErr()
		}
		if err == nil {
			for _, dir := range []model.Direction{model.Forward, model.Backward} {
				_, err = collect(t, c.Iterator(model.AllTime, dir, nil))
				if err != nil {
					break
				}
			}
		}
		require.True(t, errors.As(err, &ce), "flip at %d: %v", i, err)
	}
}

// TestBloomShare: a filter that would take more than its share of the
// stored page is not written; the page is then never skipped.
func TestBloomShare(t *testing.T) {
	es := []model.Entry{entry(1, "alpha beta gamma delta epsilon")}
	require.NotNil(t, buildBloom(es, 100, 0))
	require.Nil(t, buildBloom(es, 6, 0))
	require.Nil(t, buildBloom([]model.Entry{entry(1, "a b c -- ..")}, 100, 0)) // no tokens
}
