// Package stages owns the agent's Promtail-compatible pipeline: it builds the
// stages of a scrape config's pipeline_stages list (docker, cri, regex, json,
// logfmt, replace, multiline, pack, decolorize, template, output, labels,
// labelallow, labeldrop, static_labels, structured_metadata, timestamp,
// metrics, tenant, match, drop, limit, sampling) and runs log entries through
// them with Promtail's semantics: parsing stages fill Entry.Extracted, action
// stages set labels, timestamp, line, structured metadata and tenant, and
// filtering stages drop entries.
//
// A Pipeline is built once per scrape config with NewPipeline and fed either
// through Run (one goroutine, timers for multiline's max_wait_time) or
// synchronously through Process. Warnings reports data-flow smells found at
// load time, such as a template reading a key no earlier stage extracts.
//
// See docs/agent-stages.md for the stage reference and the differences from
// Promtail.
package stages
