package stages

import (
	"container/list"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

type timestampConfig struct {
	Source          string   `yaml:"source"`
	Format          string   `yaml:"format"`
	FallbackFormats []string `yaml:"fallback_formats"`
	Location        *string  `yaml:"location"`
	ActionOnFailure *string  `yaml:"action_on_failure"`
}

const (
	onFailureFudge = "fudge"
	onFailureSkip  = "skip"
	// maxLastKnownTimestamps bounds the fudge cache, as in Promtail.
	maxLastKnownTimestamps = 10000
)

type timeParser func(string) (time.Time, error)

// timestampStage sets the entry's timestamp from an extracted value. On
// failure, "fudge" (the default) sets it to the stream's last good timestamp
// plus 1ns (or leaves it when the stream has none yet); "skip" leaves it.
type timestampStage struct {
	source string
	parse  timeParser
	fudge  *lruTimes // nil with action_on_failure: skip
}

var namedLayouts = map[string]string{
	"ANSIC":       time.ANSIC,
	"UnixDate":    time.UnixDate,
	"RubyDate":    time.RubyDate,
	"RFC822":      time.RFC822,
	"RFC822Z":     time.RFC822Z,
	"RFC850":      time.RFC850,
	"RFC1123":     time.RFC1123,
	"RFC1123Z":    time.RFC1123Z,
	"RFC3339":     time.RFC3339,
	"RFC3339Nano": time.RFC3339Nano,
}

func newTimestampStage(_ *builder, _ *builtStage, n *yaml.Node) (any, error) {
	var cfg timestampConfig
	if err := decodeStrict(n, &cfg); err != nil {
		return nil, err
	}
	if cfg.Source == "" {
		return nil, errors.New("timestamp source value is required if timestamp is specified")
	}
	if cfg.Format == "" {
		return nil, errors.New("timestamp format is required")
	}
	var loc *time.Location
	if cfg.Location != nil {
		l, err := time.LoadLocation(*cfg.Location)
		if err != nil {
			return nil, fmt.Errorf("invalid location specified: %w", err)
		}
		loc = l
	}
	action := onFailureFudge
	if cfg.ActionOnFailure != nil {
		action = *cfg.ActionOnFailure
		if action != onFailureFudge && action != onFailureSkip {
			return nil, fmt.Errorf("invalid action on failure %q (supported values are [skip fudge])", action)
		}
	}
	s := &timestampStage{source: cfg.Source, parse: layoutParser(cfg.Format, loc)}
	if len(cfg.FallbackFormats) > 0 {
		parsers := []timeParser{s.parse}
		for _, f := range cfg.FallbackFormats {
			parsers = append(parsers, layoutParser(f, loc))
		}
		s.parse = func(v string) (time.Time, error) {
			var firstErr error
			for i, p := range parsers {
				t, err := p(v)
				if err == nil {
					return t, nil
				}
				if i == 0 {
					firstErr = err
				}
			}
			return time.Time{}, firstErr
		}
	}
	if action == onFailureFudge {
		s.fudge = newLRUTimes(maxLastKnownTimestamps)
	}
	return s, nil
}

// layoutParser returns the parser for a named format (ANSIC … UnixNs) or a Go
// reference layout. A layout without a year ("Jan _2 15:04:05") gets the
// current year, or the neighbouring one across New Year.
func layoutParser(format string, loc *time.Location) timeParser {
	if layout, ok := namedLayouts[format]; ok {
		return func(v string) (time.Time, error) { return time.Parse(layout, v) }
	}
	switch format {
	case "Unix":
		return parseUnixSeconds
	case "UnixMs":
		return unixScaled(int64(time.Millisecond))
	case "UnixUs":
		return unixScaled(int64(time.Microsecond))
	case "UnixNs":
		return unixScaled(1)
	}
	if !strings.Contains(format, "06") && !strings.Contains(format, "2006") {
		return func(v string) (time.Time, error) {
			return parseWithoutYear(format, loc, v, time.Now())
		}
	}
	return func(v string) (time.Time, error) {
		if loc != nil {
			return time.ParseInLocation(format, v, loc)
		}
		return time.Parse(format, v)
	}
}

// parseUnixSeconds parses "1562708916" or "1562708916.414"; the fraction's
// digits are scaled to nanoseconds.
func parseUnixSeconds(v string) (time.Time, error) {
	if strings.Count(v, ".") == 1 {
		secStr, fracStr, _ := strings.Cut(v, ".")
		sec, err := strconv.ParseInt(secStr, 10, 64)
		if err != nil {
			return time.Time{}, err
		}
		frac, err := strconv.ParseInt(fracStr, 10, 64)
		if err != nil {
			return time.Time{}, err
		}
		nsec := int64(float64(frac) * math.Pow(10, float64(9-len(fracStr))))
		return time.Unix(sec, nsec), nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(sec, 0), nil
}

func unixScaled(unit int64) timeParser {
	return func(v string) (time.Time, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, err
		}
		return time.Unix(0, n*unit), nil
	}
}

func parseWithoutYear(layout string, loc *time.Location, v string, now time.Time) (time.Time, error) {
	var t time.Time
	var err error
	if loc != nil {
		t, err = time.ParseInLocation(layout, v, loc)
	} else {
		t, err = time.Parse(layout, v)
	}
	if err != nil {
		return t, err
	}
	if t.Year() != 0 {
		return t, fmt.Errorf("timestamp %q is expected to not contain the year date component", v)
	}
	switch {
	case t.Month() == time.December && now.Month() == time.January:
		return t.AddDate(now.Year()-1, 0, 0), nil
	case t.Month() == time.January && now.Month() == time.December:
		return t.AddDate(now.Year()+1, 0, 0), nil
	}
	return t.AddDate(now.Year(), 0, 0), nil
}

func (s *timestampStage) process(e *Entry) bool {
	t, ok := s.parseFrom(e)
	if !ok {
		if s.fudge != nil {
			key := e.Labels.FastFingerprint()
			if last, found := s.fudge.get(key); found {
				e.Timestamp = last.Add(time.Nanosecond)
				s.fudge.put(key, e.Timestamp)
			}
		}
		return true
	}
	e.Timestamp = t
	if s.fudge != nil {
		s.fudge.put(e.Labels.FastFingerprint(), t)
	}
	return true
}

func (s *timestampStage) parseFrom(e *Entry) (time.Time, bool) {
	v, ok := e.Extracted[s.source]
	if !ok {
		return time.Time{}, false
	}
	str, ok := toString(v)
	if !ok {
		return time.Time{}, false
	}
	t, err := s.parse(str)
	return t, err == nil
}

func (s *timestampStage) reads() []string { return []string{s.source} }

// lruTimes is a bounded least-recently-used map from stream (label set
// fingerprint) to timestamp.
type lruTimes struct {
	max   int
	order *list.List // front = most recent; values are *lruItem
	items map[model.Fingerprint]*list.Element
}

type lruItem struct {
	key model.Fingerprint
	t   time.Time
}

func newLRUTimes(maxItems int) *lruTimes {
	return &lruTimes{max: maxItems, order: list.New(), items: make(map[model.Fingerprint]*list.Element)}
}

func (c *lruTimes) get(k model.Fingerprint) (time.Time, bool) {
	el, ok := c.items[k]
	if !ok {
		return time.Time{}, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruItem).t, true
}

func (c *lruTimes) put(k model.Fingerprint, t time.Time) {
	if el, ok := c.items[k]; ok {
		el.Value.(*lruItem).t = t
		c.order.MoveToFront(el)
		return
	}
	c.items[k] = c.order.PushFront(&lruItem{key: k, t: t})
	if c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*lruItem).key)
	}
}
