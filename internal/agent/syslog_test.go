package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

func frames(t testing.TB, in string, max int) ([]string, error) {
	t.Helper()
	var out []string
	err := readSyslogFrames(bufio.NewReader(strings.NewReader(in)), max, func(m []byte) error {
		out = append(out, string(m))
		return nil
	})
	return out, err
}

func TestSyslogFraming(t *testing.T) {
	f := func(in string, want ...string) {
		t.Helper()
		got, err := frames(t, in, 100)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	f("11 <1>1 - - - 3 <2>", "<1>1 - - - ", "<2>")
	f("<1>a\n<2>b\r\n\n<3>c", "<1>a", "<2>b", "<3>c")
	f("")
	_, err := frames(t, "200 <1>", 100)
	require.ErrorIs(t, err, errSyslogTooLong)
	_, err = frames(t, "1x <1>", 100)
	require.ErrorIs(t, err, errSyslogFrame)
	_, err = frames(t, "<1>"+strings.Repeat("a", 200)+"\n", 100)
	require.ErrorIs(t, err, errSyslogTooLong)
}

func TestSyslogTargetLabels(t *testing.T) {
	in := make(chan Entry, 10)
	env := &jobEnv{logger: discardLogger(), metrics: NewMetrics()}
	cfg := SyslogConfig{ListenAddress: "127.0.0.1:0", LabelStructuredData: true, UseIncomingTimestamp: true,
		MaxMessageLength: 8192, Labels: map[string]string{"job": "syslog"}, IdleTimeout: 0}
	st, err := newSyslogTarget("syslog", cfg, mustRelabel(t, `
- source_labels: [__syslog_message_hostname]
  target_label: host
- source_labels: [__syslog_message_severity]
  target_label: severity
- source_labels: [__syslog_message_sd_exampleSDID_32473_iut]
  target_label: iut
- source_labels: [__syslog_message_app_name]
  target_label: app
`), env, in)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { st.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	c, err := net.Dial("tcp", st.addr)
	require.NoError(t, err)
	msg := `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event`
	_, err = fmt.Fprintf(c, "%d %s", len(msg), msg)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	select {
	case e := <-in:
		require.Equal(t, "An application event", e.Line)
		require.Equal(t, model.LabelSet{"job": "syslog", "host": "mymachine.example.com", "severity": "notice", "iut": "3", "app": "evntslog"}, e.Labels)
		require.Equal(t, time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC), e.Timestamp.UTC())
	case <-time.After(5 * time.Second):
		t.Fatal("no entry")
	}
}

func TestSyslogRFC3164UDP(t *testing.T) {
	in := make(chan Entry, 10)
	env := &jobEnv{logger: discardLogger(), metrics: NewMetrics()}
	st, err := newSyslogTarget("s", SyslogConfig{ListenAddress: "127.0.0.1:0", ListenProtocol: "udp", SyslogFormat: "rfc3164",
		MaxMessageLength: 8192}, mustRelabel(t, "- source_labels: [__syslog_message_app_name]\n  target_label: app\n"), env, in)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { st.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	c, err := net.Dial("udp", st.addr)
	require.NoError(t, err)
	_, err = c.Write([]byte("<34>Oct 11 22:14:15 mymachine su: 'su root' failed\n"))
	require.NoError(t, err)
	_ = c.Close()
	select {
	case e := <-in:
		require.Equal(t, "'su root' failed", e.Line)
		require.Equal(t, model.LabelValue("su"), e.Labels["app"])
	case <-time.After(5 * time.Second):
		t.Fatal("no entry")
	}
}

func FuzzSyslogOctetCounting(f *testing.F) {
	f.Add([]byte("5 <1>1 3 <2>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		_ = readSyslogFrames(bufio.NewReader(bytes.NewReader(data)), 1024, func(m []byte) error {
			if len(m) > 1024 {
				t.Fatalf("frame of %d bytes exceeds the limit", len(m))
			}
			n++
			_, _ = parseSyslog(m, false)
			return nil
		})
		if n > len(data) {
			t.Fatalf("%d frames from %d bytes", n, len(data))
		}
	})
}

func FuzzSyslogRFC3164(f *testing.F) {
	f.Add([]byte("<34>Oct 11 22:14:15 mymachine su: hello"))
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, _ := parseSyslog(data, true)
		if msg == nil {
			return
		}
		st := &syslogTarget{cfg: SyslogConfig{LabelStructuredData: true}}
		_, _ = st.entry(msg, data, map[string]string{"__syslog_connection_ip_address": "127.0.0.1"})
	})
}
