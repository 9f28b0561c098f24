package agent

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
	llmodel "github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"google.golang.org/protobuf/encoding/protowire"
)

// maxPushBody bounds a decompressed push request.
const maxPushBody = 64 << 20

// decodePushRequest decodes a Loki PushRequest (uncompressed protobuf).
func decodePushRequest(b []byte) ([]pushStream, error) {
	var out []pushStream
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("push request: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if num == fieldPushStreams && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, fmt.Errorf("push stream: %w", protowire.ParseError(n))
			}
			s, err := decodeStream(v)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, fmt.Errorf("push request: %w", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return out, nil
}

func decodeStream(b []byte) (pushStream, error) {
	var s pushStream
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return s, fmt.Errorf("stream: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == fieldStreamLabels && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return s, fmt.Errorf("stream labels: %w", protowire.ParseError(n))
			}
			s.Labels = string(v)
			b = b[n:]
		case num == fieldStreamEntries && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return s, fmt.Errorf("stream entry: %w", protowire.ParseError(n))
			}
			e, err := decodeEntry(v)
			if err != nil {
				return s, err
			}
			s.Entries = append(s.Entries, e)
			b = b[n:]
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return s, fmt.Errorf("stream: %w", protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return s, nil
}

func decodeEntry(b []byte) (pushEntry, error) {
	var e pushEntry
	var sec, nsec int64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return e, fmt.Errorf("entry: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return e, fmt.Errorf("entry: %w", protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return e, fmt.Errorf("entry: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch num {
		case fieldEntryTimestamp:
			for len(v) > 0 {
				tn, tt, k := protowire.ConsumeTag(v)
				if k < 0 {
					return e, fmt.Errorf("timestamp: %w", protowire.ParseError(k))
				}
				v = v[k:]
				if tt != protowire.VarintType {
					k = protowire.ConsumeFieldValue(tn, tt, v)
					if k < 0 {
						return e, fmt.Errorf("timestamp: %w", protowire.ParseError(k))
					}
					v = v[k:]
					continue
				}
				x, k := protowire.ConsumeVarint(v)
				if k < 0 {
					return e, fmt.Errorf("timestamp: %w", protowire.ParseError(k))
				}
				v = v[k:]
				switch tn {
				case fieldTimestampSecond:
					sec = int64(x)
				case fieldTimestampNanos:
					nsec = int64(int32(x))
				}
			}
		case fieldEntryLine:
			e.Line = string(v)
		case fieldEntryMetadata:
			var p metaPair
			for len(v) > 0 {
				pn, pt, k := protowire.ConsumeTag(v)
				if k < 0 {
					return e, fmt.Errorf("metadata: %w", protowire.ParseError(k))
				}
				v = v[k:]
				if pt != protowire.BytesType {
					k = protowire.ConsumeFieldValue(pn, pt, v)
					if k < 0 {
						return e, fmt.Errorf("metadata: %w", protowire.ParseError(k))
					}
					v = v[k:]
					continue
				}
				s, k := protowire.ConsumeBytes(v)
				if k < 0 {
					return e, fmt.Errorf("metadata: %w", protowire.ParseError(k))
				}
				v = v[k:]
				switch pn {
				case fieldPairName:
					p.Name = string(s)
				case fieldPairValue:
					p.Value = string(s)
				}
			}
			e.Metadata = append(e.Metadata, p)
		}
	}
	e.Timestamp = time.Unix(sec, nsec)
	return e, nil
}

// jsonPush is Loki's JSON push body.
type jsonPush struct {
	Streams []struct {
		Stream map[string]string   `json:"stream"`
		Values [][]json.RawMessage `json:"values"`
	} `json:"streams"`
}

func decodeJSONPush(b []byte) ([]pushStream, []map[string]string, error) {
	var jp jsonPush
	if err := json.Unmarshal(b, &jp); err != nil {
		return nil, nil, fmt.Errorf("decode json push: %w", err)
	}
	out := make([]pushStream, 0, len(jp.Streams))
	lbls := make([]map[string]string, 0, len(jp.Streams))
	for _, s := range jp.Streams {
		ps := pushStream{}
		for _, v := range s.Values {
			if len(v) < 2 {
				return nil, nil, errors.New("decode json push: value needs [timestamp, line]")
			}
			var tsStr, line string
			if err := json.Unmarshal(v[0], &tsStr); err != nil {
				return nil, nil, fmt.Errorf("decode json push timestamp: %w", err)
			}
			ns, err := strconv.ParseInt(tsStr, 10, 64)
			if err != nil {
				return nil, nil, fmt.Errorf("decode json push timestamp %q: %w", tsStr, err)
			}
			if err := json.Unmarshal(v[1], &line); err != nil {
				return nil, nil, fmt.Errorf("decode json push line: %w", err)
			}
			e := pushEntry{Timestamp: time.Unix(0, ns), Line: line}
			if len(v) > 2 {
				var md map[string]string
				if err := json.Unmarshal(v[2], &md); err == nil {
					for k, val := range md {
						e.Metadata = append(e.Metadata, metaPair{Name: k, Value: val})
					}
				}
			}
			ps.Entries = append(ps.Entries, e)
		}
		out = append(out, ps)
		lbls = append(lbls, s.Stream)
	}
	return out, lbls, nil
}

// pushTarget is a loki_push_api source: its own HTTP listener accepting
// Loki pushes (protobuf or JSON) and raw lines.
type pushTarget struct {
	job     string
	cfg     PushConfig
	relabel []*relabel.Config
	env     *jobEnv
	in      chan<- Entry
	ln      net.Listener
	srv     *http.Server
}

func newPushTarget(job string, cfg PushConfig, rl []*relabel.Config, env *jobEnv, in chan<- Entry) (*pushTarget, error) {
	addr := net.JoinHostPort(cfg.Server.HTTPListenAddress, strconv.Itoa(cfg.Server.HTTPListenPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("loki_push_api listen %s: %w", addr, err)
	}
	t := &pushTarget{job: job, cfg: cfg, relabel: rl, env: env, in: in, ln: ln}
	mux := http.NewServeMux()
	prefix := strings.TrimSuffix(cfg.Server.PathPrefix, "/")
	mux.HandleFunc(prefix+"/loki/api/v1/push", t.handlePush)
	mux.HandleFunc(prefix+"/promtail/api/v1/raw", t.handleRaw)
	mux.HandleFunc(prefix+"/ready", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ready\n") })
	t.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	return t, nil
}

func (t *pushTarget) run(ctx context.Context) {
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = t.srv.Shutdown(sctx)
	}()
	if err := t.srv.Serve(t.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.env.logger.Error("loki_push_api server", "job", t.job, "err", err)
	}
}

func (t *pushTarget) body(r *http.Request) ([]byte, error) {
	var rd io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		defer gz.Close()
		rd = gz
	}
	return io.ReadAll(io.LimitReader(rd, maxPushBody))
}

func (t *pushTarget) handlePush(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := t.body(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var streams []pushStream
	var jsonLabels []map[string]string
	if ct == "application/json" {
		streams, jsonLabels, err = decodeJSONPush(body)
	} else {
		raw, derr := snappy.Decode(nil, body)
		if derr != nil {
			http.Error(w, "decode snappy: "+derr.Error(), http.StatusBadRequest)
			return
		}
		streams, err = decodePushRequest(raw)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	tenant := r.Header.Get("X-Scope-OrgID")
	now := time.Now()
	for i, s := range streams {
		var base labels.Labels
		if jsonLabels != nil {
			base = labels.FromMap(jsonLabels[i])
		} else {
			base, err = llmodel.ParseLabels(s.Labels)
			if err != nil {
				http.Error(w, fmt.Sprintf("stream labels %q: %v", s.Labels, err), http.StatusBadRequest)
				return
			}
		}
		lb := labels.NewBuilder(base)
		for k, v := range t.cfg.Labels {
			lb.Set(k, v)
		}
		if !relabel.ProcessBuilder(lb, t.relabel...) {
			continue
		}
		ls := model.LabelSet{}
		lb.Labels().Range(func(l labels.Label) {
			if !strings.HasPrefix(l.Name, "__") {
				ls[model.LabelName(l.Name)] = model.LabelValue(l.Value)
			}
		})
		for _, e := range s.Entries {
			ts := now
			if t.cfg.UseIncomingTimestamp {
				ts = e.Timestamp
			}
			var md map[string]string
			if len(e.Metadata) > 0 {
				md = make(map[string]string, len(e.Metadata))
				for _, p := range e.Metadata {
					md[p.Name] = p.Value
				}
			}
			ent := Entry{Labels: ls.Clone(), Timestamp: ts, Line: e.Line, StructuredMetadata: md}
			if tenant != "" {
				ent.Labels["__tenant_id__"] = model.LabelValue(tenant)
			}
			select {
			case t.in <- ent:
				t.env.metrics.pushEntries.Inc()
			case <-r.Context().Done():
				http.Error(w, "client went away", http.StatusServiceUnavailable)
				return
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (t *pushTarget) handleRaw(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ls := model.LabelSet{}
	for k, v := range t.cfg.Labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	sc := bufio.NewScanner(io.LimitReader(r.Body, maxPushBody))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		select {
		case t.in <- Entry{Labels: ls.Clone(), Timestamp: time.Now(), Line: line}:
			t.env.metrics.pushEntries.Inc()
		case <-r.Context().Done():
			return
		}
	}
	if err := sc.Err(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (t *pushTarget) info() TargetInfo {
	return TargetInfo{Job: t.job, Type: "loki_push_api", Ready: true, Labels: t.cfg.Labels, Details: "listening on " + t.ln.Addr().String()}
}
