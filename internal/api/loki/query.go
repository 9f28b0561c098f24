package loki

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/logql/engine"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

const (
	queryRangeDefaultSince = time.Hour
	maxPointsPerSeries     = 11000
	encodingFlagsHeader    = "X-Loki-Response-Encoding-Flags"
	flagCategorizeLabels   = "categorize-labels"
)

func categorize(r *http.Request) bool {
	for _, f := range strings.Split(r.Header.Get(encodingFlagsHeader), ",") {
		if strings.TrimSpace(f) == flagCategorizeLabels {
			return true
		}
	}
	return false
}

func (a *API) queryRange(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	p, err := a.rangeParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	a.exec(w, r, p)
}

func (a *API) rangeParams(r *http.Request) (engine.Params, error) {
	var p engine.Params
	p.Query = r.Form.Get("query")
	start, end, err := bounds(r, a.opts.Now(), queryRangeDefaultSince)
	if err != nil {
		return p, err
	}
	if end < start {
		return p, fmt.Errorf("end timestamp must not be before or equal to start time")
	}
	p.Start, p.End = start, end
	if p.Limit, err = limitParam(r, 100); err != nil {
		return p, err
	}
	if p.Direction, err = directionParam(r); err != nil {
		return p, err
	}
	step, ok, err := durationParam(r, "step")
	if err != nil {
		return p, err
	}
	if !ok {
		// Loki's default: (end-start)/250, at least one second.
		step = time.Duration(math.Max(float64(time.Duration(end-start)/250/time.Second), 1)) * time.Second
	}
	if step <= 0 {
		return p, fmt.Errorf("zero or negative query resolution step widths are not accepted. Try a positive integer")
	}
	if (end-start)/step.Nanoseconds() > maxPointsPerSeries {
		return p, fmt.Errorf("exceeded maximum resolution of 11,000 points per time series. Try increasing the value of the step parameter")
	}
	p.Step = step
	if iv, ok, err := durationParam(r, "interval"); err != nil {
		return p, err
	} else if ok {
		if iv < 0 {
			return p, fmt.Errorf("negative query interval widths are not accepted. Try a positive integer")
		}
		p.Interval = iv
	}
	return p, nil
}

func (a *API) queryInstant(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	var p engine.Params
	var err error
	p.Query = r.Form.Get("query")
	p.Instant = true
	if p.Start, err = timeParam(r, "time", a.opts.Now().UnixNano()); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p.End = p.Start
	if p.Limit, err = limitParam(r, 100); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if p.Direction, err = directionParam(r); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	a.exec(w, r, p)
}

func (a *API) exec(w http.ResponseWriter, r *http.Request, p engine.Params) {
	if res, ok := a.run(w, r, p); ok {
		writeRaw(w, appendQueryResponse(nil, &res, categorize(r)))
	}
}

// run resolves the request's tenants and evaluates p; on failure it has
// written Loki's error answer and reports false.
func (a *API) run(w http.ResponseWriter, r *http.Request, p engine.Params) (engine.Result, bool) {
	tenants, err := a.opts.Tenants.Read(r)
	if err != nil {
		status, msg := errorStatus(err)
		writeError(w, status, msg)
		return engine.Result{}, false
	}
	p.Tenants = tenants
	if p.Query == "" {
		writeError(w, http.StatusBadRequest, "query parameter is required")
		return engine.Result{}, false
	}
	res, err := a.opts.Engine.Exec(r.Context(), p)
	if err != nil {
		a.writeEngineError(w, p.Query, err)
		return engine.Result{}, false
	}
	return res, true
}

// appendQueryResponse renders Loki's query response.
func appendQueryResponse(dst []byte, res *engine.Result, cat bool) []byte {
	dst = append(dst, `{"status":"success","data":{"resultType":"`...)
	dst = append(dst, res.Type...)
	dst = append(dst, `","result":`...)
	switch res.Type {
	case engine.TypeStreams:
		dst = appendStreams(dst, res.Streams, cat)
	case engine.TypeMatrix:
		dst = appendMatrix(dst, res.Matrix)
	case engine.TypeVector:
		dst = appendVector(dst, res.Vector)
	case engine.TypeScalar:
		dst = append(dst, '[')
		dst = strconv.AppendInt(dst, res.Scalar.T, 10)
		dst = append(dst, ',')
		dst = appendFloatString(dst, res.Scalar.V)
		dst = append(dst, ']')
	}
	dst = append(dst, `,"stats":`...)
	dst = appendStats(dst, &res.Stats)
	if res.Type == engine.TypeStreams && cat {
		dst = append(dst, `,"encodingFlags":["categorize-labels"]`...)
	}
	dst = append(dst, '}')
	if len(res.Warnings) > 0 {
		dst = append(dst, `,"warnings":[`...)
		for i, wmsg := range res.Warnings {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, wmsg)
		}
		dst = append(dst, ']')
	}
	return append(dst, "}\n"...)
}

func appendStreams(dst []byte, streams []engine.Stream, cat bool) []byte {
	if !cat {
		streams = foldLabels(streams)
	}
	dst = append(dst, '[')
	for i, s := range streams {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"stream":`...)
		dst = appendLabelsJSON(dst, s.Labels)
		dst = append(dst, `,"values":[`...)
		for j, e := range s.Entries {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `["`...)
			dst = strconv.AppendInt(dst, e.Timestamp, 10)
			dst = append(dst, `",`...)
			dst = appendJSONString(dst, e.Line)
			if cat {
				dst = append(dst, ",{"...)
				n := 0
				if e.Metadata.Len() > 0 {
					dst = append(dst, `"structuredMetadata":`...)
					dst = appendLabelsJSON(dst, e.Metadata)
					n++
				}
				if e.Parsed.Len() > 0 {
					if n > 0 {
						dst = append(dst, ',')
					}
					dst = append(dst, `"parsed":`...)
					dst = appendLabelsJSON(dst, e.Parsed)
				}
				dst = append(dst, '}')
			}
			dst = append(dst, ']')
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, ']')
}

// foldLabels merges each entry's structured metadata and parsed labels into
// its stream labels, splitting streams per distinct label set, as Loki does
// without the categorize-labels flag.
func foldLabels(streams []engine.Stream) []engine.Stream {
	needed := false
	for _, s := range streams {
		for _, e := range s.Entries {
			if e.Metadata.Len() > 0 || e.Parsed.Len() > 0 {
				needed = true
				break
			}
		}
	}
	if !needed {
		return streams
	}
	var out []engine.Stream
	index := map[string]int{}
	for _, s := range streams {
		b := model.NewLabelsBuilder(s.Labels)
		for _, e := range s.Entries {
			b.Reset(s.Labels)
			e.Metadata.Range(func(l model.Label) { b.Set(l.Name, l.Value) })
			e.Parsed.Range(func(l model.Label) { b.Set(l.Name, l.Value) })
			ls := b.Labels()
			k := ls.String()
			i, ok := index[k]
			if !ok {
				i = len(out)
				index[k] = i
				out = append(out, engine.Stream{Labels: ls})
			}
			out[i].Entries = append(out[i].Entries, engine.Entry{Timestamp: e.Timestamp, Line: e.Line})
		}
	}
	return out
}

func appendMatrix(dst []byte, m []engine.Series) []byte {
	dst = append(dst, '[')
	for i, s := range m {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"metric":`...)
		dst = appendLabelsJSON(dst, s.Metric)
		dst = append(dst, `,"values":[`...)
		for j, p := range s.Points {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '[')
			dst = appendUnixSeconds(dst, p.T)
			dst = append(dst, ',')
			dst = appendFloatString(dst, p.V)
			dst = append(dst, ']')
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, ']')
}

func appendVector(dst []byte, v []engine.Sample) []byte {
	dst = append(dst, '[')
	for i, s := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"metric":`...)
		dst = appendLabelsJSON(dst, s.Metric)
		dst = append(dst, `,"value":[`...)
		dst = appendUnixSeconds(dst, s.T)
		dst = append(dst, ',')
		dst = appendFloatString(dst, s.V)
		dst = append(dst, "]}"...)
	}
	return append(dst, ']')
}

// appendStats renders Loki's stats object: real numbers in summary and the
// store counters, zeros where Ledgerlog has no such component.
func appendStats(dst []byte, s *engine.Stats) []byte {
	exec := s.ExecTime.Seconds()
	var bps, lps int64
	if exec > 0 {
		bps = int64(float64(s.TotalBytesProcessed) / exec)
		lps = int64(float64(s.TotalLinesProcessed) / exec)
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	chunk := func(headBytes, headLines, decBytes, decLines, compBytes int64) string {
		return `{"headChunkBytes":` + i(headBytes) + `,"headChunkLines":` + i(headLines) +
			`,"decompressedBytes":` + i(decBytes) + `,"decompressedLines":` + i(decLines) +
			`,"compressedBytes":` + i(compBytes) + `,"totalDuplicates":0,"postFilterLines":` + i(s.PostFilterLines) +
			`,"headChunkStructuredMetadataBytes":0,"decompressedStructuredMetadataBytes":0}`
	}
	cache := `{"entriesFound":0,"entriesRequested":0,"entriesStored":0,"bytesReceived":0,"bytesSent":0,"requests":0,"downloadTime":0,"queryLengthServed":0}`
	dst = append(dst, `{"summary":{"bytesProcessedPerSecond":`+i(bps)+
		`,"linesProcessedPerSecond":`+i(lps)+
		`,"totalBytesProcessed":`+i(s.TotalBytesProcessed)+
		`,"totalLinesProcessed":`+i(s.TotalLinesProcessed)+
		`,"execTime":`+f(exec)+
		`,"queueTime":0,"subqueries":0,"totalEntriesReturned":`+i(s.EntriesReturned)+
		`,"splits":`+i(s.Splits)+`,"shards":0,"totalPostFilterLines":`+i(s.PostFilterLines)+
		`,"totalStructuredMetadataBytesProcessed":0}`...)
	dst = append(dst, `,"querier":{"store":{"totalChunksRef":`+i(s.ChunksRef)+
		`,"totalChunksDownloaded":`+i(s.ChunksDownloaded)+
		`,"chunksDownloadTime":0,"queryReferencedStructuredMetadata":false,"chunk":`+
		chunk(0, 0, s.DecompressedBytes, s.DecompressedLines, s.CompressedBytes)+
		`,"chunkRefsFetchTime":0,"congestionControlLatency":0,"pipelineWrapperFilteredLines":0}}`...)
	dst = append(dst, `,"ingester":{"totalReached":1,"totalChunksMatched":0,"totalBatches":0,"totalLinesSent":0,"store":{"totalChunksRef":0,"totalChunksDownloaded":0,"chunksDownloadTime":0,"queryReferencedStructuredMetadata":false,"chunk":`+
		chunk(s.HeadChunkBytes, s.HeadChunkLines, 0, 0, 0)+
		`,"chunkRefsFetchTime":0,"congestionControlLatency":0,"pipelineWrapperFilteredLines":0}}`...)
	dst = append(dst, `,"cache":{"chunk":`+cache+`,"index":`+cache+`,"result":`+cache+`,"statsResult":`+cache+
		`,"volumeResult":`+cache+`,"seriesResult":`+cache+`,"labelResult":`+cache+`,"instantMetricResult":`+cache+`}`...)
	dst = append(dst, `,"index":{"totalChunks":`+i(s.ChunksRef)+`,"postFilterChunks":`+i(s.ChunksRef)+`,"shardsDuration":0,"usedBloomFilters":false}}`...)
	return dst
}
