package stages

import (
	"bytes"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// The tests below run inside a synctest bubble: time is virtual, advances
// only when every goroutine in the bubble is blocked, and synctest.Wait
// returns once they all are, so timers fire deterministically and nothing
// depends on wall-clock speed.

// collect drains out in the background; call get after synctest.Wait.
func collect(out <-chan Entry) (get func() []Entry, done <-chan struct{}) {
	var (
		mu  sync.Mutex
		got []Entry
	)
	d := make(chan struct{})
	go func() {
		defer close(d)
		for e := range out {
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
		}
	}()
	return func() []Entry {
		mu.Lock()
		defer mu.Unlock()
		return append([]Entry(nil), got...)
	}, d
}

func TestRunMultilineMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestPipeline(t, `[{multiline: {firstline: '^\d', max_wait_time: 3s}}]`, Options{})
		in := make(chan Entry)
		get, done := collect(p.Run(in))
		a, b := ls("app", "a"), ls("app", "b")
		start := time.Now()

		in <- Entry{Labels: a, Timestamp: start, Line: "1 first"}
		time.Sleep(2 * time.Second)
		in <- Entry{Labels: a, Timestamp: start, Line: " cont"}
		in <- Entry{Labels: b, Timestamp: start, Line: "9 other"}
		time.Sleep(2999 * time.Millisecond) // 2.999s after the last line of each stream
		synctest.Wait()
		require.Empty(t, get(), "nothing released before max_wait_time of quiet")

		time.Sleep(time.Millisecond)
		synctest.Wait()
		requireEntries(t, []Entry{
			{Labels: a, Timestamp: start, Line: "1 first\n cont"},
			{Labels: b, Timestamp: start, Line: "9 other"},
		}, get())

		// A new block waits again; closing the input flushes it.
		in <- Entry{Labels: a, Timestamp: start, Line: "2 second"}
		time.Sleep(time.Second)
		synctest.Wait()
		require.Len(t, get(), 2)
		close(in)
		<-done
		require.Len(t, get(), 3)
		require.Equal(t, "2 second", get()[2].Line)
	})
}

func TestRunMultilineTimerRestartsPerLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestPipeline(t, `[{multiline: {firstline: '^start'}}]`, Options{}) // default 3s
		in := make(chan Entry)
		get, done := collect(p.Run(in))
		in <- entry("start", nil)
		for range 5 { // a line every 2s keeps the block open
			time.Sleep(2 * time.Second)
			in <- entry("more", nil)
		}
		synctest.Wait()
		require.Empty(t, get())
		time.Sleep(3 * time.Second)
		synctest.Wait()
		require.Len(t, get(), 1)
		require.Equal(t, "start\nmore\nmore\nmore\nmore\nmore", get()[0].Line)
		close(in)
		<-done
	})
}

func TestRunLimitBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 2 lines/s, burst 2, drop: false: the third and later lines wait.
		p := newTestPipeline(t, `[{limit: {rate: 2, burst: 2}}]`, Options{})
		in := make(chan Entry, 10)
		get, done := collect(p.Run(in))
		start := time.Now()
		for range 6 {
			in <- entry("x", nil)
		}
		synctest.Wait()
		require.Len(t, get(), 2, "two from the burst; the third waits 0.5s for a token")
		require.Equal(t, start, time.Now())
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		require.Len(t, get(), 3)
		close(in)
		<-done
		require.Len(t, get(), 6, "nothing dropped")
		require.Equal(t, 2*time.Second, time.Since(start), "6 lines at 2/s after a burst of 2")
	})
}

func TestRunPassThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestPipeline(t, `[{static_labels: {a: b}}, {drop: {expression: drop}}]`, Options{})
		in := make(chan Entry)
		get, done := collect(p.Run(in))
		in <- entry("keep", nil)
		in <- entry("drop me", nil)
		in <- entry("keep too", nil)
		close(in)
		<-done
		requireEntries(t, []Entry{
			{Labels: ls("a", "b"), Timestamp: ts0, Line: "keep"},
			{Labels: ls("a", "b"), Timestamp: ts0, Line: "keep too"},
		}, get())
	})
}

func TestInspect(t *testing.T) {
	var buf bytes.Buffer
	p := newTestPipeline(t, `
- regex: {expression: '^(?P<level>\w+)'}
- labels: {level: }
- drop: {expression: nothing}
- output: {source: level}
- drop: {expression: info}
`, Options{Inspect: &buf})
	processAll(p, entry("info hello", nil))
	require.Equal(t, `[inspect: regex stage]: 
{stages.Entry}.Extracted["level"]:
	+: info
[inspect: labels stage]: 
{stages.Entry}.Labels["level"]:
	+: info
[inspect: drop stage]: none
[inspect: output stage]: 
{stages.Entry}.Line:
	-: info hello
	+: info
[inspect: drop stage]: dropped
`, buf.String())
}
