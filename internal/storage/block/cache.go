package block

import (
	"sync"

	"github.com/ledgerlog/ledgerlog/internal/storage/chunk"
)

// DefaultChunkCacheBytes is the memory bound of the shared chunk cache.
const DefaultChunkCacheBytes = 64 << 20

// ChunkCache keeps the parsed page tables and bloom filters of recently
// opened chunks (chunk.OpenAt without its reader), so that a query opens a
// cached chunk without reading the bucket and reads only the pages its
// filter cannot rule out. It never holds page data: a chunk's entry costs
// about a tenth of the chunk's size. Entries are evicted least recently
// used first when their estimated memory (chunk.Chunk.MemSize) exceeds the
// bound. Blocks are immutable, so entries never go stale; entries of
// deleted blocks age out.
//
// A ChunkCache is safe for concurrent use. The zero value is not usable;
// use NewChunkCache.
type ChunkCache struct {
	mu       sync.Mutex
	maxBytes int64
	used     int64
	entries  map[chunkKey]*cacheEntry
	head     cacheEntry // sentinel of the LRU ring: head.next is the newest
	stats    ChunkCacheStats
}

// ChunkCacheStats are a cache's counters since it was created.
type ChunkCacheStats struct {
	Hits, Misses, Evictions int64
	Entries                 int
	Bytes                   int64
}

// chunkKey identifies a chunk: its block directory, segment and offset.
type chunkKey struct {
	dir     string
	segment int
	offset  int64
}

type cacheEntry struct {
	key        chunkKey
	c          *chunk.Chunk
	size       int64
	prev, next *cacheEntry
}

// NewChunkCache returns a cache bounded to maxBytes (<= 0 disables it:
// nothing is kept).
func NewChunkCache(maxBytes int64) *ChunkCache {
	c := &ChunkCache{maxBytes: maxBytes, entries: map[chunkKey]*cacheEntry{}}
	c.head.prev, c.head.next = &c.head, &c.head
	return c
}

// sharedChunkCache is the cache of blocks opened without one of their own.
var sharedChunkCache = NewChunkCache(DefaultChunkCacheBytes)

// SharedChunkCache returns the process-wide cache that blocks use unless
// given another with (*Block).WithChunkCache. Its bound can be changed
// with SetMaxBytes.
func SharedChunkCache() *ChunkCache { return sharedChunkCache }

// SetMaxBytes changes the bound, evicting entries as needed.
func (c *ChunkCache) SetMaxBytes(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxBytes = n
	c.evict()
}

// Stats returns the cache's counters.
func (c *ChunkCache) Stats() ChunkCacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries, s.Bytes = len(c.entries), c.used
	return s
}

// get returns the cached chunk of k, or nil.
func (c *ChunkCache) get(k chunkKey) *chunk.Chunk {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[k]
	if e == nil {
		c.stats.Misses++
		return nil
	}
	c.stats.Hits++
	c.unlink(e)
	c.pushFront(e)
	return e.c
}

// add caches ch (which must hold no reader tied to a request) under k.
func (c *ChunkCache) add(k chunkKey, ch *chunk.Chunk) {
	size := int64(ch.MemSize()) + 96
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.maxBytes {
		return
	}
	if old := c.entries[k]; old != nil {
		c.unlink(old)
		c.used -= old.size
	}
	e := &cacheEntry{key: k, c: ch, size: size}
	c.entries[k] = e
	c.pushFront(e)
	c.used += size
	c.evict()
}

func (c *ChunkCache) evict() {
	for c.used > c.maxBytes && c.head.prev != &c.head {
		e := c.head.prev
		c.unlink(e)
		delete(c.entries, e.key)
		c.used -= e.size
		c.stats.Evictions++
	}
}

func (c *ChunkCache) unlink(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *ChunkCache) pushFront(e *cacheEntry) {
	e.prev, e.next = &c.head, c.head.next
	c.head.next.prev = e
	c.head.next = e
}
