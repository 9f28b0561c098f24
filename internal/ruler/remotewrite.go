package ruler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
)

// staleNaN is Prometheus' staleness marker: written when a series a rule
// produced is no longer produced.
var staleNaN = math.Float64frombits(0x7ff0000000000002)

// rwSample is one queued sample.
type rwSample struct {
	tenant string
	labels model.Labels
	t      int64 // Unix ms
	v      float64
}

// remoteWriter sends samples to every configured remote-write client.
type remoteWriter struct {
	clients        []*rwClient
	externalLabels model.Labels
}

// rwClient is one remote-write endpoint with its own bounded queue and
// sender goroutine. Immutable fields first; mu guards queue.
type rwClient struct {
	cfg     RemoteWriteClient
	name    string
	orgID   bool
	client  *http.Client
	log     *slog.Logger
	metrics *metrics
	wake    chan struct{}

	capacity, maxPerSend   int
	minBackoff, maxBackoff time.Duration
	retry429               bool

	mu    sync.Mutex
	queue []rwSample
}

func newRemoteWriter(cfg Config, log *slog.Logger, m *metrics) (*remoteWriter, error) {
	w := &remoteWriter{externalLabels: labels.FromMap(cfg.ExternalLabels)}
	if !cfg.RemoteWrite.Enabled {
		return w, nil
	}
	for _, c := range cfg.RemoteWrite.clients() {
		tr, err := newTransport(c.TLSConfig)
		if err != nil {
			return nil, fmt.Errorf("remote_write client %s: %w", c.Name, err)
		}
		timeout := c.RemoteTimeout.D()
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		qc := c.QueueConfig
		cl := &rwClient{
			cfg:        c,
			name:       c.Name,
			orgID:      cfg.RemoteWrite.AddOrgIDHeader,
			client:     &http.Client{Transport: tr, Timeout: timeout},
			log:        log,
			metrics:    m,
			wake:       make(chan struct{}, 1),
			capacity:   orDefault(qc.Capacity, 10000),
			maxPerSend: orDefault(qc.MaxSamplesPerSend, 2000),
			minBackoff: orDefault(qc.MinBackoff.D(), 30*time.Millisecond),
			maxBackoff: orDefault(qc.MaxBackoff.D(), 5*time.Second),
			retry429:   qc.RetryOnRateLimit,
		}
		w.clients = append(w.clients, cl)
	}
	return w, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// append queues samples taken at ts for every client. It never blocks.
func (w *remoteWriter) append(tenantID string, ts time.Time, v Vector) {
	if w == nil || len(w.clients) == 0 || len(v) == 0 {
		return
	}
	batch := make([]rwSample, 0, len(v))
	for _, s := range v {
		ls := s.Labels
		if w.externalLabels.Len() > 0 {
			lb := labels.NewBuilder(ls)
			w.externalLabels.Range(func(l labels.Label) {
				if !ls.Has(l.Name) {
					lb.Set(l.Name, l.Value)
				}
			})
			ls = lb.Labels()
		}
		batch = append(batch, rwSample{tenant: tenantID, labels: ls, t: ts.UnixMilli(), v: s.Value})
	}
	for _, c := range w.clients {
		c.enqueue(batch)
	}
}

func (c *rwClient) enqueue(batch []rwSample) {
	c.mu.Lock()
	c.queue = append(c.queue, batch...)
	if over := len(c.queue) - c.capacity; over > 0 {
		c.queue = append(c.queue[:0], c.queue[over:]...)
		c.metrics.rwDropped.WithLabelValues(c.name).Add(float64(over))
	}
	c.metrics.rwQueueLength.WithLabelValues(c.name).Set(float64(len(c.queue)))
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// run sends until ctx is done, then makes one bounded attempt to deliver
// what is queued.
func (w *remoteWriter) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range w.clients {
		wg.Add(1)
		go func() { defer wg.Done(); c.run(ctx) }()
	}
	wg.Wait()
}

func (c *rwClient) run(ctx context.Context) {
	for {
		batch := c.take()
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				c.drain()
				return
			case <-c.wake:
				continue
			}
		}
		if !c.sendWithRetry(ctx, batch) {
			c.drain()
			return
		}
	}
}

// take returns up to maxPerSend queued samples of one tenant.
func (c *rwClient) take() []rwSample {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		return nil
	}
	t := c.queue[0].tenant
	var out, rest []rwSample
	for _, s := range c.queue {
		if s.tenant == t && len(out) < c.maxPerSend {
			out = append(out, s)
		} else {
			rest = append(rest, s)
		}
	}
	c.queue = append(c.queue[:0], rest...)
	c.metrics.rwQueueLength.WithLabelValues(c.name).Set(float64(len(c.queue)))
	return out
}

// errRecoverable marks failures worth retrying (network, 5xx, 429 when
// configured).
type recoverableError struct{ error }

func (e recoverableError) Unwrap() error { return e.error }

// sendWithRetry sends one batch, retrying recoverable failures with
// back-off. It returns false when ctx ended first (the batch is put back).
func (c *rwClient) sendWithRetry(ctx context.Context, batch []rwSample) bool {
	body, err := encodeWriteRequest(batch)
	if err != nil {
		c.metrics.rwFailed.WithLabelValues(c.name).Add(float64(len(batch)))
		c.log.Error("encode remote-write request", "remote_name", c.name, "err", err)
		return true
	}
	for attempt := 1; ; attempt++ {
		err := c.post(ctx, batch[0].tenant, body)
		if err == nil {
			c.metrics.rwSent.WithLabelValues(c.name).Add(float64(len(batch)))
			return true
		}
		if ctx.Err() != nil {
			c.requeueFront(batch)
			return false
		}
		var rerr recoverableError
		if !errors.As(err, &rerr) {
			c.metrics.rwFailed.WithLabelValues(c.name).Add(float64(len(batch)))
			c.log.Warn("remote-write rejected samples", "remote_name", c.name, "tenant", batch[0].tenant, "samples", len(batch), "err", err)
			return true
		}
		c.metrics.rwRetries.WithLabelValues(c.name).Add(float64(len(batch)))
		c.log.Warn("remote-write failed, retrying", "remote_name", c.name, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			c.requeueFront(batch)
			return false
		case <-time.After(backoff(c.minBackoff, c.maxBackoff, attempt)):
		}
	}
}

func (c *rwClient) requeueFront(batch []rwSample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append(append([]rwSample(nil), batch...), c.queue...)
}

// drain makes one attempt, bounded by the client timeout, to deliver the
// queue at shutdown.
func (c *rwClient) drain() {
	for {
		batch := c.take()
		if len(batch) == 0 {
			return
		}
		body, err := encodeWriteRequest(batch)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), c.client.Timeout)
			err = c.post(ctx, batch[0].tenant, body)
			cancel()
		}
		if err != nil {
			c.metrics.rwFailed.WithLabelValues(c.name).Add(float64(len(batch)))
			c.log.Warn("remote-write at shutdown", "remote_name", c.name, "samples", len(batch), "err", err)
			return
		}
		c.metrics.rwSent.WithLabelValues(c.name).Add(float64(len(batch)))
	}
}

// encodeWriteRequest builds a snappy-compressed prompb.WriteRequest, one
// time series per label set.
func encodeWriteRequest(batch []rwSample) ([]byte, error) {
	idx := map[uint64]int{}
	req := prompb.WriteRequest{}
	for _, s := range batch {
		h := s.labels.Hash()
		i, ok := idx[h]
		if !ok {
			i = len(req.Timeseries)
			idx[h] = i
			ts := prompb.TimeSeries{Labels: make([]prompb.Label, 0, s.labels.Len())}
			s.labels.Range(func(l labels.Label) {
				ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value})
			})
			req.Timeseries = append(req.Timeseries, ts)
		}
		req.Timeseries[i].Samples = append(req.Timeseries[i].Samples, prompb.Sample{Value: s.v, Timestamp: s.t})
	}
	raw, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	return snappy.Encode(nil, raw), nil
}

func (c *rwClient) post(ctx context.Context, tenantID string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	for k, v := range c.cfg.Headers {
		req.Header.Set(k, v)
	}
	if c.orgID && tenantID != "" {
		req.Header.Set(tenant.OrgIDHeader, tenantID)
	}
	if err := c.authorize(req); err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return recoverableError{err}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("server returned HTTP status %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	if resp.StatusCode/100 == 5 || (resp.StatusCode == http.StatusTooManyRequests && c.retry429) {
		return recoverableError{err}
	}
	return err
}

func (c *rwClient) authorize(req *http.Request) error {
	if ba := c.cfg.BasicAuth; ba != nil {
		pw := string(ba.Password)
		if ba.PasswordFile != "" {
			b, err := os.ReadFile(ba.PasswordFile)
			if err != nil {
				return fmt.Errorf("read password file: %w", err)
			}
			pw = strings.TrimSpace(string(b))
		}
		req.SetBasicAuth(ba.Username, pw)
	}
	if a := c.cfg.Authorization; a != nil {
		cred := string(a.Credentials)
		if a.CredentialsFile != "" {
			b, err := os.ReadFile(a.CredentialsFile)
			if err != nil {
				return fmt.Errorf("read credentials file: %w", err)
			}
			cred = strings.TrimSpace(string(b))
		}
		typ := a.Type
		if typ == "" {
			typ = "Bearer"
		}
		req.Header.Set("Authorization", typ+" "+cred)
	}
	return nil
}
