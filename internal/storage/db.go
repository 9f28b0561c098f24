// Package storage owns the durable store of log data: it appends pushes to
// the write-ahead log and the head, flushes the head into immutable blocks in
// an object store, checkpoints the WAL, replays it on start, and answers
// reads over head and blocks together, so data is queryable the moment it
// is acknowledged.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thanos-io/objstore"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage/block"
	"github.com/ledgerlog/ledgerlog/internal/storage/head"
	"github.com/ledgerlog/ledgerlog/internal/storage/wal"
)

// Options configure a DB.
type Options struct {
	Head               head.Options
	WAL                wal.Options // WAL.Dir empty disables the WAL
	Bucket             objstore.Bucket
	BlockWindow        time.Duration // blocks cover windows of this length, aligned to the epoch
	MaxHeadBytes       int64         // head size that forces a flush
	FlushCheckPeriod   time.Duration // cut idle/old chunks and flush cut ones this often
	CheckpointInterval time.Duration
	FlushOnShutdown    bool
	Logger             *slog.Logger
	Registerer         prometheus.Registerer
}

// DB is the store. It is safe for concurrent use.
type DB struct {
	opts Options
	log  *slog.Logger
	head *head.Head
	wal  *wal.WAL

	ready atomic.Bool

	// flushMu serialises flushes and checkpoints.
	flushMu sync.Mutex

	// viewMu makes "release from head + add block" atomic for readers.
	viewMu sync.RWMutex
	blocks map[string][]*block.Block // guarded by viewMu; per tenant, sorted by min time

	bufPool sync.Pool
	flushC  chan struct{} // a full head asks Run for a flush

	metrics dbMetrics
}

type dbMetrics struct {
	flushes        *prometheus.CounterVec
	flushDuration  prometheus.Histogram
	blocksLoaded   prometheus.Gauge
	corruptions    *prometheus.CounterVec
	chunksFlushed  prometheus.Counter
	bytesFlushed   prometheus.Counter
	replayDuration prometheus.Gauge
	linesStored    *prometheus.CounterVec
	bytesStored    *prometheus.CounterVec
}

// Open opens the store: it replays the WAL into the head (Ready reports
// false until that is done) and loads the block list.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.BlockWindow <= 0 {
		opts.BlockWindow = 2 * time.Hour
	}
	f := promauto.With(opts.Registerer)
	db := &DB{
		opts:   opts,
		log:    opts.Logger,
		head:   head.New(opts.Head, opts.Logger, opts.Registerer),
		blocks: map[string][]*block.Block{},
		flushC: make(chan struct{}, 1),
		metrics: dbMetrics{
			flushes: f.NewCounterVec(prometheus.CounterOpts{
				Name: "ledgerlog_head_flushes_total", Help: "Head flushes into blocks, by outcome.",
			}, []string{"outcome"}),
			flushDuration: f.NewHistogram(prometheus.HistogramOpts{
				Name: "ledgerlog_head_flush_duration_seconds", Help: "Duration of a head flush.",
				Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
			}),
			blocksLoaded: f.NewGauge(prometheus.GaugeOpts{
				Name: "ledgerlog_blocks_loaded", Help: "Blocks open for querying.",
			}),
			corruptions: f.NewCounterVec(prometheus.CounterOpts{
				Name: "ledgerlog_corruptions_total", Help: "Corrupt objects found, by kind.",
			}, []string{"kind"}),
			chunksFlushed: f.NewCounter(prometheus.CounterOpts{
				Name: "loki_ingester_chunks_flushed_total", Help: "Total flushed chunks.",
			}),
			bytesFlushed: f.NewCounter(prometheus.CounterOpts{
				Name: "ledgerlog_ingester_chunk_bytes_flushed_total", Help: "Encoded chunk bytes flushed into blocks.",
			}),
			replayDuration: f.NewGauge(prometheus.GaugeOpts{
				Name: "ledgerlog_wal_replay_duration_seconds", Help: "Duration of the last WAL replay.",
			}),
			linesStored: f.NewCounterVec(prometheus.CounterOpts{
				Name: "loki_ingester_entries_total", Help: "Entries appended to the head.",
			}, []string{"tenant"}),
			bytesStored: f.NewCounterVec(prometheus.CounterOpts{
				Name: "loki_ingester_bytes_total", Help: "Line bytes appended to the head.",
			}, []string{"tenant"}),
		},
	}
	db.bufPool.New = func() any { b := make([]byte, 0, 1<<20); return &b }
	if err := db.SyncBlocks(ctx); err != nil {
		return nil, err
	}
	if opts.WAL.Dir != "" {
		w, err := wal.Open(opts.WAL)
		if err != nil {
			return nil, fmt.Errorf("open wal: %w", err)
		}
		db.wal = w
		start := time.Now()
		if err := db.replay(); err != nil {
			return nil, errors.Join(fmt.Errorf("replay wal: %w", err), w.Close())
		}
		db.metrics.replayDuration.Set(time.Since(start).Seconds())
		db.log.Info("wal replayed", "duration", time.Since(start), "head_bytes", db.head.Bytes())
	}
	db.ready.Store(true)
	return db, nil
}

// Ready reports whether the WAL replay is done.
func (db *DB) Ready() bool { return db.ready.Load() }

// Head exposes the head (tests, metrics).
func (db *DB) Head() *head.Head { return db.head }

func (db *DB) replay() error {
	var records, bad int
	err := db.wal.Replay(func(rec []byte) error {
		d, err := decodeRecord(rec)
		if err != nil {
			// A record that passed the WAL's CRC but does not decode was
			// written by a different version; count it and go on.
			bad++
			db.metrics.corruptions.WithLabelValues("wal_record").Inc()
			db.log.Warn("skip undecodable wal record", "err", err)
			return nil
		}
		records++
		switch d.kind {
		case recordEntries:
			_, _ = db.head.Append(d.tenant, d.streams, head.Limits{UnorderedWrites: true}, true)
		case recordChunk:
			return db.replayChunk(d)
		}
		return nil
	})
	if bad > 0 {
		db.log.Warn("wal replay skipped records", "skipped", bad, "replayed", records)
	}
	return err
}

func (db *DB) replayChunk(d decodedRecord) error {
	c, err := openChunk(d.chunk)
	if err != nil {
		db.metrics.corruptions.WithLabelValues("wal_chunk").Inc()
		db.log.Warn("skip corrupt checkpoint chunk", "stream", d.labels.String(), "err", err)
		return nil
	}
	it := c.Iterator(model.AllTime, model.Forward, nil)
	var entries []model.Entry
	for it.Next() {
		e := it.At()
		entries = append(entries, e)
	}
	if err := it.Err(); err != nil {
		db.metrics.corruptions.WithLabelValues("wal_chunk").Inc()
		db.log.Warn("checkpoint chunk partly unreadable", "stream", d.labels.String(), "err", err)
	}
	_ = it.Close()
	_, _ = db.head.Append(d.tenant, []model.Stream{{Labels: d.labels, Entries: entries}}, head.Limits{UnorderedWrites: true}, true)
	return nil
}

// Push stores streams for a tenant: it appends them to the head, writes
// what was accepted to the WAL and returns once that is durable (when the
// WAL syncs). The error, if any, is an *head.AppendError for refused
// entries (the rest is stored) or a storage error (nothing acknowledged).
func (db *DB) Push(tenantID string, streams []model.Stream, l head.Limits) error {
	accepted, appendErr := db.head.Append(tenantID, streams, l, false)
	if len(accepted) > 0 {
		var lines, bytes int
		for _, s := range accepted {
			lines += len(s.Entries)
			for _, e := range s.Entries {
				bytes += len(e.Line)
			}
		}
		db.metrics.linesStored.WithLabelValues(tenantID).Add(float64(lines))
		db.metrics.bytesStored.WithLabelValues(tenantID).Add(float64(bytes))
		if db.wal != nil {
			bp := db.bufPool.Get().(*[]byte)
			rec := appendEntriesRecord((*bp)[:0], tenantID, accepted)
			err := db.wal.Append(rec)
			if cap(rec) <= 8<<20 {
				*bp = rec[:0]
				db.bufPool.Put(bp)
			}
			if err != nil {
				return fmt.Errorf("write wal: %w", err)
			}
		}
	}
	if db.head.Bytes() >= db.opts.MaxHeadBytes && db.opts.MaxHeadBytes > 0 {
		db.triggerFlush()
	}
	return appendErr
}

// Run performs periodic work (cutting, flushing, checkpointing) until ctx
// is done.
func (db *DB) Run(ctx context.Context) {
	check := db.opts.FlushCheckPeriod
	if check <= 0 {
		check = 30 * time.Second
	}
	ckpt := db.opts.CheckpointInterval
	if ckpt <= 0 {
		ckpt = 5 * time.Minute
	}
	checkT := time.NewTicker(check)
	ckptT := time.NewTicker(ckpt)
	defer checkT.Stop()
	defer ckptT.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-db.flushCh():
			if err := db.Flush(ctx, true); err != nil {
				db.log.Error("flush head", "err", err)
			}
		case <-checkT.C:
			db.head.CutIdle(false)
			if err := db.Flush(ctx, false); err != nil {
				db.log.Error("flush head", "err", err)
			}
			db.head.GC(db.opts.Head.ChunkIdlePeriod)
		case <-ckptT.C:
			if err := db.Checkpoint(); err != nil {
				db.log.Error("checkpoint wal", "err", err)
			}
		}
	}
}

func (db *DB) flushCh() <-chan struct{} { return db.flushC }

func (db *DB) triggerFlush() {
	select {
	case db.flushC <- struct{}{}:
	default:
	}
}

// Flush writes cut chunks into blocks; with all set, every open chunk is
// cut first so the whole head is flushed. A checkpoint follows.
func (db *DB) Flush(ctx context.Context, all bool) error {
	db.flushMu.Lock()
	defer db.flushMu.Unlock()
	if all {
		db.head.CutIdle(true)
	}
	pending := db.head.TakeCuts()
	if len(pending) == 0 {
		return nil
	}
	start := time.Now()
	type key struct {
		tenant string
		window int64
	}
	groups := map[key][]head.Pending{}
	w := db.opts.BlockWindow.Nanoseconds()
	for _, p := range pending {
		byWindow := map[int64][]*head.Cut{}
		for _, c := range p.Cuts {
			win := floorDiv(c.Meta.MinTime, w)
			byWindow[win] = append(byWindow[win], c)
		}
		for win, cuts := range byWindow {
			k := key{p.Tenant, win}
			groups[k] = append(groups[k], head.Pending{Tenant: p.Tenant, Stream: p.Stream, Cuts: cuts})
		}
	}
	var errs []error
	for k, ps := range groups {
		b, err := db.writeBlock(ctx, k.tenant, k.window*w, ps)
		if err != nil {
			db.metrics.flushes.WithLabelValues("failure").Inc()
			errs = append(errs, fmt.Errorf("write block for tenant %s window %d: %w", k.tenant, k.window*w, err))
			continue
		}
		db.viewMu.Lock()
		db.head.Release(ps)
		db.addBlockLocked(k.tenant, b)
		db.viewMu.Unlock()
		db.metrics.flushes.WithLabelValues("success").Inc()
	}
	db.metrics.flushDuration.Observe(time.Since(start).Seconds())
	if err := db.checkpointLocked(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func (db *DB) writeBlock(ctx context.Context, tenantID string, windowStart int64, ps []head.Pending) (*block.Block, error) {
	bw, err := block.NewWriter(db.opts.Bucket, tenantID, block.WriterOptions{
		Window:       model.TimeRange{Min: windowStart, Max: windowStart + db.opts.BlockWindow.Nanoseconds()},
		RetainChunks: true,
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = bw.Close() }()
	var chunks, bytes int
	for _, p := range ps {
		cds := make([]block.ChunkData, 0, len(p.Cuts))
		for _, c := range p.Cuts {
			cds = append(cds, block.ChunkData{Meta: block.ChunkMeta(c.Meta), Data: c.Data})
			chunks++
			bytes += len(c.Data)
		}
		if err := bw.AddStream(p.Stream.Labels, cds); err != nil {
			return nil, err
		}
	}
	meta, err := bw.Flush(ctx)
	if err != nil {
		return nil, err
	}
	b, err := block.Open(ctx, db.opts.Bucket, tenantID, meta.ULID)
	if err != nil {
		return nil, fmt.Errorf("open written block %s: %w", meta.ULID, err)
	}
	db.metrics.chunksFlushed.Add(float64(chunks))
	db.metrics.bytesFlushed.Add(float64(bytes))
	db.log.Info("flushed block", "tenant", tenantID, "block", meta.ULID, "chunks", chunks, "bytes", bytes)
	return b, nil
}

func (db *DB) addBlockLocked(tenantID string, b *block.Block) {
	bs := append(db.blocks[tenantID], b)
	sort.Slice(bs, func(i, j int) bool { return bs[i].Meta().MinTime < bs[j].Meta().MinTime })
	db.blocks[tenantID] = bs
	db.metrics.blocksLoaded.Inc()
}

// Checkpoint writes a WAL checkpoint of the head so that replay stays short.
func (db *DB) Checkpoint() error {
	db.flushMu.Lock()
	defer db.flushMu.Unlock()
	return db.checkpointLocked()
}

func (db *DB) checkpointLocked() error {
	if db.wal == nil {
		return nil
	}
	boundary, err := db.wal.NextSegment()
	if err != nil {
		return fmt.Errorf("start wal segment: %w", err)
	}
	return db.wal.WriteCheckpoint(boundary, func(add func(rec []byte) error) error {
		var buf []byte
		return db.head.Checkpoint(func(tenantID string, ls model.Labels, data []byte) error {
			buf = appendChunkRecord(buf[:0], tenantID, ls, data)
			return add(buf)
		})
	})
}

// SyncBlocks reloads the block list from the bucket: new blocks (written by
// the compactor) are opened, removed ones dropped. A block that cannot be
// opened is quarantined and counted; it never stops the server.
func (db *DB) SyncBlocks(ctx context.Context) error {
	// No flush may add a block while the list is rebuilt, or that block
	// would be dropped from the view.
	db.flushMu.Lock()
	defer db.flushMu.Unlock()
	tenants, err := block.ListTenants(ctx, db.opts.Bucket)
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	db.viewMu.RLock()
	have := map[ulid.ULID]*block.Block{}
	for _, bs := range db.blocks {
		for _, b := range bs {
			have[b.Meta().ULID] = b
		}
	}
	db.viewMu.RUnlock()
	next := map[string][]*block.Block{}
	total := 0
	for _, t := range tenants {
		metas, err := block.ListMetas(ctx, db.opts.Bucket, t)
		if err != nil {
			return fmt.Errorf("list blocks of tenant %s: %w", t, err)
		}
		for _, m := range metas {
			if b, ok := have[m.ULID]; ok {
				next[t] = append(next[t], b)
				total++
				continue
			}
			b, err := block.Open(ctx, db.opts.Bucket, t, m.ULID)
			if err != nil {
				db.metrics.corruptions.WithLabelValues("block").Inc()
				db.log.Error("quarantine unreadable block", "tenant", t, "block", m.ULID, "err", err)
				if qerr := block.Quarantine(ctx, db.opts.Bucket, t, m.ULID, err.Error()); qerr != nil {
					db.log.Error("quarantine block", "block", m.ULID, "err", qerr)
				}
				continue
			}
			next[t] = append(next[t], b)
			total++
		}
		sort.Slice(next[t], func(i, j int) bool { return next[t][i].Meta().MinTime < next[t][j].Meta().MinTime })
	}
	db.viewMu.Lock()
	db.blocks = next
	db.viewMu.Unlock()
	db.metrics.blocksLoaded.Set(float64(total))
	return nil
}

// Close flushes the head if configured and closes the WAL.
func (db *DB) Close(ctx context.Context) error {
	var errs []error
	if db.opts.FlushOnShutdown {
		if err := db.Flush(ctx, true); err != nil {
			errs = append(errs, fmt.Errorf("flush on shutdown: %w", err))
		}
	}
	if db.wal != nil {
		if err := db.wal.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close wal: %w", err))
		}
	}
	return errors.Join(errs...)
}
