package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
)

// ErrPushDropped marks a batch the server did not take after retries. The
// run goes on (a demo outlives a server restart); other sink errors stop it.
var ErrPushDropped = errors.New("batch dropped")

// RunOptions paces and bounds a run.
type RunOptions struct {
	// Rate is the baseline traffic in lines per second (default 50).
	// Incident lines of the active scenario come on top.
	Rate float64
	// Start is the timestamp of the first line. Zero means now. A start in
	// the past backfills: lines are generated as fast as the sinks take
	// them until the run catches up with the clock, then at Rate.
	Start time.Time
	// Duration bounds the generated time span (from Start); 0: unbounded.
	Duration time.Duration
	// Lines bounds the number of lines; 0: unbounded.
	Lines int
	// Step is the generation tick (default 100ms): each tick's lines are
	// spread evenly over it and handed to the sinks together.
	Step time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives push failures (default: discard).
	Logger *slog.Logger
}

// Stats counts what a run generated.
type Stats struct {
	Lines   int
	ByLevel map[string]int // "service/LEVEL" -> lines
	First   int64          // first timestamp, Unix ns
	Last    int64          // last timestamp, Unix ns
	Dropped int            // push errors (batches given up on)
}

// String is a one-line-per-service summary.
func (s Stats) String() string {
	svc := map[string][]string{}
	var names []string
	keys := make([]string, 0, len(s.ByLevel))
	for k := range s.ByLevel {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name, level, _ := strings.Cut(k, "/")
		if _, ok := svc[name]; !ok {
			names = append(names, name)
		}
		svc[name] = append(svc[name], fmt.Sprintf("%s=%d", level, s.ByLevel[k]))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "lines=%d", s.Lines)
	if s.Lines > 0 {
		fmt.Fprintf(&b, " first=%s last=%s", time.Unix(0, s.First).UTC().Format(time.RFC3339Nano), time.Unix(0, s.Last).UTC().Format(time.RFC3339Nano))
	}
	if s.Dropped > 0 {
		fmt.Fprintf(&b, " push_errors=%d", s.Dropped)
	}
	b.WriteByte('\n')
	for _, n := range names {
		fmt.Fprintf(&b, "  %-18s %s\n", n, strings.Join(svc[n], " "))
	}
	return b.String()
}

// Run generates lines until ctx is done or a bound of o is reached, hands
// them to every sink, updates m (may be nil) and closes the sinks. The
// scenario is read from ctrl at every tick.
func Run(ctx context.Context, g *Generator, ctrl *Controller, m *Metrics, sinks []Sink, o RunOptions) (Stats, error) {
	if o.Rate <= 0 {
		o.Rate = 50
	}
	if o.Step <= 0 {
		o.Step = 100 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	st := Stats{ByLevel: map[string]int{}}
	t := o.Start
	if t.IsZero() {
		t = o.Now()
	}
	var end time.Time
	if o.Duration > 0 {
		end = t.Add(o.Duration)
	}
	var accB, accO float64
	recs := make([]Record, 0, 64)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var runErr error
loop:
	for ctx.Err() == nil {
		if !end.IsZero() && !t.Before(end) {
			break
		}
		if o.Lines > 0 && st.Lines >= o.Lines {
			break
		}
		step := o.Step
		if !end.IsZero() && end.Sub(t) < step {
			step = end.Sub(t)
		}
		tickEnd := t.Add(step)
		if d := tickEnd.Sub(o.Now()); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				break loop
			case <-timer.C:
			}
		}
		sc := ctrl.Current()
		accB += o.Rate * step.Seconds()
		nb := int(accB)
		accB -= float64(nb)
		rate := sc.overlayRate()
		if rate == 0 {
			accO = 0
		}
		accO += rate * step.Seconds()
		no := int(accO)
		accO -= float64(no)
		if o.Lines > 0 {
			left := o.Lines - st.Lines
			nb = min(nb, left)
			no = min(no, left-nb)
		}

		recs = recs[:0]
		base, span := t.UnixNano(), float64(step)
		for i := range nb {
			recs = append(recs, g.Baseline(base+int64((float64(i)+0.5)*span/float64(nb)), sc))
		}
		for i := range no {
			if rec, ok := g.Incident(base+int64((float64(i)+0.25)*span/float64(no)), sc); ok {
				recs = append(recs, rec)
			}
		}
		sort.SliceStable(recs, func(i, j int) bool { return recs[i].Timestamp < recs[j].Timestamp })
		for i := range recs {
			r := &recs[i]
			if m != nil {
				m.Observe(r, g.Environment(), sc)
			}
			if st.Lines == 0 {
				st.First = r.Timestamp
			}
			st.Last = r.Timestamp
			st.Lines++
			st.ByLevel[r.Service+"/"+r.Level]++
		}
		if len(recs) > 0 {
			if err := writeAll(ctx, sinks, recs, &st, o.Logger); err != nil {
				runErr = err
				break
			}
		}
		t = tickEnd
	}
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	errs := []error{runErr}
	for _, s := range sinks {
		if err := s.Close(closeCtx); err != nil {
			if errors.Is(err, ErrPushDropped) {
				st.Dropped++
				o.Logger.Warn("push failed", "err", err)
				continue
			}
			errs = append(errs, err)
		}
	}
	return st, errors.Join(errs...)
}

func writeAll(ctx context.Context, sinks []Sink, recs []Record, st *Stats, logger *slog.Logger) error {
	for _, s := range sinks {
		if err := s.Write(ctx, recs); err != nil {
			if errors.Is(err, ErrPushDropped) {
				st.Dropped++
				logger.Warn("push failed", "err", err)
				continue
			}
			return err
		}
	}
	return nil
}
