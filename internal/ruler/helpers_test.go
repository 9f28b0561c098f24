package ruler

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scripted is a QueryFunc whose answers the test sets per query text; a
// query without an answer returns an empty vector. It is the ruler's
// injection point for the engine (the app wires the real engine).
type scripted struct {
	mu      sync.Mutex
	answers map[string]Vector
	errs    map[string]error
	calls   int
}

func newScripted() *scripted {
	return &scripted{answers: map[string]Vector{}, errs: map[string]error{}}
}

func (s *scripted) set(q string, v Vector) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers[q] = v
}

func (s *scripted) fail(q string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs[q] = err
}

func (s *scripted) query(_ context.Context, _, q string, _ time.Time) (Vector, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if err := s.errs[q]; err != nil {
		return nil, err
	}
	return s.answers[q], nil
}

func sample(v float64, kv ...string) Sample {
	return Sample{Labels: labels.FromStrings(kv...), Value: v}
}

// testManager returns a manager over temporary directories.
func testManager(t testing.TB, q QueryFunc, edit func(*Config)) (*Manager, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.EvaluationInterval.Set("1s")
	cfg.PollInterval.Set("1s")
	if edit != nil {
		edit(&cfg)
	}
	m, err := New(Options{
		Config:     cfg,
		RuleDir:    dir + "/rules",
		StateDir:   dir + "/rules-temp",
		Query:      q,
		ServerURL:  "http://ledgerlog.example:3100",
		Registerer: prometheus.NewRegistry(),
	})
	require.NoError(t, err)
	return m, dir
}

// mustGroup parses a group for a test.
func mustGroup(t testing.TB, y string) RuleGroup {
	t.Helper()
	g, err := ParseGroup([]byte(y), ValidationOptions{})
	require.NoError(t, err)
	return g
}

func mustLabels(kv ...string) labels.Labels { return labels.FromStrings(kv...) }
