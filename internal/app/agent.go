package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ledgerlog/ledgerlog/internal/agent"
	"github.com/prometheus/client_golang/prometheus"
)

// agentFlags are Promtail's command-line flags.
type agentFlags struct {
	configFile     string
	expandEnv      bool
	dryRun         bool
	checkSyntax    bool
	inspect        bool
	printConfig    bool
	reverseOrder   bool
	logLevel       string
	stdin          bool
	clientURL      string
	tenantID       string
	externalLabels string
	positionsFile  string
	httpPort       int
	httpAddress    string
	version        bool
}

func (f *agentFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.configFile, "config.file", "", "Promtail configuration file to load.")
	fs.BoolVar(&f.expandEnv, "config.expand-env", false, "Expand ${VAR} and ${VAR:-default} in the config file.")
	fs.BoolVar(&f.dryRun, "dry-run", false, "Print entries to stdout instead of sending them; do not write positions.")
	fs.BoolVar(&f.checkSyntax, "check-syntax", false, "Validate the config file and exit.")
	fs.BoolVar(&f.inspect, "inspect", false, "Print what each pipeline stage changes (with -dry-run).")
	fs.BoolVar(&f.printConfig, "print-config-stderr", false, "Print the effective config to stderr at start.")
	fs.BoolVar(&f.reverseOrder, "log-config-reverse-order", false, "Log the effective config with its lines in reverse order.")
	fs.StringVar(&f.logLevel, "log.level", "", "Log level: debug, info, warn, error (overrides server.log_level).")
	fs.BoolVar(&f.stdin, "stdin", false, "Read lines from standard input instead of the configured sources.")
	fs.StringVar(&f.clientURL, "client.url", "", "Push URL of an additional client.")
	fs.StringVar(&f.tenantID, "client.tenant-id", "", "Tenant of the client given by -client.url.")
	fs.StringVar(&f.externalLabels, "client.external-labels", "", "Labels added to every stream of every client: k=v,k2=v2.")
	fs.StringVar(&f.positionsFile, "positions.file", "", "Positions file (overrides positions.filename).")
	fs.IntVar(&f.httpPort, "server.http-listen-port", -1, "HTTP port (overrides server.http_listen_port).")
	fs.StringVar(&f.httpAddress, "server.http-listen-address", "", "HTTP address (overrides server.http_listen_address).")
	fs.BoolVar(&f.version, "version", false, "Print the version and exit.")
}

// load reads the config file and applies the flag overrides.
func (f *agentFlags) load() (*agent.Config, error) {
	if f.configFile == "" {
		return nil, errors.New("-config.file is required")
	}
	cfg, err := agent.LoadConfig(f.configFile, f.expandEnv)
	if err != nil {
		return nil, err
	}
	if f.clientURL != "" {
		cc := agent.DefaultClientConfig()
		cc.URL, cc.TenantID = f.clientURL, f.tenantID
		cfg.Clients = append(cfg.Clients, cc)
	}
	if f.externalLabels != "" {
		for _, kv := range strings.Split(f.externalLabels, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("-client.external-labels: %q is not k=v", kv)
			}
			for i := range cfg.Clients {
				if cfg.Clients[i].ExternalLabels == nil {
					cfg.Clients[i].ExternalLabels = map[string]string{}
				}
				cfg.Clients[i].ExternalLabels[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	if f.positionsFile != "" {
		cfg.Positions.Filename = f.positionsFile
	}
	if f.httpPort >= 0 {
		cfg.Server.HTTPListenPort = f.httpPort
	}
	if f.httpAddress != "" {
		cfg.Server.HTTPListenAddress = f.httpAddress
	}
	if f.logLevel != "" {
		cfg.Server.LogLevel = f.logLevel
	}
	return cfg, nil
}

// RunAgent runs `ledgerlog agent`: a Promtail-compatible shipper driven by
// an unchanged Promtail config file. It returns when ctx is done (or, with
// -stdin, when standard input is shipped). SIGHUP and, when enabled,
// POST /reload load the config file again; a config that fails to load
// keeps the running one.
func RunAgent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var fl agentFlags
	fl.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fl.version {
		fmt.Fprintln(stdout, "ledgerlog agent", agent.Version)
		return nil
	}
	cfg, err := fl.load()
	if err != nil {
		return err
	}
	if fl.checkSyntax || fl.inspect {
		// pipeline warnings are printed by name: a config that parses can
		// still read keys nothing sets (the seed Rust config's message)
		warnings, err := agent.PipelineWarnings(cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", fl.configFile, err)
		}
		for _, w := range warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		if fl.checkSyntax {
			fmt.Fprintln(stdout, "Valid config file! No syntax issues found")
			return nil
		}
	}
	level := new(slog.LevelVar)
	_ = level.UnmarshalText([]byte(cfg.Server.LogLevel))
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if fl.printConfig || fl.reverseOrder {
		text := cfg.String()
		if fl.reverseOrder {
			lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
			for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
				lines[i], lines[j] = lines[j], lines[i]
			}
			text = strings.Join(lines, "\n") + "\n"
		}
		fmt.Fprint(stderr, text)
	}

	metrics := agent.NewMetrics()
	opts := agent.Options{Logger: logger, Metrics: metrics, DryRun: fl.dryRun, DryRunOut: stdout}
	if fl.inspect {
		opts.Inspect = stderr
	}
	if fl.stdin {
		opts.Stdin = os.Stdin
	}

	type reloadReq struct{ done chan error }
	reloads := make(chan reloadReq)
	requestReload := func() error {
		r := reloadReq{done: make(chan error, 1)}
		select {
		case reloads <- r:
		case <-ctx.Done():
			return ctx.Err()
		}
		return <-r.done
	}

	var srv *agent.Server
	srvDone := make(chan error, 1)
	srvCtx, stopSrv := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSrv()
	if !cfg.Server.Disable && opts.Stdin == nil {
		srv, err = agent.NewServer(cfg.Server, metrics, logger, requestReload)
		if err != nil {
			return err
		}
		go func() { srvDone <- srv.Run(srvCtx) }()
		logger.Info("agent http server listening", "addr", srv.Addr())
	} else {
		srvDone <- nil
	}

	start := func(cfg *agent.Config) (context.CancelFunc, chan error, error) {
		o := opts
		reg := prometheus.NewRegistry()
		o.StageRegistry = reg
		a, err := agent.New(cfg, o)
		if err != nil {
			return nil, nil, err
		}
		if srv != nil {
			srv.Set(a, reg)
		}
		actx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(actx) }()
		return cancel, done, nil
	}
	cancel, done, err := start(cfg)
	if err != nil {
		stopSrv()
		<-srvDone
		return err
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := func() error {
		newCfg, err := fl.load()
		if err != nil {
			metrics.ReloadFailed()
			logger.Error("reload config", "err", err)
			return err
		}
		cancel()
		if err := <-done; err != nil {
			logger.Error("stopping agent for reload", "err", err)
		}
		c, d, err := start(newCfg)
		if err != nil {
			metrics.ReloadFailed()
			logger.Error("reload config, restarting previous config", "err", err)
			c, d, err2 := start(cfg)
			if err2 != nil {
				return errors.Join(err, err2)
			}
			cancel, done = c, d
			return err
		}
		cfg, cancel, done = newCfg, c, d
		metrics.ReloadSucceeded()
		logger.Info("config reloaded")
		return nil
	}
	var runErr error
loop:
	for {
		select {
		case runErr = <-done:
			break loop
		case <-hup:
			if err := reload(); err != nil && done == nil {
				runErr = err
				break loop
			}
		case r := <-reloads:
			r.done <- reload()
		}
	}
	cancel()
	stopSrv()
	return errors.Join(runErr, <-srvDone)
}
