package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Server is the agent's HTTP endpoint. It outlives config reloads: the
// running Agent and the stage metrics registry are swapped in with Set.
type Server struct {
	cfg     ServerConfig
	logger  *slog.Logger
	metrics *Metrics
	reload  func() error // nil when runtime reload is disabled

	agent  atomic.Pointer[Agent]
	stages atomic.Pointer[prometheus.Registry]
	ln     net.Listener
	srv    *http.Server
}

// NewServer binds the listener of cfg. reload is called by POST /reload
// when cfg.EnableRuntimeReload is set.
func NewServer(cfg ServerConfig, m *Metrics, logger *slog.Logger, reload func() error) (*Server, error) {
	addr := net.JoinHostPort(cfg.HTTPListenAddress, strconv.Itoa(cfg.HTTPListenPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	s := &Server{cfg: cfg, logger: logger, metrics: m, ln: ln}
	if cfg.EnableRuntimeReload {
		s.reload = reload
	}
	prefix := strings.TrimSuffix(cfg.PathPrefix, "/")
	mux := http.NewServeMux()
	mux.HandleFunc(prefix+"/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, prefix+"/targets", http.StatusFound)
	})
	mux.HandleFunc(prefix+"/ready", s.handleReady)
	mux.HandleFunc(prefix+"/targets", s.handleTargets(false))
	mux.HandleFunc(prefix+"/service-discovery", s.handleTargets(true))
	mux.HandleFunc(prefix+"/config", s.handleConfig)
	mux.HandleFunc(prefix+"/reload", s.handleReload)
	mux.Handle(prefix+"/metrics", promhttp.HandlerFor(prometheus.Gatherers{m.Registry, gathererFunc(s.gatherStages)}, promhttp.HandlerOpts{}))
	if cfg.ProfilingEnabled {
		mux.HandleFunc(prefix+"/debug/pprof/", pprof.Index)
		mux.HandleFunc(prefix+"/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc(prefix+"/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc(prefix+"/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc(prefix+"/debug/pprof/trace", pprof.Trace)
	}
	s.srv = &http.Server{
		Handler:           mux,
		ReadTimeout:       cfg.HTTPReadTimeout.D(),
		WriteTimeout:      cfg.HTTPWriteTimeout.D(),
		IdleTimeout:       cfg.HTTPIdleTimeout.D(),
		ReadHeaderTimeout: 30 * time.Second,
	}
	return s, nil
}

// gathererFunc adapts a function to prometheus.Gatherer.
type gathererFunc func() ([]*dto.MetricFamily, error)

// Gather implements prometheus.Gatherer.
func (f gathererFunc) Gather() ([]*dto.MetricFamily, error) { return f() }

func (s *Server) gatherStages() ([]*dto.MetricFamily, error) {
	if r := s.stages.Load(); r != nil {
		return r.Gather()
	}
	return nil, nil
}

// Addr returns the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Set installs the running agent and its stage metrics registry.
func (s *Server) Set(a *Agent, stages *prometheus.Registry) {
	s.agent.Store(a)
	s.stages.Store(stages)
}

// Run serves until ctx is done, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	timeout := s.cfg.GracefulShutdownTimeout.D()
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	if a := s.agent.Load(); a != nil && a.Ready() {
		_, _ = io.WriteString(w, "Ready")
		return
	}
	http.Error(w, "Not ready", http.StatusInternalServerError)
}

func (s *Server) handleConfig(w http.ResponseWriter, _ *http.Request) {
	a := s.agent.Load()
	if a == nil {
		http.Error(w, "not running", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, a.Config().String())
}

func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	if s.reload == nil {
		http.Error(w, "runtime reload is disabled (server.enable_runtime_reload)", http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := s.reload(); err != nil {
		http.Error(w, "reload: "+err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = io.WriteString(w, "config reloaded\n")
}

var targetsTmpl = template.Must(template.New("t").Parse(`<!DOCTYPE html>
<html><head><title>{{.Title}}</title></head><body>
<h1>{{.Title}}</h1>
{{range .Targets}}{{if or $.ShowDropped (not .Dropped)}}
<h2>{{.Job}} ({{.Type}})</h2>
<table border="1">
<tr><th>Path</th><th>State</th><th>Labels</th><th>Discovered labels</th><th>Read offset</th><th>Acknowledged</th><th>Details</th></tr>
<tr><td>{{.Path}}</td><td>{{if .Dropped}}dropped{{else if .Ready}}ready{{else}}not ready{{end}}</td>
<td>{{range $k, $v := .Labels}}{{$k}}="{{$v}}" {{end}}</td>
<td>{{range $k, $v := .Discovered}}{{$k}}="{{$v}}" {{end}}</td>
<td>{{.ReadOffset}}</td><td>{{.AckedPosition}}</td><td>{{.Details}}</td></tr>
</table>{{end}}{{end}}
</body></html>
`))

// handleTargets renders the active targets (or, for service discovery,
// discovered and dropped ones) as HTML, or JSON with ?format=json or an
// Accept: application/json header.
func (s *Server) handleTargets(showDropped bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var targets []TargetInfo
		if a := s.agent.Load(); a != nil {
			targets = a.Targets()
		}
		if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
			if !showDropped {
				kept := targets[:0:0]
				for _, t := range targets {
					if !t.Dropped {
						kept = append(kept, t)
					}
				}
				targets = kept
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(targets)
			return
		}
		title := "Targets"
		if showDropped {
			title = "Service Discovery"
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := targetsTmpl.Execute(w, map[string]any{"Title": title, "Targets": targets, "ShowDropped": showDropped}); err != nil {
			s.logger.Warn("render targets", "err", err)
		}
	}
}
