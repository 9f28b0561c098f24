package ruler

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// amAlert is one element of Alertmanager's POST /api/v2/alerts body.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt,omitempty"`
	EndsAt       string            `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// maxAlertsPerRequest bounds one POST to an Alertmanager.
const maxAlertsPerRequest = 256

// retryWindow is how long a batch that an Alertmanager refused is retried
// before it is dropped; by then rule groups have re-sent what still fires.
const retryWindow = 5 * time.Minute

// notifier sends alerts to every configured Alertmanager. Each
// Alertmanager has its own bounded queue and sender goroutine, so a slow or
// dead one does not hold up the others; a failed batch is retried with
// exponential back-off.
type notifier struct {
	client   *http.Client
	ams      []*amQueue
	log      *slog.Logger
	metrics  *metrics
	capacity int
	timeout  time.Duration
	// minBackoff and maxBackoff bound the retry back-off.
	minBackoff, maxBackoff time.Duration
}

// amQueue is one Alertmanager. Immutable fields first; mu guards queue.
type amQueue struct {
	url    string // full …/api/v2/alerts URL without credentials
	name   string // for logs and metrics
	auth   func(*http.Request)
	wake   chan struct{}
	mu     sync.Mutex
	queue  []amAlert
	closed bool
}

func newNotifier(cfg Config, log *slog.Logger, m *metrics) (*notifier, error) {
	urls, err := cfg.AlertmanagerURLs()
	if err != nil {
		return nil, err
	}
	tr, err := amTransport(cfg.AlertmanagerClient)
	if err != nil {
		return nil, err
	}
	n := &notifier{
		client:     &http.Client{Transport: tr, Timeout: cfg.NotificationTimeout.D()},
		log:        log,
		metrics:    m,
		capacity:   cfg.NotificationQueueCapacity,
		timeout:    cfg.NotificationTimeout.D(),
		minBackoff: time.Second,
		maxBackoff: 30 * time.Second,
	}
	for _, u := range urls {
		q := &amQueue{wake: make(chan struct{}, 1)}
		user := u.User
		clean := *u
		clean.User = nil
		clean.Path = strings.TrimRight(clean.Path, "/") + "/api/v2/alerts"
		q.url = clean.String()
		q.name = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
		q.auth = amAuth(cfg.AlertmanagerClient, user)
		n.ams = append(n.ams, q)
	}
	m.alertmanagers.Set(float64(len(n.ams)))
	return n, nil
}

func amAuth(c AlertmanagerClientConfig, user *url.Userinfo) func(*http.Request) {
	return func(r *http.Request) {
		switch {
		case user != nil:
			p, _ := user.Password()
			r.SetBasicAuth(user.Username(), p)
		case c.BasicAuthUsername != "":
			r.SetBasicAuth(c.BasicAuthUsername, string(c.BasicAuthPassword))
		case c.Credentials != "" || c.CredentialsFile != "":
			cred := string(c.Credentials)
			if c.CredentialsFile != "" {
				if b, err := os.ReadFile(c.CredentialsFile); err == nil {
					cred = strings.TrimSpace(string(b))
				}
			}
			typ := c.Type
			if typ == "" {
				typ = "Bearer"
			}
			r.Header.Set("Authorization", typ+" "+cred)
		}
	}
}

func amTransport(c AlertmanagerClientConfig) (http.RoundTripper, error) {
	return newTransport(TLSConfig{
		CAFile:             c.TLSCAPath,
		CertFile:           c.TLSCertPath,
		KeyFile:            c.TLSKeyPath,
		ServerName:         c.TLSServerName,
		InsecureSkipVerify: c.TLSInsecureSkipVerify,
	})
}

// newTransport builds an HTTP transport with the TLS settings.
func newTransport(c TLSConfig) (http.RoundTripper, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c == (TLSConfig{}) {
		return tr, nil
	}
	tc := &tls.Config{ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // user's choice
	if c.CAFile != "" {
		b, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("CA file %s: no certificates", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	tr.TLSClientConfig = tc
	return tr, nil
}

// send queues alerts for every Alertmanager. It never blocks.
func (n *notifier) send(alerts []amAlert) {
	if len(alerts) == 0 {
		return
	}
	for _, q := range n.ams {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			continue
		}
		q.queue = append(q.queue, alerts...)
		if over := len(q.queue) - n.capacity; over > 0 {
			q.queue = append(q.queue[:0], q.queue[over:]...)
			n.metrics.notificationsDropped.Add(float64(over))
		}
		n.metrics.notificationQueueLength.WithLabelValues(q.name).Set(float64(len(q.queue)))
		q.mu.Unlock()
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// run sends queued alerts until ctx is done, then makes one last attempt
// to deliver what is queued.
func (n *notifier) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, q := range n.ams {
		wg.Add(1)
		go func() { defer wg.Done(); n.runQueue(ctx, q) }()
	}
	wg.Wait()
}

func (n *notifier) runQueue(ctx context.Context, q *amQueue) {
	var batch []amAlert
	var firstTry time.Time
	failures := 0
	for {
		if len(batch) == 0 {
			batch = q.take()
			firstTry = time.Now()
			failures = 0
		}
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				n.drain(q)
				return
			case <-q.wake:
				continue
			}
		}
		err := n.post(ctx, q, batch)
		if err == nil {
			n.metrics.notificationsSent.WithLabelValues(q.name).Add(float64(len(batch)))
			batch = nil
			continue
		}
		if ctx.Err() != nil {
			q.requeueFront(batch)
			n.drain(q)
			return
		}
		failures++
		n.metrics.notificationErrors.WithLabelValues(q.name).Add(float64(len(batch)))
		n.log.Warn("send alerts to alertmanager", "alertmanager", q.name, "alerts", len(batch), "attempt", failures, "err", err)
		if time.Since(firstTry) > retryWindow {
			n.metrics.notificationsDropped.Add(float64(len(batch)))
			batch = nil
		}
		select {
		case <-ctx.Done():
			q.requeueFront(batch)
			n.drain(q)
			return
		case <-time.After(backoff(n.minBackoff, n.maxBackoff, failures)):
		}
	}
}

// drain makes one bounded attempt to deliver what is queued at shutdown.
func (n *notifier) drain(q *amQueue) {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	for {
		batch := q.take()
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
		err := n.post(ctx, q, batch)
		cancel()
		if err != nil {
			n.metrics.notificationErrors.WithLabelValues(q.name).Add(float64(len(batch)))
			n.log.Warn("send alerts to alertmanager at shutdown", "alertmanager", q.name, "alerts", len(batch), "err", err)
			return
		}
		n.metrics.notificationsSent.WithLabelValues(q.name).Add(float64(len(batch)))
	}
}

func (q *amQueue) take() []amAlert {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := min(len(q.queue), maxAlertsPerRequest)
	if k == 0 {
		return nil
	}
	out := append([]amAlert(nil), q.queue[:k]...)
	q.queue = append(q.queue[:0], q.queue[k:]...)
	return out
}

func (q *amQueue) requeueFront(batch []amAlert) {
	if len(batch) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queue = append(append([]amAlert(nil), batch...), q.queue...)
}

func (n *notifier) post(ctx context.Context, q *amQueue, batch []amAlert) error {
	body, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("encode alerts: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	q.auth(req)
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

// backoff is min·2^(attempt-1), capped at max.
func backoff(minD, maxD time.Duration, attempt int) time.Duration {
	d := minD
	for i := 1; i < attempt && d < maxD; i++ {
		d *= 2
	}
	return min(d, maxD)
}

// userAgent identifies the ruler to Alertmanager and Prometheus.
const userAgent = "Ledgerlog-ruler"
