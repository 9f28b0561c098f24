package head

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

func newTestHead(t *testing.T) *Head {
	t.Helper()
	opts := DefaultOptions()
	opts.PageSize = 1024
	opts.ChunkTargetSize = 4096
	return New(opts, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
}

func readAll(t *testing.T, h *Head, tenantID string, ms []*model.Matcher, dir model.Direction) []model.Entry {
	t.Helper()
	var out []model.Entry
	for _, v := range h.Select(tenantID, ms, model.AllTime) {
		for _, src := range v.Sources {
			it := src.Iterator(model.AllTime, dir, nil)
			for it.Next() {
				out = append(out, it.At())
			}
			require.NoError(t, it.Err())
			require.NoError(t, it.Close())
		}
	}
	return out
}

func TestAppendCutSelect(t *testing.T) {
	h := newTestHead(t)
	ls := model.LabelsFromStrings("app", "api")
	var entries []model.Entry
	for i := range 500 {
		entries = append(entries, model.Entry{Timestamp: int64(i) * 1e6, Line: fmt.Sprintf("line %d checksum %x", i, sha256.Sum256([]byte{byte(i), byte(i >> 8)}))})
	}
	acc, err := h.Append("t1", []model.Stream{{Labels: ls, Entries: entries}}, Limits{UnorderedWrites: true}, false)
	require.NoError(t, err)
	require.Len(t, acc, 1)
	require.Len(t, acc[0].Entries, 500)
	require.Greater(t, h.CutBytes(), int64(0), "small target size must have cut chunks")

	got := readAll(t, h, "t1", nil, model.Forward)
	require.Len(t, got, 500)
	require.Empty(t, h.Select("t2", nil, model.AllTime), "tenants are isolated")

	// Exact duplicates are dropped silently.
	acc, err = h.Append("t1", []model.Stream{{Labels: ls, Entries: entries[499:]}}, Limits{UnorderedWrites: true}, false)
	require.NoError(t, err)
	require.Empty(t, acc)

	pend := h.TakeCuts()
	require.NotEmpty(t, pend)
	h.Release(pend)
	require.Equal(t, int64(0), h.CutBytes())
}

func TestOutOfOrderWindow(t *testing.T) {
	h := newTestHead(t)
	ls := model.LabelsFromStrings("app", "api")
	now := time.Now().UnixNano()
	_, err := h.Append("t", []model.Stream{{Labels: ls, Entries: []model.Entry{{Timestamp: now, Line: "new"}}}}, Limits{UnorderedWrites: true}, false)
	require.NoError(t, err)
	// Within the window (max_chunk_age/2 = 1h): accepted.
	_, err = h.Append("t", []model.Stream{{Labels: ls, Entries: []model.Entry{{Timestamp: now - int64(30*time.Minute), Line: "late"}}}}, Limits{UnorderedWrites: true}, false)
	require.NoError(t, err)
	// Too far behind: refused with Loki's text, other entries kept.
	acc, err := h.Append("t", []model.Stream{{Labels: ls, Entries: []model.Entry{
		{Timestamp: now - int64(2*time.Hour), Line: "too old"},
		{Timestamp: now + 1, Line: "fine"},
	}}}, Limits{UnorderedWrites: true}, false)
	var ae *AppendError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusBadRequest, ae.Status)
	require.Contains(t, ae.Error(), "entry too far behind")
	require.Contains(t, ae.Error(), "total ignored: 1 out of 2 for stream: {app=\"api\"}")
	require.Len(t, acc, 1)
	require.Equal(t, "fine", acc[0].Entries[0].Line)

	// Ordered writes: anything older than the newest entry is refused.
	_, err = h.Append("t", []model.Stream{{Labels: ls, Entries: []model.Entry{{Timestamp: now - 5, Line: "x"}}}}, Limits{UnorderedWrites: false}, false)
	require.ErrorContains(t, err, "entry out of order")
	require.Len(t, readAll(t, h, "t", nil, model.Forward), 3)
}

func TestMaxStreams(t *testing.T) {
	h := newTestHead(t)
	l := Limits{MaxStreams: 2, UnorderedWrites: true}
	push := func(app string) error {
		_, err := h.Append("t", []model.Stream{{Labels: model.LabelsFromStrings("app", app), Entries: []model.Entry{{Timestamp: 1, Line: "x"}}}}, l, false)
		return err
	}
	require.NoError(t, push("a"))
	require.NoError(t, push("b"))
	err := push("c")
	var ae *AppendError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusTooManyRequests, ae.Status)
	require.Contains(t, ae.Error(), "maximum active stream limit exceeded when trying to create stream {app=\"c\"}")
	require.NoError(t, push("a"), "existing streams still accept data")
}

func TestCutIdleAndGC(t *testing.T) {
	h := newTestHead(t)
	now := time.Unix(1000, 0)
	h.SetClock(func() time.Time { return now })
	_, err := h.Append("t", []model.Stream{{Labels: model.LabelsFromStrings("app", "a"), Entries: []model.Entry{{Timestamp: 1, Line: "x"}}}}, Limits{UnorderedWrites: true}, false)
	require.NoError(t, err)
	h.CutIdle(false)
	require.Equal(t, int64(0), h.CutBytes())
	now = now.Add(31 * time.Minute)
	h.CutIdle(false)
	require.Greater(t, h.CutBytes(), int64(0))
	h.Release(h.TakeCuts())
	h.GC(time.Minute)
	require.Empty(t, h.Select("t", nil, model.AllTime))
}
