package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ledgerlog/ledgerlog/internal/api/loki"
	"github.com/ledgerlog/ledgerlog/internal/config"
	"github.com/ledgerlog/ledgerlog/internal/logql/engine"
	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/ruler"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
)

// queryEngine is what the ruler's query function needs of the engine.
type queryEngine interface {
	Exec(ctx context.Context, p engine.Params) (engine.Result, error)
}

// startRuler starts the ruler over the engine. It runs until ctx is done,
// tracked by wg, and serves the rules API through api when
// ruler.enable_api is set.
func startRuler(ctx context.Context, wg *sync.WaitGroup, cfg *config.Config, api *loki.API, eng queryEngine,
	overrides *tenant.Overrides, listenAddr net.Addr, logger *slog.Logger, reg prometheus.Registerer) error {
	rcfg := cfg.Ruler
	m, err := ruler.New(ruler.Options{
		Config:   rcfg,
		RuleDir:  rcfg.RuleDir(cfg.RulerStorage, cfg.Common.PathPrefix),
		StateDir: rcfg.StateDir(cfg.Common.PathPrefix),
		Query:    engineQuery(eng),
		StrictSelectors: func(t string) bool {
			return overrides.For(t).RequireSelectiveMatcher
		},
		ServerURL:  serverURL(listenAddr),
		Logger:     logger.With("component", "ruler"),
		Registerer: reg,
	})
	if err != nil {
		return err
	}
	if rcfg.EnableAPI {
		api.SetRuler(m)
	} else {
		api.SetRuler(nil)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := m.Run(ctx); err != nil {
			logger.Error("ruler stopped", "err", err)
		}
	}()
	return nil
}

// engineQuery evaluates rule expressions as instant queries of one tenant.
func engineQuery(eng queryEngine) ruler.QueryFunc {
	return func(ctx context.Context, t, q string, ts time.Time) (ruler.Vector, error) {
		res, err := eng.Exec(ctx, engine.Params{Tenants: []string{t}, Query: q, Start: ts.UnixNano(), End: ts.UnixNano(), Instant: true})
		if err != nil {
			return nil, err
		}
		switch res.Type {
		case engine.TypeVector:
			out := make(ruler.Vector, 0, len(res.Vector))
			for _, s := range res.Vector {
				out = append(out, ruler.Sample{Labels: s.Metric, Value: s.V})
			}
			return out, nil
		case engine.TypeScalar:
			return ruler.Vector{{Labels: model.Labels{}, Value: res.Scalar.V}}, nil
		}
		return nil, fmt.Errorf("rule query returned a %s result, want vector or scalar", res.Type)
	}
}

// serverURL is the server's own base URL for alert generator links.
func serverURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String()
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}
