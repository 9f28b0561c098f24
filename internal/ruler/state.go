package ruler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// The alert state of a group is kept in one JSON file,
// <state dir>/<tenant>/<namespace>/<group>.json (names escaped), replaced
// atomically after every evaluation in which the group has alerts and
// removed when it has none. It plays the part of Prometheus'
// ALERTS_FOR_STATE series: after a restart, alerts come back with their
// state, activeAt, firedAt and last-sent times.

// stateVersion is the format version of state files.
const stateVersion = 1

type stateFile struct {
	Version     int         `json:"version"`
	Tenant      string      `json:"tenant"`
	Namespace   string      `json:"namespace"`
	Group       string      `json:"group"`
	EvaluatedAt time.Time   `json:"evaluatedAt"`
	Rules       []ruleState `json:"rules"`
}

type ruleState struct {
	Alert string `json:"alert"`
	Expr  string `json:"expr"`
	// Index counts earlier rules of the group with the same alert and
	// expression, so that duplicates restore one to one.
	Index  int          `json:"index"`
	Alerts []alertState `json:"alerts"`
}

type alertState struct {
	Labels          map[string]string `json:"labels"`
	Annotations     map[string]string `json:"annotations,omitempty"`
	State           string            `json:"state"`
	Value           string            `json:"value"`
	ActiveAt        time.Time         `json:"activeAt"`
	FiredAt         time.Time         `json:"firedAt,omitzero"`
	ResolvedAt      time.Time         `json:"resolvedAt,omitzero"`
	LastSentAt      time.Time         `json:"lastSentAt,omitzero"`
	ValidUntil      time.Time         `json:"validUntil,omitzero"`
	KeepFiringSince time.Time         `json:"keepFiringSince,omitzero"`
}

// StateCorruptionError is a state file that cannot be decoded. The group
// then starts without restored alerts.
type StateCorruptionError struct {
	Path string
	Err  error
}

func (e *StateCorruptionError) Error() string {
	return fmt.Sprintf("corrupt alert state file %s: %v", e.Path, e.Err)
}

func (e *StateCorruptionError) Unwrap() error { return e.Err }

// escapeName makes a namespace or group name safe as one path element:
// letters, digits, '-' and '_' stay; every other byte becomes %XX.
func escapeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func statePath(dir, tenantID, ns, group string) string {
	return filepath.Join(dir, tenantID, escapeName(ns), escapeName(group)+".json")
}

// ruleKey identifies an alerting rule across reloads and restarts.
func ruleKey(alert, expr string, index int) string {
	return alert + "\x00" + expr + "\x00" + strconv.Itoa(index)
}

func encodeAlerts(alerts []Alert) []alertState {
	out := make([]alertState, 0, len(alerts))
	for _, a := range alerts {
		out = append(out, alertState{
			Labels:          a.Labels.Map(),
			Annotations:     a.Annotations.Map(),
			State:           a.State.String(),
			Value:           strconv.FormatFloat(a.Value, 'g', -1, 64),
			ActiveAt:        a.ActiveAt.UTC(),
			FiredAt:         a.FiredAt.UTC(),
			ResolvedAt:      a.ResolvedAt.UTC(),
			LastSentAt:      a.LastSentAt.UTC(),
			ValidUntil:      a.ValidUntil.UTC(),
			KeepFiringSince: a.KeepFiringSince.UTC(),
		})
	}
	return out
}

func decodeAlerts(in []alertState) ([]Alert, error) {
	out := make([]Alert, 0, len(in))
	for _, s := range in {
		st, err := parseAlertState(s.State)
		if err != nil {
			return nil, err
		}
		v, err := strconv.ParseFloat(s.Value, 64)
		if err != nil {
			return nil, fmt.Errorf("alert value %q: %w", s.Value, err)
		}
		if s.ActiveAt.IsZero() {
			return nil, errors.New("alert without activeAt")
		}
		out = append(out, Alert{
			State:           st,
			Labels:          labels.FromMap(s.Labels),
			Annotations:     labels.FromMap(s.Annotations),
			Value:           v,
			ActiveAt:        s.ActiveAt,
			FiredAt:         s.FiredAt,
			ResolvedAt:      s.ResolvedAt,
			LastSentAt:      s.LastSentAt,
			ValidUntil:      s.ValidUntil,
			KeepFiringSince: s.KeepFiringSince,
		})
	}
	return out, nil
}

// readState reads a group's state file; a missing file is (nil, nil).
func readState(path string) (*stateFile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read alert state: %w", err)
	}
	var sf stateFile
	if err := json.Unmarshal(b, &sf); err != nil {
		return nil, &StateCorruptionError{Path: path, Err: err}
	}
	if sf.Version != stateVersion {
		return nil, &StateCorruptionError{Path: path, Err: fmt.Errorf("unknown version %d", sf.Version)}
	}
	return &sf, nil
}

func writeState(path string, sf *stateFile) error {
	b, err := json.MarshalIndent(sf, "", "  ")
	if err != nil {
		return fmt.Errorf("encode alert state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create alert state directory: %w", err)
	}
	return writeFileAtomic(path, b)
}

func removeState(path string) error {
	err := os.Remove(path)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("remove alert state: %w", err)
}
