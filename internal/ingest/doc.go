// Package ingest owns the push front of the server: decoding every Loki push
// format (snappy-compressed protobuf, JSON v1 with structured metadata, the
// legacy /api/prom/push JSON and OTLP/HTTP logs), validating decoded streams
// against a tenant's limits with Loki's exact status codes and messages,
// enforcing per-tenant and per-stream ingestion rate limits, and enriching
// streams as Loki 3 does (the service_name label and the detected_level
// structured metadata).
//
// The flow for one HTTP push is:
//
//	req, err := ingest.Parse(r, maxBody)          // or ParseOTLP
//	streams, err := validator.Validate(tenant, limits, req, now)
//
// Every rejection is an *HTTPError carrying the status code and the plain-text
// message Loki would send. Validate may return accepted streams together with
// an error (partial acceptance): the caller stores the streams and still
// answers with the error.
//
// Strings in a decoded Request (lines, structured metadata values) alias
// immutable memory owned by the Request: the decompressed protobuf body, or
// 64 KiB blocks of unescaped JSON text. They are safe to keep indefinitely;
// keeping any of them keeps its block alive, so a consumer that retains a few
// strings of a request for a long time (an index of values, say) should
// strings.Clone them.
package ingest
