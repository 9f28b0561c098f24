package syntax

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// parseDuration accepts Prometheus durations ("1h30m", "2d", "1w", "1y")
// first and Go durations ("1.5h", "300us", "2h45m0.5s") second, as Loki
// does (LQ-L2).
func parseDuration(s string) (time.Duration, error) {
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return time.ParseDuration(s)
}

// FormatDuration prints d the way LogQL's canonical form writes it: in
// Prometheus units ("1h30m", "2d", "500ms") when d is a whole number of
// milliseconds, else in Go's notation ("1.5µs"). Both forms parse back to d.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d < 0 {
		return "-" + FormatDuration(-d)
	}
	if d%time.Millisecond != 0 {
		return d.String()
	}
	ms := int64(d / time.Millisecond)
	var b strings.Builder
	units := []struct {
		name string
		ms   int64
	}{
		{"y", 365 * 24 * 3600 * 1000},
		{"w", 7 * 24 * 3600 * 1000},
		{"d", 24 * 3600 * 1000},
		{"h", 3600 * 1000},
		{"m", 60 * 1000},
		{"s", 1000},
		{"ms", 1},
	}
	for _, u := range units {
		if v := ms / u.ms; v > 0 {
			b.WriteString(strconv.FormatInt(v, 10))
			b.WriteString(u.name)
			ms -= v * u.ms
		}
	}
	return b.String()
}

// byteUnits are the humanized byte-size suffixes LogQL accepts (LQ-L3),
// matched case-insensitively: SI (kB = 1000) and IEC (KiB = 1024) plus the
// one- and two-letter short forms.
var byteUnits = map[string]uint64{
	"b": 1, "": 1,
	"k": 1e3, "kb": 1e3, "ki": 1 << 10, "kib": 1 << 10,
	"m": 1e6, "mb": 1e6, "mi": 1 << 20, "mib": 1 << 20,
	"g": 1e9, "gb": 1e9, "gi": 1 << 30, "gib": 1 << 30,
	"t": 1e12, "tb": 1e12, "ti": 1 << 40, "tib": 1 << 40,
	"p": 1e15, "pb": 1e15, "pi": 1 << 50, "pib": 1 << 50,
	"e": 1e18, "eb": 1e18, "ei": 1 << 60, "eib": 1 << 60,
}

var errInvalidBytes = errors.New("invalid byte size")

// ParseBytes parses a humanized byte size such as "20MB", "1.5KiB" or
// "42b". It is the conversion `| size > 20MB` and `unwrap bytes(x)` use.
func ParseBytes(s string) (uint64, error) { return parseBytes(s) }

func parseBytes(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (isDigit(s[i]) || s[i] == '.') {
		i++
	}
	if i == 0 {
		return 0, errInvalidBytes
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := byteUnits[unit]
	if !ok {
		return 0, errInvalidBytes
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, errInvalidBytes
	}
	v := f * float64(mult)
	if v >= math.MaxUint64 {
		return 0, errInvalidBytes
	}
	return uint64(v), nil
}

// formatBytes prints b with the largest unit that divides it exactly, so
// that it parses back to b ("20MB", "1KiB", "1500B").
func formatBytes(b uint64) string {
	if b == 0 {
		return "0B"
	}
	units := []struct {
		name string
		mult uint64
	}{
		{"EiB", 1 << 60}, {"EB", 1e18}, {"PiB", 1 << 50}, {"PB", 1e15},
		{"TiB", 1 << 40}, {"TB", 1e12}, {"GiB", 1 << 30}, {"GB", 1e9},
		{"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"KB", 1e3},
	}
	for _, u := range units {
		if b%u.mult == 0 {
			return strconv.FormatUint(b/u.mult, 10) + u.name
		}
	}
	return strconv.FormatUint(b, 10) + "B"
}

// formatFloat prints v so that the lexer reads back the same float64.
func formatFloat(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// quote renders a string literal, as a backtick raw string when raw is set
// and the value can be written that way, else double-quoted with Go escapes.
func quote(s string, raw bool) string {
	if raw && !strings.ContainsAny(s, "`\r") {
		return "`" + s + "`"
	}
	return strconv.Quote(s)
}
