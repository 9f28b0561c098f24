package ingest

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/s2"
)

const (
	contentTypeJSON     = "application/json"
	contentTypeProtobuf = "application/x-protobuf"
)

// Parse reads and decodes an HTTP push request to /loki/api/v1/push or the
// legacy /api/prom/push, as Loki does:
//
//   - Content-Type application/json is JSON: the v1 shape on /loki/api/v1/…
//     paths, the legacy shape elsewhere. Any other Content-Type (or none) is a
//     snappy-block-compressed protobuf; a Content-Type that does not parse is
//     a 400 with the mime error.
//   - Content-Encoding may be empty, snappy (for protobuf it means what the
//     body is anyway; JSON bodies are snappy-decoded too), gzip or deflate
//     (decoded before the body is read as JSON or protobuf). Any other is a
//     400 `Content-Encoding "x" not supported`.
//   - maxBody (if > 0) limits the body on the wire and again after
//     decompression (a 413 `request body too large: …`): a snappy body's
//     decoded length is checked before it is allocated, gzip and deflate
//     reads stop at the limit.
//
// Parse consumes r.Body but does not close it (the HTTP server does). Every
// error is an *HTTPError. Labels are parsed; service_name and the other
// tenant-dependent rewrites happen in Validator.Validate.
func Parse(r *http.Request, maxBody int64) (*Request, error) {
	enc := r.Header.Get("Content-Encoding")
	switch enc {
	case "", "snappy", "gzip", "deflate":
	default:
		return nil, httpErrorf(http.StatusBadRequest, msgEncodingUnsupported, enc)
	}
	mediaType := ""
	if ct := r.Header.Get("Content-Type"); ct != "" {
		// Loki answers a missing Content-Type with mime's "no media type"
		// error; we read it as protobuf, as clients that omit it mean.
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return nil, badRequest(err)
		}
		mediaType = mt
	}
	isJSON := mediaType == contentTypeJSON

	// The wire body of a protobuf or compressed request is not referenced
	// by the result, so its buffer is pooled.
	pooled := !isJSON || enc == "gzip" || enc == "deflate" || enc == "snappy"
	var wire *bytes.Buffer
	if pooled {
		wire = bodyPool.Get().(*bytes.Buffer)
		defer putBody(wire)
	} else {
		wire = new(bytes.Buffer)
	}
	if err := readBody(wire, r.Body, r.ContentLength, maxBody); err != nil {
		return nil, err
	}
	wireSize := int64(wire.Len())
	body := wire.Bytes()

	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, badRequest(err)
		}
		if body, err = inflate(zr, maxBody); err != nil {
			return nil, err
		}
	case "deflate":
		fr := flate.NewReader(bytes.NewReader(body))
		var err error
		body, err = inflate(fr, maxBody)
		_ = fr.Close()
		if err != nil {
			return nil, err
		}
	case "snappy":
		if isJSON {
			var err error
			if body, err = unsnappy(body, maxBody); err != nil {
				return nil, err
			}
		}
	}

	var (
		req *Request
		err error
	)
	switch {
	case isJSON && isV1Path(r):
		req, err = DecodeJSON(body)
	case isJSON:
		req, err = DecodeLegacyJSON(body)
	default:
		req, err = DecodeProto(body, maxBody)
	}
	if err != nil {
		return nil, err
	}
	req.BodySize = wireSize
	return req, nil
}

// isV1Path reports whether the request is for a /loki/api/v1 endpoint, as
// Loki's loghttp.GetVersion decides it.
func isV1Path(r *http.Request) bool {
	uri := r.RequestURI
	if uri == "" && r.URL != nil {
		uri = r.URL.Path
	}
	return strings.Contains(strings.ToLower(uri), "/loki/api/v1")
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putBody returns a wire buffer to the pool unless it grew very large.
func putBody(b *bytes.Buffer) {
	if b.Cap() > 16<<20 {
		return
	}
	b.Reset()
	bodyPool.Put(b)
}

func tooLarge(n, limit int64) *HTTPError {
	return httpErrorf(http.StatusRequestEntityTooLarge, msgRequestBodyTooLarge, n, limit)
}

// readBody reads r into buf, at most limit bytes when limit > 0. A body
// declared or found larger is a 413.
func readBody(buf *bytes.Buffer, r io.Reader, contentLength, limit int64) error {
	if limit > 0 && contentLength > limit {
		return tooLarge(contentLength, limit)
	}
	if contentLength > 0 {
		buf.Grow(int(contentLength) + bytes.MinRead)
	}
	if limit > 0 {
		r = io.LimitReader(r, limit+1)
	}
	if _, err := buf.ReadFrom(r); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(mbe.Limit+1, mbe.Limit)
		}
		return httpErrorf(http.StatusBadRequest, "read request body: %v", err)
	}
	if limit > 0 && int64(buf.Len()) > limit {
		return tooLarge(int64(buf.Len()), limit)
	}
	return nil
}

// inflate reads a decompressing reader to the end, stopping at limit bytes
// (if > 0): a decompression bomb costs at most limit bytes of memory.
func inflate(r io.Reader, limit int64) ([]byte, error) {
	if limit > 0 {
		r = io.LimitReader(r, limit+1)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, badRequest(err)
	}
	if limit > 0 && int64(len(out)) > limit {
		return nil, tooLarge(int64(len(out)), limit)
	}
	return out, nil
}

// unsnappy decodes a snappy block after checking its decoded length
// against limit (if > 0). It uses the S2 block decoder, which decodes every
// snappy block (faster than golang/snappy), and words errors as
// golang/snappy does, as Loki answers with them.
func unsnappy(body []byte, limit int64) ([]byte, error) {
	n, err := s2.DecodedLen(body)
	if err != nil {
		return nil, snappyError(err)
	}
	if limit > 0 && int64(n) > limit {
		return nil, tooLarge(int64(n), limit)
	}
	out, err := s2.Decode(make([]byte, n), body)
	if err != nil {
		return nil, snappyError(err)
	}
	return out, nil
}

func snappyError(err error) *HTTPError {
	switch {
	case errors.Is(err, s2.ErrCorrupt):
		return &HTTPError{Status: http.StatusBadRequest, Msg: "snappy: corrupt input"}
	case errors.Is(err, s2.ErrTooLarge):
		return &HTTPError{Status: http.StatusBadRequest, Msg: "snappy: decoded block is too large"}
	}
	return badRequest(err)
}
