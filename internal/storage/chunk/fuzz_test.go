package chunk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

var updateTestdata = flag.Bool("update-testdata", false, "rewrite testdata/ golden chunks and fuzz seed corpus")

// fixChecksums recomputes every page CRC it can locate and the footer CRC,
// so that fuzzing reaches the table and page decoders behind the checksums.
// It never fails; malformed parts are left alone.
func fixChecksums(in []byte) []byte {
	b := append([]byte(nil), in...)
	if len(b) < headerSize+footerSize {
		return b
	}
	tableEnd := len(b) - footerSize
	off := binary.BigEndian.Uint64(b[tableEnd:])
	if off < headerSize || off > uint64(tableEnd) {
		return b
	}
	tableOff := int(off)
	d := decoder{b: b[tableOff:tableEnd]}
	d.skip(d.uvarint())
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		pOff := d.uvarint()
		pLen := d.uvarint()
		d.varint()
		for range 4 {
			d.uvarint()
		}
		crcPos := d.pos
		d.uint32()
		extLen := d.uvarint()
		extStart := d.pos
		d.skip(extLen)
		if d.err != nil {
			break
		}
		fixBloomCRCs(b, tableOff, b[tableOff+extStart:tableOff+d.pos], tableOff+extStart)
		if pOff <= uint64(tableOff) && pLen <= uint64(tableOff)-pOff {
			crc := crc32.Checksum(b[pOff:pOff+pLen], castagnoli)
			binary.BigEndian.PutUint32(b[tableOff+crcPos:], crc)
		}
	}
	crc := crc32.Update(0, castagnoli, b[:headerSize])
	crc = crc32.Update(crc, castagnoli, b[tableOff:tableEnd+8])
	binary.BigEndian.PutUint32(b[tableEnd+8:], crc)
	return b
}

// fixBloomCRCs recomputes the CRC of every bloom record it can parse in a
// page's extension bytes ext, found at offset base of b.
func fixBloomCRCs(b []byte, tableOff int, ext []byte, base int) {
	d := decoder{b: ext}
	for d.pos < len(ext) && d.err == nil {
		tag := d.uvarint()
		n := d.uvarint()
		start := d.pos
		d.skip(n)
		if d.err != nil || tag != pageExtBloom {
			continue
		}
		v := decoder{b: ext[start:d.pos]}
		off, length := v.uvarint(), v.uvarint()
		crcPos := start + v.pos
		v.uint32()
		if v.err == nil && off <= uint64(tableOff) && length <= uint64(tableOff)-off {
			binary.BigEndian.PutUint32(b[base+crcPos:], crc32.Checksum(b[off:off+length], castagnoli))
		}
	}
}

// checkNoPanic opens data and reads it fully every way; every error must
// be a corruption or an unsupported format.
func checkNoPanic(t *testing.T, data []byte) {
	c, err := Open(data)
	lazy, lerr := OpenAt(bytes.NewReader(data), int64(len(data)))
	if (err == nil) != (lerr == nil) {
		t.Fatalf("Open: %v, OpenAt: %v", err, lerr)
	}
	if err != nil {
		requireKnownError(t, err)
		requireKnownError(t, lerr)
		return
	}
	m := c.Meta()
	if lazy.Meta() != m {
		t.Fatalf("OpenAt meta %+v, Open meta %+v", lazy.Meta(), m)
	}
	type query struct {
		r   model.TimeRange
		dir model.Direction
		f   *iter.Filter
	}
	for _, q := range []query{
		{model.AllTime, model.Forward, nil},
		{model.AllTime, model.Backward, &iter.Filter{Needles: [][]byte{[]byte("e"), {}}}},
		{model.AllTime, model.Forward, &iter.Filter{Needles: [][]byte{[]byte(" line "), []byte("seed line one two three four")}}},
		{model.TimeRange{Min: m.MinTime, Max: m.MinTime/2 + m.MaxTime/2}, model.Backward, &iter.Filter{Match: func(l []byte) bool { return len(l)%2 == 0 }}},
	} {
		r, dir, f := q.r, q.dir, q.f
		for _, c := range []*Chunk{c, lazy} {
			{
				it := c.Iterator(r, dir, f)
				last, n := int64(0), 0
				for it.Next() {
					e := it.At()
					if n > 0 && (dir == model.Forward && e.Timestamp < last || dir == model.Backward && e.Timestamp > last) {
						t.Fatalf("%s: timestamp %d after %d", dir, e.Timestamp, last)
					}
					if !r.Contains(e.Timestamp) {
						t.Fatalf("timestamp %d outside [%d, %d)", e.Timestamp, r.Min, r.Max)
					}
					last = e.Timestamp
					n++
				}
				if err := it.Err(); err != nil {
					var ce *iter.CorruptionError
					if !errors.As(err, &ce) {
						t.Fatalf("iterator error is not a CorruptionError: %v", err)
					}
				}
				if err := it.Close(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func requireKnownError(t *testing.T, err error) {
	var ce *iter.CorruptionError
	if !errors.As(err, &ce) && !errors.Is(err, ErrUnsupportedVersion) && !errors.Is(err, ErrUnsupportedFeature) {
		t.Fatalf("unexpected error type %T: %v", err, err)
	}
}

func FuzzOpen(f *testing.F) {
	for _, enc := range Encodings() {
		f.Add(smallChunk(f, enc))
	}
	empty, _, err := NewBuilder(EncNone, 0).Encode()
	require.NoError(f, err)
	f.Add(empty)
	f.Add([]byte("LLCK"))
	// The golden chunks of every format generation.
	golden, err := filepath.Glob(filepath.Join("testdata", "*.chunk"))
	require.NoError(f, err)
	for _, name := range golden {
		data, err := os.ReadFile(name)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkNoPanic(t, data)
		checkNoPanic(t, fixChecksums(data))
	})
}

// smallChunk is a chunk of a few tiny pages: small seeds keep fuzzing and
// input minimisation fast.
func smallChunk(t testing.TB, enc Encoding) []byte {
	b := NewBuilder(enc, 16)
	for i, l := range []string{"seed line one", "two", "", "line four e", "five"} {
		e := entry(int64(100-i*i), l)
		if i == 1 {
			e.Metadata = model.LabelsFromStrings("k", "v")
		}
		require.True(t, b.Append(e))
	}
	data, _, err := b.Encode()
	require.NoError(t, err)
	return data
}

// fuzzEntries derives entries from arbitrary bytes: per entry one byte of
// signed timestamp step, one byte of line length (and metadata flag), then
// the line.
func fuzzEntries(data []byte) []model.Entry {
	var es []model.Entry
	ts := int64(1_000_000)
	for len(data) >= 2 {
		ts += int64(int8(data[0])) * 1000
		n := int(data[1] & 0x3f)
		withMD := data[1]&0x40 != 0
		data = data[2:]
		n = min(n, len(data))
		e := model.Entry{Timestamp: ts, Line: string(data[:n]), Metadata: model.EmptyLabels()}
		if withMD {
			e.Metadata = model.LabelsFromStrings("k", fmt.Sprint(n), "z", e.Line)
		}
		data = data[n:]
		es = append(es, e)
	}
	return es
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("\x01\x05hello\x00\x05hello\xff\x45world\x02\x00\x00\x03abc"), uint8(EncZstd), uint16(8), []byte("l"))
	f.Add([]byte("\x05\x03abc\xfb\x03abd\x00\x03abe\x00\x03abc"), uint8(EncSnappy), uint16(1), []byte("ab"))
	f.Add([]byte("\x00\x40\x00\x41x\x80\x02yz"), uint8(EncLZ4), uint16(0), []byte{})
	f.Add([]byte("\x10\x08gzipgzip\x10\x08gzipgzip"), uint8(EncGZIP), uint16(4), []byte("zip"))
	f.Add([]byte("\x7f\x02no\x81\x02ne"), uint8(EncNone), uint16(2), []byte("n"))
	f.Fuzz(func(t *testing.T, data []byte, encByte uint8, pageSize uint16, needle []byte) {
		enc := Encoding(encByte % uint8(len(encodingNames)))
		b := NewBuilder(enc, int(pageSize%512)+1)
		var accepted []model.Entry
		for _, e := range fuzzEntries(data) {
			if b.Append(e) {
				accepted = append(accepted, e)
			}
		}
		snap := b.Snapshot()
		out, meta, err := b.Encode()
		require.NoError(t, err)
		c, err := Open(out)
		require.NoError(t, err)
		require.Equal(t, meta, c.Meta())
		require.Equal(t, len(accepted), meta.Entries)
		filters := []*iter.Filter{nil, {Needles: [][]byte{needle}}}
		for _, fl := range filters {
			for _, dir := range []model.Direction{model.Forward, model.Backward} {
				want := expected(accepted, model.AllTime, dir, fl)
				got, err := collect(t, c.Iterator(model.AllTime, dir, fl))
				require.NoError(t, err)
				requireEntries(t, want, got)
				got, err = collect(t, snap.Iterator(model.AllTime, dir, fl))
				require.NoError(t, err)
				requireEntries(t, want, got)
			}
		}
	})
}

// goldenEntries are the entries of the golden chunks in testdata/.
func goldenEntries() []model.Entry {
	var es []model.Entry
	for i := range 40 {
		e := entry(int64(1_795_564_800_000_000_000+(i*7919)%40*1_000_003), fmt.Sprintf(`{"level":"INFO","fields":{"message":"golden entry %d"}}`, i))
		if i%3 == 0 {
			e.Metadata = model.LabelsFromStrings("trace_id", fmt.Sprintf("%032x", i))
		}
		es = append(es, e)
	}
	return es
}

// TestGolden reads chunks written by earlier builds of the format: a new
// reader must read every old chunk. v1-<enc>.chunk predate bloom filters;
// v1-bloom-<enc>.chunk carry them. -update-testdata writes the files of the
// current writer (v1-bloom) and the fuzz seeds; a format change gets new
// file names, old files are never overwritten.
func TestGolden(t *testing.T) {
	for _, gen := range []struct {
		prefix string
		blooms bool
	}{{"v1", false}, {"v1-bloom", true}} {
		for _, enc := range Encodings() {
			name := filepath.Join("testdata", fmt.Sprintf("%s-%s.chunk", gen.prefix, enc))
			if *updateTestdata && gen.blooms {
				b, _ := build(t, enc, 512, goldenEntries())
				data, _, err := b.Encode()
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(name, data, 0o644))
				writeCorpus(t, "FuzzOpen", enc.String(), fmt.Sprintf("[]byte(%q)\n", smallChunk(t, enc)))
				writeCorpus(t, "FuzzRoundTrip", enc.String(), fmt.Sprintf("[]byte(%q)\nuint8(%d)\nuint16(%d)\n[]byte(%q)\n",
					"\x01\x05hello\x00\x05hello\xff\x45world\x02\x00\x00\x03abc\x80\x41ab", byte(enc), 6, "l"))
			}
			data, err := os.ReadFile(name)
			require.NoError(t, err)
			c, err := Open(data)
			require.NoError(t, err, name)
			require.Equal(t, enc, c.Encoding())
			require.Greater(t, c.Pages(), 1)
			require.Equal(t, gen.blooms, binary.BigEndian.Uint16(data[6:])&FlagBloom != 0, name)
			require.NoError(t, c.BloomErr())
			_, accepted := build(t, enc, 512, goldenEntries())
			for _, f := range []*iter.Filter{nil, {Needles: [][]byte{[]byte("no_such_token_in_golden")}}} {
				for _, dir := range []model.Direction{model.Forward, model.Backward} {
					it := c.Iterator(model.AllTime, dir, f)
					if f != nil && gen.blooms {
						require.Greater(t, it.(*iterator).skipped, c.Pages()/2, name)
					}
					got, err := collect(t, it)
					require.NoError(t, err)
					requireEntries(t, expected(accepted, model.AllTime, dir, f), got, name)
				}
			}
		}
	}
}

// writeCorpus writes a seed file in the format `go test -fuzz` reads; args
// holds one Go literal per line.
func writeCorpus(t *testing.T, target, name string, args string) {
	dir := filepath.Join("testdata", "fuzz", target)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	content := "go test fuzz v1\n" + args
	require.NoError(t, os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(content), 0o644))
}
