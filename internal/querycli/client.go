// Package querycli owns Ledgerlog's logcli-like query client: calls to a
// Loki-compatible HTTP API (Ledgerlog's or Grafana Loki's) with tenant,
// basic or bearer authentication and TLS, exports of any number of log
// lines by paging through query_range, live tail over WebSocket, and the
// default, raw and jsonl output formats. It depends on nothing of the
// server but the LogQL parser.
package querycli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config configures a Client. Addr is the only required field.
type Config struct {
	Addr          string // base URL, e.g. http://127.0.0.1:3100 (a path prefix is kept)
	OrgID         string // X-Scope-OrgID; "a|b" queries several tenants
	Username      string // basic auth, with Password
	Password      string
	BearerToken   string // Authorization: Bearer
	TLSCACert     string // PEM file of CAs to trust instead of the system's
	TLSCert       string // PEM client certificate, with TLSKey
	TLSKey        string
	TLSSkipVerify bool
	UserAgent     string
}

// Client calls the query API. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	http *http.Client
}

// New returns a client; it fails on a bad address or unreadable TLS files.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(strings.TrimRight(cfg.Addr, "/"))
	if err != nil {
		return nil, fmt.Errorf("parse address %q: %w", cfg.Addr, err)
	}
	if base.Scheme != "http" && base.Scheme != "https" {
		return nil, fmt.Errorf("address %q: scheme must be http or https", cfg.Addr)
	}
	tlsCfg, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	if cfg.UserAgent == "" {
		cfg.UserAgent = "ledgerlog-query"
	}
	return &Client{cfg: cfg, base: base, http: &http.Client{Transport: tr}}, nil
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	c := &tls.Config{InsecureSkipVerify: cfg.TLSSkipVerify} //nolint:gosec // the user asked for it
	if cfg.TLSCACert != "" {
		pem, err := os.ReadFile(cfg.TLSCACert)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read CA certificate %s: no PEM certificate found", cfg.TLSCACert)
		}
		c.RootCAs = pool
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if cfg.TLSCert == "" || cfg.TLSKey == "" {
			return nil, fmt.Errorf("a client certificate needs both --tls-cert and --tls-key")
		}
		pair, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// APIError is an answer other than 2xx: the server's status and message.
type APIError struct {
	Path       string
	StatusCode int
	Status     string // e.g. "400 Bad Request"
	Message    string
}

func (e *APIError) Error() string {
	msg := strings.TrimSpace(e.Message)
	if msg == "" {
		return fmt.Sprintf("%s: server answered %s", e.Path, e.Status)
	}
	return fmt.Sprintf("%s: server answered %s: %s", e.Path, e.Status, msg)
}

// url returns the full URL of an API path.
func (c *Client) url(path string, params url.Values) string {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = params.Encode()
	return u.String()
}

func (c *Client) headers(h http.Header) {
	if c.cfg.OrgID != "" {
		h.Set("X-Scope-OrgID", c.cfg.OrgID)
	}
	switch {
	case c.cfg.BearerToken != "":
		h.Set("Authorization", "Bearer "+c.cfg.BearerToken)
	case c.cfg.Username != "" || c.cfg.Password != "":
		r := http.Request{Header: h}
		r.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	}
	h.Set("User-Agent", c.cfg.UserAgent)
}

// get calls path and decodes the JSON answer into out.
func (c *Client) get(ctx context.Context, path string, params url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path, params), nil)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	c.headers(req.Header)
	resp, err := c.http.Do(req)
	if err != nil {
		// The path is named already; the full URL would only repeat it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return &APIError{Path: path, StatusCode: resp.StatusCode, Status: resp.Status, Message: errorMessage(b)}
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", path, err)
	}
	return nil
}

// errorMessage extracts the message of an error body: Loki's plain text,
// or a JSON {"message"} / {"error"} body.
func errorMessage(b []byte) string {
	var j struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(b, &j) == nil {
		if j.Message != "" {
			return j.Message
		}
		if j.Error != "" {
			return j.Error
		}
	}
	return string(b)
}

// Timestamps travel as Unix nanoseconds.
func ns(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

// Direction of a log query.
type Direction string

// Directions.
const (
	Backward Direction = "backward"
	Forward  Direction = "forward"
)

// RangeQuery is a query_range call.
type RangeQuery struct {
	Query      string
	Start, End time.Time // [Start, End)
	Limit      int
	Direction  Direction
	Step       time.Duration // 0: the server's default
}

// Response is a query or query_range answer.
type Response struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
		Stats      json.RawMessage `json:"stats,omitempty"`
	} `json:"data"`
	Warnings []string `json:"warnings,omitempty"`
}

// StreamResult is one stream of a streams result.
type StreamResult struct {
	Stream map[string]string   `json:"stream"`
	Values [][]json.RawMessage `json:"values"`
}

// Entry is one log line of a result with its labels (stream labels and,
// as Loki folds them, structured metadata and parsed labels).
type Entry struct {
	Timestamp time.Time
	Labels    map[string]string
	Line      string
}

// Entries decodes a streams result.
func (r *Response) Entries() ([]Entry, error) {
	if r.Data.ResultType != "streams" {
		return nil, fmt.Errorf("result is a %s, not streams", r.Data.ResultType)
	}
	var streams []StreamResult
	if err := json.Unmarshal(r.Data.Result, &streams); err != nil {
		return nil, fmt.Errorf("decode streams: %w", err)
	}
	var out []Entry
	for _, s := range streams {
		for _, v := range s.Values {
			if len(v) < 2 {
				return nil, fmt.Errorf("decode streams: value with %d elements", len(v))
			}
			var tsStr, line string
			if err := json.Unmarshal(v[0], &tsStr); err != nil {
				return nil, fmt.Errorf("decode timestamp: %w", err)
			}
			tsNS, err := strconv.ParseInt(tsStr, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("decode timestamp %q: %w", tsStr, err)
			}
			if err := json.Unmarshal(v[1], &line); err != nil {
				return nil, fmt.Errorf("decode line: %w", err)
			}
			out = append(out, Entry{Timestamp: time.Unix(0, tsNS).UTC(), Labels: s.Stream, Line: line})
		}
	}
	return out, nil
}

// QueryRange calls /loki/api/v1/query_range.
func (c *Client) QueryRange(ctx context.Context, q RangeQuery) (*Response, error) {
	p := url.Values{"query": {q.Query}, "start": {ns(q.Start)}, "end": {ns(q.End)}}
	if q.Limit > 0 {
		p.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Direction != "" {
		p.Set("direction", string(q.Direction))
	}
	if q.Step > 0 {
		p.Set("step", strconv.FormatInt(q.Step.Milliseconds(), 10)+"ms")
	}
	var r Response
	if err := c.get(ctx, "/loki/api/v1/query_range", p, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Query calls /loki/api/v1/query (an instant query at t).
func (c *Client) Query(ctx context.Context, query string, t time.Time, limit int, dir Direction) (*Response, error) {
	p := url.Values{"query": {query}, "time": {ns(t)}}
	if limit > 0 {
		p.Set("limit", strconv.Itoa(limit))
	}
	if dir != "" {
		p.Set("direction", string(dir))
	}
	var r Response
	if err := c.get(ctx, "/loki/api/v1/query", p, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

type listResponse struct {
	Status string   `json:"status"`
	Data   []string `json:"data"`
}

// Labels lists label names in [start, end], scoped by an optional
// selector.
func (c *Client) Labels(ctx context.Context, start, end time.Time, selector string) ([]string, error) {
	p := url.Values{"start": {ns(start)}, "end": {ns(end)}}
	if selector != "" {
		p.Set("query", selector)
	}
	var r listResponse
	if err := c.get(ctx, "/loki/api/v1/labels", p, &r); err != nil {
		return nil, err
	}
	return r.Data, nil
}

// LabelValues lists the values of a label in [start, end].
func (c *Client) LabelValues(ctx context.Context, name string, start, end time.Time, selector string) ([]string, error) {
	p := url.Values{"start": {ns(start)}, "end": {ns(end)}}
	if selector != "" {
		p.Set("query", selector)
	}
	var r listResponse
	if err := c.get(ctx, "/loki/api/v1/label/"+url.PathEscape(name)+"/values", p, &r); err != nil {
		return nil, err
	}
	return r.Data, nil
}

// Series lists the label sets of streams matching any selector.
func (c *Client) Series(ctx context.Context, selectors []string, start, end time.Time) ([]map[string]string, error) {
	p := url.Values{"match[]": selectors, "start": {ns(start)}, "end": {ns(end)}}
	var r struct {
		Status string              `json:"status"`
		Data   []map[string]string `json:"data"`
	}
	if err := c.get(ctx, "/loki/api/v1/series", p, &r); err != nil {
		return nil, err
	}
	return r.Data, nil
}

// IndexStats is the answer of /index/stats.
type IndexStats struct {
	Streams int64 `json:"streams"`
	Chunks  int64 `json:"chunks"`
	Entries int64 `json:"entries"`
	Bytes   int64 `json:"bytes"`
}

// Stats calls /loki/api/v1/index/stats.
func (c *Client) Stats(ctx context.Context, selector string, start, end time.Time) (*IndexStats, error) {
	var r IndexStats
	p := url.Values{"query": {selector}, "start": {ns(start)}, "end": {ns(end)}}
	if err := c.get(ctx, "/loki/api/v1/index/stats", p, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// VolumeQuery is an /index/volume or, with Step, /index/volume_range call.
type VolumeQuery struct {
	Selector     string
	Start, End   time.Time
	Limit        int
	Step         time.Duration
	TargetLabels []string
	AggregateBy  string // "series" or "labels"
}

// Volume calls /index/volume (Step 0) or /index/volume_range. The answer
// is a vector or matrix Response.
func (c *Client) Volume(ctx context.Context, q VolumeQuery) (*Response, error) {
	p := url.Values{"query": {q.Selector}, "start": {ns(q.Start)}, "end": {ns(q.End)}}
	if q.Limit > 0 {
		p.Set("limit", strconv.Itoa(q.Limit))
	}
	if len(q.TargetLabels) > 0 {
		p.Set("targetLabels", strings.Join(q.TargetLabels, ","))
	}
	if q.AggregateBy != "" {
		p.Set("aggregateBy", q.AggregateBy)
	}
	path := "/loki/api/v1/index/volume"
	if q.Step > 0 {
		path = "/loki/api/v1/index/volume_range"
		p.Set("step", strconv.FormatInt(q.Step.Milliseconds(), 10)+"ms")
	}
	var r Response
	if err := c.get(ctx, path, p, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
