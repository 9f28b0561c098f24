package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ledgerlog/ledgerlog/internal/demo"
)

const demoUsage = `Usage: ledgerlog demo [flags]

Generates the logs and metrics of a FinTech service fleet (payment-processor,
payment-gateway, fraud-detection, kyc-service, ledger, auth) as Rust
tracing_subscriber JSON lines, and serves on -listen:

  GET  /metrics                 Prometheus metrics (OpenMetrics with trace_id exemplars)
  GET  /scenario                the active scenario
  POST /scenario?name=N[&duration=D]  switch scenario (for D, then back)
  POST /webhook/<receiver>      Alertmanager webhook receiver (alerts are logged)
  GET  /webhook                 the notifications received

Scenarios: normal, error-spike, fraud-burst, compliance-violation, kyc-failures.
See docs/alerting.md.

Flags:
`

// RunDemo runs `ledgerlog demo` until ctx is done or a bound is reached.
func RunDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ledgerlog demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), demoUsage)
		fs.PrintDefaults()
	}
	var (
		seed      = fs.Uint64("seed", 1, "random seed: the same seed, -start, -rate and scenario give the same lines")
		rate      = fs.Float64("rate", 50, "baseline log lines per second (incident lines come on top)")
		duration  = fs.Duration("duration", 0, "stop after this much generated time (0: run until interrupted)")
		lines     = fs.Int("lines", 0, "stop after this many lines (0: no limit)")
		start     = fs.String("start", "", "timestamp of the first line: RFC3339, or a duration meaning that long ago (backfills as fast as possible, then continues live); default now")
		scenario  = fs.String("scenario", "normal", "initial scenario: normal, error-spike, fraud-burst, compliance-violation, kyc-failures")
		logDir    = fs.String("log-dir", "", "write one file per service, <dir>/<service>.log, for an agent to tail")
		pushURL   = fs.String("push-url", "", "push to a Ledgerlog/Loki server, e.g. http://127.0.0.1:3100 (protobuf+snappy)")
		tenant    = fs.String("tenant", "", "X-Scope-OrgID for -push-url")
		out       = fs.String("out", "", "write NDJSON records {labels,ts,line} to this file (- for stdout)")
		listen    = fs.String("listen", "127.0.0.1:9400", "HTTP address for /metrics, /scenario and /webhook (empty: none)")
		env       = fs.String("environment", "prod", "environment label of logs and metrics")
		region    = fs.String("region", "eu-west", "region label of the logs")
		batchWait = fs.Duration("batch-wait", time.Second, "longest time lines wait before a push")
		logLevel  = fs.String("log.level", "info", "log level: debug, info, warn, error")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	level := new(slog.LevelVar)
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("log level %q: %w", *logLevel, err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	sc, err := demo.ParseScenario(*scenario)
	if err != nil {
		return fmt.Errorf("-scenario: %w", err)
	}
	if *rate <= 0 {
		return fmt.Errorf("-rate must be positive, got %g", *rate)
	}
	startAt, err := parseStart(*start, time.Now())
	if err != nil {
		return err
	}

	var sinks []demo.Sink
	closeAll := func() {
		for _, s := range sinks {
			_ = s.Close(context.Background())
		}
	}
	if *logDir != "" {
		fsink, err := demo.NewFileSink(*logDir)
		if err != nil {
			return err
		}
		sinks = append(sinks, fsink)
	}
	if *out != "" {
		w := stdout
		if *out != "-" {
			fh, err := os.Create(*out)
			if err != nil {
				closeAll()
				return fmt.Errorf("create -out file: %w", err)
			}
			defer fh.Close()
			w = fh
		}
		sinks = append(sinks, demo.NewNDJSONSink(w))
	}
	var push *demo.PushSink
	if *pushURL != "" {
		push, err = demo.NewPushSink(demo.PushOptions{URL: *pushURL, Tenant: *tenant, BatchWait: *batchWait})
		if err != nil {
			closeAll()
			return err
		}
		sinks = append(sinks, push)
	}
	if len(sinks) == 0 {
		return errors.New("nothing to write to: give -push-url, -log-dir or -out")
	}

	reg := prometheus.NewRegistry()
	metrics, err := demo.NewMetrics(reg, *seed)
	if err != nil {
		closeAll()
		return fmt.Errorf("register metrics: %w", err)
	}
	ctrl := demo.NewController(sc, nil)
	alerts := demo.NewAlertLog(logger, 0)

	var srv *http.Server
	serveErr := make(chan error, 1)
	if *listen != "" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen on %s: %w", *listen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
		mux.Handle("/scenario", ctrl)
		mux.Handle("/webhook", alerts)
		mux.Handle("/webhook/", alerts)
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprint(w, demoUsage)
		})
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		logger.Info("listening", "addr", ln.Addr().String(), "scenario", sc.String())
		go func() { serveErr <- srv.Serve(ln) }()
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case err := <-serveErr:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("http server stopped", "err", err)
			}
			cancel()
		case <-runCtx.Done():
		}
	}()

	gen := demo.NewGenerator(demo.Options{Seed: *seed, Environment: *env, Region: *region})
	stats, runErr := demo.Run(runCtx, gen, ctrl, metrics, sinks, demo.RunOptions{
		Rate:     *rate,
		Start:    startAt,
		Duration: *duration,
		Lines:    *lines,
		Logger:   logger,
	})
	if srv != nil {
		shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		_ = srv.Shutdown(shutdownCtx)
	}
	summary := stats.String()
	if push != nil {
		summary += fmt.Sprintf("  push: %d lines acknowledged, %d dropped\n", push.Pushed, push.Dropped)
	}
	fmt.Fprint(stderr, summary)
	return runErr
}

// parseStart reads -start: empty is zero (now), an RFC3339 time, or a Go
// duration meaning that long before now (the sign is ignored).
func parseStart(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		if t.After(now) {
			return time.Time{}, fmt.Errorf("-start %s is in the future", v)
		}
		return t, nil
	}
	d, err := time.ParseDuration(strings.TrimPrefix(v, "-"))
	if err != nil {
		return time.Time{}, fmt.Errorf("-start %q: want an RFC3339 time or a duration such as 1h", v)
	}
	return now.Add(-d), nil
}
