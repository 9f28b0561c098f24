// Package agent owns ledgerlog's Promtail-compatible log shipper: it loads
// Promtail configuration files unchanged, discovers and tails files, listens
// for syslog and Loki pushes, runs each job's pipeline stages and pushes
// batches to Loki-compatible servers. Unlike Promtail, a file position is
// committed only after every client acknowledged the lines before it, and a
// client may spool batches to a bounded disk buffer while its server is
// unreachable, so nothing is lost across restarts and outages.
package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/agent/stages"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
)

// Options are an agent's process-level dependencies.
type Options struct {
	Logger  *slog.Logger
	Metrics *Metrics
	// StageRegistry receives the pipeline stages' metrics; a new one per
	// config generation so reloads do not collide.
	StageRegistry prometheus.Registerer
	// DryRun prints batches to DryRunOut instead of sending them and does
	// not write the positions file.
	DryRun    bool
	DryRunOut io.Writer
	// Inspect receives what each stage changes (Promtail's -inspect).
	Inspect io.Writer
	// Stdin, when set, is read line by line instead of the configured
	// sources (Promtail's --stdin mode); Run returns after its end is
	// shipped.
	Stdin io.Reader
}

// Agent is one running configuration.
type Agent struct {
	cfg       *Config
	opts      Options
	logger    *slog.Logger
	metrics   *Metrics
	positions *Positions
	acks      *ackRegistry
	clients   []clientRunner
	env       *jobEnv

	mu        sync.Mutex
	fileJobs  []*fileJob
	syslogs   []*syslogTarget
	pushes    []*pushTarget
	warnings  []string
	running   bool
	stdinDone chan struct{}
}

// clientRunner is a Client or the dry-run printer.
type clientRunner interface {
	entryHandler
	Run(ctx context.Context) error
}

// New validates cfg against the running system (positions file, client
// URLs, pipelines are built in Run) and returns an agent ready to Run.
func New(cfg *Config, opts Options) (*Agent, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	a := &Agent{cfg: cfg, opts: opts, logger: opts.Logger, metrics: opts.Metrics, acks: newAckRegistry()}
	pos, err := OpenPositions(cfg.Positions, opts.Logger)
	if err != nil {
		return nil, err
	}
	a.positions = pos
	if opts.DryRun {
		out := opts.DryRunOut
		if out == nil {
			out = os.Stdout
		}
		a.clients = []clientRunner{newDryRunClient(out)}
	} else {
		if len(cfg.Clients) == 0 {
			return nil, errors.New("no clients configured")
		}
		for _, cc := range cfg.Clients {
			c, err := NewClient(cc, cfg.LimitsConfig, opts.Logger, opts.Metrics)
			if err != nil {
				for _, prev := range a.clients {
					if pc, ok := prev.(*Client); ok {
						_ = pc.queue.Close()
					}
				}
				return nil, err
			}
			if q, ok := c.queue.(*diskQueue); ok {
				q.positions = pos
			}
			c.durable = pos.WaitDurable
			a.clients = append(a.clients, c)
		}
	}
	a.env = &jobEnv{
		logger: opts.Logger, metrics: opts.Metrics, positions: pos, acks: a.acks,
		limits: cfg.LimitsConfig, watch: cfg.Global.FileWatch, startPos: a.startPosition,
	}
	if cfg.LimitsConfig.ReadlineRateEnabled {
		a.env.limiter = newRateLimiter(cfg.LimitsConfig.ReadlineRate, cfg.LimitsConfig.ReadlineBurst)
	}
	return a, nil
}

// startPosition is where reading of path resumes: the acknowledged
// position, or the newest position already held by the disk buffer of
// every client (those lines will be sent from the buffer).
func (a *Agent) startPosition(path string) (Position, bool) {
	acked, ok := a.positions.Get(path)
	var buffered *Position
	for _, c := range a.clients {
		cl, isClient := c.(*Client)
		if !isClient {
			return acked, ok
		}
		hw := cl.bufferedPositions()
		p, has := hw[path]
		if !has {
			return acked, ok
		}
		if buffered != nil && *buffered != p {
			return acked, ok
		}
		buffered = &p
	}
	if buffered != nil {
		return *buffered, true
	}
	return acked, ok
}

// Config returns the configuration the agent runs.
func (a *Agent) Config() *Config { return a.cfg }

// Positions returns the agent's positions.
func (a *Agent) Positions() *Positions { return a.positions }

// Warnings returns the pipeline warnings found at start.
func (a *Agent) Warnings() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.warnings...)
}

// Ready reports whether the agent runs and, unless
// server.health_check_target is false, has at least one target.
func (a *Agent) Ready() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.running {
		return false
	}
	if h := a.cfg.Server.HealthCheckTarget; h != nil && !*h {
		return true
	}
	if a.opts.Stdin != nil || len(a.syslogs) > 0 || len(a.pushes) > 0 {
		return true
	}
	for _, j := range a.fileJobs {
		for _, t := range j.Targets() {
			if t.Ready {
				return true
			}
		}
	}
	return false
}

// Targets returns every target, active and dropped.
func (a *Agent) Targets() []TargetInfo {
	a.mu.Lock()
	jobs, sys, push := a.fileJobs, a.syslogs, a.pushes
	a.mu.Unlock()
	var out []TargetInfo
	for _, j := range jobs {
		out = append(out, j.Targets()...)
	}
	for _, s := range sys {
		out = append(out, s.info())
	}
	for _, p := range push {
		out = append(out, p.info())
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Job < out[j].Job })
	return out
}

// job is one scrape config's pipeline with its input.
type job struct {
	name string
	in   chan Entry
	out  <-chan Entry
	p    *stages.Pipeline
}

// Run starts every source and client and blocks until ctx is done (or, in
// stdin mode, until stdin is shipped). Shutdown stops the sources first,
// lets the pipelines and clients drain, and writes the positions last.
func (a *Agent) Run(ctx context.Context) error {
	srcCtx, stopSources := context.WithCancel(ctx)
	defer stopSources()
	clientCtx, stopClients := context.WithCancel(context.WithoutCancel(ctx))
	defer stopClients()
	posCtx, stopPositions := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPositions()

	var clientWG sync.WaitGroup
	handlers := make([]entryHandler, len(a.clients))
	for i, c := range a.clients {
		handlers[i] = c
		clientWG.Add(1)
		go func() {
			defer clientWG.Done()
			if err := c.Run(clientCtx); err != nil {
				a.logger.Error("client stopped", "err", err)
			}
		}()
	}
	posDone := make(chan error, 1)
	go func() {
		if a.opts.DryRun {
			<-posCtx.Done()
			posDone <- nil
			return
		}
		posDone <- a.positions.Run(posCtx)
	}()
	fan := &fanout{clients: handlers, acks: a.acks}

	var jobs []*job
	var fanWG, srcWG sync.WaitGroup
	startJob := func(sc ScrapeConfig) (*job, error) {
		p, err := stages.NewPipeline(sc.PipelineStages, stages.Options{
			Logger: a.logger.With("job", sc.JobName), Registerer: a.opts.StageRegistry,
			JobName: sc.JobName, Inspect: a.opts.Inspect, TargetLabels: targetLabels(sc),
		})
		if err != nil {
			return nil, fmt.Errorf("scrape config %s: %w", sc.JobName, err)
		}
		j := &job{name: sc.JobName, in: make(chan Entry, 128), p: p}
		j.out = p.Run(j.in)
		for _, w := range p.Warnings() {
			a.mu.Lock()
			a.warnings = append(a.warnings, sc.JobName+": "+w)
			a.mu.Unlock()
			a.logger.Warn("pipeline", "job", sc.JobName, "warning", w)
		}
		fanWG.Add(1)
		go func() {
			defer fanWG.Done()
			fan.consume(clientCtx, j.out)
		}()
		jobs = append(jobs, j)
		return j, nil
	}

	var err error
	if a.opts.Stdin != nil {
		err = a.startStdin(srcCtx, startJob, &srcWG)
	} else {
		err = a.startSources(srcCtx, startJob, &srcWG)
	}
	if err == nil {
		a.mu.Lock()
		a.running = true
		a.mu.Unlock()
		if a.opts.Stdin != nil {
			select {
			case <-ctx.Done():
			case <-a.stdinDone:
			}
		} else {
			<-ctx.Done()
		}
	}
	a.mu.Lock()
	a.running = false
	a.mu.Unlock()

	stopSources()
	srcWG.Wait()
	for _, j := range jobs {
		close(j.in)
	}
	fanWG.Wait()
	for _, j := range jobs {
		j.p.Close()
	}
	stopClients()
	clientWG.Wait()
	stopPositions()
	perr := <-posDone
	return errors.Join(err, perr)
}

// targetLabels are the labels every entry of sc carries when it enters
// the pipeline: filename, the static labels and relabel targets.
func targetLabels(sc ScrapeConfig) []string {
	out := []string{labelFilename}
	for _, s := range sc.StaticConfigs {
		for k := range s.Labels {
			out = append(out, k)
		}
	}
	for _, rc := range sc.RelabelConfigs {
		if rc.TargetLabel != "" {
			out = append(out, rc.TargetLabel)
		}
	}
	return out
}

// PipelineWarnings builds every scrape config's pipeline as Run does and
// returns its load-time warnings (a stage reading a key no earlier stage
// can produce, JSON shape mistakes, ...), each prefixed with
// "scrape config <job_name>: ". It fails on the first pipeline that does
// not build.
func PipelineWarnings(cfg *Config) ([]string, error) {
	var out []string
	for _, sc := range cfg.ScrapeConfigs {
		p, err := stages.NewPipeline(sc.PipelineStages, stages.Options{JobName: sc.JobName, TargetLabels: targetLabels(sc)})
		if err != nil {
			return nil, fmt.Errorf("scrape config %s: %w", sc.JobName, err)
		}
		for _, w := range p.Warnings() {
			out = append(out, "scrape config "+sc.JobName+": "+w)
		}
		p.Close()
	}
	return out, nil
}

// startSources starts the file, syslog and push sources of every job.
func (a *Agent) startSources(ctx context.Context, startJob func(ScrapeConfig) (*job, error), wg *sync.WaitGroup) error {
	sync := a.cfg.TargetConfig.SyncPeriod.D()
	for _, sc := range a.cfg.ScrapeConfigs {
		j, err := startJob(sc)
		if err != nil {
			return err
		}
		if len(sc.StaticConfigs) > 0 || len(sc.FileSDConfigs) > 0 {
			fj, err := newFileJob(sc, a.env, j.in, sync)
			if err != nil {
				return fmt.Errorf("scrape config %s: %w", sc.JobName, err)
			}
			a.mu.Lock()
			a.fileJobs = append(a.fileJobs, fj)
			a.mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); fj.run(ctx) }()
		}
		if sc.Syslog != nil {
			st, err := newSyslogTarget(sc.JobName, *sc.Syslog, sc.RelabelConfigs, a.env, j.in)
			if err != nil {
				return fmt.Errorf("scrape config %s: %w", sc.JobName, err)
			}
			a.mu.Lock()
			a.syslogs = append(a.syslogs, st)
			a.mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); st.run(ctx) }()
		}
		if sc.PushAPI != nil {
			pt, err := newPushTarget(sc.JobName, *sc.PushAPI, sc.RelabelConfigs, a.env, j.in)
			if err != nil {
				return fmt.Errorf("scrape config %s: %w", sc.JobName, err)
			}
			a.mu.Lock()
			a.pushes = append(a.pushes, pt)
			a.mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); pt.run(ctx) }()
		}
	}
	return nil
}

// SyslogAddrs returns the bound addresses of the syslog listeners.
func (a *Agent) SyslogAddrs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, s := range a.syslogs {
		out = append(out, s.addr)
	}
	return out
}

// PushAddrs returns the bound addresses of the loki_push_api listeners.
func (a *Agent) PushAddrs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, p := range a.pushes {
		out = append(out, p.ln.Addr().String())
	}
	return out
}

// startStdin ships stdin through the first scrape config's pipeline (or a
// default "stdin" job), labelled with that config's static labels.
func (a *Agent) startStdin(ctx context.Context, startJob func(ScrapeConfig) (*job, error), wg *sync.WaitGroup) error {
	host, _ := os.Hostname()
	sc := ScrapeConfig{JobName: "stdin"}
	ls := model.LabelSet{"job": "stdin", "hostname": model.LabelValue(host)}
	if len(a.cfg.ScrapeConfigs) > 0 {
		sc = a.cfg.ScrapeConfigs[0]
		if len(sc.StaticConfigs) > 0 {
			ls = model.LabelSet{}
			for k, v := range sc.StaticConfigs[0].Labels {
				if !strings.HasPrefix(k, "__") {
					ls[model.LabelName(k)] = model.LabelValue(v)
				}
			}
		}
	}
	j, err := startJob(sc)
	if err != nil {
		return err
	}
	a.stdinDone = make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(a.stdinDone)
		r := bufio.NewReaderSize(a.opts.Stdin, 64<<10)
		for {
			line, err := r.ReadString('\n')
			if len(line) > 0 {
				line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
				select {
				case j.in <- Entry{Labels: ls.Clone(), Timestamp: time.Now(), Line: line}:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return nil
}

// dryRunClient prints entries instead of sending them (-dry-run) and
// acknowledges them at once.
type dryRunClient struct {
	mu  sync.Mutex
	out io.Writer
}

func newDryRunClient(out io.Writer) *dryRunClient { return &dryRunClient{out: out} }

func (d *dryRunClient) Handle(_ context.Context, e sendEntry) error {
	d.mu.Lock()
	fmt.Fprintf(d.out, "%s\t%s\t%s\n", e.Timestamp.Format("2006-01-02T15:04:05.999999999-0700"), e.Labels.String(), e.Line)
	d.mu.Unlock()
	e.ack.release()
	return nil
}

func (d *dryRunClient) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
