package ingest

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Request is one decoded push. Streams appear in the order of the request;
// two streams may carry the same labels (clients may split a stream). Labels
// are parsed and sorted; Entry.Metadata holds the entry's structured metadata
// sorted by name (a name sent twice keeps its last value).
//
// A Request is not safe for concurrent mutation. Validate rewrites its
// streams in place.
type Request struct {
	Streams []model.Stream
	// Format names the wire format, for logs: "protobuf", "json",
	// "legacy-json" or "otlp".
	Format string
	// BodySize is the size of the body on the wire in bytes.
	BodySize int64

	// dup marks streams whose label string named a label twice; Validate
	// rejects them with Loki's duplicate_label_names message. Indexed like
	// Streams; nil when no stream is affected.
	dup []dupLabel
}

type dupLabel struct {
	raw  string // the label string as sent
	name string // the repeated name; empty when the stream is fine
}

// markDuplicate records that stream i named a label twice.
func (r *Request) markDuplicate(i int, raw, name string) {
	if r.dup == nil {
		r.dup = make([]dupLabel, len(r.Streams), cap(r.Streams))
	}
	for len(r.dup) <= i {
		r.dup = append(r.dup, dupLabel{})
	}
	r.dup[i] = dupLabel{raw: raw, name: name}
}

func (r *Request) duplicate(i int) (dupLabel, bool) {
	if i < len(r.dup) && r.dup[i].name != "" {
		return r.dup[i], true
	}
	return dupLabel{}, false
}

// Lines returns the number of entries in the request.
func (r *Request) Lines() int {
	n := 0
	for i := range r.Streams {
		n += len(r.Streams[i].Entries)
	}
	return n
}

// parsedLabels is what the label cache holds for one label string.
type parsedLabels struct {
	ls  model.Labels
	dup string // a repeated label name: ls is then empty
}

// labelCache remembers parsed label strings: every push of a client repeats
// the same few label strings, so each is parsed once. It is bounded: a full
// shard is emptied and refilled. Safe for concurrent use.
type labelCache struct {
	shards [labelCacheShards]labelCacheShard
}

const (
	labelCacheShards   = 16
	labelCacheShardCap = 4096 // 64Ki label strings in all
)

type labelCacheShard struct {
	mu sync.RWMutex
	m  map[string]parsedLabels // guarded by mu
}

// streamLabels is the process-wide cache of parsed stream label strings. It
// holds only immutable, re-derivable data (like a sync.Pool), so sharing it
// between decoders is safe.
var streamLabels = &labelCache{}

// parse returns the parsed labels of s. s may alias a request body: the cache
// keeps its own copy.
func (c *labelCache) parse(s string) (parsedLabels, error) {
	sh := &c.shards[xxhash.Sum64String(s)%labelCacheShards]
	sh.mu.RLock()
	p, ok := sh.m[s]
	sh.mu.RUnlock()
	if ok {
		return p, nil
	}
	p, err := parseLabelString(s)
	if err != nil {
		return parsedLabels{}, err
	}
	key := strings.Clone(s)
	if p.dup == "" && !p.ls.IsEmpty() {
		// Re-derive the labels from the cloned key so they do not keep a
		// request body alive: a string-backed label set may alias its input.
		p.ls = p.ls.Copy()
	}
	sh.mu.Lock()
	if sh.m == nil || len(sh.m) >= labelCacheShardCap {
		sh.m = make(map[string]parsedLabels, 64)
	}
	sh.m[key] = p
	sh.mu.Unlock()
	return p, nil
}

// duplicatePrefix is how model.ParseLabels words a repeated label name;
// TestParseLabelStringDuplicate pins it.
const duplicatePrefix = "duplicate label name "

func parseLabelString(s string) (parsedLabels, error) {
	ls, err := model.ParseLabels(s)
	if err == nil {
		return parsedLabels{ls: ls}, nil
	}
	if rest, ok := strings.CutPrefix(err.Error(), duplicatePrefix); ok {
		if name, uerr := strconv.Unquote(rest); uerr == nil {
			return parsedLabels{dup: name}, nil
		}
	}
	return parsedLabels{}, httpErrorf(400, msgCouldNotParseLabels, err.Error())
}

// arena hands out strings backed by large blocks so that decoding a request
// costs a few allocations instead of one per line. Bytes of a block are never
// written again once handed out, so the strings are immutable.
type arena struct {
	block []byte
}

const arenaBlockSize = 64 << 10

// alloc returns a writable slice of n bytes; the caller fills it and then
// calls str on it. Slices are never reused.
func (a *arena) alloc(n int) []byte {
	if n > arenaBlockSize/4 {
		return make([]byte, n)
	}
	if cap(a.block)-len(a.block) < n {
		a.block = make([]byte, 0, arenaBlockSize)
	}
	start := len(a.block)
	a.block = a.block[:start+n]
	return a.block[start : start+n : start+n]
}

// str turns a slice returned by alloc (and filled) into a string without
// copying.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// metadataBuilder turns name/value pairs into a sorted label set, keeping the
// last value of a repeated name. Not safe for concurrent use.
type metadataBuilder struct {
	pairs []labels.Label
	sb    labels.ScratchBuilder
}

func (m *metadataBuilder) reset() { m.pairs = m.pairs[:0] }

func (m *metadataBuilder) add(name, value string) {
	m.pairs = append(m.pairs, labels.Label{Name: name, Value: value})
}

func (m *metadataBuilder) labels() model.Labels {
	if len(m.pairs) == 0 {
		return model.EmptyLabels()
	}
	if len(m.pairs) > 1 {
		slices.SortStableFunc(m.pairs, func(a, b labels.Label) int { return strings.Compare(a.Name, b.Name) })
	}
	m.sb.Reset()
	for i, p := range m.pairs {
		if i+1 < len(m.pairs) && m.pairs[i+1].Name == p.Name {
			continue // a later pair with the same name wins
		}
		m.sb.Add(p.Name, p.Value)
	}
	return m.sb.Labels()
}
