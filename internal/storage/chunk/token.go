package chunk

import (
	"encoding/binary"
)

// Token items are what a page's bloom filter holds (docs/format/chunk.md,
// "Token bloom filters"). A token is a maximal run of token bytes: ASCII
// letters, digits, '_' and every byte >= 0x80 (so UTF-8 text stays inside
// tokens without decoding it). Tokens shorter than minToken are not indexed.
// A token shorter than longToken bytes is indexed whole; a longer token is
// indexed by the minimizers of its gramLen-byte substrings: for every window
// of gramWindow consecutive grams, the gram with the smallest hash. Because
// the choice in a window depends only on the window's bytes, any substring
// of a token that spans at least one whole window has its windows' minimizers
// in the token's items: this is what lets a bloom answer "may a line contain
// this needle" for substrings, not only for whole tokens.
//
// The constants are part of the format (scheme 1): changing any of them
// needs a new scheme number.
const (
	bloomScheme = 1
	minToken    = 3
	gramLen     = 5
	gramWindow  = 12
	// longToken is the length of the shortest token that holds a whole
	// window of grams.
	longToken = gramLen + gramWindow - 1
)

// tokenByte reports the bytes that belong to tokens.
var tokenByte = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 0x80 || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
	}
	return t
}()

// tokenItem is the item of the whole token b[start:end], 3 to 15 bytes
// long: with lo the little-endian integer of its first (up to) 8 bytes and
// hi that of the rest (0 if none), fmix64(lo*k1 + hi*k2 + length).
func tokenItem(b []byte, start, end int) uint64 {
	l := end - start
	var lo, hi uint64
	if start+8 <= len(b) {
		lo = binary.LittleEndian.Uint64(b[start:])
		if l < 8 {
			lo &= 1<<(8*l) - 1
		}
	} else {
		for i := min(end, start+8) - 1; i >= start; i-- {
			lo = lo<<8 | uint64(b[i])
		}
	}
	if l > 8 {
		// The last 8 bytes end at end and start at or after start.
		hi = binary.LittleEndian.Uint64(b[end-8:]) >> (8 * (16 - l))
	}
	return fmix64(lo*tokenK1 + hi*tokenK2 + uint64(l))
}

const (
	tokenK1 = 0x9e3779b97f4a7c15
	tokenK2 = 0xc2b2ae3d27d4eb4f
)

// gramItem is the item of the gram b[i:i+gramLen]: the little-endian
// integer of its bytes, mixed by fmix64 (a bijection, so distinct grams
// never share an item). The mixing must be strong: minimizers are chosen by
// item order, and a weak hash of overlapping grams makes one gram the
// minimizer of many windows, leaving a needle with fewer items.
func gramItem(b []byte, i int) uint64 {
	var g uint64
	if i+8 <= len(b) {
		g = binary.LittleEndian.Uint64(b[i:]) & (1<<(8*gramLen) - 1)
	} else {
		for j := gramLen - 1; j >= 0; j-- {
			g = g<<8 | uint64(b[i+j])
		}
	}
	return fmix64(g)
}

// fmix64 is MurmurHash3's 64-bit finalizer.
func fmix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// appendLineItems appends the items of every token of line to dst.
// Duplicates are not removed.
func appendLineItems(dst []uint64, line []byte) []uint64 {
	n := len(line)
	for i := 0; i < n; {
		for i < n && !tokenByte[line[i]] {
			i++
		}
		start := i
		for i < n && tokenByte[line[i]] {
			i++
		}
		switch l := i - start; {
		case l < minToken:
		case l < longToken:
			dst = append(dst, tokenItem(line, start, i))
		default:
			dst = appendGramItems(dst, line, start, i)
		}
	}
	return dst
}

// appendGramItems appends the minimizers of the windows of b[start:end],
// which is at least longToken bytes long: for each run of gramWindow
// consecutive grams, the smallest gram item (consecutive repeats once).
func appendGramItems(dst []uint64, b []byte, start, end int) []uint64 {
	var ring [16]uint64 // the last gramWindow items, by gram index mod 16
	minV, minK := ^uint64(0), 0
	last, emitted := uint64(0), false
	for k := 0; start+k+gramLen <= end; k++ {
		h := gramItem(b, start+k)
		ring[k&15] = h
		switch {
		case h <= minV:
			minV, minK = h, k
		case minK <= k-gramWindow:
			// The minimum left the window [k-gramWindow+1, k]: rescan it.
			minK = k - gramWindow + 1
			minV = ring[minK&15]
			for p := minK + 1; p <= k; p++ {
				if v := ring[p&15]; v <= minV {
					minV, minK = v, p
				}
			}
		}
		if k >= gramWindow-1 && (!emitted || minV != last) {
			dst = append(dst, minV)
			last, emitted = minV, true
		}
	}
	return dst
}

// appendNeedleItems appends items that every line containing needle has
// in its page's bloom filter:
//   - a token of the needle with token bytes neither at the needle's start
//     nor at its end is delimited on both sides, so it is a whole token of
//     the line: its items, whole or grams, are exactly the line's;
//   - a token at an edge of the needle may be part of a longer line token,
//     so only the minimizers of the windows it contains are certain, and a
//     shorter edge token gives nothing.
//
// A needle that yields no items cannot be used to skip pages.
func appendNeedleItems(dst []uint64, needle []byte) []uint64 {
	n := len(needle)
	for i := 0; i < n; {
		for i < n && !tokenByte[needle[i]] {
			i++
		}
		start := i
		for i < n && tokenByte[needle[i]] {
			i++
		}
		switch l := i - start; {
		case l < minToken:
		case l >= longToken:
			dst = appendGramItems(dst, needle, start, i)
		case start > 0 && i < n:
			dst = append(dst, tokenItem(needle, start, i))
		}
	}
	return dst
}
