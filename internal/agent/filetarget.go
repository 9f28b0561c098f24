package agent

import (
	"bufio"
	"compress/bzip2"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"go.yaml.in/yaml/v3"
	"golang.org/x/text/encoding"
)

// Reserved target labels.
const (
	labelPath        = "__path__"
	labelPathExclude = "__path_exclude__"
	labelAddress     = "__address__"
	labelFilename    = "filename"
)

// targetGroup is a discovered group of targets (Prometheus' targetgroup).
type targetGroup struct {
	Source  string
	Targets []string
	Labels  map[string]string
}

// fileSDGroup is the on-disk form of a file_sd target group.
type fileSDGroup struct {
	Targets []string          `json:"targets" yaml:"targets"`
	Labels  map[string]string `json:"labels" yaml:"labels"`
}

// TargetInfo describes one discovered target for /targets and
// /service-discovery.
type TargetInfo struct {
	Job           string            `json:"job"`
	Path          string            `json:"path,omitempty"`
	Type          string            `json:"type"`
	Discovered    map[string]string `json:"discoveredLabels"`
	Labels        map[string]string `json:"labels,omitempty"`
	Ready         bool              `json:"ready"`
	Dropped       bool              `json:"dropped,omitempty"`
	ReadOffset    int64             `json:"readOffset,omitempty"`
	AckedPosition int64             `json:"ackedPosition,omitempty"`
	Details       string            `json:"details,omitempty"`
}

// fileJob discovers and tails the files of one scrape config.
type fileJob struct {
	cfg       ScrapeConfig
	env       *jobEnv
	in        chan<- Entry
	decoder   encoding.Encoding
	syncEvery time.Duration
	watcher   *fsnotify.Watcher // nil when fsnotify is unavailable: polling only
	resync    chan struct{}

	mu       sync.Mutex
	targets  map[string]*fileTarget // guarded by mu; by path
	retiring map[string]*fileTarget // guarded by mu; undiscovered, reading to the end
	sources  map[string]*ackSource  // guarded by mu; by path, kept across target restarts
	infos    []TargetInfo           // guarded by mu; last sync's view
	watched  map[string]bool        // guarded by mu
	wg       sync.WaitGroup
}

// retireGrace is how long a path must stay undiscovered before its tailer
// is retired. A rename-and-create rotation leaves the path missing for a
// moment; the tailer itself follows the new file, and a target stopped
// and started again in that gap would only cost work.
const retireGrace = time.Second

// sourceRetention is how long the read position of a path whose target
// was retired is kept in memory. A file that comes back at the path within
// it continues after that position: the rest of the old file (found next
// to it by identity) is read first, then the new one from its start.
const sourceRetention = 5 * time.Minute

// fileTarget is one tailed path.
type fileTarget struct {
	path       string
	labels     model.LabelSet
	discovered map[string]string
	t          *tailer
	src        *ackSource
	cancel     context.CancelFunc
	done       chan struct{}
	missing    time.Time // guarded by fileJob.mu; first sync that did not discover it
	exited     bool      // guarded by fileJob.mu; the reading goroutine returned
}

// jobEnv is what every source of an agent shares.
type jobEnv struct {
	logger    *slog.Logger
	metrics   *Metrics
	positions *Positions
	acks      *ackRegistry
	limits    LimitsConfig
	watch     FileWatchConfig
	limiter   *rateLimiter
	startPos  func(path string) (Position, bool) // acknowledged or buffered position
}

func newFileJob(cfg ScrapeConfig, env *jobEnv, in chan<- Entry, syncEvery time.Duration) (*fileJob, error) {
	j := &fileJob{cfg: cfg, env: env, in: in, syncEvery: syncEvery, targets: map[string]*fileTarget{},
		retiring: map[string]*fileTarget{}, sources: map[string]*ackSource{},
		watched: map[string]bool{}, resync: make(chan struct{}, 1)}
	if cfg.Encoding != "" {
		d, err := lookupEncoding(cfg.Encoding)
		if err != nil {
			return nil, err
		}
		j.decoder = d
	}
	if j.syncEvery <= 0 {
		j.syncEvery = defaultTargetSync
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		env.logger.Warn("fsnotify unavailable, polling only", "err", err)
	} else {
		j.watcher = w
	}
	return j, nil
}

// run discovers targets every sync period (and on directory events) until
// ctx is done, then stops every tailer.
func (j *fileJob) run(ctx context.Context) {
	defer j.stopAll()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if j.watcher != nil {
		defer j.watcher.Close()
		events, errs = j.watcher.Events, j.watcher.Errors
	}
	j.sync(ctx)
	t := time.NewTicker(j.syncEvery)
	defer t.Stop()
	var sdTicker <-chan time.Time
	if len(j.cfg.FileSDConfigs) > 0 {
		iv := j.cfg.FileSDConfigs[0].RefreshInterval.D()
		if iv <= 0 {
			iv = defaultFileSDRefresh
		}
		st := time.NewTicker(min(iv, j.syncEvery))
		defer st.Stop()
		sdTicker = st.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			j.sync(ctx)
		case <-sdTicker:
			j.sync(ctx)
		case <-j.resync:
			j.sync(ctx)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			j.mu.Lock()
			ft := j.targets[ev.Name]
			j.mu.Unlock()
			if ft != nil {
				ft.t.notify()
			}
			if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Write) && ft == nil {
				select {
				case j.resync <- struct{}{}:
				default:
				}
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			j.env.logger.Warn("fsnotify", "err", err)
		}
	}
}

// groups returns the static and file_sd target groups.
func (j *fileJob) groups() []targetGroup {
	var out []targetGroup
	for i, sc := range j.cfg.StaticConfigs {
		out = append(out, targetGroup{Source: fmt.Sprintf("static/%d", i), Targets: sc.Targets, Labels: sc.Labels})
	}
	for _, sd := range j.cfg.FileSDConfigs {
		for _, pat := range sd.Files {
			files, _ := filepath.Glob(pat)
			for _, f := range files {
				gs, err := readFileSD(f)
				if err != nil {
					j.env.logger.Error("read file_sd file", "path", f, "err", err)
					continue
				}
				for i, g := range gs {
					out = append(out, targetGroup{Source: fmt.Sprintf("%s:%d", f, i), Targets: g.Targets, Labels: g.Labels})
				}
				j.watchDir(filepath.Dir(f))
			}
		}
	}
	return out
}

func readFileSD(path string) ([]fileSDGroup, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var gs []fileSDGroup
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		err = json.Unmarshal(data, &gs)
	default:
		err = yaml.Unmarshal(data, &gs)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return gs, nil
}

// relabelGroup applies the job's relabel_configs to one target of a group
// and returns the resulting labels, or false when a rule dropped it.
func relabelTarget(base map[string]string, target string, cfgs []*relabel.Config) (labels.Labels, map[string]string, bool) {
	m := maps.Clone(base)
	if m == nil {
		m = map[string]string{}
	}
	if target != "" {
		m[labelAddress] = target
	}
	lb := labels.NewBuilder(labels.FromMap(m))
	keep := relabel.ProcessBuilder(lb, cfgs...)
	return lb.Labels(), m, keep
}

func (j *fileJob) watchDir(dir string) {
	if j.watcher == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.watched[dir] {
		return
	}
	if err := j.watcher.Add(dir); err == nil {
		j.watched[dir] = true
	}
}

// sync reconciles the running tailers with what discovery finds now.
func (j *fileJob) sync(ctx context.Context) {
	want := map[string]*fileTarget{}
	var infos []TargetInfo
	for _, g := range j.groups() {
		targets := g.Targets
		if len(targets) == 0 {
			targets = []string{""}
		}
		for _, tg := range targets {
			ls, discovered, keep := relabelTarget(g.Labels, tg, j.cfg.RelabelConfigs)
			if !keep {
				infos = append(infos, TargetInfo{Job: j.cfg.JobName, Type: "file", Discovered: discovered, Dropped: true})
				continue
			}
			pattern := ls.Get(labelPath)
			if pattern == "" {
				infos = append(infos, TargetInfo{Job: j.cfg.JobName, Type: "file", Discovered: discovered, Dropped: true, Details: "no __path__ label"})
				continue
			}
			exclude := ls.Get(labelPathExclude)
			base, _ := doublestar.SplitPattern(filepath.ToSlash(pattern))
			j.watchDir(filepath.FromSlash(base))
			matches, err := doublestar.FilepathGlob(pattern, doublestar.WithFilesOnly())
			if err != nil {
				j.env.logger.Error("bad __path__ glob", "job", j.cfg.JobName, "pattern", pattern, "err", err)
				j.env.metrics.targetsFailed.WithLabelValues("invalid_glob").Inc()
				continue
			}
			final := model.LabelSet{}
			ls.Range(func(l labels.Label) {
				if !strings.HasPrefix(l.Name, "__") {
					final[model.LabelName(l.Name)] = model.LabelValue(l.Value)
				}
			})
			for _, p := range matches {
				if exclude != "" {
					if ok, _ := doublestar.PathMatch(exclude, p); ok {
						continue
					}
				}
				if _, dup := want[p]; dup {
					continue
				}
				l := final.Clone()
				l[labelFilename] = model.LabelValue(p)
				want[p] = &fileTarget{path: p, labels: l, discovered: discovered}
				j.watchDir(filepath.Dir(p))
			}
		}
	}

	now := time.Now()
	j.mu.Lock()
	for p, ft := range j.targets {
		if _, ok := want[p]; ok {
			ft.missing = time.Time{}
			continue
		}
		if ft.missing.IsZero() {
			ft.missing = now
		}
		if now.Sub(ft.missing) < retireGrace {
			continue
		}
		// The tailer reads what its descriptor still holds and stops; a
		// file that comes back at the path later is picked up by a new
		// target that continues from where this one stopped.
		delete(j.targets, p)
		j.retiring[p] = ft
		if ft.exited {
			j.retiredLocked(ft)
		} else {
			ft.t.finish()
		}
	}
	for p, w := range want {
		if _, ok := j.targets[p]; ok {
			continue
		}
		if _, ok := j.retiring[p]; ok {
			continue // started by the sync after the old tailer stopped
		}
		j.start(ctx, w)
		j.targets[p] = w
	}
	for p, src := range j.sources {
		if j.targets[p] == nil && j.retiring[p] == nil && now.Sub(src.retired) >= sourceRetention && src.idle() {
			delete(j.sources, p)
			j.env.acks.remove(src)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(j.targets)) {
		ft := j.targets[p]
		pos, _ := j.env.positions.Get(p)
		infos = append(infos, TargetInfo{Job: j.cfg.JobName, Type: "file", Path: p, Discovered: ft.discovered,
			Labels: labelMap(ft.labels), Ready: true, ReadOffset: ft.t.Offset(), AckedPosition: pos.Offset})
	}
	j.infos = infos
	j.mu.Unlock()
}

// retiredLocked cleans up after a retired target's goroutine returned:
// its metrics go, and when its file is gone its position is forgotten
// once every line read from it is acknowledged. Called with j.mu held.
func (j *fileJob) retiredLocked(ft *fileTarget) {
	if j.retiring[ft.path] != ft {
		return
	}
	delete(j.retiring, ft.path)
	ft.src.retired = time.Now()
	if _, err := os.Stat(ft.path); errors.Is(err, os.ErrNotExist) {
		ft.src.setForget(true)
	}
	j.env.metrics.readBytes.DeleteLabelValues(ft.path)
	j.env.metrics.fileBytes.DeleteLabelValues(ft.path)
	j.env.metrics.readLines.DeleteLabelValues(ft.path)
	select {
	case j.resync <- struct{}{}: // a file back at the path starts now
	default:
	}
}

func labelMap(ls model.LabelSet) map[string]string {
	m := make(map[string]string, len(ls))
	for k, v := range ls {
		m[string(k)] = string(v)
	}
	return m
}

// start launches the tailer (or one-shot decompressing reader) of ft.
// Called with j.mu held.
func (j *fileJob) start(ctx context.Context, ft *fileTarget) {
	env := j.env
	var start Position
	var known bool
	ft.src = j.sources[ft.path]
	if ft.src != nil {
		// an earlier tailer of this path: continue after the last line it
		// handed out (acknowledged or still in flight)
		ft.src.setForget(false)
		start, known = ft.src.resume()
	} else {
		ft.src = env.acks.newSource(ft.path, env.positions)
		j.sources[ft.path] = ft.src
	}
	if !known {
		start, known = env.startPos(ft.path)
	}
	emit := func(ctx context.Context, line, key string, pos Position) error {
		if env.limiter != nil {
			if !env.limiter.wait(ctx, env.limits.ReadlineRateDrop) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				env.metrics.droppedEntries.WithLabelValues("", "", reasonReadRate).Inc()
				ft.src.skip(pos)
				return nil
			}
		}
		e := Entry{Labels: ft.labels.Clone(), Extracted: map[string]any{ackKey: ft.src.ticket(pos)}, Timestamp: time.Now(), Line: line}
		select {
		case j.in <- e:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	maxLine := hardLineLimit
	if int(env.limits.MaxLineSize) > maxLine {
		maxLine = int(env.limits.MaxLineSize)
	}
	ft.t = newTailer(ft.path, start, known, tailOptions{
		PollMin: env.watch.MinPollFrequency.D(), PollMax: env.watch.MaxPollFrequency.D(),
		MaxLine: maxLine, Decoder: j.decoder, Logger: env.logger.With("path", ft.path), Metrics: env.metrics,
	}, emit)
	tctx, cancel := context.WithCancel(ctx)
	ft.cancel, ft.done = cancel, make(chan struct{})
	env.metrics.filesActive.Inc()
	env.metrics.targetsActive.Inc()
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		defer close(ft.done)
		defer env.metrics.filesActive.Dec()
		defer env.metrics.targetsActive.Dec()
		var err error
		if d := j.cfg.Decompression; d != nil && d.Enabled && isCompressed(ft.path) {
			err = readCompressed(tctx, ft.t, d)
		} else {
			err = ft.t.run(tctx)
		}
		if err != nil && tctx.Err() == nil {
			env.logger.Error("tailing stopped", "path", ft.path, "err", err)
			env.metrics.targetsFailed.WithLabelValues("tail_error").Inc()
		}
		j.mu.Lock()
		ft.exited = true
		j.retiredLocked(ft)
		j.mu.Unlock()
	}()
}

func (j *fileJob) stopAll() {
	j.mu.Lock()
	ts := slices.Collect(maps.Values(j.targets))
	ts = append(ts, slices.Collect(maps.Values(j.retiring))...)
	j.targets = map[string]*fileTarget{}
	j.retiring = map[string]*fileTarget{}
	j.mu.Unlock()
	for _, ft := range ts {
		ft.cancel()
	}
	j.wg.Wait()
}

// Targets returns the last sync's view of the job's targets.
func (j *fileJob) Targets() []TargetInfo {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := slices.Clone(j.infos)
	for i := range out {
		if ft := j.targets[out[i].Path]; ft != nil && ft.t != nil {
			out[i].ReadOffset = ft.t.Offset()
			if p, ok := j.env.positions.Get(ft.path); ok {
				out[i].AckedPosition = p.Offset
			}
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Path < out[b].Path })
	return out
}

func isCompressed(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".gz", ".bz2", ".z", ".zz", ".zlib":
		return true
	}
	return false
}

// readCompressed reads a compressed file once. Positions count decompressed
// bytes; a file whose saved position names the same inode resumes there.
func readCompressed(ctx context.Context, t *tailer, d *Decompression) error {
	if wait := d.InitialDelay.D(); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil
		}
	}
	f, err := os.Open(t.path)
	if err != nil {
		return fmt.Errorf("open %s: %w", t.path, err)
	}
	defer f.Close()
	id, _, err := identify(f, fingerprintSize)
	if err != nil {
		return fmt.Errorf("identify %s: %w", t.path, err)
	}
	var r io.Reader
	br := bufio.NewReader(f)
	switch d.Format {
	case "gz":
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gzip %s: %w", t.path, err)
		}
		defer gz.Close()
		r = gz
	case "bz2":
		r = bzip2.NewReader(br)
	case "z":
		z, err := zlib.NewReader(br)
		if err != nil {
			return fmt.Errorf("zlib %s: %w", t.path, err)
		}
		defer z.Close()
		r = z
	default:
		return fmt.Errorf("decompression format %q: %w", d.Format, ErrNotSupported)
	}
	skip := int64(0)
	if t.known && (t.start.ID.IsZero() || t.start.ID.SameInode(id)) {
		skip = t.start.Offset
	}
	if skip > 0 {
		n, err := io.CopyN(io.Discard, r, skip)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("skip %s: %w", t.path, err)
		}
		t.offset = n
		t.published.Store(n)
	}
	t.id = id
	buf := make([]byte, 64<<10)
	for ctx.Err() == nil {
		n, err := r.Read(buf)
		if n > 0 {
			if err := t.consume(ctx, buf[:n]); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return t.flushPending(ctx)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", t.path, err)
		}
	}
	return nil
}

// rateLimiter is a token bucket for limits_config.readline_rate.
type rateLimiter struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst int) *rateLimiter {
	b := float64(burst)
	if b < 1 {
		b = max(rate, 1)
	}
	return &rateLimiter{rate: rate, burst: b, tokens: b, last: time.Now()}
}

// wait takes one token. With drop set it never waits and reports whether a
// token was available; otherwise it waits for one (false only when ctx is
// done).
func (l *rateLimiter) wait(ctx context.Context, drop bool) bool {
	for {
		l.mu.Lock()
		now := time.Now()
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
		l.last = now
		if l.tokens >= 1 {
			l.tokens--
			l.mu.Unlock()
			return true
		}
		need := time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
		l.mu.Unlock()
		if drop {
			return false
		}
		select {
		case <-time.After(need):
		case <-ctx.Done():
			return false
		}
	}
}
