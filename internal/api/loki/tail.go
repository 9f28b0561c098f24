package loki

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/ledgerlog/ledgerlog/internal/logql/engine"
	"github.com/ledgerlog/ledgerlog/internal/logql/syntax"
	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Live tail settings.
const (
	tailMaxDelay     = 5 * time.Second // largest delay_for, as Loki
	tailDefaultLimit = 100             // entries of the initial history
	tailDefaultSince = time.Hour       // start of the initial history
	tailMaxDuration  = time.Hour       // Loki's tail_max_duration
	tailPollInterval = 250 * time.Millisecond
	tailFrameEntries = 1000 // entries per frame at most
	tailWriteTimeout = 30 * time.Second
)

// tail serves the live tail WebSocket (/loki/api/v1/tail and the legacy
// /api/prom/tail). It first sends the newest `limit` entries in
// [start, now-delay_for), oldest first, then polls the store every 250 ms
// for entries in [last poll end, now-delay_for) and sends them in frames
// {"streams":[…]} (legacy: the old {"labels","entries"} shape). Entries
// that arrive later than delay_for behind their timestamp are not sent.
// The server never drops entries: a slow reader slows the polling, so
// dropped_entries is never set. The tenant header applies on the upgrade
// request; parameter errors are answered with HTTP errors before the
// upgrade, query errors after it close the socket with code 1008 (the
// client's) or 1011 (the server's). The socket closes normally after one
// hour, as Loki's tail_max_duration.
func (a *API) tail(w http.ResponseWriter, r *http.Request) {
	a.serveTail(w, r, false)
}

func (a *API) tailLegacy(w http.ResponseWriter, r *http.Request) {
	a.serveTail(w, r, true)
}

type tailRequest struct {
	tenants []string
	query   string
	delay   time.Duration
	limit   int
	start   int64
}

func (a *API) parseTail(r *http.Request) (*tailRequest, error) {
	tenants, err := a.opts.Tenants.Read(r)
	if err != nil {
		return nil, err
	}
	t := &tailRequest{tenants: tenants, query: r.Form.Get("query")}
	if t.query == "" {
		return nil, badRequest(errString("query parameter is required"))
	}
	expr, err := syntax.Options{AllowEmptyCompatible: true}.ParseExpr(t.query)
	if err != nil {
		return nil, badRequest(err)
	}
	if _, ok := expr.(syntax.LogSelectorExpr); !ok {
		return nil, badRequest(errString("tail only supports log queries"))
	}
	if v := r.Form.Get("delay_for"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, badRequest(errString("could not parse 'delay_for' parameter: " + err.Error()))
		}
		if n < 0 || time.Duration(n)*time.Second > tailMaxDelay {
			return nil, badRequest(errString("delay_for can't be greater than 5"))
		}
		t.delay = time.Duration(n) * time.Second
	}
	if t.limit, err = limitParam(r, tailDefaultLimit); err != nil {
		return nil, badRequest(err)
	}
	if t.start, err = timeParam(r, "start", a.opts.Now().Add(-tailDefaultSince).UnixNano()); err != nil {
		return nil, badRequest(err)
	}
	return t, nil
}

func (a *API) serveTail(w http.ResponseWriter, r *http.Request, legacy bool) {
	if !parseForm(w, r) {
		return
	}
	req, err := a.parseTail(r)
	if err != nil {
		status, msg := errorStatus(err)
		writeError(w, status, msg)
		return
	}
	// The server's read and write timeouts would cut a long tail: clear
	// them on the connection before it is hijacked.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	// Loki accepts any Origin; Grafana's backend and logcli send none.
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept has answered the request
	}
	defer c.CloseNow()
	ctx := c.CloseRead(context.Background())
	ctx, cancel := context.WithTimeout(ctx, tailMaxDuration)
	defer cancel()

	t := &tailer{api: a, conn: c, req: req, cat: categorize(r), legacy: legacy}
	err = t.run(ctx)
	switch {
	case err == nil, errors.Is(err, context.DeadlineExceeded):
		_ = c.Close(websocket.StatusNormalClosure, "")
	case errors.Is(err, context.Canceled), websocket.CloseStatus(err) != -1:
		// The client went away.
	default:
		code := websocket.StatusInternalError
		if engine.IsUserError(err) {
			code = websocket.StatusPolicyViolation
		}
		_, msg := errorStatus(err)
		if len(msg) > 120 { // a close reason is at most 123 bytes
			msg = msg[:120]
		}
		_ = c.Close(code, msg)
	}
}

// tailer is one live tail connection.
type tailer struct {
	api    *API
	conn   *websocket.Conn
	req    *tailRequest
	cat    bool
	legacy bool

	batch []engine.Stream
	index map[string]int
	n     int
}

func (t *tailer) run(ctx context.Context) error {
	cursor := t.api.opts.Now().Add(-t.req.delay).UnixNano()
	// History: the newest `limit` entries, sent oldest first.
	var hist []orderedEntry
	err := t.api.scan(ctx, scanRequest{tenants: t.req.tenants, query: t.req.query, start: t.req.start, end: cursor, dir: model.Backward, max: t.req.limit},
		func(ls model.Labels, e *engine.Entry) bool {
			cp := *e
			hist = append(hist, orderedEntry{ls: ls, e: &cp})
			return true
		})
	if err != nil {
		return err
	}
	for i := len(hist) - 1; i >= 0; i-- {
		t.add(hist[i].ls, hist[i].e)
	}
	if err := t.flush(ctx); err != nil {
		return err
	}
	tick := time.NewTicker(tailPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		end := t.api.opts.Now().Add(-t.req.delay).UnixNano()
		if end <= cursor {
			continue
		}
		var werr error
		err := t.api.scan(ctx, scanRequest{tenants: t.req.tenants, query: t.req.query, start: cursor, end: end, dir: model.Forward},
			func(ls model.Labels, e *engine.Entry) bool {
				t.add(ls, e)
				if t.n >= tailFrameEntries {
					werr = t.flush(ctx)
				}
				return werr == nil
			})
		if err == nil {
			err = werr
		}
		if err == nil {
			err = t.flush(ctx)
		}
		if err != nil {
			return err
		}
		cursor = end
	}
}

func (t *tailer) add(ls model.Labels, e *engine.Entry) {
	if t.index == nil {
		t.index = map[string]int{}
	}
	k := ls.String()
	i, ok := t.index[k]
	if !ok {
		i = len(t.batch)
		t.index[k] = i
		t.batch = append(t.batch, engine.Stream{Labels: ls})
	}
	t.batch[i].Entries = append(t.batch[i].Entries, *e)
	t.n++
}

// flush sends the batched entries as one frame, if there are any.
func (t *tailer) flush(ctx context.Context) error {
	if t.n == 0 {
		return nil
	}
	var frame []byte
	if t.legacy {
		frame = appendLegacyStreams(nil, foldLabels(t.batch))
	} else {
		frame = append(frame, `{"streams":`...)
		frame = appendStreams(frame, t.batch, t.cat)
		frame = append(frame, '}')
	}
	t.batch, t.n = t.batch[:0], 0
	clear(t.index)
	wctx, cancel := context.WithTimeout(ctx, tailWriteTimeout)
	defer cancel()
	return t.conn.Write(wctx, websocket.MessageText, frame)
}
