// Package app wires Ledgerlog's subcommands from their components; it holds
// no domain logic. One file per subcommand.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ledgerlog/ledgerlog/internal/api/loki"
	"github.com/ledgerlog/ledgerlog/internal/compactor"
	"github.com/ledgerlog/ledgerlog/internal/config"
	"github.com/ledgerlog/ledgerlog/internal/ingest"
	"github.com/ledgerlog/ledgerlog/internal/logql/engine"
	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage"
	"github.com/ledgerlog/ledgerlog/internal/storage/chunk"
	"github.com/ledgerlog/ledgerlog/internal/storage/head"
	"github.com/ledgerlog/ledgerlog/internal/storage/objstore"
	"github.com/ledgerlog/ledgerlog/internal/storage/wal"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
)

// Version is the Loki API version Ledgerlog reports, so that Grafana
// enables the features of that Loki release.
const Version = "3.5.0"

// defaultGCPercent is the Go GC target used unless GOGC is set.
const defaultGCPercent = 40

// RunServer runs `ledgerlog server` until ctx is done.
func RunServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	load, err := config.Parse("ledgerlog server", args, stderr)
	if err != nil {
		return err
	}
	cfg := &load.Config
	if load.PrintConfig {
		return config.Print(stdout, cfg)
	}
	level := new(slog.LevelVar)
	if err := level.UnmarshalText([]byte(cfg.Server.LogLevel)); err != nil {
		return fmt.Errorf("log level %q: %w", cfg.Server.LogLevel, err)
	}
	logger := newLogger(stderr, cfg.Server.LogFormat, level)
	if os.Getenv("GOGC") == "" {
		// Ingest allocates at the rate of the incoming bytes while the
		// live set is small (the head is bounded by max_head_bytes), so a
		// lower GC target keeps the footprint near the live set for a
		// little CPU. GOGC overrides it.
		debug.SetGCPercent(defaultGCPercent)
	}
	for _, w := range load.Warnings {
		logger.Warn(w)
	}
	enc, err := chunk.ParseEncoding(cfg.Ingester.ChunkEncoding)
	if err != nil {
		return fmt.Errorf("ingester.chunk_encoding: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	overrides := tenant.NewOverrides(cfg.Limits)
	if cfg.RuntimeConfig.File != "" {
		if err := overrides.Load(cfg.RuntimeConfig.File); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(cfg.BlocksDir(), 0o755); err != nil {
		return fmt.Errorf("create block directory: %w", err)
	}
	bkt, err := objstore.NewFilesystem(cfg.BlocksDir())
	if err != nil {
		return fmt.Errorf("open block store %s: %w", cfg.BlocksDir(), err)
	}

	store := &lateStore{}
	eng := &lateEngine{}
	api := loki.New(loki.Options{
		Store:       store,
		Engine:      eng,
		Overrides:   overrides,
		Tenants:     tenant.Resolver{AuthEnabled: cfg.AuthEnabled},
		Validator:   ingest.NewValidator(reg, logger),
		MaxPushBody: int64(cfg.Server.MaxPushBodySize),
		Gatherer:    reg,
		Registerer:  reg,
		Logger:      logger,
		LogLevel:    level,
		ConfigYAML:  configPrinter(cfg),
		Version:     Version,
	})

	addr := net.JoinHostPort(cfg.Server.HTTPListenAddress, strconv.Itoa(cfg.Server.HTTPListenPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:      api.Handler(),
		ReadTimeout:  cfg.Server.ReadTimeout.D(),
		WriteTimeout: cfg.Server.WriteTimeout.D(),
		IdleTimeout:  cfg.Server.IdleTimeout.D(),
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("listening", "addr", ln.Addr().String(), "data", cfg.Common.PathPrefix)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	// The HTTP server answers /ready with 503 while the WAL replays.
	walOpts := wal.DefaultOptions(cfg.WALDir())
	walOpts.Sync = cfg.Ingester.WAL.Sync
	walOpts.SegmentSize = int64(cfg.Ingester.WAL.SegmentSize)
	walOpts.Logger = logger
	walOpts.Registerer = reg
	if !cfg.Ingester.WAL.Enabled {
		walOpts.Dir = ""
	}
	db, err := storage.Open(ctx, storage.Options{
		Head: head.Options{
			Encoding:        enc,
			PageSize:        int(cfg.Ingester.ChunkBlockSize),
			ChunkTargetSize: int(cfg.Ingester.ChunkTargetSize),
			MaxChunkAge:     cfg.Ingester.MaxChunkAge.D(),
			ChunkIdlePeriod: cfg.Ingester.ChunkIdlePeriod.D(),
		},
		WAL:                walOpts,
		Bucket:             bkt,
		BlockWindow:        cfg.Ingester.BlockWindow.D(),
		MaxHeadBytes:       int64(cfg.Ingester.MaxHeadBytes),
		FlushCheckPeriod:   cfg.Ingester.FlushCheckPeriod.D(),
		CheckpointInterval: cfg.Ingester.WAL.CheckpointDuration.D(),
		FlushOnShutdown:    cfg.Ingester.WAL.FlushOnShutdown,
		Logger:             logger,
		Registerer:         reg,
	})
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("open storage: %w", err)
	}
	store.set(db)
	eng.set(engine.New(db, overrides, engine.Options{Logger: logger}))
	logger.Info("ready")

	var wg sync.WaitGroup
	runCtx, stop := context.WithCancel(context.Background())
	wg.Add(3)
	go func() { defer wg.Done(); db.Run(runCtx) }()
	go func() { defer wg.Done(); reloadOverrides(runCtx, cfg, overrides, logger) }()
	go func() {
		defer wg.Done()
		runCompactor(runCtx, cfg, bkt, overrides, db, logger, reg)
	}()

	// Ruler: alerting and recording rules evaluated by the engine (ruler.go).
	if err := startRuler(runCtx, &wg, cfg, api, eng, overrides, ln.Addr(), logger, reg); err != nil {
		stop()
		wg.Wait()
		_ = srv.Close()
		return errors.Join(fmt.Errorf("start ruler: %w", err), db.Close(context.Background()))
	}

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := []error{err, srv.Shutdown(shutdownCtx)}
	stop()
	wg.Wait()
	errs = append(errs, db.Close(shutdownCtx))
	if e := errors.Join(errs...); e != nil && !errors.Is(e, http.ErrServerClosed) {
		return e
	}
	return nil
}

func newLogger(w io.Writer, format string, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func configPrinter(cfg *config.Config) func(string) ([]byte, error) {
	return func(mode string) ([]byte, error) {
		var buf writerBuffer
		if err := config.Print(&buf, cfg); err != nil {
			return nil, err
		}
		return buf.b, nil
	}
}

type writerBuffer struct{ b []byte }

func (w *writerBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

func reloadOverrides(ctx context.Context, cfg *config.Config, o *tenant.Overrides, logger *slog.Logger) {
	if cfg.RuntimeConfig.File == "" {
		return
	}
	t := time.NewTicker(max(cfg.RuntimeConfig.Period.D(), time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := o.Load(cfg.RuntimeConfig.File); err != nil {
				logger.Error("reload runtime config", "err", err)
			}
		}
	}
}

func runCompactor(ctx context.Context, cfg *config.Config, bkt objstore.Bucket, o *tenant.Overrides, db *storage.DB, logger *slog.Logger, reg prometheus.Registerer) {
	ccfg := cfg.Compactor
	ccfg.WorkingDirectory = cfg.CompactorDir()
	if err := os.MkdirAll(ccfg.WorkingDirectory, 0o755); err != nil {
		logger.Error("create compactor working directory; compaction disabled", "err", err)
		return
	}
	c := compactor.New(ccfg, bkt, func(t string) time.Duration { return o.For(t).RetentionPeriod.D() }, logger, reg)
	t := time.NewTicker(max(ccfg.CompactionInterval.D(), time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.RunOnce(ctx); err != nil {
				logger.Error("compaction", "err", err)
			}
			if err := db.SyncBlocks(ctx); err != nil {
				logger.Error("sync blocks", "err", err)
			}
		}
	}
}

// lateStore lets the HTTP server start before storage is open: until then
// Ready is false and every call fails with 503.
type lateStore struct{ db atomic.Pointer[storage.DB] }

func (s *lateStore) set(db *storage.DB) { s.db.Store(db) }

var errNotReady = statusError{code: http.StatusServiceUnavailable, msg: "Ingester not ready: replaying the write-ahead log"}

type statusError struct {
	code int
	msg  string
}

func (e statusError) Error() string   { return e.msg }
func (e statusError) StatusCode() int { return e.code }

func (s *lateStore) Ready() bool { return s.db.Load() != nil && s.db.Load().Ready() }
func (s *lateStore) Push(t string, ss []model.Stream, l head.Limits) error {
	if db := s.db.Load(); db != nil {
		return db.Push(t, ss, l)
	}
	return errNotReady
}
func (s *lateStore) Series(ctx context.Context, t string, ms []*model.Matcher, r model.TimeRange) ([]model.Labels, error) {
	if db := s.db.Load(); db != nil {
		return db.Series(ctx, t, ms, r)
	}
	return nil, errNotReady
}
func (s *lateStore) LabelNames(ctx context.Context, t string, ms []*model.Matcher, r model.TimeRange) ([]string, error) {
	if db := s.db.Load(); db != nil {
		return db.LabelNames(ctx, t, ms, r)
	}
	return nil, errNotReady
}
func (s *lateStore) LabelValues(ctx context.Context, t, n string, ms []*model.Matcher, r model.TimeRange) ([]string, error) {
	if db := s.db.Load(); db != nil {
		return db.LabelValues(ctx, t, n, ms, r)
	}
	return nil, errNotReady
}
func (s *lateStore) Stats(ctx context.Context, t string, ms []*model.Matcher, r model.TimeRange) (storage.IndexStats, error) {
	if db := s.db.Load(); db != nil {
		return db.Stats(ctx, t, ms, r)
	}
	return storage.IndexStats{}, errNotReady
}
func (s *lateStore) Flush(ctx context.Context, all bool) error {
	if db := s.db.Load(); db != nil {
		return db.Flush(ctx, all)
	}
	return errNotReady
}

type lateEngine struct{ e atomic.Pointer[engine.Engine] }

func (l *lateEngine) set(e *engine.Engine) { l.e.Store(e) }
func (l *lateEngine) Exec(ctx context.Context, p engine.Params) (engine.Result, error) {
	if e := l.e.Load(); e != nil {
		return e.Exec(ctx, p)
	}
	return engine.Result{}, errNotReady
}
