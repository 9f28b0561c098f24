package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary act as the server binary in a child
// process: crash tests SIGKILL it.
func TestMain(m *testing.M) {
	if os.Getenv("LEDGERLOG_CHILD_SERVER") == "1" {
		var args []string
		_ = json.Unmarshal([]byte(os.Getenv("LEDGERLOG_CHILD_ARGS")), &args)
		if err := RunServer(context.Background(), args, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// testServer is a real server on a loopback port.
type testServer struct {
	t      testing.TB
	url    string
	dir    string
	args   []string
	cancel context.CancelFunc
	done   chan error
	cmd    *exec.Cmd // set for child-process servers
	logs   *bytes.Buffer
}

func serverArgs(dir string, port int, extra ...string) []string {
	return append([]string{
		"-server.http-listen-port", strconv.Itoa(port),
		"-common.path-prefix", dir,
		"-log.level", "warn",
	}, extra...)
}

// startServer runs the server in-process.
func startServer(t testing.TB, dir string, extra ...string) *testServer {
	t.Helper()
	port := freePort(t)
	s := &testServer{t: t, dir: dir, url: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan error, 1), logs: &bytes.Buffer{}}
	s.args = serverArgs(dir, port, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- RunServer(ctx, s.args, io.Discard, &syncWriter{w: s.logs}) }()
	s.waitReady()
	t.Cleanup(s.stop)
	return s
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// startChild runs the server as a child process of the test binary.
func startChild(t testing.TB, dir string, port int, extra ...string) *testServer {
	t.Helper()
	s := &testServer{t: t, dir: dir, url: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &bytes.Buffer{}}
	s.args = serverArgs(dir, port, extra...)
	argsJSON, _ := json.Marshal(s.args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LEDGERLOG_CHILD_SERVER=1", "LEDGERLOG_CHILD_ARGS="+string(argsJSON))
	cmd.Stdout = io.Discard
	cmd.Stderr = &syncWriter{w: s.logs}
	require.NoError(t, cmd.Start())
	s.cmd = cmd
	s.waitReady()
	return s
}

func (s *testServer) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
}

func (s *testServer) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.url + "/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if s.done != nil {
			select {
			case err := <-s.done:
				s.t.Fatalf("server exited: %v\n%s", err, s.logs.String())
			default:
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("server at %s not ready\n%s", s.url, s.logs.String())
}

func (s *testServer) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("server stopped with error: %v", err)
		}
	case <-time.After(60 * time.Second):
		s.t.Errorf("server did not stop")
	}
}

type response struct {
	status int
	body   []byte
	header http.Header
}

func (s *testServer) do(method, path string, body []byte, headers ...string) response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	require.NoError(s.t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return response{status: resp.StatusCode, body: b, header: resp.Header}
}

func (s *testServer) get(path string, params url.Values, headers ...string) response {
	s.t.Helper()
	if params != nil {
		path += "?" + params.Encode()
	}
	return s.do(http.MethodGet, path, nil, headers...)
}

// pushJSON pushes one stream with lines at the given timestamps.
func (s *testServer) pushJSON(labels map[string]string, ts []int64, lines []string, headers ...string) response {
	s.t.Helper()
	var values [][]string
	for i := range ts {
		values = append(values, []string{strconv.FormatInt(ts[i], 10), lines[i]})
	}
	body, err := json.Marshal(map[string]any{"streams": []any{map[string]any{"stream": labels, "values": values}}})
	require.NoError(s.t, err)
	return s.do(http.MethodPost, "/loki/api/v1/push", body, append([]string{"Content-Type", "application/json"}, headers...)...)
}

type streamsResult struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Stream map[string]string `json:"stream"`
			Values [][]any           `json:"values"`
		} `json:"result"`
		Stats map[string]any `json:"stats"`
	} `json:"data"`
	Warnings []string `json:"warnings"`
}

// queryRange runs a log query and returns "labels\tts\tline" rows in
// answer order.
func (s *testServer) queryRange(q string, start, end int64, limit int, dir string, headers ...string) ([]string, streamsResult) {
	s.t.Helper()
	r := s.get("/loki/api/v1/query_range", url.Values{
		"query": {q}, "start": {strconv.FormatInt(start, 10)}, "end": {strconv.FormatInt(end, 10)},
		"limit": {strconv.Itoa(limit)}, "direction": {dir},
	}, headers...)
	require.Equal(s.t, http.StatusOK, r.status, "query %s: %s", q, r.body)
	var res streamsResult
	require.NoError(s.t, json.Unmarshal(r.body, &res))
	var rows []string
	for _, st := range res.Data.Result {
		for _, v := range st.Values {
			rows = append(rows, fmt.Sprintf("%s\t%s\t%s", labelString(st.Stream), v[0], v[1]))
		}
	}
	return rows, res
}

func labelString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k == "service_name" || k == "detected_level" {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + m[k])
	}
	return b.String()
}

func tempDir(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	return filepath.Join(d, "data")
}

var quietClient = &http.Client{Timeout: 10 * time.Second}

// pushQuiet pushes without failing the test on transport errors (the
// server may be killed mid-request).
func pushQuiet(base string, labels map[string]string, ts []int64, lines []string) (int, error) {
	var values [][]string
	for i := range ts {
		values = append(values, []string{strconv.FormatInt(ts[i], 10), lines[i]})
	}
	body, err := json.Marshal(map[string]any{"streams": []any{map[string]any{"stream": labels, "values": values}}})
	if err != nil {
		return 0, err
	}
	resp, err := quietClient.Post(base+"/loki/api/v1/push", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
