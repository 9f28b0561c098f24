package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"go.uber.org/goleak"

	"github.com/ledgerlog/ledgerlog/internal/model"
	"github.com/ledgerlog/ledgerlog/internal/storage"
	"github.com/ledgerlog/ledgerlog/internal/storage/head"
	"github.com/ledgerlog/ledgerlog/internal/tenant"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// base is the first entry's time in generated data.
var base = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// genData pushes streams×perStream entries, one per second per stream,
// into a fresh store: JSON lines with a level, an amount, a latency and a
// per-line id; a tenth of the lines carry "error".
func genData(tb testing.TB, streams, perStream int) *storage.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := storage.Open(ctx, storage.Options{Bucket: objstore.NewInMemBucket(), BlockWindow: 24 * time.Hour})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = db.Close(ctx) })
	levels := []string{"info", "warn", "error", "debug"}
	for s := range streams {
		ls := model.LabelsFromStrings("app", "bench", "pod", fmt.Sprintf("pod-%03d", s), "level", levels[s%len(levels)])
		const batch = 5000
		for off := 0; off < perStream; off += batch {
			st := model.Stream{Labels: ls}
			for i := off; i < min(off+batch, perStream); i++ {
				msg := "request served"
				if i%10 == 0 {
					msg = "error while serving"
				}
				line := fmt.Sprintf(`{"level":"%s","msg":"%s","amount":%d,"latency":"%dms","id":"id-%d-%d","service":"svc-%d"}`,
					levels[i%4], msg, (i*7919)%20000, i%900, s, i, i%5)
				st.Entries = append(st.Entries, model.Entry{Timestamp: base + int64(i)*int64(time.Second), Line: line,
					Metadata: model.LabelsFromStrings("detected_level", levels[i%4])})
			}
			require.NoError(tb, db.Push("fake", []model.Stream{st}, head.Limits{UnorderedWrites: true}))
		}
	}
	return db
}

func newEngine(db *storage.DB, mod func(*tenant.Limits)) *Engine {
	l := tenant.Defaults()
	if mod != nil {
		mod(&l)
	}
	return New(db, tenant.NewOverrides(l), Options{})
}

func rangeParams(query string, start, end int64, step time.Duration) Params {
	return Params{Tenants: []string{"fake"}, Query: query, Start: start, End: end, Step: step, Limit: 100, Direction: model.Backward}
}

// TestHealthCheck is Grafana's "Save & test": an instant vector(1)+vector(1)
// at 4 s after the epoch on an empty store answers one sample of 2.
func TestHealthCheck(t *testing.T) {
	db := genData(t, 0, 0)
	res, err := newEngine(db, nil).Exec(context.Background(), Params{Tenants: []string{"fake"}, Query: "vector(1)+vector(1)", Start: 4e9, End: 4e9, Instant: true})
	require.NoError(t, err)
	require.Equal(t, TypeVector, res.Type)
	require.Len(t, res.Vector, 1)
	require.Equal(t, 2.0, res.Vector[0].V)
	require.Equal(t, int64(4000), res.Vector[0].T)
	require.True(t, res.Vector[0].Metric.IsEmpty())

	res, err = newEngine(db, nil).Exec(context.Background(), Params{Tenants: []string{"fake"}, Query: "1+1", Start: 4e9, End: 4e9, Instant: true})
	require.NoError(t, err)
	require.Equal(t, TypeScalar, res.Type)
	require.Equal(t, Sample{T: 4000, V: 2}, res.Scalar)
}

// TestCancelStopsScan cancels a query while it scans and checks that
// Exec returns the context's error and that no goroutine keeps reading
// storage afterwards.
func TestCancelStopsScan(t *testing.T) {
	const streams, perStream = 16, 20000
	db := genData(t, streams, perStream)
	for _, q := range []struct{ name, query string }{
		{"metric", `sum(count_over_time({app="bench"} | json | line_format "{{.msg}} {{.id}}" |~ "nomatch.*x" [1h]))`},
		{"logs", `{app="bench"} | json | line_format "{{.msg}} {{.id}}" |~ "nomatch.*x"`},
	} {
		t.Run(q.name, func(t *testing.T) {
			e := newEngine(db, nil)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var err error
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := rangeParams(q.query, base, base+int64(perStream)*int64(time.Second), time.Hour)
				_, err = e.Exec(ctx, p)
			}()
			for e.EntriesScanned() < 4096 {
				runtime.Gosched()
			}
			cancel()
			wg.Wait()
			require.True(t, errors.Is(err, context.Canceled), "err = %v", err)
			after := e.EntriesScanned()
			require.Less(t, after, int64(streams*perStream), "the scan did not stop")
			time.Sleep(20 * time.Millisecond)
			require.Equal(t, after, e.EntriesScanned(), "storage was read after Exec returned")
		})
	}
}

// TestQueryTimeout applies the tenant's query_timeout.
func TestQueryTimeout(t *testing.T) {
	db := genData(t, 4, 20000)
	e := newEngine(db, func(l *tenant.Limits) { l.QueryTimeout = 1 })
	_, err := e.Exec(context.Background(), rangeParams(`sum(count_over_time({app="bench"} | json [1h]))`, base, base+int64(20000)*int64(time.Second), time.Minute))
	require.True(t, errors.Is(err, context.DeadlineExceeded), "err = %v", err)
}

// TestResourceBounds runs queries over far more data than their limits
// let them return and checks that the heap stays bounded: a log query
// holds only its limit and the streams' look-ahead batches, a counting
// query only per-step state, a query over too many series stops at the
// limit.
func TestResourceBounds(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 300k lines")
	}
	const streams, perStream = 30, 10000
	db := genData(t, streams, perStream)
	end := base + int64(perStream)*int64(time.Second)
	for _, c := range []struct {
		name    string
		p       Params
		wantErr string
		bound   uint64
	}{
		{"log limit", rangeParams(`{app="bench"} | json | level="info"`, base, end, time.Minute), "", 16 << 20},
		{"count", rangeParams(`sum by (level) (count_over_time({app="bench"} | json [1m]))`, base, end, time.Minute), "", 16 << 20},
		// Unwrapped functions keep the samples of the range (16 bytes each).
		{"unwrap", rangeParams(`sum by (level) (sum_over_time({app="bench"} | json | unwrap amount [1m]))`, base, end, time.Minute), "", 64 << 20},
		{"series limit", rangeParams(`count_over_time({app="bench"} | json [1m])`, base, end, time.Minute), "maximum number of series (500)", 16 << 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(db, nil)
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			baseline := ms.HeapAlloc
			peak := baseline
			done := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				var ms runtime.MemStats
				for {
					select {
					case <-done:
						return
					case <-time.After(2 * time.Millisecond):
					}
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapAlloc)
				}
			}()
			res, err := e.Exec(context.Background(), c.p)
			close(done)
			wg.Wait()
			if c.wantErr != "" {
				require.ErrorContains(t, err, c.wantErr)
			} else {
				require.NoError(t, err)
				require.NotEqual(t, TypeScalar, res.Type)
			}
			growth := peak - baseline
			t.Logf("heap growth %d KiB over %d lines", growth>>10, streams*perStream)
			require.Less(t, growth, c.bound)
		})
	}
}
