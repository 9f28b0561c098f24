package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
)

// Errors of syslog framing.
var (
	errSyslogFrame   = errors.New("invalid syslog frame")
	errSyslogTooLong = errors.New("syslog message exceeds max_message_length")
)

// readSyslogFrames splits a syslog byte stream into messages and calls fn
// for each. The framing is chosen by the first byte as RFC 6587 says: a
// digit starts octet counting ("<len> <msg>"), anything else newline
// (non-transparent) framing. msg is only valid during fn. It returns nil at
// a clean end of stream.
func readSyslogFrames(r *bufio.Reader, maxLen int, fn func(msg []byte) error) error {
	if maxLen <= 0 {
		maxLen = defaultSyslogMaxMessage
	}
	first, err := r.Peek(1)
	if err != nil {
		return nil
	}
	if first[0] >= '0' && first[0] <= '9' {
		return readOctetCounted(r, maxLen, fn)
	}
	return readNewlineFramed(r, maxLen, fn)
}

func readOctetCounted(r *bufio.Reader, maxLen int, fn func([]byte) error) error {
	buf := make([]byte, 0, 1024)
	for {
		n, digits := 0, 0
		for {
			c, err := r.ReadByte()
			if err != nil {
				if errors.Is(err, io.EOF) && digits == 0 {
					return nil
				}
				return fmt.Errorf("read frame length: %w", err)
			}
			if c == ' ' && digits > 0 {
				break
			}
			if c < '0' || c > '9' || digits >= 10 || (digits == 0 && c == '0') {
				return fmt.Errorf("%w: bad length byte %q", errSyslogFrame, c)
			}
			n = n*10 + int(c-'0')
			digits++
		}
		if n > maxLen {
			return fmt.Errorf("%w: %d > %d", errSyslogTooLong, n, maxLen)
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("read frame of %d bytes: %w", n, err)
		}
		if err := fn(buf); err != nil {
			return err
		}
	}
}

func readNewlineFramed(r *bufio.Reader, maxLen int, fn func([]byte) error) error {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > maxLen+2 {
			return fmt.Errorf("%w: > %d", errSyslogTooLong, maxLen)
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		msg := bytes.TrimRight(line, "\r\n")
		if len(msg) > 0 {
			if ferr := fn(msg); ferr != nil {
				return ferr
			}
		}
		line = line[:0]
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// parseSyslog parses one message as RFC 5424 or RFC 3164 (best effort: a
// partly valid message keeps the fields that parsed).
func parseSyslog(msg []byte, rfc3164Format bool) (syslog.Message, error) {
	if rfc3164Format {
		p := rfc3164.NewMachine(rfc3164.WithBestEffort(), rfc3164.WithYear(rfc3164.CurrentYear{}))
		return p.Parse(msg)
	}
	p := rfc5424.NewMachine(rfc5424.WithBestEffort())
	return p.Parse(msg)
}

// syslogTarget listens for syslog messages of one scrape config.
type syslogTarget struct {
	job     string
	cfg     SyslogConfig
	relabel []*relabel.Config
	env     *jobEnv
	in      chan<- Entry

	ln   net.Listener
	pc   net.PacketConn
	wg   sync.WaitGroup
	addr string
}

func newSyslogTarget(job string, cfg SyslogConfig, rl []*relabel.Config, env *jobEnv, in chan<- Entry) (*syslogTarget, error) {
	t := &syslogTarget{job: job, cfg: cfg, relabel: rl, env: env, in: in}
	if strings.EqualFold(cfg.ListenProtocol, "udp") {
		pc, err := net.ListenPacket("udp", cfg.ListenAddress)
		if err != nil {
			return nil, fmt.Errorf("syslog listen udp %s: %w", cfg.ListenAddress, err)
		}
		t.pc, t.addr = pc, pc.LocalAddr().String()
		return t, nil
	}
	ln, err := net.Listen("tcp", cfg.ListenAddress)
	if err != nil {
		return nil, fmt.Errorf("syslog listen tcp %s: %w", cfg.ListenAddress, err)
	}
	if cfg.TLSConfig != nil {
		tc, err := serverTLSConfig(cfg.TLSConfig)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("syslog tls: %w", err)
		}
		ln = tls.NewListener(ln, tc)
	}
	t.ln, t.addr = ln, ln.Addr().String()
	return t, nil
}

// serverTLSConfig is the listener side of tls_config, as Promtail's
// syslog target reads it: cert_file and key_file are the server's
// certificate (read again on every handshake, so a renewed certificate is
// picked up); with ca_file, clients must present a certificate it signed.
func serverTLSConfig(c *promconfig.TLSConfig) (*tls.Config, error) {
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, errors.New("tls_config needs cert_file and key_file")
	}
	if _, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile); err != nil {
		return nil, fmt.Errorf("load certificate %s: %w", c.CertFile, err)
	}
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("load certificate %s: %w", c.CertFile, err)
			}
			return &cert, nil
		},
	}
	if c.MinVersion != 0 {
		tc.MinVersion = uint16(c.MinVersion)
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file %s: %w", c.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no certificates", c.CAFile)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// run serves until ctx is done.
func (t *syslogTarget) run(ctx context.Context) {
	go func() {
		<-ctx.Done()
		if t.ln != nil {
			_ = t.ln.Close()
		}
		if t.pc != nil {
			_ = t.pc.Close()
		}
	}()
	if t.pc != nil {
		t.serveUDP(ctx)
		return
	}
	var conns sync.Map
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if ctx.Err() == nil {
				t.env.logger.Error("syslog accept", "err", err)
			}
			break
		}
		conns.Store(c, true)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer conns.Delete(c)
			defer c.Close()
			t.serveConn(ctx, c)
		}()
	}
	conns.Range(func(k, _ any) bool { _ = k.(net.Conn).Close(); return true })
	t.wg.Wait()
}

type deadlineReader struct {
	c    net.Conn
	idle time.Duration
}

func (d deadlineReader) Read(p []byte) (int, error) {
	if d.idle > 0 {
		_ = d.c.SetReadDeadline(time.Now().Add(d.idle))
	}
	return d.c.Read(p)
}

func (t *syslogTarget) serveConn(ctx context.Context, c net.Conn) {
	conn := connLabels(c.RemoteAddr())
	r := bufio.NewReaderSize(deadlineReader{c: c, idle: t.cfg.IdleTimeout.D()}, 64<<10)
	err := readSyslogFrames(r, t.cfg.MaxMessageLength, func(msg []byte) error {
		return t.handle(ctx, msg, conn)
	})
	if err != nil && ctx.Err() == nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.env.metrics.syslogErrors.Inc()
			t.env.logger.Warn("syslog connection", "remote", c.RemoteAddr().String(), "err", err)
		}
	}
}

func (t *syslogTarget) serveUDP(ctx context.Context) {
	buf := make([]byte, 65536)
	for {
		n, addr, err := t.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		msg := bytes.TrimRight(buf[:n], "\r\n")
		if max := t.cfg.MaxMessageLength; max > 0 && len(msg) > max {
			msg = msg[:max]
		}
		if len(msg) == 0 {
			continue
		}
		if err := t.handle(ctx, msg, connLabels(addr)); err != nil {
			return
		}
	}
}

func connLabels(a net.Addr) map[string]string {
	m := map[string]string{}
	host := a.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	m["__syslog_connection_ip_address"] = host
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if names, err := net.DefaultResolver.LookupAddr(ctx, host); err == nil && len(names) > 0 {
		m["__syslog_connection_hostname"] = strings.TrimSuffix(names[0], ".")
	}
	return m
}

// handle turns one message into an entry.
func (t *syslogTarget) handle(ctx context.Context, raw []byte, conn map[string]string) error {
	msg, err := parseSyslog(raw, strings.EqualFold(t.cfg.SyslogFormat, "rfc3164"))
	if msg == nil {
		t.env.metrics.syslogErrors.Inc()
		t.env.logger.Debug("syslog parse", "err", err)
		return nil
	}
	e, ok := t.entry(msg, raw, conn)
	if !ok {
		return nil
	}
	t.env.metrics.syslogEntries.Inc()
	select {
	case t.in <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// entry builds the labels and line of a parsed message as Promtail does.
func (t *syslogTarget) entry(msg syslog.Message, raw []byte, conn map[string]string) (Entry, bool) {
	lb := labels.NewBuilder(labels.EmptyLabels())
	for k, v := range conn {
		lb.Set(k, v)
	}
	for k, v := range t.cfg.Labels {
		lb.Set(k, v)
	}
	set := func(name string, v *string) {
		if v != nil && *v != "" {
			lb.Set(name, *v)
		}
	}
	set("__syslog_message_severity", msg.SeverityLevel())
	set("__syslog_message_facility", msg.FacilityLevel())
	var base *syslog.Base
	var sd *map[string]map[string]string
	switch m := msg.(type) {
	case *rfc5424.SyslogMessage:
		base, sd = &m.Base, m.StructuredData
	case *rfc3164.SyslogMessage:
		base = &m.Base
	}
	if base == nil {
		return Entry{}, false
	}
	set("__syslog_message_hostname", base.Hostname)
	set("__syslog_message_app_name", base.Appname)
	set("__syslog_message_proc_id", base.ProcID)
	set("__syslog_message_msg_id", base.MsgID)
	if t.cfg.LabelStructuredData && sd != nil {
		for id, params := range *sd {
			for name, v := range params {
				lb.Set(sanitizeLabelName("__syslog_message_sd_"+id+"_"+name), v)
			}
		}
	}
	keep := relabel.ProcessBuilder(lb, t.relabel...)
	if !keep {
		return Entry{}, false
	}
	ls := model.LabelSet{}
	lb.Labels().Range(func(l labels.Label) {
		if !strings.HasPrefix(l.Name, "__") {
			ls[model.LabelName(l.Name)] = model.LabelValue(l.Value)
		}
	})
	var line string
	switch {
	case t.cfg.UseRFC5424Message:
		line = string(raw)
	case base.Message != nil:
		line = *base.Message
	default:
		return Entry{}, false
	}
	ts := time.Now()
	if t.cfg.UseIncomingTimestamp && base.Timestamp != nil {
		ts = *base.Timestamp
	}
	return Entry{Labels: ls, Timestamp: ts, Line: line}, true
}

// sanitizeLabelName replaces characters not allowed in a label name by "_".
func sanitizeLabelName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9' && i > 0)) {
			b[i] = '_'
		}
	}
	return string(b)
}

// addrString is for /targets.
func (t *syslogTarget) info() TargetInfo {
	return TargetInfo{Job: t.job, Type: "syslog", Ready: true, Labels: t.cfg.Labels,
		Details: (map[bool]string{true: "udp", false: "tcp"})[t.pc != nil] + " " + t.addr + " max_message_length=" + strconv.Itoa(t.cfg.MaxMessageLength)}
}
