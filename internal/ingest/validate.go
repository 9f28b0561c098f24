package ingest

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
)

// Validator applies a tenant's push limits to decoded requests, enriches the
// accepted streams as Loki 3 does and enforces ingestion rate limits. It
// counts received and discarded data in Loki's metrics. Safe for concurrent
// use; it holds rate-limiter state, so one server uses one Validator.
type Validator struct {
	logger  *slog.Logger
	m       *metrics
	limiter *RateLimiter

	levelMu   sync.RWMutex
	levelSets map[string]model.Labels // {detected_level="v"}, guarded by levelMu
}

// maxLevelSets bounds the cache of single-label metadata sets: levels copied
// from labels keep values Loki does not normalise ("notice"), so their
// number is up to clients.
const maxLevelSets = 1024

// NewValidator returns a validator registering its metrics with reg (nil:
// unregistered). A second validator on the same registry shares the
// counters.
func NewValidator(reg prometheus.Registerer, logger *slog.Logger) *Validator {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Validator{
		logger:    logger,
		m:         newMetrics(reg),
		limiter:   NewRateLimiter(),
		levelSets: make(map[string]model.Labels),
	}
}

// RateLimiter returns the validator's rate limiter.
func (v *Validator) RateLimiter() *RateLimiter { return v.limiter }

// checks holds the limits of one Validate call, resolved once.
type checks struct {
	rejectOld      bool
	oldest         int64 // entries before this are too old
	newest         int64 // entries after this are too new
	maxLine        int
	truncate       bool
	maxNames       int
	maxNameLen     int
	maxValueLen    int
	allowMetadata  bool
	maxMetaSize    int
	maxMetaEntries int
	discoverLevels bool
	levels         *levelDetector
}

func newChecks(l *tenant.Limits, now time.Time) checks {
	return checks{
		rejectOld:      l.RejectOldSamples,
		oldest:         now.Add(-l.RejectOldSamplesMaxAge.D()).UnixNano(),
		newest:         now.Add(l.CreationGracePeriod.D()).UnixNano(),
		maxLine:        int(l.MaxLineSize),
		truncate:       l.MaxLineSizeTruncate,
		maxNames:       l.MaxLabelNamesPerSeries,
		maxNameLen:     l.MaxLabelNameLength,
		maxValueLen:    l.MaxLabelValueLength,
		allowMetadata:  l.AllowStructuredMetadata,
		maxMetaSize:    int(l.MaxStructuredMetadataSize),
		maxMetaEntries: l.MaxStructuredMetadataEntries,
		discoverLevels: l.AllowStructuredMetadata && l.DiscoverLogLevels,
		levels:         newLevelDetector(l.LogLevelFields),
	}
}

func metadataSize(md model.Labels) int {
	n := 0
	md.Range(func(l model.Label) { n += len(l.Name) + len(l.Value) })
	return n
}

func entriesSize(entries []model.Entry) int {
	n := 0
	for i := range entries {
		n += len(entries[i].Line) + metadataSize(entries[i].Metadata)
	}
	return n
}

func formatTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format(timeFormatEntryMessages)
}

// Validate checks req against the tenant's limits l, as Loki's distributor
// and ingester do, and returns the streams to store. req is rewritten in
// place and must not be used afterwards.
//
//   - An empty request is a 422.
//   - Streams with invalid labels and entries that break a limit are dropped
//     and described in a 400 whose message groups them as Loki does; the
//     valid streams are still returned (partial acceptance).
//   - Lines longer than max_line_size are truncated instead of rejected when
//     max_line_size_truncate is set.
//   - Accepted streams gain service_name (discover_service_name) and their
//     entries detected_level structured metadata (discover_log_levels);
//     structured metadata names are sanitised as in Loki.
//   - If the accepted bytes exceed the tenant's ingestion rate, nothing is
//     returned and the error is a 429. Entries over their stream's rate
//     limit are dropped with a 429 listing them; the rest is returned.
//
// The error, if any, is an *HTTPError; it may come with streams to store.
// Limits of 0 (line size, label names and lengths, metadata size and
// entries, rates) disable the check.
func (v *Validator) Validate(tenantID string, l *tenant.Limits, req *Request, now time.Time) ([]model.Stream, error) {
	if len(req.Streams) == 0 {
		return nil, &HTTPError{Status: http.StatusUnprocessableEntity, Msg: msgMissingStreams}
	}
	v.countReceived(tenantID, req)

	c := newChecks(l, now)
	var (
		errs     groupedErrors
		discards tally
		mutated  tally
	)
	out := req.Streams[:0]
	for i := range req.Streams {
		s := req.Streams[i]
		if len(s.Entries) == 0 {
			continue
		}
		if c.truncate && c.maxLine > 0 {
			truncateLines(s.Entries, c.maxLine, &mutated)
		}
		if dup, ok := req.duplicate(i); ok {
			errs.add(fmt.Sprintf(msgDuplicateLabelNames, dup.raw, dup.name))
			discards.add(ReasonDuplicateLabelNames, len(s.Entries), entriesSize(s.Entries))
			continue
		}
		ls := withServiceName(s.Labels, l.DiscoverServiceName)
		lstr := ls.String()
		if reason, msg := c.validateLabels(ls, lstr); reason != "" {
			errs.add(msg)
			discards.add(reason, len(s.Entries), entriesSize(s.Entries))
			continue
		}
		s.Labels = ls
		s.Entries = v.validateEntries(&c, lstr, s, &errs, &discards)
		if len(s.Entries) == 0 {
			continue
		}
		out = append(out, s)
	}
	// The tail of req.Streams still references entries; drop those
	// references so that rejected data can be collected.
	clear(req.Streams[len(out):])
	req.Streams = out
	mutated.flush(v.m.mutatedSamples, v.m.mutatedBytes, tenantID)

	var validationErr error
	if !errs.empty() {
		validationErr = &HTTPError{Status: http.StatusBadRequest, Msg: errs.String()}
		v.logger.Debug("push entries rejected", "tenant", tenantID, "err", validationErr)
	}
	if len(out) == 0 {
		discards.flush(v.m.discardedSamples, v.m.discardedBytes, tenantID)
		return nil, validationErr
	}

	lines, size := 0, 0
	for i := range out {
		lines += len(out[i].Entries)
		size += entriesSize(out[i].Entries)
	}
	rate := l.IngestionRateMB * bytesInMB
	if !v.limiter.AllowTenant(tenantID, now, size, rate, l.IngestionBurstSizeMB*bytesInMB) {
		discards.add(ReasonRateLimited, lines, size)
		discards.flush(v.m.discardedSamples, v.m.discardedBytes, tenantID)
		err := httpErrorf(http.StatusTooManyRequests, msgRateLimited, tenantID, int(rate), lines, size)
		v.logger.Debug("push rate limited", "tenant", tenantID, "err", err)
		return nil, err
	}

	out, streamErr := v.limitStreams(tenantID, l, now, out, &discards)
	discards.flush(v.m.discardedSamples, v.m.discardedBytes, tenantID)
	if len(out) == 0 {
		out = nil
	}
	if streamErr != nil {
		return out, streamErr
	}
	return out, validationErr
}

func (v *Validator) countReceived(tenantID string, req *Request) {
	lines, lineBytes, metaBytes := 0, 0, 0
	for i := range req.Streams {
		for j := range req.Streams[i].Entries {
			e := &req.Streams[i].Entries[j]
			lines++
			lineBytes += len(e.Line)
			metaBytes += metadataSize(e.Metadata)
		}
	}
	if lines == 0 {
		return
	}
	v.m.linesReceived.WithLabelValues(tenantID).Add(float64(lines))
	v.m.bytesReceived.WithLabelValues(tenantID).Add(float64(lineBytes + metaBytes))
	v.m.metadataReceived.WithLabelValues(tenantID).Add(float64(metaBytes))
}

// truncateLines cuts lines to max bytes, as Loki's max_line_size_truncate.
func truncateLines(entries []model.Entry, max int, mutated *tally) {
	for i := range entries {
		if n := len(entries[i].Line); n > max {
			entries[i].Line = entries[i].Line[:max]
			mutated.add(ReasonLineTooLong, 1, n-max)
		}
	}
}

// validateLabels applies Loki's label checks. lstr is ls.String(), the form
// messages quote.
func (c *checks) validateLabels(ls model.Labels, lstr string) (reason, msg string) {
	if ls.IsEmpty() {
		return ReasonMissingLabels, msgMissingLabels
	}
	if isInternalStream(ls) {
		return "", ""
	}
	names := ls.Len()
	// service_name is often added by the server itself, so it does not
	// count against the limit.
	if ls.Has(LabelServiceName) {
		names--
	}
	if c.maxNames > 0 && names > c.maxNames {
		return ReasonMaxLabelNamesPerSeries, fmt.Sprintf(msgMaxLabelNames, lstr, names, c.maxNames)
	}
	last := ""
	ls.Range(func(l model.Label) {
		switch {
		case reason != "":
		case c.maxNameLen > 0 && len(l.Name) > c.maxNameLen:
			reason, msg = ReasonLabelNameTooLong, fmt.Sprintf(msgLabelNameTooLong, lstr, l.Name)
		case c.maxValueLen > 0 && len(l.Value) > c.maxValueLen:
			reason, msg = ReasonLabelValueTooLong, fmt.Sprintf(msgLabelValueTooLong, lstr, l.Value)
		case l.Name == last:
			reason, msg = ReasonDuplicateLabelNames, fmt.Sprintf(msgDuplicateLabelNames, lstr, l.Name)
		}
		last = l.Name
	})
	return reason, msg
}

// validateEntry applies Loki's entry checks in Loki's order.
func (c *checks) validateEntry(lstr string, e *model.Entry, metaCount, metaSize int) (reason, msg string) {
	switch {
	case c.rejectOld && e.Timestamp < c.oldest:
		return ReasonGreaterThanMaxSampleAge, fmt.Sprintf(msgTooOld, lstr, formatTime(e.Timestamp), formatTime(c.oldest))
	case e.Timestamp > c.newest:
		return ReasonTooFarInFuture, fmt.Sprintf(msgTooNew, lstr, formatTime(e.Timestamp))
	case c.maxLine > 0 && len(e.Line) > c.maxLine:
		return ReasonLineTooLong, fmt.Sprintf(msgLineTooLong, c.maxLine, lstr, len(e.Line))
	}
	if metaCount == 0 {
		return "", ""
	}
	switch {
	case !c.allowMetadata:
		return ReasonDisallowedStructuredMetadata, fmt.Sprintf(msgDisallowedMetadata, lstr)
	case c.maxMetaSize > 0 && metaSize > c.maxMetaSize:
		return ReasonStructuredMetadataTooLarge, fmt.Sprintf(msgMetadataTooLarge, lstr, metaSize, c.maxMetaSize)
	case c.maxMetaEntries > 0 && metaCount > c.maxMetaEntries:
		return ReasonStructuredMetadataTooMany, fmt.Sprintf(msgMetadataTooMany, lstr, metaCount, c.maxMetaEntries)
	}
	return "", ""
}

// validateEntries filters the entries of an accepted stream in place and
// enriches the survivors.
func (v *Validator) validateEntries(c *checks, lstr string, s model.Stream, errs *groupedErrors, discards *tally) []model.Entry {
	// Level from a stream label: computed once for the whole stream. A
	// stream that carries detected_level itself gets no metadata copy of it.
	discover := c.discoverLevels && !s.Labels.Has(LabelDetectedLevel)
	var streamLevel model.Labels
	hasStreamLevel := false
	if discover {
		if raw, ok := c.levels.fromLabels(s.Labels); ok {
			if lvl := normalizeLevel(raw); lvl != "" {
				streamLevel = v.levelSet(lvl)
				hasStreamLevel = true
			} else {
				discover = false
			}
		}
	}
	var mb metadataBuilder
	n := 0
	for j := range s.Entries {
		e := s.Entries[j]
		metaCount, metaSize := 0, 0
		if !e.Metadata.IsEmpty() {
			metaCount = e.Metadata.Len()
			metaSize = metadataSize(e.Metadata)
		}
		if reason, msg := c.validateEntry(lstr, &e, metaCount, metaSize); reason != "" {
			errs.add(msg)
			discards.add(reason, 1, len(e.Line)+metaSize)
			continue
		}
		if metaCount > 0 {
			e.Metadata = sanitizeMetadata(e.Metadata, &mb)
		}
		if discover {
			v.detectLevel(c, &e, hasStreamLevel, streamLevel, &mb)
		}
		s.Entries[n] = e
		n++
	}
	clear(s.Entries[n:])
	return s.Entries[:n]
}

// detectLevel adds detected_level to an entry's metadata, or normalises the
// value it already has.
func (v *Validator) detectLevel(c *checks, e *model.Entry, hasStreamLevel bool, streamLevel model.Labels, mb *metadataBuilder) {
	if e.Metadata.IsEmpty() {
		if hasStreamLevel {
			e.Metadata = streamLevel
			return
		}
		if lvl := c.levels.fromLine(e.Line); lvl != "" {
			e.Metadata = v.levelSet(lvl)
		}
		return
	}
	if e.Metadata.Has(LabelDetectedLevel) {
		cur := e.Metadata.Get(LabelDetectedLevel)
		if norm := normalizeLevel(cur); norm != cur {
			b := model.NewLabelsBuilder(e.Metadata)
			b.Set(LabelDetectedLevel, norm)
			e.Metadata = b.Labels()
		}
		return
	}
	var lvl string
	if hasStreamLevel {
		lvl = streamLevel.Get(LabelDetectedLevel)
	} else {
		lvl = c.levels.fromEntry(e)
	}
	if lvl == "" {
		return
	}
	mb.reset()
	e.Metadata.Range(func(l model.Label) { mb.add(l.Name, l.Value) })
	mb.add(LabelDetectedLevel, lvl)
	e.Metadata = mb.labels()
}

// levelSet returns the metadata set {detected_level="lvl"}, shared between
// entries.
func (v *Validator) levelSet(lvl string) model.Labels {
	v.levelMu.RLock()
	ls, ok := v.levelSets[lvl]
	v.levelMu.RUnlock()
	if ok {
		return ls
	}
	ls = model.LabelsFromStrings(LabelDetectedLevel, strings.Clone(lvl))
	v.levelMu.Lock()
	if len(v.levelSets) < maxLevelSets {
		v.levelSets[strings.Clone(lvl)] = ls
	}
	v.levelMu.Unlock()
	return ls
}

// sanitizeMetadata rewrites metadata names and values as Loki's distributor
// does; it allocates only when something changes. Pairs whose name is empty
// are dropped.
func sanitizeMetadata(md model.Labels, mb *metadataBuilder) model.Labels {
	dirty := false
	md.Range(func(l model.Label) {
		if !dirty && (l.Name == "" || sanitizeMetadataName(l.Name) != l.Name || sanitizeMetadataValue(l.Value) != l.Value) {
			dirty = true
		}
	})
	if !dirty {
		return md
	}
	mb.reset()
	md.Range(func(l model.Label) {
		if l.Name == "" {
			return
		}
		mb.add(sanitizeMetadataName(l.Name), sanitizeMetadataValue(l.Value))
	})
	return mb.labels()
}

// limitStreams applies per-stream rate limits, as Loki's ingester does:
// entry by entry (or the whole stream at once when shard_streams is
// enabled, Loki's rate_limit_whole_stream). Rejected entries are removed;
// the error describes the last stream that lost entries.
func (v *Validator) limitStreams(tenantID string, l *tenant.Limits, now time.Time, streams []model.Stream, discards *tally) ([]model.Stream, error) {
	rate, burst := float64(l.PerStreamRateLimit), float64(l.PerStreamRateLimitBurst)
	if rate <= 0 {
		return streams, nil
	}
	whole := l.ShardStreams.Enabled
	ns := now.UnixNano()
	var lastErr error
	out := streams[:0]
	for _, s := range streams {
		lstr := s.Labels.String()
		total := len(s.Entries)
		var failed []model.Entry
		v.limiter.withStreamBucket(streamKey(tenantID, lstr), ns, rate, burst, func(b *tokenBucket) {
			if whole {
				n := 0
				for i := range s.Entries {
					n += len(s.Entries[i].Line)
				}
				if !b.allowN(ns, float64(n), rate, burst) {
					failed = s.Entries
					s.Entries = nil
				}
				return
			}
			kept := 0
			for i := range s.Entries {
				e := s.Entries[i]
				if !b.allowN(ns, float64(len(e.Line)), rate, burst) {
					failed = append(failed, e)
					continue
				}
				s.Entries[kept] = e
				kept++
			}
			s.Entries = s.Entries[:kept]
		})
		if len(failed) > 0 {
			bytes := 0
			for i := range failed {
				bytes += len(failed[i].Line)
			}
			discards.add(ReasonStreamRateLimit, len(failed), bytes)
			lastErr = streamRateError(tenantID, lstr, rate, failed, total)
		}
		if len(s.Entries) > 0 {
			out = append(out, s)
		}
	}
	if lastErr != nil {
		v.logger.Debug("push stream rate limited", "tenant", tenantID, "err", lastErr)
	}
	return out, lastErr
}

// streamRateError words a per-stream rate-limit rejection as Loki's
// ingester does: up to ten rejected entries, then the totals.
func streamRateError(tenantID, lstr string, rate float64, failed []model.Entry, total int) *HTTPError {
	var b strings.Builder
	for i := range failed {
		if i == maxReturnedEntryErrors {
			break
		}
		reason := fmt.Sprintf(msgStreamRateLimit, formatByteSize(int64(rate)), lstr, formatByteSize(int64(len(failed[i].Line))))
		fmt.Fprintf(&b, msgEntryIgnored, time.Unix(0, failed[i].Timestamp).UTC().String(), reason)
	}
	fmt.Fprintf(&b, msgTotalIgnored, tenantID, len(failed), total, lstr)
	return &HTTPError{Status: http.StatusTooManyRequests, Msg: b.String()}
}
