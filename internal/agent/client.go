package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Version is reported in the User-Agent header.
var Version = "dev"

// userAgent mirrors Promtail's "promtail/<version>" so that servers that
// recognise Promtail traffic treat the agent the same way.
func userAgent() string { return "promtail/ledgerlog-" + Version }

// wireBatch is an encoded batch waiting to be sent.
type wireBatch struct {
	tenant  string
	body    []byte // snappy block of the protobuf PushRequest
	entries int
	bytes   int
	newest  time.Time
	acks    []*ackRef   // live acknowledgements (this process)
	tags    []persisted // positions carried in a disk buffer record
}

// persisted is a file position carried by a buffered batch: after a restart
// it is committed when the batch is acknowledged.
type persisted struct {
	key string
	pos Position
}

// batchQueue holds encoded batches between the batcher and the sender, in
// order. Push blocks while the queue is full (back-pressure); Peek blocks
// until a batch is available; Pop removes the batch Peek returned. One
// goroutine pushes, one peeks and pops.
type batchQueue interface {
	Push(ctx context.Context, b *wireBatch) error
	Peek(ctx context.Context) (*wireBatch, error)
	Pop() error
	Len() int
	Close() error
}

// memQueue is a bounded in-memory batchQueue.
type memQueue struct {
	ch      chan *wireBatch
	head    *wireBatch   // owned by the popping goroutine
	pending atomic.Int32 // pushed and not yet popped, including head
}

func newMemQueue(n int) *memQueue { return &memQueue{ch: make(chan *wireBatch, n)} }

func (q *memQueue) Push(ctx context.Context, b *wireBatch) error {
	q.pending.Add(1)
	select {
	case q.ch <- b:
		return nil
	case <-ctx.Done():
		q.pending.Add(-1)
		return ctx.Err()
	}
}

func (q *memQueue) Peek(ctx context.Context) (*wireBatch, error) {
	if q.head != nil {
		return q.head, nil
	}
	select {
	case b := <-q.ch:
		q.head = b
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (q *memQueue) Pop() error   { q.head = nil; q.pending.Add(-1); return nil }
func (q *memQueue) Len() int     { return int(q.pending.Load()) }
func (q *memQueue) Close() error { return nil }

// Client batches entries and pushes them to one Loki-compatible endpoint.
//
// Handle may be called from several goroutines. Run must be running for
// Handle to make progress.
type Client struct {
	cfg     ClientConfig
	limits  LimitsConfig
	logger  *slog.Logger
	metrics *Metrics
	host    string
	http    *http.Client
	ext     model.LabelSet
	in      chan sendEntry
	queue   batchQueue
	now     func() time.Time
	// durable, when set, waits until the positions acknowledged so far
	// are written; the sender calls it after each acknowledged batch.
	durable func(ctx context.Context)

	drainTimeout time.Duration
}

// NewClient builds a client. When cfg.DiskBuffer is set its spool is
// opened (and replayed batches are queued first).
func NewClient(cfg ClientConfig, limits LimitsConfig, logger *slog.Logger, m *Metrics) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("client url %q: %w", cfg.URL, err)
	}
	hc, err := promconfig.NewClientFromConfig(cfg.HTTPClientConfig, "promtail")
	if err != nil {
		return nil, fmt.Errorf("client %s: %w", u.Host, err)
	}
	hc.Timeout = cfg.Timeout.D()
	if hc.Timeout <= 0 {
		hc.Timeout = defaultClientTimeout
	}
	c := &Client{
		cfg: cfg, limits: limits, logger: logger.With("client", u.Host), metrics: m, host: u.Host, http: hc,
		in: make(chan sendEntry, 256), now: time.Now, drainTimeout: 5 * time.Second,
	}
	if len(cfg.ExternalLabels) > 0 {
		c.ext = model.LabelSet{}
		for k, v := range cfg.ExternalLabels {
			c.ext[model.LabelName(k)] = model.LabelValue(v)
		}
	}
	if cfg.DiskBuffer != nil {
		q, err := openDiskQueue(diskQueueDir(cfg), int64(cfg.DiskBuffer.MaxSize), logger)
		if err != nil {
			return nil, err
		}
		c.queue = q
	} else {
		c.queue = newMemQueue(1)
	}
	return c, nil
}

// bufferedPositions returns the newest file position held in the client's
// disk buffer per key (nil without a buffer).
func (c *Client) bufferedPositions() map[string]Position {
	if q, ok := c.queue.(*diskQueue); ok {
		return q.highWater()
	}
	return nil
}

// Handle queues e for sending. It blocks while the client is saturated and
// fails only when ctx is done.
func (c *Client) Handle(ctx context.Context, e sendEntry) error {
	select {
	case c.in <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// batch collects entries of one tenant.
type batch struct {
	streams map[string]*pushStream
	order   []*pushStream
	bytes   int
	entries int
	created time.Time
	newest  time.Time
	acks    []*ackRef
}

func newBatch(now time.Time) *batch {
	return &batch{streams: map[string]*pushStream{}, created: now}
}

// Run batches and sends until ctx is done; then it flushes what it holds
// and gives the sender a short time to drain before returning.
func (c *Client) Run(ctx context.Context) error {
	sendCtx, stopSend := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.sendLoop(sendCtx)
	}()
	batches := map[string]*batch{}
	wait := c.cfg.BatchWait.D()
	if wait <= 0 {
		wait = defaultBatchWait
	}
	tick := time.NewTicker(max(wait/2, 10*time.Millisecond))
	defer tick.Stop()
	pushCtx := context.WithoutCancel(ctx)
	flush := func(tenant string, b *batch) {
		delete(batches, tenant)
		wb := c.encode(tenant, b)
		// Push blocks while the queue (memory or disk) is full.
		pctx, cancel := context.WithTimeout(pushCtx, time.Hour)
		if ctx.Err() != nil {
			cancel()
			pctx, cancel = context.WithTimeout(pushCtx, c.drainTimeout)
		}
		if err := c.queue.Push(pctx, wb); err != nil {
			c.logger.Warn("batch not queued", "err", err)
		}
		cancel()
	}
	maxBytes := int(c.cfg.BatchSize)
	if maxBytes <= 0 {
		maxBytes = defaultBatchSize
	}
	finish := func() {
		for _, t := range slices.Sorted(mapsKeys(batches)) {
			flush(t, batches[t])
		}
		// give the sender up to drainTimeout to send what is queued
		deadline := time.Now().Add(c.drainTimeout)
		for c.queue.Len() > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		stopSend()
		wg.Wait()
		_ = c.queue.Close()
	}
	for {
		select {
		case <-ctx.Done():
			// take what is already queued for us, then stop
			for {
				select {
				case e := <-c.in:
					c.add(batches, e, maxBytes, flush)
					continue
				default:
				}
				break
			}
			finish()
			return nil
		case e := <-c.in:
			c.add(batches, e, maxBytes, flush)
		case <-tick.C:
			now := c.now()
			for t, b := range batches {
				if now.Sub(b.created) >= wait {
					flush(t, b)
				}
			}
		}
	}
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// add applies the client-side limits and appends e to its tenant's batch.
func (c *Client) add(batches map[string]*batch, e sendEntry, maxBytes int, flush func(string, *batch)) {
	tenant := e.Tenant
	if tenant == "" {
		tenant = c.cfg.TenantID
	}
	if max := int(c.limits.MaxLineSize); max > 0 && len(e.Line) > max {
		if !c.limits.MaxLineSizeTruncate {
			c.metrics.droppedEntries.WithLabelValues(c.host, tenant, reasonLineTooLong).Inc()
			c.metrics.droppedBytes.WithLabelValues(c.host, tenant, reasonLineTooLong).Add(float64(len(e.Line)))
			e.ack.release()
			return
		}
		c.metrics.mutatedEntries.WithLabelValues(c.host, tenant, reasonLineTooLong).Inc()
		c.metrics.mutatedBytes.WithLabelValues(c.host, tenant, reasonLineTooLong).Add(float64(len(e.Line) - max))
		e.Line = e.Line[:max]
	}
	labels := e.Labels
	if len(c.ext) > 0 {
		labels = c.ext.Merge(e.Labels)
	}
	for k := range labels {
		if len(k) > 1 && k[0] == '_' && k[1] == '_' {
			labels = labels.Clone()
			for k := range labels {
				if len(k) > 1 && k[0] == '_' && k[1] == '_' {
					delete(labels, k)
				}
			}
			break
		}
	}
	key := labels.String()
	size := len(e.Line)
	for k, v := range e.Metadata {
		size += len(k) + len(v)
	}
	b := batches[tenant]
	if b != nil && b.bytes+size > maxBytes && b.entries > 0 {
		flush(tenant, b)
		b = nil
	}
	if b == nil {
		b = newBatch(c.now())
		batches[tenant] = b
	}
	s := b.streams[key]
	if s == nil {
		if c.limits.MaxStreams > 0 && len(b.streams) >= c.limits.MaxStreams {
			c.metrics.droppedEntries.WithLabelValues(c.host, tenant, reasonStreamLimit).Inc()
			c.metrics.droppedBytes.WithLabelValues(c.host, tenant, reasonStreamLimit).Add(float64(len(e.Line)))
			e.ack.release()
			return
		}
		s = &pushStream{Labels: key}
		b.streams[key] = s
		b.order = append(b.order, s)
	}
	pe := pushEntry{Timestamp: e.Timestamp, Line: e.Line}
	if len(e.Metadata) > 0 {
		for _, k := range slices.Sorted(mapsKeys(e.Metadata)) {
			pe.Metadata = append(pe.Metadata, metaPair{Name: k, Value: e.Metadata[k]})
		}
	}
	s.Entries = append(s.Entries, pe)
	b.bytes += size
	b.entries++
	if e.Timestamp.After(b.newest) {
		b.newest = e.Timestamp
	}
	if e.ack != nil {
		b.acks = append(b.acks, e.ack)
	}
	if b.bytes >= maxBytes {
		flush(tenant, b)
	}
}

// encode turns a batch into its wire form.
func (c *Client) encode(tenant string, b *batch) *wireBatch {
	raw := appendPushRequest(make([]byte, 0, b.bytes+64*b.entries), b.order)
	body := snappy.Encode(nil, raw)
	c.metrics.encodedBytes.WithLabelValues(c.host).Add(float64(len(body)))
	wb := &wireBatch{tenant: tenant, body: body, entries: b.entries, bytes: b.bytes, newest: b.newest, acks: b.acks}
	// the newest position per key travels with a buffered batch
	last := map[string]int{}
	for i, a := range b.acks {
		last[a.key] = i
	}
	idx := mapsValues(last)
	slices.Sort(idx)
	for _, i := range idx {
		wb.tags = append(wb.tags, persisted{key: b.acks[i].key, pos: b.acks[i].pos})
	}
	return wb
}

func mapsValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// sendLoop sends queued batches in order, retrying with backoff, until ctx
// is done.
func (c *Client) sendLoop(ctx context.Context) {
	for {
		wb, err := c.queue.Peek(ctx)
		if err != nil {
			return
		}
		if !c.sendWithRetry(ctx, wb) {
			return // ctx done; the batch stays queued
		}
		if err := c.queue.Pop(); err != nil {
			c.logger.Error("disk buffer", "err", err)
		}
		if c.durable != nil && len(wb.acks) > 0 {
			// the next batch goes once this one's positions are on disk:
			// a crash re-sends only batches not yet acknowledged, and the
			// one whose positions were being written
			c.durable(ctx)
		}
	}
}

// sendWithRetry delivers one batch: it returns true when the batch was
// acknowledged or dropped by configuration, false when ctx ended first.
func (c *Client) sendWithRetry(ctx context.Context, wb *wireBatch) bool {
	minB, maxB := c.cfg.BackoffConfig.MinPeriod.D(), c.cfg.BackoffConfig.MaxPeriod.D()
	if minB <= 0 {
		minB = defaultMinBackoff
	}
	if maxB < minB {
		maxB = minB
	}
	retries := 0
	for {
		status, err := c.send(ctx, wb)
		if ctx.Err() != nil && status == 0 {
			return false
		}
		if err == nil && status/100 == 2 {
			c.metrics.sentBytes.WithLabelValues(c.host).Add(float64(len(wb.body)))
			c.metrics.sentEntries.WithLabelValues(c.host).Add(float64(wb.entries))
			if !wb.newest.IsZero() {
				c.metrics.streamLag.WithLabelValues(c.host, wb.tenant).Set(c.now().Sub(wb.newest).Seconds())
			}
			c.done(wb)
			return true
		}
		retryable := status == 0 || status == http.StatusTooManyRequests || status/100 == 5
		reason := reasonGeneric
		if status == http.StatusTooManyRequests {
			reason = reasonRateLimited
			if c.cfg.DropRateLimitedBatches {
				retryable = false
			}
		}
		if retryable && (c.cfg.BackoffConfig.MaxRetries <= 0 || retries < c.cfg.BackoffConfig.MaxRetries) {
			retries++
			c.metrics.batchRetries.WithLabelValues(c.host, wb.tenant).Inc()
			d := minB << min(retries-1, 30)
			if d > maxB || d <= 0 {
				d = maxB
			}
			d = d/2 + rand.N(d/2+1)
			c.logger.Warn("error sending batch, will retry", "status", status, "err", err, "retry", retries, "backoff", d)
			select {
			case <-time.After(d):
				continue
			case <-ctx.Done():
				return false
			}
		}
		c.logger.Error("final error sending batch, dropping it", "status", status, "err", err, "tenant", wb.tenant, "entries", wb.entries)
		c.metrics.droppedEntries.WithLabelValues(c.host, wb.tenant, reason).Add(float64(wb.entries))
		c.metrics.droppedBytes.WithLabelValues(c.host, wb.tenant, reason).Add(float64(wb.bytes))
		c.done(wb)
		return true
	}
}

// done acknowledges every entry of a batch that was sent or dropped.
func (c *Client) done(wb *wireBatch) {
	if wb.acks != nil {
		for _, a := range wb.acks {
			a.release()
		}
		return
	}
	if q, ok := c.queue.(*diskQueue); ok && q.positions != nil {
		for _, t := range wb.tags {
			q.positions.Put(t.key, t.pos)
		}
	}
}

// send makes one push request; status is 0 for a network error.
func (c *Client) send(ctx context.Context, wb *wireBatch) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.http.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(wb.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", userAgent())
	for k, v := range c.cfg.Headers {
		req.Header.Set(k, v)
	}
	if wb.tenant != "" {
		req.Header.Set("X-Scope-OrgID", wb.tenant)
	} else {
		req.Header.Del("X-Scope-OrgID")
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.metrics.requestSeconds.WithLabelValues("", c.host, wb.tenant).Observe(time.Since(start).Seconds())
		return 0, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	_, _ = io.Copy(io.Discard, resp.Body)
	c.metrics.requestSeconds.WithLabelValues(strconv.Itoa(resp.StatusCode), c.host, wb.tenant).Observe(time.Since(start).Seconds())
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("server returned HTTP status %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return resp.StatusCode, nil
}
