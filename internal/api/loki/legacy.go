package loki

import (
	"net/http"
	"strconv"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/logql/engine"
)

// queryLegacy serves the deprecated /api/prom/query (Grafana ≤ 6, old
// logcli): a log query over [start, end) whose streams come back in the old
// shape {"streams":[{"labels":"{a=\"b\"}","entries":[{"ts":"<RFC3339Nano>","line":"…"}]}]}.
// The optional regexp parameter adds a `|~` line filter. Metric queries are
// refused: the old API never had them.
func (a *API) queryLegacy(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	p, err := a.rangeParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if re := r.Form.Get("regexp"); re != "" {
		p.Query += " |~ " + strconv.Quote(re)
	}
	res, ok := a.run(w, r, p)
	if !ok {
		return
	}
	if res.Type != engine.TypeStreams {
		writeError(w, http.StatusBadRequest, "legacy endpoint only supports log queries, use /loki/api/v1/query_range for metric queries")
		return
	}
	writeRaw(w, appendLegacyStreams(nil, foldLabels(res.Streams)))
}

func appendLegacyStreams(dst []byte, streams []engine.Stream) []byte {
	dst = append(dst, `{"streams":[`...)
	for i, s := range streams {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"labels":`...)
		dst = appendJSONString(dst, s.Labels.String())
		dst = append(dst, `,"entries":[`...)
		for j, e := range s.Entries {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"ts":"`...)
			dst = time.Unix(0, e.Timestamp).UTC().AppendFormat(dst, time.RFC3339Nano)
			dst = append(dst, `","line":`...)
			dst = appendJSONString(dst, e.Line)
			dst = append(dst, '}')
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, "]}\n"...)
}

// writeEngineError answers an engine error with Loki's status mapping.
func (a *API) writeEngineError(w http.ResponseWriter, query string, err error) {
	status, msg := errorStatus(err)
	if engine.IsUserError(err) {
		status = http.StatusBadRequest
	}
	if status >= 500 {
		a.log.Error("query failed", "query", query, "err", err)
	}
	writeError(w, status, msg)
}
