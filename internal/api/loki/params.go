package loki

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/units"
)

// parseTime parses a timestamp parameter as Loki does: an integer is Unix
// nanoseconds, a number with a fraction is Unix seconds, otherwise RFC3339
// (with or without fractional seconds).
func parseTime(s string) (int64, error) {
	ns, err := strconv.ParseInt(s, 10, 64)
	if err == nil {
		return ns, nil
	}
	if f, ferr := strconv.ParseFloat(s, 64); ferr == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		sec, frac := math.Modf(f)
		return int64(sec)*1e9 + int64(math.Round(frac*1e9)), nil
	}
	if t, terr := time.Parse(time.RFC3339Nano, s); terr == nil {
		return t.UnixNano(), nil
	}
	return 0, err
}

func timeParam(r *http.Request, name string, def int64) (int64, error) {
	v := r.Form.Get(name)
	if v == "" {
		return def, nil
	}
	t, err := parseTime(v)
	if err != nil {
		return 0, fmt.Errorf("could not parse '%s' parameter: %w", name, err)
	}
	return t, nil
}

// parseDuration accepts Prometheus durations ("5m", "1h30m", "250ms") and
// float seconds ("15", "0.5").
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		d := f * float64(time.Second)
		if d > math.MaxInt64 || d < math.MinInt64 {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(d), nil
	}
	d, err := units.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
	}
	return d, nil
}

func durationParam(r *http.Request, name string) (time.Duration, bool, error) {
	v := r.Form.Get(name)
	if v == "" {
		return 0, false, nil
	}
	d, err := parseDuration(v)
	if err != nil {
		return 0, false, fmt.Errorf("could not parse '%s' parameter: %w", name, err)
	}
	return d, true, nil
}

func limitParam(r *http.Request, def int) (int, error) {
	v := r.Form.Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("could not parse 'limit' parameter: %w", err)
	}
	if n <= 0 {
		return 0, fmt.Errorf("limit must be a positive value")
	}
	return n, nil
}

func directionParam(r *http.Request) (model.Direction, error) {
	switch strings.ToLower(r.Form.Get("direction")) {
	case "", "backward":
		return model.Backward, nil
	case "forward":
		return model.Forward, nil
	}
	return 0, fmt.Errorf("invalid direction '%s'", r.Form.Get("direction"))
}

// bounds parses start/end/since for range-style requests. defaultSince is
// Loki's default window (1h for query_range, 6h for labels and series).
func bounds(r *http.Request, now time.Time, defaultSince time.Duration) (start, end int64, err error) {
	end, err = timeParam(r, "end", now.UnixNano())
	if err != nil {
		return 0, 0, err
	}
	since := defaultSince
	if d, ok, err := durationParam(r, "since"); err != nil {
		return 0, 0, err
	} else if ok {
		since = d
	}
	start, err = timeParam(r, "start", end-since.Nanoseconds())
	if err != nil {
		return 0, 0, err
	}
	return start, end, nil
}
