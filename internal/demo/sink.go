package demo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang/snappy"

	"github.com/ledgerlog/ledgerlog/internal/ingest"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Sink receives generated records.
//
// Write is called from one goroutine with records in timestamp order; the
// slice is reused after Write returns but the records' strings may be kept.
// Write may block (a push waits for the server). Close flushes what is
// buffered; no Write follows it.
type Sink interface {
	Write(ctx context.Context, recs []Record) error
	Close(ctx context.Context) error
}

// FileSink appends each service's lines to <dir>/<service>.log, the way a
// service's stdout lands in a file for an agent to tail.
type FileSink struct {
	dir   string
	files map[string]*bufio.Writer
	fhs   map[string]*os.File
}

// NewFileSink creates dir if needed. Files are opened for append.
func NewFileSink(dir string) (*FileSink, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	return &FileSink{dir: dir, files: map[string]*bufio.Writer{}, fhs: map[string]*os.File{}}, nil
}

// FileName is the file a service's lines go to.
func FileName(service string) string { return service + ".log" }

// Write appends the lines and flushes every touched file, so a tailing agent
// sees whole lines promptly.
func (s *FileSink) Write(_ context.Context, recs []Record) error {
	touched := map[string]*bufio.Writer{}
	for i := range recs {
		w, err := s.file(recs[i].Service)
		if err != nil {
			return err
		}
		_, _ = w.WriteString(recs[i].Line)
		_ = w.WriteByte('\n')
		touched[recs[i].Service] = w
	}
	for svc, w := range touched {
		if err := w.Flush(); err != nil {
			return fmt.Errorf("write %s: %w", FileName(svc), err)
		}
	}
	return nil
}

func (s *FileSink) file(service string) (*bufio.Writer, error) {
	if w, ok := s.files[service]; ok {
		return w, nil
	}
	p := filepath.Join(s.dir, FileName(service))
	fh, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	w := bufio.NewWriterSize(fh, 64<<10)
	s.files[service], s.fhs[service] = w, fh
	return w, nil
}

// Close flushes and closes every file.
func (s *FileSink) Close(context.Context) error {
	var errs []error
	for svc, w := range s.files {
		if err := w.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("flush %s: %w", FileName(svc), err))
		}
		if err := s.fhs[svc].Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", FileName(svc), err))
		}
	}
	return errors.Join(errs...)
}

// NDJSONSink writes one record per line in the bench dataset's format:
// {"labels":"{…}","ts":<unix ns>,"line":"<tracing JSON>"}.
type NDJSONSink struct {
	w   *bufio.Writer
	buf []byte
}

// NewNDJSONSink writes to w.
func NewNDJSONSink(w io.Writer) *NDJSONSink { return &NDJSONSink{w: bufio.NewWriterSize(w, 64<<10)} }

// Write writes the records and flushes.
func (s *NDJSONSink) Write(_ context.Context, recs []Record) error {
	for i := range recs {
		o := newObject(s.buf[:0])
		o.str("labels", recs[i].Labels.String())
		o.int("ts", recs[i].Timestamp)
		o.str("line", recs[i].Line)
		s.buf = append(o.close(), '\n')
		if _, err := s.w.Write(s.buf); err != nil {
			return fmt.Errorf("write record: %w", err)
		}
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write record: %w", err)
	}
	return nil
}

// Close flushes.
func (s *NDJSONSink) Close(context.Context) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write record: %w", err)
	}
	return nil
}

// PushOptions configures a PushSink.
type PushOptions struct {
	URL       string        // push endpoint; a URL without a path gets /loki/api/v1/push
	Tenant    string        // X-Scope-OrgID; empty: none
	BatchWait time.Duration // send at least this often (default 1s)
	BatchSize int           // send when this many lines are buffered (default 2000)
	Client    *http.Client  // default: 10s timeout
	Retries   int           // attempts after the first on 429, 5xx and network errors (default 3)
}

// PushSink pushes to a Loki-compatible server: protobuf PushRequest, snappy
// compressed, as Promtail sends it. Entries carry no structured metadata:
// metadata joins the series labels of metric queries, so a per-line value
// such as trace_id would turn every alert expression without an
// aggregation into one series (and one alert) per line.
type PushSink struct {
	o       PushOptions
	streams map[string]*model.Stream
	order   []string
	n       int
	last    time.Time
	raw     []byte
	Pushed  int // lines acknowledged by the server
	Dropped int // lines given up on after retries
}

// NormalizePushURL adds /loki/api/v1/push to a URL that has no path.
func NormalizePushURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("push url %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("push url %q: scheme must be http or https", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/loki/api/v1/push"
	}
	return u.String(), nil
}

// NewPushSink validates the options.
func NewPushSink(o PushOptions) (*PushSink, error) {
	u, err := NormalizePushURL(o.URL)
	if err != nil {
		return nil, err
	}
	o.URL = u
	if o.BatchWait <= 0 {
		o.BatchWait = time.Second
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 2000
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Retries == 0 {
		o.Retries = 3
	}
	return &PushSink{o: o, streams: map[string]*model.Stream{}, last: time.Now()}, nil
}

// Write buffers the records and sends a batch when BatchSize lines are
// buffered or BatchWait has passed since the last send. A batch that still
// fails after the retries is dropped and reported; the demo goes on.
func (s *PushSink) Write(ctx context.Context, recs []Record) error {
	var errs []error
	for i := range recs {
		r := &recs[i]
		k := r.Labels.String()
		st, ok := s.streams[k]
		if !ok {
			st = &model.Stream{Labels: r.Labels}
			s.streams[k] = st
			s.order = append(s.order, k)
		}
		st.Entries = append(st.Entries, model.Entry{Timestamp: r.Timestamp, Line: r.Line})
		s.n++
		if s.n >= s.o.BatchSize {
			errs = append(errs, s.flush(ctx))
		}
	}
	if s.n > 0 && time.Since(s.last) >= s.o.BatchWait {
		errs = append(errs, s.flush(ctx))
	}
	return errors.Join(errs...)
}

// Close sends what is buffered.
func (s *PushSink) Close(ctx context.Context) error { return s.flush(ctx) }

func (s *PushSink) flush(ctx context.Context) error {
	s.last = time.Now()
	if s.n == 0 {
		return nil
	}
	streams := make([]model.Stream, 0, len(s.order))
	for _, k := range s.order {
		streams = append(streams, *s.streams[k])
	}
	n := s.n
	s.raw = ingest.AppendProto(s.raw[:0], streams)
	body := snappy.Encode(nil, s.raw)
	clear(s.streams)
	s.order = s.order[:0]
	s.n = 0

	var err error
	for attempt := 0; ; attempt++ {
		var retry bool
		retry, err = s.send(ctx, body)
		if err == nil {
			s.Pushed += n
			return nil
		}
		if !retry || attempt >= s.o.Retries || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt+1) * 500 * time.Millisecond):
		}
	}
	s.Dropped += n
	return fmt.Errorf("push %d lines to %s: %w: %w", n, s.o.URL, ErrPushDropped, err)
}

func (s *PushSink) send(ctx context.Context, body []byte) (retry bool, err error) {
	if ctx.Err() != nil {
		// Shutting down: one last attempt must still be possible, so use
		// a short context of its own.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.o.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "ledgerlog-demo")
	if s.o.Tenant != "" {
		req.Header.Set("X-Scope-OrgID", s.o.Tenant)
	}
	resp, err := s.o.Client.Do(req)
	if err != nil {
		return true, err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	err = fmt.Errorf("server answered %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, err
}
