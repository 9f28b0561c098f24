package loki

import (
	"log/slog"
	"net/http"
	"runtime"
	"strings"
)

func (a *API) ready(w http.ResponseWriter, r *http.Request) {
	if !a.opts.Store.Ready() {
		writeError(w, http.StatusServiceUnavailable, "Ingester not ready: replaying the write-ahead log")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
}

func (a *API) buildInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]string{
		"version":   a.opts.Version,
		"revision":  "",
		"branch":    "main",
		"buildUser": "ledgerlog",
		"buildDate": "",
		"goVersion": runtime.Version(),
		"ledgerlog": "true",
	})
}

func (a *API) config(w http.ResponseWriter, r *http.Request) {
	if a.opts.ConfigYAML == nil {
		writeError(w, http.StatusNotFound, "no configuration available")
		return
	}
	b, err := a.opts.ConfigYAML(r.URL.Query().Get("mode"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(b)
}

func (a *API) flush(w http.ResponseWriter, r *http.Request) {
	if err := a.opts.Store.Flush(r.Context(), true); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) services(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, s := range []string{"server", "ingester", "distributor", "querier", "compactor"} {
		_, _ = w.Write([]byte(s + " => Running\n"))
	}
}

// logLevel gets (GET) or sets (POST log_level=debug|info|warn|error) the
// runtime log level.
func (a *API) logLevel(w http.ResponseWriter, r *http.Request) {
	if a.opts.LogLevel == nil {
		writeError(w, http.StatusNotFound, "log level is not adjustable")
		return
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if !parseForm(w, r) {
			return
		}
		var l slog.Level
		if err := l.UnmarshalText([]byte(strings.ToUpper(r.Form.Get("log_level")))); err != nil {
			writeError(w, http.StatusBadRequest, "invalid log level: "+r.Form.Get("log_level"))
			return
		}
		a.opts.LogLevel.Set(l)
	}
	writeJSON(w, map[string]string{"status": "success", "message": "Current log level is " + strings.ToLower(a.opts.LogLevel.Level().String())})
}
