package loki

import (
	"context"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage"
)

// VolumeStore is the storage capability behind /index/volume and
// /index/volume_range. A Store that does not implement it makes those
// endpoints answer 501. Volume must be safe for concurrent use; it blocks
// while it reads and returns figures owned by the caller (see
// storage.DB.Volume for the exact semantics).
type VolumeStore interface {
	Volume(ctx context.Context, tenantID string, ms []*model.Matcher, r model.TimeRange, step time.Duration) ([]storage.StreamVolume, error)
}

// volumeDefaultLimit is Loki's default number of volume series.
const volumeDefaultLimit = 100

// Values of the aggregateBy parameter.
const (
	aggregateBySeries = "series"
	aggregateByLabels = "labels"
)

// volumeRequest is a parsed volume call.
type volumeRequest struct {
	tenants      []string
	matchers     []*model.Matcher
	start, end   int64 // Unix ns
	step         time.Duration
	limit        int
	targetLabels []string
	byLabels     bool
}

// volumeSeries is one answer series: its metric and bytes, in total and
// per point (Unix ms → bytes) for volume_range.
type volumeSeries struct {
	metric model.Labels
	key    string
	bytes  int64
	points map[int64]int64
}

func (a *API) parseVolume(r *http.Request, ranged bool) (*volumeRequest, error) {
	tenants, err := a.opts.Tenants.Read(r)
	if err != nil {
		return nil, err
	}
	q := r.Form.Get("query")
	if q == "" {
		return nil, badRequest(errString("query parameter is required"))
	}
	ms, err := syntax.ParseMatchers(q)
	if err != nil {
		return nil, badRequest(err)
	}
	start, end, err := bounds(r, a.opts.Now(), queryRangeDefaultSince)
	if err != nil {
		return nil, badRequest(err)
	}
	if end < start {
		return nil, badRequest(errString("end timestamp must not be before or equal to start time"))
	}
	v := &volumeRequest{tenants: tenants, matchers: ms, start: start, end: end}
	if v.limit, err = limitParam(r, volumeDefaultLimit); err != nil {
		return nil, badRequest(err)
	}
	for _, t := range tenants {
		l := a.opts.Overrides.For(t)
		if !l.VolumeEnabled {
			return nil, statusErr(http.StatusNotFound, "not found")
		}
		if l.VolumeMaxSeries > 0 && v.limit > l.VolumeMaxSeries {
			v.limit = l.VolumeMaxSeries
		}
	}
	for _, n := range strings.Split(r.Form.Get("targetLabels"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			v.targetLabels = append(v.targetLabels, n)
		}
	}
	switch ag := r.Form.Get("aggregateBy"); ag {
	case "", aggregateBySeries:
	case aggregateByLabels:
		v.byLabels = true
	default:
		return nil, badRequest(errString("invalid aggregation option: " + ag + ", must be one of series or labels"))
	}
	if ranged {
		step, ok, err := durationParam(r, "step")
		if err != nil {
			return nil, badRequest(err)
		}
		if !ok {
			step = time.Duration(math.Max(float64(time.Duration(end-start)/250/time.Second), 1)) * time.Second
		}
		if step <= 0 {
			return nil, badRequest(errString("zero or negative query resolution step widths are not accepted. Try a positive integer"))
		}
		if (end-start)/step.Nanoseconds() > maxPointsPerSeries {
			return nil, badRequest(errString("exceeded maximum resolution of 11,000 points per time series. Try increasing the value of the step parameter"))
		}
		v.step = step
	}
	return v, nil
}

// volume serves /loki/api/v1/index/volume: bytes per series in
// [start, end) as a Prometheus vector stamped at end.
func (a *API) volume(w http.ResponseWriter, r *http.Request) {
	a.serveVolume(w, r, false)
}

// volumeRange serves /loki/api/v1/index/volume_range: a matrix whose point
// at t holds the bytes of (t-step, t], for t = start, start+step, … ≤ end,
// i.e. sum by (labels) (bytes_over_time(selector[step])). Steps without
// data have no point.
func (a *API) volumeRange(w http.ResponseWriter, r *http.Request) {
	a.serveVolume(w, r, true)
}

func (a *API) serveVolume(w http.ResponseWriter, r *http.Request, ranged bool) {
	if !parseForm(w, r) {
		return
	}
	vs, ok := a.opts.Store.(VolumeStore)
	if !ok {
		writeError(w, http.StatusNotImplemented, "volume is not supported by this store")
		return
	}
	req, err := a.parseVolume(r, ranged)
	if err != nil {
		status, msg := errorStatus(err)
		writeError(w, status, msg)
		return
	}
	series, err := a.computeVolume(r.Context(), vs, req)
	if err != nil {
		status, msg := errorStatus(err)
		if status >= 500 {
			a.log.Error("volume failed", "err", err)
		}
		writeError(w, status, msg)
		return
	}
	writeRaw(w, appendVolumeResponse(nil, series, req, ranged))
}

func (a *API) computeVolume(ctx context.Context, vs VolumeStore, req *volumeRequest) ([]*volumeSeries, error) {
	rng := model.TimeRange{Min: req.start, Max: req.end}
	if req.step > 0 {
		// Steps (t-step, t] for t = start + i*step: the store's steps are
		// [Min + i*step, Min + (i+1)*step) with Min = start-step+1.
		rng = model.TimeRange{Min: req.start - req.step.Nanoseconds() + 1, Max: req.end + 1}
	}
	group := req.targetLabels
	if len(group) == 0 && !req.byLabels {
		group = matcherNames(req.matchers)
	}
	bySeries := map[string]*volumeSeries{}
	add := func(metric model.Labels, sv storage.StreamVolume) {
		k := metric.String()
		s := bySeries[k]
		if s == nil {
			s = &volumeSeries{metric: metric, key: k}
			if req.step > 0 {
				s.points = map[int64]int64{}
			}
			bySeries[k] = s
		}
		s.bytes += sv.Bytes
		for _, st := range sv.Steps {
			t := (st.Start + req.step.Nanoseconds() - 1) / int64(time.Millisecond)
			s.points[t] += st.Bytes
		}
	}
	for _, t := range req.tenants {
		vols, err := vs.Volume(ctx, t, req.matchers, rng, req.step)
		if err != nil {
			return nil, err
		}
		for _, sv := range vols {
			if req.byLabels {
				sv.Labels.Range(func(l model.Label) {
					if len(group) == 0 || contains(group, l.Name) {
						add(model.LabelsFromStrings(l.Name, ""), sv)
					}
				})
				continue
			}
			if len(group) == 0 {
				add(sv.Labels, sv)
				continue
			}
			b := model.NewLabelsBuilder(sv.Labels)
			b.Keep(group...)
			add(b.Labels(), sv)
		}
	}
	out := make([]*volumeSeries, 0, len(bySeries))
	for _, s := range bySeries {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].bytes != out[j].bytes {
			return out[i].bytes > out[j].bytes
		}
		return out[i].key < out[j].key
	})
	if len(out) > req.limit {
		out = out[:req.limit]
	}
	return out, nil
}

func matcherNames(ms []*model.Matcher) []string {
	var out []string
	for _, m := range ms {
		if !contains(out, m.Name) {
			out = append(out, m.Name)
		}
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func appendVolumeResponse(dst []byte, series []*volumeSeries, req *volumeRequest, ranged bool) []byte {
	dst = append(dst, `{"status":"success","data":{"resultType":`...)
	if ranged {
		dst = append(dst, `"matrix"`...)
	} else {
		dst = append(dst, `"vector"`...)
	}
	dst = append(dst, `,"result":[`...)
	for i, s := range series {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"metric":`...)
		dst = appendLabelsJSON(dst, s.metric)
		if !ranged {
			dst = append(dst, `,"value":[`...)
			dst = appendUnixSeconds(dst, req.end/int64(time.Millisecond))
			dst = append(dst, ",\""...)
			dst = strconv.AppendInt(dst, s.bytes, 10)
			dst = append(dst, "\"]}"...)
			continue
		}
		ts := make([]int64, 0, len(s.points))
		for t := range s.points {
			ts = append(ts, t)
		}
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		dst = append(dst, `,"values":[`...)
		for j, t := range ts {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '[')
			dst = appendUnixSeconds(dst, t)
			dst = append(dst, ",\""...)
			dst = strconv.AppendInt(dst, s.points[t], 10)
			dst = append(dst, "\"]"...)
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, "]}}\n"...)
}

// errString is a constant error message.
type errString string

func (e errString) Error() string { return string(e) }

// statusError is an error with its HTTP status.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string   { return e.msg }
func (e *statusError) StatusCode() int { return e.code }

func statusErr(code int, msg string) error { return &statusError{code: code, msg: msg} }
