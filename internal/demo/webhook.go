package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Notification is an Alertmanager webhook payload (version 4), the fields
// the demo shows.
type Notification struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	GroupKey          string            `json:"groupKey"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	Alerts            []Alert           `json:"alerts"`
	// Path is the URL path the notification was posted to; ReceivedAt when.
	Path       string    `json:"path"`
	ReceivedAt time.Time `json:"receivedAt"`
}

// Alert is one alert of a notification.
type Alert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

// maxWebhookBody bounds a notification body.
const maxWebhookBody = 4 << 20

// DecodeNotification parses an Alertmanager webhook body.
func DecodeNotification(body []byte) (Notification, error) {
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil {
		return Notification{}, fmt.Errorf("decode alertmanager notification: %w", err)
	}
	return n, nil
}

// AlertLog is a webhook receiver for Alertmanager: POST /webhook/<name>
// records a notification and logs each alert in it; GET /webhook lists the
// most recent notifications as JSON (newest last). It is safe for
// concurrent use.
type AlertLog struct {
	logger *slog.Logger // immutable
	keep   int          // immutable

	mu   sync.Mutex
	recv []Notification // guarded by mu
}

// NewAlertLog keeps the last keep notifications (default 200).
func NewAlertLog(logger *slog.Logger, keep int) *AlertLog {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if keep <= 0 {
		keep = 200
	}
	return &AlertLog{logger: logger, keep: keep}
}

// Notifications returns a copy of the recorded notifications.
func (a *AlertLog) Notifications() []Notification {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Notification(nil), a.recv...)
}

// ServeHTTP implements the receiver.
func (a *AlertLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.Notifications())
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBody+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxWebhookBody {
		http.Error(w, "notification too large", http.StatusRequestEntityTooLarge)
		return
	}
	n, err := DecodeNotification(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n.Path = r.URL.Path
	n.ReceivedAt = time.Now().UTC()
	for _, al := range n.Alerts {
		a.logger.Info("alert notification", "receiver", n.Receiver, "path", n.Path, "status", al.Status,
			"alertname", al.Labels["alertname"], "severity", al.Labels["severity"], "team", al.Labels["team"],
			"labels", labelText(al.Labels), "summary", al.Annotations["summary"])
	}
	a.mu.Lock()
	a.recv = append(a.recv, n)
	if len(a.recv) > a.keep {
		a.recv = append(a.recv[:0], a.recv[len(a.recv)-a.keep:]...)
	}
	a.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func labelText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return "{" + strings.Join(parts, ",") + "}"
}
