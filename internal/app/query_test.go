package app

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runQuery runs `ledgerlog query` and returns stdout, stderr and the error.
func runQuery(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := RunQuery(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

type exportRow struct {
	Labels    map[string]string `json:"labels"`
	Line      string            `json:"line"`
	Timestamp string            `json:"timestamp"`
}

func (r exportRow) key() string { return fmt.Sprint(r.Labels) + "|" + r.Timestamp + "|" + r.Line }

func parseJSONL(t *testing.T, out string) []exportRow {
	t.Helper()
	var rows []exportRow
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		var r exportRow
		require.NoError(t, json.Unmarshal([]byte(l), &r), l)
		rows = append(rows, r)
	}
	return rows
}

// pushExportData stores n lines over 3 streams in runs that share
// timestamps, within and across streams, and returns them as rows.
func pushExportData(t *testing.T, s *testServer, base time.Time, n int) []exportRow {
	t.Helper()
	var rows []exportRow
	per := map[string][][]any{}
	for i := 0; i < n; i++ {
		app := []string{"pay", "ledger", "audit"}[i%3]
		ts := base.Add(time.Duration(i/7) * time.Millisecond) // runs of 7 equal timestamps
		line := fmt.Sprintf("line %05d of %s", i, app)
		per[app] = append(per[app], rdValue(ts.UnixNano(), line))
		rows = append(rows, exportRow{
			Labels:    map[string]string{"app": app, "service_name": app, "detected_level": "unknown"},
			Line:      line,
			Timestamp: ts.UTC().Format(time.RFC3339Nano),
		})
	}
	for app, vals := range per {
		for i := 0; i < len(vals); i += 500 {
			rdPush(t, s, map[string]string{"app": app}, vals[i:min(i+500, len(vals))])
		}
	}
	return rows
}

func sortRows(rows []exportRow, forward bool) {
	sort.SliceStable(rows, func(i, j int) bool {
		ti, _ := time.Parse(time.RFC3339Nano, rows[i].Timestamp)
		tj, _ := time.Parse(time.RFC3339Nano, rows[j].Timestamp)
		if !ti.Equal(tj) {
			if forward {
				return ti.Before(tj)
			}
			return ti.After(tj)
		}
		return rows[i].key() < rows[j].key()
	})
}

// TestQueryCLIExportPaging exports more lines than a batch and checks the
// result against the stored data exactly: every line once, in order,
// across page edges that fall inside runs of equal timestamps.
func TestQueryCLIExportPaging(t *testing.T) {
	s := startServer(t, tempDir(t))
	base := time.Now().Add(-40 * time.Minute).Truncate(time.Second)
	const n = 2000
	all := pushExportData(t, s, base, n)
	from := base.Add(-time.Second).Format(time.RFC3339Nano)
	to := base.Add(time.Minute).Format(time.RFC3339Nano)

	for _, tc := range []struct {
		name    string
		forward bool
		batch   int
		limit   int
	}{
		{"backward all", false, 97, 0},
		{"forward all", true, 100, 0},
		{"backward limit", false, 64, 1234},
		{"forward limit", true, 250, 777},
		{"one batch", false, 5000, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{`{app=~"pay|ledger|audit"}`, "--addr", s.url, "--from", from, "--to", to,
				"--batch", strconv.Itoa(tc.batch), "--limit", strconv.Itoa(tc.limit), "-o", "jsonl", "--progress", "always"}
			if tc.forward {
				args = append(args, "--forward")
			}
			out, errOut, err := runQuery(t, args...)
			require.NoError(t, err, errOut)
			got := parseJSONL(t, out)
			want := append([]exportRow(nil), all...)
			sortRows(want, tc.forward)
			if tc.limit > 0 {
				want = want[:tc.limit]
				// Which lines of the last timestamp make the cut is the
				// server's choice: compare that timestamp as a count.
				edge := want[len(want)-1].Timestamp
				cut := func(rs []exportRow) ([]exportRow, int) {
					var keep []exportRow
					k := 0
					for _, r := range rs {
						if r.Timestamp == edge {
							k++
						} else {
							keep = append(keep, r)
						}
					}
					return keep, k
				}
				var wk, gk int
				want, wk = cut(want)
				got, gk = cut(got)
				require.Equal(t, wk, gk)
			}
			seen := map[string]bool{}
			for _, r := range got {
				require.False(t, seen[r.key()], "duplicate %v", r)
				seen[r.key()] = true
			}
			// Order: by time in the direction; equal timestamps in any order.
			gotSorted := append([]exportRow(nil), got...)
			sortRows(gotSorted, tc.forward)
			for i := range got {
				require.Equal(t, gotSorted[i].Timestamp, got[i].Timestamp, "row %d out of order", i)
			}
			require.Equal(t, want, gotSorted)
			if tc.batch < n && (tc.limit == 0 || tc.limit > tc.batch) {
				require.Contains(t, errOut, "exported ")
			}
		})
	}
}

func TestQueryCLIEqualTimestampsBeyondBatch(t *testing.T) {
	s := startServer(t, tempDir(t))
	ts := time.Now().Add(-10 * time.Minute).UnixNano()
	var vals [][]any
	for i := 0; i < 12; i++ {
		vals = append(vals, rdValue(ts, fmt.Sprintf("same %02d", i)))
	}
	rdPush(t, s, map[string]string{"app": "burst"}, vals)
	out, _, err := runQuery(t, `{app="burst"}`, "--addr", s.url, "--since", "1h", "--batch", "5", "--limit", "0", "-o", "raw")
	if err != nil {
		// The server returns the same 5 of the 12 lines every time.
		require.Contains(t, err.Error(), "raise --batch")
		return
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(lines)
	require.Len(t, lines, 12)
	for i, l := range lines {
		require.Equal(t, fmt.Sprintf("same %02d", i), l)
	}
}

func TestQueryCLIModesAndOutputs(t *testing.T) {
	s := startServer(t, tempDir(t))
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	rdPush(t, s, map[string]string{"app": "api", "env": "prod"}, [][]any{rdValue(base.UnixNano(), "GET /a 200"), rdValue(base.Add(time.Second).UnixNano(), "GET /b 500")})
	rdPush(t, s, map[string]string{"app": "db", "env": "prod"}, [][]any{rdValue(base.Add(2*time.Second).UnixNano(), "slow query")})
	addr := []string{"--addr", s.url, "--since", "1h"}

	out, _, err := runQuery(t, append([]string{`{env="prod"}`}, addr...)...)
	require.NoError(t, err)
	require.Equal(t, base.Add(2*time.Second).UTC().Format(time.RFC3339Nano)+` {app="db", detected_level="unknown", env="prod", service_name="db"} slow query`+"\n"+
		base.Add(time.Second).UTC().Format(time.RFC3339Nano)+` {app="api", detected_level="unknown", env="prod", service_name="api"} GET /b 500`+"\n"+
		base.UTC().Format(time.RFC3339Nano)+` {app="api", detected_level="unknown", env="prod", service_name="api"} GET /a 200`+"\n", out)

	out, _, err = runQuery(t, append([]string{"query", `{env="prod"} |= "GET"`, "-o", "raw", "--forward"}, addr...)...)
	require.NoError(t, err)
	require.Equal(t, "GET /a 200\nGET /b 500\n", out)

	out, _, err = runQuery(t, append([]string{`{app="api"}`, "--no-labels", "--limit", "1"}, addr...)...)
	require.NoError(t, err)
	require.Equal(t, base.Add(time.Second).UTC().Format(time.RFC3339Nano)+" GET /b 500\n", out)

	out, _, err = runQuery(t, append([]string{"labels"}, addr...)...)
	require.NoError(t, err)
	require.Equal(t, "app\nenv\nservice_name\n", out)
	out, _, err = runQuery(t, append([]string{"labels", "app"}, addr...)...)
	require.NoError(t, err)
	require.Equal(t, "api\ndb\n", out)

	out, _, err = runQuery(t, append([]string{"series", `{env="prod"}`}, addr...)...)
	require.NoError(t, err)
	require.Equal(t, `{app="api", env="prod", service_name="api"}`+"\n"+`{app="db", env="prod", service_name="db"}`+"\n", out)
	out, _, err = runQuery(t, append([]string{"series", `{env="prod"}`, "--analyze-labels"}, addr...)...)
	require.NoError(t, err)
	require.Contains(t, out, "Total Streams:  2\n")
	require.Regexp(t, `app\s+2\s+2`, out)
	require.Regexp(t, `env\s+1\s+2`, out)

	out, _, err = runQuery(t, append([]string{"stats", `{app="api"}`}, addr...)...)
	require.NoError(t, err)
	require.Contains(t, out, "Streams:  1\n")
	require.Contains(t, out, "Entries:  2\n")

	out, _, err = runQuery(t, append([]string{"volume", `{env="prod"}`, "-o", "jsonl"}, addr...)...)
	require.NoError(t, err)
	require.Equal(t, `{"metric":{"env":"prod"},"value":[`, out[:len(`{"metric":{"env":"prod"},"value":[`)])
	out, _, err = runQuery(t, append([]string{"volume", `{env="prod"}`, "--target-labels", "app", "--step", "1m"}, addr...)...)
	require.NoError(t, err)
	var matrix []struct {
		Metric map[string]string `json:"metric"`
		Values [][]any           `json:"values"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &matrix), out)
	require.Len(t, matrix, 2)

	// Metric queries print their result as JSON.
	out, _, err = runQuery(t, append([]string{"instant-query", "vector(1)+vector(1)"}, addr...)...)
	require.NoError(t, err)
	require.Contains(t, out, `"2"`)
	out, _, err = runQuery(t, append([]string{`sum by (app) (count_over_time({env="prod"}[1h]))`, "--step", "10m", "-o", "jsonl"}, addr...)...)
	require.NoError(t, err)
	rows := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, rows, 2, out)
	require.Contains(t, out, `{"app":"api"}`)
	require.Contains(t, out, `"2"]`)

	// The server's status and message reach the user.
	_, _, err = runQuery(t, append([]string{`{app="api"`}, addr...)...)
	require.Error(t, err)
	require.Contains(t, err.Error(), "400 Bad Request")
	require.Contains(t, err.Error(), "parse error")
	_, _, err = runQuery(t, append([]string{`{app="api"}`, "--limit", "6000", "--batch", "6000"}, addr...)...)
	require.Error(t, err)
	require.Contains(t, err.Error(), "max entries limit per query exceeded")
	_, _, err = runQuery(t, "labels", "--addr", "http://127.0.0.1:1")
	require.Error(t, err)
	require.Contains(t, err.Error(), "/loki/api/v1/labels")
	_, _, err = runQuery(t, "labels", "a", "b", "--addr", s.url)
	require.ErrorContains(t, err, "at most one label name")
	_, _, err = runQuery(t, `{app="x"}`, "-o", "yaml", "--addr", s.url)
	require.ErrorContains(t, err, `unknown output format "yaml"`)
	_, _, err = runQuery(t, `{app="x"}`, "--from", "yesterday", "--addr", s.url)
	require.ErrorContains(t, err, "--from")
}

// TestQueryCLIAuthTLS runs the CLI through an HTTPS proxy that demands a
// tenant and credentials, as a Loki gateway does.
func TestQueryCLIAuthTLS(t *testing.T) {
	s := startServer(t, tempDir(t), "-auth.enabled")
	now := time.Now().Add(-time.Minute)
	rdPush(t, s, map[string]string{"app": "secure"}, [][]any{rdValue(now.UnixNano(), "secret line")}, "X-Scope-OrgID", "bank")

	target, err := url.Parse(s.url)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var authSeen []string
	gw := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		authSeen = append(authSeen, r.Header.Get("Authorization"))
		mu.Unlock()
		user, pass, ok := r.BasicAuth()
		if !(ok && user == "alice" && pass == "s3cret") && r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer gw.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: gw.Certificate().Raw}), 0o600))

	out, _, err := runQuery(t, `{app="secure"}`, "--addr", gw.URL, "--tls-ca-cert", ca, "--org-id", "bank", "--username", "alice", "--password", "s3cret", "-o", "raw")
	require.NoError(t, err)
	require.Equal(t, "secret line\n", out)
	out, _, err = runQuery(t, `{app="secure"}`, "--addr", gw.URL, "--tls-skip-verify", "--org-id", "bank", "--bearer-token", "tok", "-o", "raw")
	require.NoError(t, err)
	require.Equal(t, "secret line\n", out)
	mu.Lock()
	require.Contains(t, authSeen, "Bearer tok")
	mu.Unlock()

	// Another tenant sees nothing; no tenant is the server's 401.
	out, _, err = runQuery(t, `{app="secure"}`, "--addr", gw.URL, "--tls-ca-cert", ca, "--org-id", "other", "--bearer-token", "tok", "-o", "raw")
	require.NoError(t, err)
	require.Empty(t, out)
	_, _, err = runQuery(t, `{app="secure"}`, "--addr", gw.URL, "--tls-ca-cert", ca, "--bearer-token", "tok")
	require.ErrorContains(t, err, "401 Unauthorized: no org id")
	_, _, err = runQuery(t, `{app="secure"}`, "--addr", gw.URL, "--tls-ca-cert", ca, "--org-id", "bank", "--password", "wrong")
	require.ErrorContains(t, err, "401 Unauthorized: unauthorized")
	// An untrusted certificate fails.
	_, _, err = runQuery(t, `{app="secure"}`, "--addr", gw.URL, "--org-id", "bank", "--bearer-token", "tok")
	require.Error(t, err)
	var uerr x509.UnknownAuthorityError
	require.ErrorAs(t, err, &uerr)
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestQueryCLITail(t *testing.T) {
	s := startServer(t, tempDir(t))
	rdPush(t, s, map[string]string{"app": "live"}, [][]any{rdValue(time.Now().Add(-time.Minute).UnixNano(), "before")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- RunQuery(ctx, []string{"--tail", `{app="live"}`, "--addr", s.url, "-o", "raw", "--delay-for", "1s"}, &out, &errOut)
	}()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if out.String() == want {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("tail output %q, want %q (stderr %q)", out.String(), want, errOut.String())
	}
	waitFor("before\n")
	for i := 0; i < 3; i++ {
		rdPush(t, s, map[string]string{"app": "live"}, [][]any{rdValue(time.Now().UnixNano(), fmt.Sprintf("live %d", i))})
	}
	waitFor("before\nlive 0\nlive 1\nlive 2\n")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("tail did not stop")
	}
}
