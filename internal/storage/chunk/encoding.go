package chunk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Encoding is the compression codec of a chunk's pages. Its value is stored
// in the chunk header, so the numbers never change.
type Encoding uint8

// Encodings. The zero value is EncNone.
const (
	EncNone   Encoding = 0
	EncGZIP   Encoding = 1
	EncSnappy Encoding = 2
	EncLZ4    Encoding = 3
	EncZstd   Encoding = 4
)

// DefaultEncoding is the codec used when none is configured.
const DefaultEncoding = EncZstd

var encodingNames = [...]string{
	EncNone:   "none",
	EncGZIP:   "gzip",
	EncSnappy: "snappy",
	EncLZ4:    "lz4",
	EncZstd:   "zstd",
}

// Encodings lists every supported encoding.
func Encodings() []Encoding { return []Encoding{EncNone, EncGZIP, EncSnappy, EncLZ4, EncZstd} }

func (e Encoding) String() string {
	if e.valid() {
		return encodingNames[e]
	}
	return fmt.Sprintf("unknown(%d)", uint8(e))
}

func (e Encoding) valid() bool { return int(e) < len(encodingNames) }

// ParseEncoding parses an encoding name, case-insensitively. It accepts Loki's
// names for chunk_encoding: none, gzip, flate (= gzip), snappy, lz4,
// lz4-64k/lz4-256k/lz4-1M/lz4-4M (= lz4) and zstd.
func ParseEncoding(s string) (Encoding, error) {
	switch strings.ToLower(s) {
	case "none":
		return EncNone, nil
	case "gzip", "flate":
		return EncGZIP, nil
	case "snappy":
		return EncSnappy, nil
	case "lz4", "lz4-64k", "lz4-256k", "lz4-1m", "lz4-4m":
		return EncLZ4, nil
	case "zstd":
		return EncZstd, nil
	}
	return 0, fmt.Errorf("invalid encoding %q, supported: none, gzip, flate, snappy, lz4, lz4-64k, lz4-256k, lz4-1M, lz4-4M, zstd", s)
}

// zstdLevel is the level the builder compresses zstd pages with.
// SpeedDefault meets the ingest CPU budget (>= 300 MB/s per core); see
// BenchmarkEncode/zstd-better for the ratio SpeedBetterCompression buys.
const zstdLevel = zstd.SpeedDefault

// errPayloadSize reports a page whose decompressed size differs from the
// size recorded in the page table.
var errPayloadSize = errors.New("decompressed size does not match the page table")

// compress appends the encoded form of src to dst. It is safe for
// concurrent use; encoders come from pools.
func compress(enc Encoding, level zstd.EncoderLevel, dst, src []byte) ([]byte, error) {
	switch enc {
	case EncNone:
		return append(dst, src...), nil
	case EncZstd:
		e := getZstdEncoder(level)
		dst = e.EncodeAll(src, dst)
		putZstdEncoder(level, e)
		return dst, nil
	case EncSnappy:
		n := snappy.MaxEncodedLen(len(src))
		if n < 0 {
			return dst, fmt.Errorf("snappy: page of %d bytes too large", len(src))
		}
		dst = grow(dst, n)
		out := snappy.Encode(dst[len(dst):len(dst)+n], src)
		return dst[:len(dst)+len(out)], nil
	case EncLZ4:
		n := lz4.CompressBlockBound(len(src))
		dst = grow(dst, n)
		c := lz4CompressorPool.Get().(*lz4.Compressor)
		m, err := c.CompressBlock(src, dst[len(dst):len(dst)+n])
		lz4CompressorPool.Put(c)
		if err != nil {
			return dst, fmt.Errorf("lz4: %w", err)
		}
		return dst[:len(dst)+m], nil
	case EncGZIP:
		buf := bytes.NewBuffer(dst)
		w := gzipWriterPool.Get().(*gzip.Writer)
		w.Reset(buf)
		_, err := w.Write(src)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		gzipWriterPool.Put(w)
		if err != nil {
			return dst, fmt.Errorf("gzip: %w", err)
		}
		return buf.Bytes(), nil
	}
	return dst, fmt.Errorf("encoding %s: %w", enc, ErrUnsupportedFeature)
}

// checkPayloadSize checks the page table's payload size against what the
// stored page itself says, before a reader allocates that much: a damaged
// or hostile size must not cost a large allocation.
func checkPayloadSize(enc Encoding, src []byte, size int) error {
	switch enc {
	case EncNone:
		if len(src) != size {
			return errPayloadSize
		}
	case EncZstd:
		var h zstd.Header
		if err := h.Decode(src); err != nil {
			return fmt.Errorf("zstd frame header: %w", err)
		}
		switch {
		case h.HasFCS && h.FrameContentSize != uint64(size):
			return errPayloadSize
		case !h.HasFCS && size > 1<<20 && size > 64*len(src):
			// Frames under 256 bytes carry no content size; larger
			// ones from other writers might not either: bound them.
			return errPayloadSize
		}
	case EncSnappy:
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return fmt.Errorf("snappy: %w", err)
		}
		if n != size {
			return errPayloadSize
		}
	case EncLZ4:
		// An LZ4 block expands at most about 255 times.
		if size > 255*len(src)+64 {
			return errPayloadSize
		}
	case EncGZIP:
		// The gzip trailer ends with the input size modulo 2^32.
		if len(src) < 18 || binary.LittleEndian.Uint32(src[len(src)-4:]) != uint32(size) {
			return errPayloadSize
		}
	default:
		return fmt.Errorf("encoding %s: %w", enc, ErrUnsupportedFeature)
	}
	return nil
}

// decompress decodes src into dst[:size], where cap(dst) >= size, and
// returns the payload. It never writes more than size bytes and fails if the
// decoded size is not exactly size. For EncNone it returns src itself.
func decompress(enc Encoding, dst, src []byte, size int) ([]byte, error) {
	switch enc {
	case EncNone:
		if len(src) != size {
			return nil, errPayloadSize
		}
		return src, nil
	case EncZstd:
		d := zstdDecoderPool.Get().(*zstd.Decoder)
		out, err := d.DecodeAll(src, dst[:0:size])
		zstdDecoderPool.Put(d)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if len(out) != size {
			return nil, errPayloadSize
		}
		return out, nil
	case EncSnappy:
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
		if n != size {
			return nil, errPayloadSize
		}
		out, err := snappy.Decode(dst[:size], src)
		if err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
		if len(out) != size {
			return nil, errPayloadSize
		}
		return out, nil
	case EncLZ4:
		n, err := lz4.UncompressBlock(src, dst[:size])
		if err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		if n != size {
			return nil, errPayloadSize
		}
		return dst[:size], nil
	case EncGZIP:
		r := gzipReaderPool.Get().(*gzip.Reader)
		defer gzipReaderPool.Put(r)
		if err := r.Reset(bytes.NewReader(src)); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		r.Multistream(false)
		out := dst[:size]
		if _, err := io.ReadFull(r, out); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return nil, errPayloadSize
			}
			return nil, fmt.Errorf("gzip: %w", err)
		}
		var one [1]byte
		if n, err := r.Read(one[:]); n != 0 || !errors.Is(err, io.EOF) {
			if n != 0 || err == nil {
				return nil, errPayloadSize
			}
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("encoding %s: %w", enc, ErrUnsupportedFeature)
}

// grow makes room for n more bytes after len(b) without changing len(b).
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n+len(b)/4)
	copy(nb, b)
	return nb
}

// Pools. Creating a zstd encoder allocates several MiB of tables, so every
// codec state is reused. Encoders and decoders are configured with
// concurrency 1 and used only through EncodeAll/DecodeAll, which start no
// goroutines.
var (
	zstdEncoderPools = map[zstd.EncoderLevel]*sync.Pool{
		zstd.SpeedFastest:           newZstdEncoderPool(zstd.SpeedFastest),
		zstd.SpeedDefault:           newZstdEncoderPool(zstd.SpeedDefault),
		zstd.SpeedBetterCompression: newZstdEncoderPool(zstd.SpeedBetterCompression),
		zstd.SpeedBestCompression:   newZstdEncoderPool(zstd.SpeedBestCompression),
	}
	zstdDecoderPool = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecodeAllCapLimit(true),
			zstd.WithDecoderMaxMemory(maxPayloadSize),
		)
		if err != nil {
			panic("BUG: zstd decoder options: " + err.Error())
		}
		return d
	}}
	lz4CompressorPool = sync.Pool{New: func() any { return new(lz4.Compressor) }}
	gzipWriterPool    = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	gzipReaderPool    = sync.Pool{New: func() any { return new(gzip.Reader) }}
)

// zstdWindow is the encoder window: the default page size rounded up to a
// power of two.
const zstdWindow = 1 << 18

func newZstdEncoderPool(level zstd.EncoderLevel) *sync.Pool {
	return &sync.Pool{New: func() any {
		e, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(level),
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(false), // the page table carries a CRC32C
			// A page is compressed on its own, so a window larger than the
			// largest page buys nothing and costs 8 MiB of history per
			// pooled encoder at the default level.
			zstd.WithWindowSize(zstdWindow),
			zstd.WithLowerEncoderMem(true),
		)
		if err != nil {
			panic("BUG: zstd encoder options: " + err.Error())
		}
		return e
	}}
}

func getZstdEncoder(level zstd.EncoderLevel) *zstd.Encoder {
	p, ok := zstdEncoderPools[level]
	if !ok {
		p = zstdEncoderPools[zstdLevel]
	}
	return p.Get().(*zstd.Encoder)
}

func putZstdEncoder(level zstd.EncoderLevel, e *zstd.Encoder) {
	p, ok := zstdEncoderPools[level]
	if !ok {
		p = zstdEncoderPools[zstdLevel]
	}
	p.Put(e)
}
