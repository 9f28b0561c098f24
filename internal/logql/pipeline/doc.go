// Package pipeline owns the evaluation of LogQL log pipelines: line filters,
// parsers (json, logfmt, regexp, pattern, unpack), label filters,
// line_format and label_format templates, drop, keep and decolorize, and the
// sample extraction of metric queries (counting, bytes, unwrap). It follows
// Loki's documented semantics (/work/shared/reference/logql.md, IDs LQ-*):
// extracted labels that collide with stream labels get the _extracted
// suffix, failures set __error__ and __error_details__ and keep the entry.
//
// A Pipeline is compiled once per query by New and is safe for concurrent
// use. ForStream instantiates it for one stream; the StreamPipeline reuses
// its buffers and label builder for every entry of that stream, so
// evaluating an entry does not allocate in the common case. Label values may
// alias the processed line: results are valid until the next Process call.
//
// Metric queries build a SampleExtractor, which also tells the parsers which
// labels the query needs (Loki's "required labels"): `sum by (currency)
// (rate({…} | json [1m]))` makes the json parser extract currency only.
package pipeline
