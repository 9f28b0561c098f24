package querycli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// TailQuery is a live tail.
type TailQuery struct {
	Query    string
	Start    time.Time // history from here (the server sends the newest Limit entries)
	Limit    int
	DelayFor time.Duration // 0-5 s: how long the server waits for late entries
}

// TailFrame is one message of a tail: entries, and entries the server
// reports it dropped.
type TailFrame struct {
	Entries []Entry
	Dropped []Dropped
}

// Dropped is an entry the server could not send.
type Dropped struct {
	Labels    map[string]string
	Timestamp time.Time
}

// maxTailFrame bounds the size of one tail message.
const maxTailFrame = 64 << 20

// Tail opens /loki/api/v1/tail and calls fn for every frame until ctx is
// done (then it returns nil), the server closes the socket normally (nil)
// or fails (the error carries the close code and reason).
func (c *Client) Tail(ctx context.Context, q TailQuery, fn func(TailFrame) error) error {
	p := url.Values{"query": {q.Query}}
	if !q.Start.IsZero() {
		p.Set("start", ns(q.Start))
	}
	if q.Limit > 0 {
		p.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.DelayFor > 0 {
		p.Set("delay_for", strconv.Itoa(int(q.DelayFor/time.Second)))
	}
	u, err := url.Parse(c.url("/loki/api/v1/tail", p))
	if err != nil {
		return err
	}
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	h := http.Header{}
	c.headers(h)
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: c.http, HTTPHeader: h})
	if err != nil {
		if resp != nil && resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusSwitchingProtocols {
			var msg []byte
			if resp.Body != nil {
				msg = make([]byte, 4096)
				n, _ := resp.Body.Read(msg)
				msg = msg[:n]
			}
			return &APIError{Path: "/loki/api/v1/tail", StatusCode: resp.StatusCode, Status: resp.Status, Message: errorMessage(msg)}
		}
		return fmt.Errorf("/loki/api/v1/tail: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(maxTailFrame)
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				_ = conn.Close(websocket.StatusNormalClosure, "")
				return nil
			}
			if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
				return nil
			}
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return fmt.Errorf("/loki/api/v1/tail: server closed the tail: %d %s", ce.Code, ce.Reason)
			}
			return fmt.Errorf("/loki/api/v1/tail: %w", err)
		}
		f, err := decodeTailFrame(b)
		if err != nil {
			return fmt.Errorf("/loki/api/v1/tail: %w", err)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
}

func decodeTailFrame(b []byte) (TailFrame, error) {
	var raw struct {
		Streams        json.RawMessage `json:"streams"`
		DroppedEntries []struct {
			Labels    map[string]string `json:"labels"`
			Timestamp string            `json:"timestamp"`
		} `json:"dropped_entries"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return TailFrame{}, fmt.Errorf("decode frame: %w", err)
	}
	var f TailFrame
	if len(raw.Streams) > 0 {
		r := Response{}
		r.Data.ResultType = "streams"
		r.Data.Result = raw.Streams
		es, err := r.Entries()
		if err != nil {
			return TailFrame{}, err
		}
		SortEntries(es, Forward)
		f.Entries = es
	}
	for _, d := range raw.DroppedEntries {
		n, err := strconv.ParseInt(d.Timestamp, 10, 64)
		if err != nil {
			return TailFrame{}, fmt.Errorf("decode dropped entry timestamp %q: %w", d.Timestamp, err)
		}
		f.Dropped = append(f.Dropped, Dropped{Labels: d.Labels, Timestamp: time.Unix(0, n).UTC()})
	}
	return f, nil
}
