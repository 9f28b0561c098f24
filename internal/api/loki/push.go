package loki

import (
	"errors"
	"net/http"

	"github.com/ledgerlog/ledgerlog/internal/ingest"
	"github.com/ledgerlog/ledgerlog/internal/storage/head"
)

func (a *API) push(w http.ResponseWriter, r *http.Request)       { a.handlePush(w, r, false) }
func (a *API) pushLegacy(w http.ResponseWriter, r *http.Request) { a.handlePush(w, r, false) }
func (a *API) pushOTLP(w http.ResponseWriter, r *http.Request)   { a.handlePush(w, r, true) }

// handlePush decodes, validates, rate-limits and stores a push. Valid
// streams are stored even when others are rejected; the answer then
// carries the rejection (Loki's partial acceptance).
func (a *API) handlePush(w http.ResponseWriter, r *http.Request, otlp bool) {
	tenantID, err := a.opts.Tenants.Write(r)
	if err != nil {
		status, msg := errorStatus(err)
		writeError(w, status, msg)
		return
	}
	if !a.opts.Store.Ready() {
		writeError(w, http.StatusServiceUnavailable, "Ingester not ready: replaying the write-ahead log")
		return
	}
	var req *ingest.Request
	if otlp {
		req, err = ingest.ParseOTLP(r, a.opts.MaxPushBody, a.opts.OTLP)
	} else {
		req, err = ingest.Parse(r, a.opts.MaxPushBody)
	}
	if err != nil {
		writePushError(w, err)
		return
	}
	limits := a.opts.Overrides.For(tenantID)
	now := a.opts.Now()
	streams, verr := a.opts.Validator.Validate(tenantID, limits, req, now)
	if len(streams) > 0 {
		serr := a.opts.Store.Push(tenantID, streams, head.Limits{
			MaxStreams:      limits.MaxGlobalStreamsPerUser,
			UnorderedWrites: limits.UnorderedWrites,
		})
		var ae *head.AppendError
		switch {
		case errors.As(serr, &ae):
			if verr == nil {
				writeError(w, ae.Status, ae.Error())
				return
			}
		case serr != nil:
			a.log.Error("store push", "tenant", tenantID, "err", serr)
			writeError(w, http.StatusInternalServerError, serr.Error())
			return
		}
	}
	if verr != nil {
		writePushError(w, verr)
		return
	}
	if otlp {
		body, ct := ingest.OTLPResponse(r)
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writePushError(w http.ResponseWriter, err error) {
	var he *ingest.HTTPError
	if errors.As(err, &he) {
		writeError(w, he.Status, he.Msg)
		return
	}
	writeError(w, http.StatusBadRequest, err.Error())
}
