package ingest

import (
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
)

// bytesInMB is how Loki turns ingestion_rate_mb into bytes.
const bytesInMB = 1 << 20

// tokenBucket is a token bucket with the semantics of golang.org/x/time/rate
// (which Loki uses): it starts full, refills at rate tokens per second up to
// burst, and AllowN(n) fails without consuming anything when fewer than n
// tokens are available (always, when n > burst). Not safe for concurrent
// use.
type tokenBucket struct {
	tokens float64
	last   int64 // Unix ns of the last refill
	rate   float64
	burst  float64
}

func newTokenBucket(now int64, rate, burst float64) *tokenBucket {
	return &tokenBucket{tokens: burst, last: now, rate: rate, burst: burst}
}

// refill advances the bucket to now under the given (possibly changed)
// rate and burst.
func (b *tokenBucket) refill(now int64, rate, burst float64) {
	if now > b.last {
		b.tokens += float64(now-b.last) / 1e9 * b.rate
		b.last = now
	}
	b.rate, b.burst = rate, burst
	if b.tokens > burst {
		b.tokens = burst
	}
}

func (b *tokenBucket) allowN(now int64, n, rate, burst float64) bool {
	b.refill(now, rate, burst)
	if n > burst || n > b.tokens {
		return false
	}
	b.tokens -= n
	return true
}

// full reports whether the bucket would be full at now, so that forgetting
// it changes nothing.
func (b *tokenBucket) full(now int64) bool {
	if b.rate <= 0 {
		return b.tokens >= b.burst
	}
	return b.tokens+float64(now-b.last)/1e9*b.rate >= b.burst
}

// RateLimiter enforces ingestion rates: one bucket per tenant
// (ingestion_rate_mb / ingestion_burst_size_mb, Loki's "local" strategy) and
// one per stream (per_stream_rate_limit / per_stream_rate_limit_burst). A
// rate of 0 disables a limit. Limits are read on every call, so runtime
// overrides apply at once. Buckets of idle streams are forgotten once they
// have refilled. Safe for concurrent use.
type RateLimiter struct {
	tenantMu sync.Mutex
	tenants  map[string]*tokenBucket // guarded by tenantMu

	streams [rateShards]streamBuckets
}

const (
	rateShards       = 16
	streamSweepEvery = int64(30 * time.Second)
)

type streamBuckets struct {
	mu        sync.Mutex
	m         map[uint64]*tokenBucket // guarded by mu
	lastSweep int64                   // guarded by mu
}

// NewRateLimiter returns a limiter with no history.
func NewRateLimiter() *RateLimiter {
	rl := &RateLimiter{tenants: make(map[string]*tokenBucket)}
	for i := range rl.streams {
		rl.streams[i].m = make(map[uint64]*tokenBucket)
	}
	return rl
}

// AllowTenant takes n bytes from the tenant's bucket if it holds them. The
// rate and burst are in bytes; rate <= 0 allows everything.
func (rl *RateLimiter) AllowTenant(tenantID string, now time.Time, n int, rate, burst float64) bool {
	if rate <= 0 {
		return true
	}
	ns := now.UnixNano()
	rl.tenantMu.Lock()
	defer rl.tenantMu.Unlock()
	b := rl.tenants[tenantID]
	if b == nil {
		b = newTokenBucket(ns, rate, burst)
		rl.tenants[tenantID] = b
	}
	return b.allowN(ns, float64(n), rate, burst)
}

// streamKey identifies a stream of a tenant; labels is the stream's label
// string.
func streamKey(tenantID, labels string) uint64 {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(tenantID)
	_, _ = d.WriteString("\xff")
	_, _ = d.WriteString(labels)
	return d.Sum64()
}

// withStreamBucket calls fn with the stream's bucket (created full, refilled
// to now) under the bucket's lock. fn must not block.
func (rl *RateLimiter) withStreamBucket(key uint64, now int64, rate, burst float64, fn func(b *tokenBucket)) {
	sh := &rl.streams[key%rateShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now-sh.lastSweep > streamSweepEvery {
		for k, b := range sh.m {
			if b.full(now) {
				delete(sh.m, k)
			}
		}
		sh.lastSweep = now
	}
	b := sh.m[key]
	if b == nil {
		b = newTokenBucket(now, rate, burst)
		sh.m[key] = b
	}
	b.refill(now, rate, burst)
	fn(b)
}
