package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	promconfig "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// to dir and returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ledgerlog-agent-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestSyslogTLS sends octet-counted and newline-framed messages over TLS;
// a plain TCP client is refused.
func TestSyslogTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	in := make(chan Entry, 10)
	env := &jobEnv{logger: discardLogger(), metrics: NewMetrics()}
	cfg := SyslogConfig{ListenAddress: "127.0.0.1:0", MaxMessageLength: 8192, Labels: map[string]string{"job": "syslog-tls"},
		TLSConfig: &promconfig.TLSConfig{CertFile: certFile, KeyFile: keyFile}}
	st, err := newSyslogTarget("syslog-tls", cfg, nil, env, in)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { st.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	c, err := tls.Dial("tcp", st.addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	m1 := `<165>1 2026-11-25T10:00:00.000Z host app - - - payment settled`
	_, err = fmt.Fprintf(c, "%d %s", len(m1), m1)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	c, err = tls.Dial("tcp", st.addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	_, err = fmt.Fprint(c, "<165>1 2026-11-25T10:00:01.000Z host app - - - second\n")
	require.NoError(t, err)
	require.NoError(t, c.Close())
	var got []string // two connections: any order
	for range 2 {
		select {
		case e := <-in:
			got = append(got, e.Line)
			require.Equal(t, "syslog-tls", string(e.Labels["job"]))
		case <-time.After(10 * time.Second):
			t.Fatalf("entries: %q", got)
		}
	}
	require.ElementsMatch(t, []string{"payment settled", "second"}, got)

	// plain text on the TLS port is not a message
	pc, err := net.Dial("tcp", st.addr)
	require.NoError(t, err)
	_, _ = fmt.Fprint(pc, "<165>1 2026-11-25T10:00:02.000Z host app - - - plain\n")
	_ = pc.Close()
	select {
	case e := <-in:
		t.Fatalf("plain TCP message accepted: %q", e.Line)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestFileSDRefresh rewrites a file_sd target file: the new target's files
// are tailed, the removed target is stopped.
func TestFileSDRefresh(t *testing.T) {
	recv := newTestReceiver(t)
	dir := t.TempDir()
	for _, d := range []string{"a", "b", "sd"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	sdFile := filepath.Join(dir, "sd", "targets.json")
	writeSD := func(sub, team string) {
		t.Helper()
		tmp := sdFile + ".tmp"
		require.NoError(t, os.WriteFile(tmp, []byte(fmt.Sprintf(`[{"targets":["localhost"],"labels":{"__path__":%q,"team":%q}}]`,
			filepath.Join(dir, sub, "*.log"), team)), 0o644))
		require.NoError(t, os.Rename(tmp, sdFile))
	}
	writeSD("a", "alpha")
	a, _ := runAgent(t, `
server: {http_listen_port: 0}
positions: {filename: ${DIR}/positions.yaml, sync_period: 100ms}
clients: [{url: "${URL}", batchwait: 50ms}]
global: {file_watch_config: {min_poll_frequency: 20ms, max_poll_frequency: 50ms}}
target_config: {sync_period: 10s}
scrape_configs:
  - job_name: sd
    file_sd_configs:
      - files: [${DIR}/sd/*.json]
        refresh_interval: 200ms
`, map[string]string{"DIR": dir, "URL": recv.url()})
	aLog, bLog := filepath.Join(dir, "a", "app.log"), filepath.Join(dir, "b", "app.log")
	appendLines(t, aLog, 0, 10)
	waitFor(t, "lines of a", 20*time.Second, func() bool { return len(lineCounts(recv.received())) >= 10 })

	writeSD("b", "beta")
	appendLines(t, bLog, 10, 20)
	waitFor(t, "lines of b", 20*time.Second, func() bool { return len(lineCounts(recv.received())) >= 20 })
	waitFor(t, "a stopped", 20*time.Second, func() bool {
		ts := a.Targets()
		return len(ts) == 1 && ts[0].Path == bLog
	})
	// a is no longer followed
	appendLines(t, aLog, 20, 30)
	time.Sleep(300 * time.Millisecond)
	counts := lineCounts(recv.received())
	for i := 20; i < 30; i++ {
		require.Zero(t, counts[i], "line %d of a stopped target", i)
	}
	require.Equal(t, 20, checkDelivery(t, recv.received(), 20)+20)
	for _, e := range recv.received() {
		want := `team="alpha"`
		if strings.Contains(e.Labels, "/b/") {
			want = `team="beta"`
		}
		require.Contains(t, e.Labels, want)
	}
}

// TestDecompression reads gzip and bzip2 files once, with positions in
// decompressed bytes, and does not read them again after a restart.
func TestDecompression(t *testing.T) {
	recv := newTestReceiver(t)
	dir := t.TempDir()
	logDir := filepath.Join(dir, "logs")
	require.NoError(t, os.MkdirAll(logDir, 0o755))
	var plain bytes.Buffer
	for i := range 300 {
		fmt.Fprintf(&plain, "line-%d\n", i)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err := zw.Write(plain.Bytes())
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(filepath.Join(logDir, "old.log.gz"), gz.Bytes(), 0o644))
	bz2, err := os.ReadFile("testdata/lines300-599.log.bz2") // bzip2 -9 of line-300 .. line-599
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(logDir, "older.log.bz2"), bz2, 0o644))
	cfg := `
server: {http_listen_port: 0}
positions: {filename: ${DIR}/positions.yaml, sync_period: 100ms}
clients: [{url: "${URL}", batchwait: 50ms}]
target_config: {sync_period: 100ms}
scrape_configs:
  - job_name: zipped
    decompression: {enabled: true, format: ${FORMAT}}
    static_configs:
      - labels: {job: zipped, __path__: "${DIR}/logs/*.${EXT}"}
`
	for i, c := range []struct {
		format, ext, file string
		size              int64 // decompressed
	}{{"gz", "gz", "old.log.gz", int64(plain.Len())}, {"bz2", "bz2", "older.log.bz2", 300 * int64(len("line-300\n"))}} {
		env := map[string]string{"DIR": dir, "URL": recv.url(), "FORMAT": c.format, "EXT": c.ext}
		a, stop := runAgent(t, cfg, env)
		waitFor(t, c.format+" lines", 20*time.Second, func() bool { return len(lineCounts(recv.received())) >= 300*(i+1) })
		path := filepath.Join(logDir, c.file)
		waitFor(t, "position", 20*time.Second, func() bool { p, _ := a.Positions().Get(path); return p.Offset == c.size })
		stop()
		// a restart does not read the file again
		_, stop = runAgent(t, cfg, env)
		time.Sleep(500 * time.Millisecond)
		stop()
		require.Zero(t, checkDelivery(t, recv.received(), 300*(i+1)), c.format)
	}
}

// TestReadlineRate limits reading: with readline_rate_drop the lines
// beyond the burst are dropped and counted, without it every line arrives.
func TestReadlineRate(t *testing.T) {
	for _, drop := range []bool{true, false} {
		t.Run(fmt.Sprintf("drop=%v", drop), func(t *testing.T) {
			recv := newTestReceiver(t)
			dir := t.TempDir()
			logDir := filepath.Join(dir, "logs")
			require.NoError(t, os.MkdirAll(logDir, 0o755))
			path := filepath.Join(logDir, "app.log")
			const n = 400
			appendLines(t, path, 0, n)
			yml := strings.Replace(fileAgentYAML, "global:", fmt.Sprintf(`limits_config:
  readline_rate_enabled: true
  readline_rate: 200
  readline_burst: 50
  readline_rate_drop: %v
global:`, drop), 1)
			a, stop := runAgent(t, yml, map[string]string{"DIR": dir, "URL": recv.url()})
			fi, err := os.Stat(path)
			require.NoError(t, err)
			// every line is read (and acknowledged, or dropped and covered)
			waitFor(t, "position at end", 30*time.Second, func() bool {
				p, _ := a.Positions().Get(path)
				return p.Offset == fi.Size()
			})
			stop()
			got := len(lineCounts(recv.received()))
			dropped := int(testutil.ToFloat64(a.metrics.droppedEntries.WithLabelValues("", "", reasonReadRate)))
			t.Logf("drop=%v: %d of %d lines shipped, %d dropped", drop, got, n, dropped)
			if !drop {
				require.Zero(t, dropped)
				require.Zero(t, checkDelivery(t, recv.received(), n))
				return
			}
			require.Equal(t, n, got+dropped, "every line shipped or counted as dropped")
			require.Positive(t, dropped)
			require.GreaterOrEqual(t, got, 50, "the burst passes")
		})
	}
}

// TestBzip2Fixture checks testdata/lines300-599.log.bz2 (made with
// `seq -f line-%g 300 599 | bzip2 -9`; Go has no bzip2 writer) against
// the bzip2 tool when it is installed.
func TestBzip2Fixture(t *testing.T) {
	data, err := os.ReadFile("testdata/lines300-599.log.bz2")
	require.NoError(t, err)
	if _, err := exec.LookPath("bzip2"); err != nil {
		t.Skip("bzip2 not installed")
	}
	cmd := exec.Command("bzip2", "-dc")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(out), "line-300\n"))
	require.Equal(t, 300, strings.Count(string(out), "\n"))
}
