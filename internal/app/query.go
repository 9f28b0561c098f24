package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/querycli"
)

const queryUsage = `Usage: ledgerlog query [command] [flags] [arguments]

Queries Ledgerlog or Grafana Loki over the Loki HTTP API (like logcli).

Commands:
  <logql>                 range query over [--from, --to): log lines are read in pages of --batch
                          (any --limit, 0 = all), metric queries print their matrix
  instant-query <logql>   instant query at --to (default now)
  labels [name]           label names, or the values of one label
  series <selector>...    streams matching the selectors (--analyze-labels summarises them)
  stats <selector>        streams, chunks, entries and bytes the selector covers
  volume <selector>       bytes per series (--step: per step, from index/volume_range)
  --tail <logql>          live tail (WebSocket) until interrupted

Flags may come before or after the arguments. Environment: LOKI_ADDR, LOKI_ORG_ID,
LOKI_USERNAME, LOKI_PASSWORD, LOKI_BEARER_TOKEN, LOKI_CA_CERT_PATH, LOKI_CLIENT_CERT_PATH,
LOKI_CLIENT_KEY_PATH, LOKI_TLS_SKIP_VERIFY.

Flags:
`

// queryFlags are the flags of `ledgerlog query`.
type queryFlags struct {
	client        querycli.Config
	from, to      string
	since         time.Duration
	limit         int
	limitSet      bool
	batch         int
	forward       bool
	step          time.Duration
	output        string
	timezone      string
	noLabels      bool
	quiet         bool
	progress      string
	tail          bool
	delayFor      time.Duration
	analyzeLabels bool
	targetLabels  string
	aggregateBy   string
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (f *queryFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.client.Addr, "addr", envOr("LOKI_ADDR", "http://127.0.0.1:3100"), "Server address (env LOKI_ADDR).")
	fs.StringVar(&f.client.OrgID, "org-id", os.Getenv("LOKI_ORG_ID"), "Tenant, sent as X-Scope-OrgID; a|b queries several (env LOKI_ORG_ID).")
	fs.StringVar(&f.client.Username, "username", os.Getenv("LOKI_USERNAME"), "Basic auth user name (env LOKI_USERNAME).")
	fs.StringVar(&f.client.Password, "password", os.Getenv("LOKI_PASSWORD"), "Basic auth password (env LOKI_PASSWORD).")
	fs.StringVar(&f.client.BearerToken, "bearer-token", os.Getenv("LOKI_BEARER_TOKEN"), "Bearer token (env LOKI_BEARER_TOKEN).")
	fs.StringVar(&f.client.TLSCACert, "tls-ca-cert", os.Getenv("LOKI_CA_CERT_PATH"), "PEM file of CAs to trust (env LOKI_CA_CERT_PATH).")
	fs.StringVar(&f.client.TLSCert, "tls-cert", os.Getenv("LOKI_CLIENT_CERT_PATH"), "PEM client certificate (env LOKI_CLIENT_CERT_PATH).")
	fs.StringVar(&f.client.TLSKey, "tls-key", os.Getenv("LOKI_CLIENT_KEY_PATH"), "PEM client key (env LOKI_CLIENT_KEY_PATH).")
	skip, _ := strconv.ParseBool(os.Getenv("LOKI_TLS_SKIP_VERIFY"))
	fs.BoolVar(&f.client.TLSSkipVerify, "tls-skip-verify", skip, "Do not verify the server certificate (env LOKI_TLS_SKIP_VERIFY).")
	fs.StringVar(&f.from, "from", "", "Start of the range: RFC3339(Nano), Unix seconds or nanoseconds (default --to minus --since).")
	fs.StringVar(&f.to, "to", "", "End of the range, exclusive for log queries (default now).")
	fs.DurationVar(&f.since, "since", time.Hour, "Range length when --from is not given.")
	fs.Func("limit", "Lines to return; 0 returns every line of the range (default 30; 100 series for volume).", func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return fmt.Errorf("limit must be a non-negative integer")
		}
		f.limit, f.limitSet = n, true
		return nil
	})
	fs.IntVar(&f.batch, "batch", querycli.DefaultBatch, "Lines per request when reading more lines than this.")
	fs.BoolVar(&f.forward, "forward", false, "Oldest lines first (default newest first).")
	fs.DurationVar(&f.step, "step", 0, "Step of metric range queries and of volume (default: the server's).")
	fs.StringVar(&f.output, "output", querycli.FormatDefault, "Output format: default, raw or jsonl.")
	fs.StringVar(&f.output, "o", querycli.FormatDefault, "Shorthand for --output.")
	fs.StringVar(&f.timezone, "timezone", "UTC", "Time zone of printed timestamps: UTC, Local or an IANA name.")
	fs.BoolVar(&f.noLabels, "no-labels", false, "Do not print labels (default output).")
	fs.BoolVar(&f.quiet, "quiet", false, "Print no progress or summary on stderr.")
	fs.StringVar(&f.progress, "progress", "auto", "Progress of long exports on stderr: auto (when stderr is a terminal), always or never.")
	fs.BoolVar(&f.tail, "tail", false, "Tail the query live.")
	fs.DurationVar(&f.delayFor, "delay-for", 0, "Tail: how long the server waits for late lines (0-5s).")
	fs.BoolVar(&f.analyzeLabels, "analyze-labels", false, "Series: summarise label names, values and streams.")
	fs.StringVar(&f.targetLabels, "target-labels", "", "Volume: comma-separated labels to aggregate by.")
	fs.StringVar(&f.aggregateBy, "aggregate-by", "series", "Volume: series or labels.")
}

// parseInterleaved parses flags that may come before, between or after
// positional arguments, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseTimeArg parses RFC3339(Nano), "now", or an integer: Unix seconds
// when it has at most 12 digits, Unix nanoseconds otherwise.
func parseTimeArg(s string, now time.Time) (time.Time, error) {
	if s == "now" {
		return now, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if len(strings.TrimPrefix(s, "-")) <= 12 {
			return time.Unix(n, 0), nil
		}
		return time.Unix(0, n), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: use RFC3339 (2026-03-01T10:00:00Z), Unix seconds or nanoseconds", s)
	}
	return t, nil
}

// RunQuery runs `ledgerlog query`.
func RunQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ledgerlog query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f queryFlags
	f.register(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, queryUsage)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errors.New("query: no query given")
	}
	now := time.Now()
	end := now
	if f.to != "" {
		if end, err = parseTimeArg(f.to, now); err != nil {
			return fmt.Errorf("--to: %w", err)
		}
	}
	start := end.Add(-f.since)
	if f.from != "" {
		if start, err = parseTimeArg(f.from, now); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}
	if end.Before(start) {
		return fmt.Errorf("--to %s is before --from %s", end.Format(time.RFC3339Nano), start.Format(time.RFC3339Nano))
	}
	tz, err := loadTimezone(f.timezone)
	if err != nil {
		return err
	}
	out, err := querycli.NewOutput(stdout, f.output, tz, f.noLabels)
	if err != nil {
		return err
	}
	client, err := querycli.New(f.client)
	if err != nil {
		return err
	}
	r := &queryRun{f: &f, client: client, out: out, stderr: stderr, start: start, end: end}
	err = r.dispatch(ctx, pos)
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write output: %w", ferr)
	}
	return err
}

func loadTimezone(name string) (*time.Location, error) {
	switch strings.ToLower(name) {
	case "", "utc":
		return time.UTC, nil
	case "local":
		return time.Local, nil
	}
	tz, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("--timezone: %w", err)
	}
	return tz, nil
}

// queryRun is one invocation of `ledgerlog query`.
type queryRun struct {
	f          *queryFlags
	client     *querycli.Client
	out        *querycli.Output
	stderr     io.Writer
	start, end time.Time
}

func (r *queryRun) dispatch(ctx context.Context, pos []string) error {
	cmd, rest := pos[0], pos[1:]
	one := func(what string) (string, error) {
		if len(rest) != 1 {
			return "", fmt.Errorf("%s: want exactly one %s argument, got %d", cmd, what, len(rest))
		}
		return rest[0], nil
	}
	if r.f.tail {
		q := strings.Join(pos, " ")
		if cmd == "query" {
			q = strings.Join(rest, " ")
		}
		return r.tail(ctx, q)
	}
	switch cmd {
	case "query":
		q, err := one("query")
		if err != nil {
			return err
		}
		return r.rangeQuery(ctx, q)
	case "instant-query":
		q, err := one("query")
		if err != nil {
			return err
		}
		return r.instantQuery(ctx, q)
	case "labels":
		switch len(rest) {
		case 0:
			names, err := r.client.Labels(ctx, r.start, r.end, "")
			if err != nil {
				return err
			}
			return r.out.Strings(names)
		case 1:
			values, err := r.client.LabelValues(ctx, rest[0], r.start, r.end, "")
			if err != nil {
				return err
			}
			return r.out.Strings(values)
		}
		return fmt.Errorf("labels: want at most one label name, got %d arguments", len(rest))
	case "series":
		if len(rest) == 0 {
			return errors.New("series: want at least one selector, e.g. '{app=\"api\"}'")
		}
		series, err := r.client.Series(ctx, rest, r.start, r.end)
		if err != nil {
			return err
		}
		if r.f.analyzeLabels {
			return r.out.Text(querycli.AnalyzeLabels(series))
		}
		return r.out.Series(series)
	case "stats":
		sel, err := one("selector")
		if err != nil {
			return err
		}
		st, err := r.client.Stats(ctx, sel, r.start, r.end)
		if err != nil {
			return err
		}
		return r.out.Text(fmt.Sprintf("Streams:  %d\nChunks:   %d\nEntries:  %d\nBytes:    %d (%s)\n",
			st.Streams, st.Chunks, st.Entries, st.Bytes, querycli.FormatBytes(st.Bytes)))
	case "volume":
		sel, err := one("selector")
		if err != nil {
			return err
		}
		return r.volume(ctx, sel)
	}
	if len(rest) > 0 {
		return fmt.Errorf("unknown command %q (a query must be one argument: quote it)", cmd)
	}
	return r.rangeQuery(ctx, cmd)
}

// isMetricQuery tells metric queries from log queries; a query the local
// parser does not understand is sent as a log query and the server judges.
func isMetricQuery(q string) bool {
	e, err := syntax.Options{AllowEmptyCompatible: true}.ParseExpr(q)
	if err != nil {
		return false
	}
	_, isLog := e.(syntax.LogSelectorExpr)
	return !isLog
}

func (r *queryRun) direction() querycli.Direction {
	if r.f.forward {
		return querycli.Forward
	}
	return querycli.Backward
}

func (r *queryRun) rangeQuery(ctx context.Context, q string) error {
	if isMetricQuery(q) {
		resp, err := r.client.QueryRange(ctx, querycli.RangeQuery{Query: q, Start: r.start, End: r.end, Step: r.f.step})
		if err != nil {
			return err
		}
		r.warn(resp.Warnings)
		return r.out.Metric(resp)
	}
	limit := 30
	if r.f.limitSet {
		limit = r.f.limit
	}
	p := r.progress(limit)
	err := r.client.Export(ctx, querycli.ExportQuery{
		Query: q, Start: r.start, End: r.end, Limit: limit, Batch: r.f.batch, Direction: r.direction(),
	}, r.out.Entry, p.update)
	p.done()
	return err
}

func (r *queryRun) instantQuery(ctx context.Context, q string) error {
	limit := 30
	if r.f.limitSet {
		limit = r.f.limit
	}
	resp, err := r.client.Query(ctx, q, r.end, limit, r.direction())
	if err != nil {
		return err
	}
	r.warn(resp.Warnings)
	if resp.Data.ResultType == "streams" {
		es, err := resp.Entries()
		if err != nil {
			return err
		}
		querycli.SortEntries(es, r.direction())
		for _, e := range es {
			if err := r.out.Entry(e); err != nil {
				return err
			}
		}
		return nil
	}
	return r.out.Metric(resp)
}

func (r *queryRun) volume(ctx context.Context, sel string) error {
	limit := 100
	if r.f.limitSet {
		limit = r.f.limit
	}
	var targets []string
	for _, t := range strings.Split(r.f.targetLabels, ",") {
		if t = strings.TrimSpace(t); t != "" {
			targets = append(targets, t)
		}
	}
	resp, err := r.client.Volume(ctx, querycli.VolumeQuery{
		Selector: sel, Start: r.start, End: r.end, Limit: limit, Step: r.f.step,
		TargetLabels: targets, AggregateBy: r.f.aggregateBy,
	})
	if err != nil {
		return err
	}
	return r.out.Metric(resp)
}

func (r *queryRun) tail(ctx context.Context, q string) error {
	if q == "" {
		return errors.New("--tail: no query given")
	}
	limit := 30
	if r.f.limitSet {
		limit = r.f.limit
	}
	start := r.start
	if r.f.from == "" {
		start = time.Time{} // the server's default (one hour back)
	}
	return r.client.Tail(ctx, querycli.TailQuery{Query: q, Start: start, Limit: limit, DelayFor: r.f.delayFor}, func(fr querycli.TailFrame) error {
		for _, e := range fr.Entries {
			if err := r.out.Entry(e); err != nil {
				return err
			}
		}
		for _, d := range fr.Dropped {
			fmt.Fprintf(r.stderr, "server dropped an entry of %v at %s\n", d.Labels, d.Timestamp.Format(time.RFC3339Nano))
		}
		return r.out.Flush()
	})
}

func (r *queryRun) warn(ws []string) {
	for _, w := range ws {
		fmt.Fprintln(r.stderr, "warning:", w)
	}
}

// exportProgress shows how far a long export got on stderr: a line
// rewritten in place on a terminal, plain lines otherwise (--progress
// always). It shows nothing for exports of a single batch.
type exportProgress struct {
	w        io.Writer
	on       bool
	terminal bool
	last     time.Time // of the last line drawn (terminal)
	lines    int
	at       time.Time
}

func (r *queryRun) progress(limit int) *exportProgress {
	term := isTerminal(r.stderr)
	on := false
	switch r.f.progress {
	case "always":
		on = true
	case "auto":
		on = term
	}
	if r.f.quiet || (limit > 0 && limit <= r.f.batch) {
		on = false
	}
	return &exportProgress{w: r.stderr, on: on, terminal: term}
}

func (p *exportProgress) update(lines int, at time.Time) {
	p.lines, p.at = lines, at
	if !p.on {
		return
	}
	if !p.terminal {
		p.draw()
		return
	}
	if time.Since(p.last) >= 200*time.Millisecond {
		p.last = time.Now()
		p.draw()
	}
}

func (p *exportProgress) draw() {
	msg := fmt.Sprintf("exported %d lines, at %s", p.lines, p.at.UTC().Format(time.RFC3339Nano))
	if p.terminal {
		fmt.Fprintf(p.w, "\r\033[K%s", msg)
	} else {
		fmt.Fprintln(p.w, msg)
	}
}

// done draws the final figures on a terminal and ends the line.
func (p *exportProgress) done() {
	if p.on && p.terminal && p.lines > 0 {
		p.draw()
		fmt.Fprintln(p.w)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
