// Package compactor owns the background maintenance of the block store:
// merging blocks of a tenant and window into one (dropping exact duplicate
// entries and re-chunking), applying per-tenant retention, and the lazy
// deletion protocol (mark, wait, delete) of docs/format/block.md. The
// Planner decides what to merge and is pure; the Compactor executes.
//
// Exactly one compactor may run against a bucket at a time.
package compactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"

	"github.com/ledgerlog/ledgerlog/internal/storage/block"
	"github.com/ledgerlog/ledgerlog/internal/storage/chunk"
	"github.com/ledgerlog/ledgerlog/internal/storage/iter"
)

// retentionStep is the granularity of the retention cutoff: it is rounded
// down to a whole step, so a block straddling it is rewritten at most once
// per step instead of on every pass, and data lives at most one step past
// its retention period (plus retention_delete_delay).
const retentionStep = time.Hour

// partialUploadThreshold is the age (from the ULID time) after which a
// block without meta.json is taken as abandoned and deleted, as in Thanos.
const partialUploadThreshold = 48 * time.Hour

// Compactor merges blocks, applies retention and deletes marked blocks.
// RunOnce and Run must not be called concurrently. Fields are set by New
// and not changed after, except lastRetention, which only the running
// loop touches.
type Compactor struct {
	cfg       Config
	bkt       objstore.Bucket
	retention func(tenant string) time.Duration
	logger    *slog.Logger
	planner   Planner
	enc       chunk.Encoding
	m         *metrics

	// now is the clock; tests replace it.
	now func() time.Time

	lastRetention time.Time
}

type metrics struct {
	runs          prometheus.Counter
	runFailures   prometheus.Counter
	lastSuccess   prometheus.Gauge
	compactions   prometheus.Counter
	rewrites      prometheus.Counter
	marked        *prometheus.CounterVec
	deleted       prometheus.Counter
	quarantined   prometheus.Counter
	duplicates    prometheus.Counter
	expired       prometheus.Counter
	entriesMerged prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		runs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerlog_compactor_runs_total", Help: "Compactor runs started."}),
		runFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerlog_compactor_run_failures_total", Help: "Compactor runs that ended with an error."}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ledgerlog_compactor_last_successful_run_timestamp_seconds", Help: "Unix time of the last successful run."}),
		compactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerlog_compactor_compactions_total", Help: "Groups of blocks merged into one."}),
		rewrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerlog_compactor_retention_rewrites_total", Help: "Blocks rewritten without entries past retention."}),
		marked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledgerlog_compactor_blocks_marked_for_deletion_total", Help: "Blocks marked for deletion, by reason."}, []string{"reason"}),
		deleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerlog_compactor_blocks_deleted_total", Help: "Blocks deleted from the bucket."}),
		quarantined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerlog_compactor_blocks_quarantined_total", Help: "Blocks quarantined because they failed verification."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerlog_compactor_duplicate_entries_dropped_total", Help: "Exact duplicate entries dropped by merges."}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerlog_compactor_expired_entries_dropped_total", Help: "Entries dropped by retention rewrites."}),
		entriesMerged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledgerlog_compactor_entries_written_total", Help: "Entries written to compacted or rewritten blocks."}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.runFailures, m.lastSuccess, m.compactions, m.rewrites, m.marked,
			m.deleted, m.quarantined, m.duplicates, m.expired, m.entriesMerged)
	}
	return m
}

// New returns a Compactor. cfg must have passed Validate (an invalid
// chunk encoding falls back to the default). retention returns a tenant's
// retention period, 0 meaning forever; nil means no retention. logger and
// reg may be nil.
func New(cfg Config, bkt objstore.Bucket, retention func(tenant string) time.Duration, logger *slog.Logger, reg prometheus.Registerer) *Compactor {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	enc, err := chunk.ParseEncoding(cfg.ChunkEncoding)
	if err != nil {
		enc = chunk.DefaultEncoding
	}
	if cfg.ChunkTargetSize <= 0 {
		cfg.ChunkTargetSize = 1536 << 10
	}
	return &Compactor{
		cfg:       cfg,
		bkt:       bkt,
		retention: retention,
		logger:    logger,
		planner:   Planner{SmallRange: cfg.SmallBlockMergeRange.D(), SmallMaxBytes: int64(cfg.SmallBlockMaxSize)},
		enc:       enc,
		m:         newMetrics(reg),
		now:       time.Now,
	}
}

// Run calls RunOnce every compaction_interval until ctx ends, logging
// failures. It returns nil when ctx ends.
func (c *Compactor) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.CompactionInterval.D())
	defer t.Stop()
	for {
		if err := c.RunOnce(ctx); err != nil && ctx.Err() == nil {
			c.logger.Error("compaction run failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunOnce runs one pass over every tenant: delete blocks whose deletion
// delay has passed and abandoned partial blocks, mark superseded blocks,
// quarantine unreadable ones, apply retention (when enabled and due), then
// merge what the Planner selects. A failure for one tenant does not stop the
// others; the errors are joined.
func (c *Compactor) RunOnce(ctx context.Context) error {
	c.m.runs.Inc()
	applyRetention := c.cfg.RetentionEnabled && c.retention != nil &&
		(c.lastRetention.IsZero() || c.now().Sub(c.lastRetention) >= c.cfg.ApplyRetentionInterval.D())
	tenants, err := block.ListTenants(ctx, c.bkt)
	if err != nil {
		c.m.runFailures.Inc()
		return err
	}
	var errs []error
	for _, t := range tenants {
		if err := c.runTenant(ctx, t, applyRetention); err != nil {
			if ctx.Err() != nil {
				c.m.runFailures.Inc()
				return ctx.Err()
			}
			errs = append(errs, fmt.Errorf("tenant %s: %w", t, err))
		}
	}
	if applyRetention {
		c.lastRetention = c.now()
	}
	if err := errors.Join(errs...); err != nil {
		c.m.runFailures.Inc()
		return err
	}
	c.m.lastSuccess.Set(float64(c.now().Unix()))
	return nil
}

func (c *Compactor) runTenant(ctx context.Context, tenant string, applyRetention bool) error {
	scan, err := block.ScanTenant(ctx, c.bkt, tenant, c.logger)
	if err != nil {
		return err
	}
	if err := c.cleanup(ctx, tenant, scan); err != nil {
		return err
	}
	live := scan.Live
	if applyRetention {
		changed, err := c.applyRetention(ctx, tenant, scan)
		if err != nil {
			return err
		}
		if changed {
			if scan, err = block.ScanTenant(ctx, c.bkt, tenant, c.logger); err != nil {
				return err
			}
			live = scan.Live
		}
	}
	var errs []error
	for _, g := range c.planner.Plan(live, c.now()) {
		if err := c.compactGroup(ctx, g); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cleanup deletes marked blocks past their delay and abandoned partial
// blocks, marks superseded blocks for deletion and quarantines blocks with
// an unreadable meta.json.
func (c *Compactor) cleanup(ctx context.Context, tenant string, scan *block.Scan) error {
	now := c.now()
	var errs []error
	for _, mb := range scan.Marked {
		delay := c.cfg.DeletionDelay.D()
		if mb.Mark.Details == block.DeletionRetention {
			delay = c.cfg.RetentionDeleteDelay.D()
		}
		if now.Sub(time.Unix(mb.Mark.DeletionTime, 0)) < delay {
			continue
		}
		if err := block.Delete(ctx, c.bkt, tenant, mb.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		c.m.deleted.Inc()
		c.logger.Info("deleted block", "tenant", tenant, "block", mb.ID, "reason", mb.Mark.Details)
	}
	for _, id := range scan.Partial {
		if now.Sub(ulid.Time(id.Time())) < partialUploadThreshold {
			continue
		}
		if err := block.Delete(ctx, c.bkt, tenant, id); err != nil {
			errs = append(errs, err)
			continue
		}
		c.m.deleted.Inc()
		c.logger.Info("deleted abandoned partial block", "tenant", tenant, "block", id)
	}
	for _, m := range scan.Superseded {
		errs = append(errs, c.mark(ctx, tenant, m.ULID, block.DeletionSuperseded))
	}
	for _, u := range scan.Unreadable {
		c.quarantine(ctx, tenant, u.ID, u.Err)
	}
	return errors.Join(errs...)
}

func (c *Compactor) mark(ctx context.Context, tenant string, id ulid.ULID, reason string) error {
	err := block.WriteDeletionMark(ctx, c.bkt, tenant, block.DeletionMark{ID: id, DeletionTime: c.now().Unix(), Details: reason})
	if err != nil {
		return err
	}
	c.m.marked.WithLabelValues(reason).Inc()
	c.logger.Info("marked block for deletion", "tenant", tenant, "block", id, "reason", reason)
	return nil
}

// quarantine marks a block that failed verification and counts it; a
// failure to write the mark is logged (the block is retried next run).
func (c *Compactor) quarantine(ctx context.Context, tenant string, id ulid.ULID, cause error) {
	if err := block.Quarantine(ctx, c.bkt, tenant, id, cause.Error()); err != nil {
		c.logger.Error("quarantine block", "tenant", tenant, "block", id, "err", err)
		return
	}
	c.m.quarantined.Inc()
	c.logger.Warn("quarantined corrupt block", "tenant", tenant, "block", id, "err", cause)
}

// openSources opens the blocks of metas, quarantining corrupt ones, and
// returns those that opened.
func (c *Compactor) openSources(ctx context.Context, tenant string, metas []block.Meta) ([]*block.Block, error) {
	out := make([]*block.Block, 0, len(metas))
	for _, m := range metas {
		b, err := block.OpenWithMeta(ctx, c.bkt, m)
		if err != nil {
			var ce *iter.CorruptionError
			if errors.As(err, &ce) {
				c.quarantine(ctx, tenant, m.ULID, err)
				continue
			}
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// compactGroup merges a group into one block and marks the sources for
// deletion. A source found corrupt is quarantined and the merge retried
// without it.
func (c *Compactor) compactGroup(ctx context.Context, g Group) error {
	srcs, err := c.openSources(ctx, g.Tenant, g.Blocks)
	if err != nil {
		return err
	}
	for len(srcs) >= 2 {
		level := 0
		var sources []ulid.ULID
		for _, b := range srcs {
			m := b.Meta()
			level = max(level, m.Compaction.Level)
			sources = append(sources, m.Compaction.Sources...)
		}
		slices.SortFunc(sources, ulid.ULID.Compare)
		sources = slices.Compact(sources)
		start := c.now()
		meta, st, err := c.mergeBlocks(ctx, g.Tenant, srcs, mergeOptions{
			window: g.Window, level: level + 1, sources: sources, cutoff: math.MinInt64,
		})
		var cbe *corruptBlockError
		if errors.As(err, &cbe) {
			c.quarantine(ctx, g.Tenant, cbe.id, cbe.err)
			srcs = slices.DeleteFunc(srcs, func(b *block.Block) bool { return b.ID() == cbe.id })
			continue
		}
		if err != nil && !errors.Is(err, block.ErrEmpty) {
			return fmt.Errorf("compact %d blocks of window [%d, %d): %w", len(srcs), g.Window.Min, g.Window.Max, err)
		}
		c.m.compactions.Inc()
		c.m.duplicates.Add(float64(st.duplicates))
		c.m.entriesMerged.Add(float64(st.entriesOut))
		c.logger.Info("compacted blocks", "tenant", g.Tenant, "block", meta.ULID, "sources", len(srcs),
			"entries", st.entriesOut, "duplicates", st.duplicates, "duration", c.now().Sub(start))
		var errs []error
		for _, b := range srcs {
			errs = append(errs, c.mark(ctx, g.Tenant, b.ID(), block.DeletionCompacted))
		}
		return errors.Join(errs...)
	}
	return nil
}

// applyRetention marks blocks entirely older than the tenant's retention
// for deletion and rewrites blocks that straddle the cutoff without the
// expired entries. It reports whether it changed anything.
func (c *Compactor) applyRetention(ctx context.Context, tenant string, scan *block.Scan) (bool, error) {
	period := c.retention(tenant)
	if period <= 0 {
		return false, nil
	}
	cutoff := c.now().Add(-period).Truncate(retentionStep).UnixNano()
	changed := false
	var errs []error
	// Quarantined blocks are kept for inspection, but not past retention.
	for _, q := range scan.Quarantined {
		if q.Meta != nil && q.Meta.MaxTime <= cutoff {
			errs = append(errs, c.mark(ctx, tenant, q.ID, block.DeletionRetention))
			changed = true
		}
	}
	for _, m := range scan.Live {
		switch {
		case m.MaxTime <= cutoff:
			errs = append(errs, c.mark(ctx, tenant, m.ULID, block.DeletionRetention))
			changed = true
		case m.MinTime < cutoff:
			if err := c.rewrite(ctx, tenant, m, cutoff); err != nil {
				if ctx.Err() != nil {
					return changed, ctx.Err()
				}
				errs = append(errs, err)
			}
			changed = true
		}
	}
	return changed, errors.Join(errs...)
}

// rewrite writes a copy of block m without entries before cutoff (same
// window, level and sources, so the copy supersedes it) and marks m.
func (c *Compactor) rewrite(ctx context.Context, tenant string, m block.Meta, cutoff int64) error {
	srcs, err := c.openSources(ctx, tenant, []block.Meta{m})
	if err != nil || len(srcs) == 0 {
		return err
	}
	meta, st, err := c.mergeBlocks(ctx, tenant, srcs, mergeOptions{
		window: m.Window.Range(), level: m.Compaction.Level, sources: m.Compaction.Sources, cutoff: cutoff,
	})
	var cbe *corruptBlockError
	if errors.As(err, &cbe) {
		c.quarantine(ctx, tenant, cbe.id, cbe.err)
		return nil
	}
	if err != nil && !errors.Is(err, block.ErrEmpty) {
		return fmt.Errorf("apply retention to block %s: %w", m.ULID, err)
	}
	c.m.rewrites.Inc()
	c.m.expired.Add(float64(st.expired))
	c.m.duplicates.Add(float64(st.duplicates))
	c.m.entriesMerged.Add(float64(st.entriesOut))
	c.logger.Info("rewrote block for retention", "tenant", tenant, "block", m.ULID, "new_block", meta.ULID,
		"expired", st.expired, "entries", st.entriesOut)
	return c.mark(ctx, tenant, m.ULID, block.DeletionRetention)
}
