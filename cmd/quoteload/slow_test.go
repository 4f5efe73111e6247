package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"quotehub/internal/sockopt"
)

func TestParseByteSize(t *testing.T) {
	good := map[string]int64{
		"0": 0, "4096": 4096, "200KB": 200_000, "200kb": 200_000, "200 KB": 200_000, "64KiB": 65536,
		"64kib": 65536, "1.5MB": 1_500_000, "2MiB": 2 << 20, "200KB/s": 200_000, "10B": 10, "1k": 1000,
		"1GiB": 1 << 30, "1e3": 1000, "2E3KB": 2_000_000,
	}
	for in, want := range good {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":        "want a number",
		"KB":      "want a number",
		"200XB":   "unknown unit",
		"200 KBs": "unknown unit",
		"-5KB":    "negative",
		"1.2.3":   "not a number",
		"1e30GB":  "too large",
	}
	for in, want := range bad {
		if _, err := parseByteSize(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseByteSize(%q): %v, want an error with %q", in, err, want)
		}
	}
}

func TestSlowFlags(t *testing.T) {
	cfg, _, err := parseFlags([]string{"-slow-share", "0.1", "-slow-rate", "200KB", "-rcvbuf", "64KiB", "-window", "5s"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SlowShare != 0.1 || cfg.SlowRate != 200_000 || cfg.RcvBuf != 65536 || cfg.Window != 5*time.Second {
		t.Errorf("parsed %+v", cfg)
	}
	if _, err := cfg.validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
	var stderr bytes.Buffer
	_, _, err = parseFlags([]string{"-slow-rate", "200XB"}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "unknown unit") {
		t.Errorf("-slow-rate 200XB: %v", err)
	}
	_, _, err = parseFlags([]string{"-rcvbuf", "-1KiB"}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("-rcvbuf -1KiB: %v", err)
	}
	var help bytes.Buffer
	if _, _, err := parseFlags([]string{"-h"}, &help); err == nil || !strings.Contains(help.String(), "-slow-share") ||
		!strings.Contains(help.String(), "-slow-rate") || !strings.Contains(help.String(), "-rcvbuf") || !strings.Contains(help.String(), "-window") {
		t.Errorf("help lacks the slow-reader flags: %v\n%s", err, help.String())
	}
	// Without the new flags, the report has none of the new figures.
	if d := DefaultConfig(); d.SlowShare != 0 || d.SlowRate != 0 || d.RcvBuf != 0 || d.Window != 0 {
		t.Errorf("defaults %+v", d)
	}
}

func TestValidateSlow(t *testing.T) {
	bad := []struct {
		adjust func(*Config)
		want   string
	}{
		{func(c *Config) { c.SlowShare, c.SlowRate = -0.1, 1000 }, "-slow-share -0.1: want a fraction"},
		{func(c *Config) { c.SlowShare, c.SlowRate = 1.5, 1000 }, "-slow-share 1.5: want a fraction"},
		{func(c *Config) { c.SlowShare = 0.1 }, "-slow-share needs -slow-rate"},
		{func(c *Config) { c.SlowRate = 1000 }, "-slow-rate needs -slow-share"},
		{func(c *Config) { c.SlowShare, c.SlowRate = 0.1, -1 }, "-slow-rate -1: want > 0"},
		{func(c *Config) { c.SlowShare, c.SlowRate = 0.1, 10 }, "want at least 64 bytes per second"},
		{func(c *Config) { c.Mode, c.SlowShare, c.SlowRate = "http", 0.1, 1000 }, "ws and sse only"},
		{func(c *Config) { c.Mode, c.SlowShare, c.SlowRate = "churn", 0.1, 1000 }, "ws and sse only"},
		{func(c *Config) { c.RcvBuf = -1 }, "-rcvbuf -1"},
		{func(c *Config) { c.RcvBuf = 1 << 30 }, "-rcvbuf"},
		{func(c *Config) { c.Window = -time.Second }, "-window -1s"},
		{func(c *Config) { c.Window = time.Millisecond }, "at least 100ms"},
		{func(c *Config) { c.Window, c.Duration = 100*time.Millisecond, 10*time.Minute }, "over 600 windows"},
		{func(c *Config) { c.Mode, c.Window = "http", time.Second }, "ws and sse only"},
	}
	for i, tc := range bad {
		cfg := DefaultConfig()
		tc.adjust(&cfg)
		_, err := cfg.validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("case %d: %v, want an error with %q", i, err, tc.want)
		}
	}
	for _, mode := range []string{"ws", "sse"} {
		cfg := DefaultConfig()
		cfg.Mode, cfg.SlowShare, cfg.SlowRate, cfg.RcvBuf, cfg.Window = mode, 1, 64, 4096, time.Second
		if _, err := cfg.validate(); err != nil {
			t.Errorf("%s: %v", mode, err)
		}
	}
	cfg := DefaultConfig()
	cfg.Mode, cfg.RcvBuf = "http", 65536 // -rcvbuf applies to every mode
	if _, err := cfg.validate(); err != nil {
		t.Errorf("http with -rcvbuf: %v", err)
	}
}

func TestSlowSpread(t *testing.T) {
	for _, tc := range []struct {
		n     int
		share float64
		want  int
	}{{10, 0.1, 1}, {10000, 0.1, 1000}, {1, 0.4, 1}, {1, 1, 1}, {5, 0.01, 1}, {7, 0.5, 4}, {100, 0, 0}, {3, 1, 3}} {
		k := slowCount(tc.n, tc.share)
		if k != tc.want {
			t.Errorf("slowCount(%d, %g) = %d, want %d", tc.n, tc.share, k, tc.want)
		}
		got, run, maxRun := 0, 0, 0
		for i := range tc.n {
			if isSlow(i, tc.n, k) {
				got++
				run = 0
			} else if run++; run > maxRun {
				maxRun = run
			}
		}
		if got != k {
			t.Errorf("n=%d share=%g: %d slow, want %d", tc.n, tc.share, got, k)
		}
		if k > 0 && maxRun > tc.n/k {
			t.Errorf("n=%d k=%d: %d non-slow in a row; want them spread", tc.n, k, maxRun)
		}
	}
}

// endless is a reader that always fills what it is given.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	e.n += int64(len(p))
	return len(p), nil
}

func TestPacerFakeClock(t *testing.T) {
	for _, rate := range []int64{64, 1000, 200_000, 5_000_000} {
		src := &endless{}
		now := time.Unix(1000, 0)
		p := newPacer(src, rate, nil)
		p.now = func() time.Time { return now }
		var slept time.Duration
		p.sleep = func(d time.Duration) {
			if d <= 0 {
				d = time.Nanosecond
			}
			slept += d
			now = now.Add(d)
		}
		buf := make([]byte, 64<<10)
		start := now
		for now.Sub(start) < 10*time.Second {
			if n, err := p.Read(buf); err != nil || n <= 0 {
				t.Fatalf("rate %d: read %d, %v", rate, n, err)
			}
		}
		secs := now.Sub(start).Seconds()
		got := float64(src.n) / secs
		// At most one bucket more than the rate allows over the time.
		limit := float64(rate) + p.burst/secs
		if got > limit*1.001 || got < float64(rate)*0.95 {
			t.Errorf("rate %d B/s: read %.0f B/s over %.1fs (limit %.0f)", rate, got, secs, limit)
		}
		if reads := src.n / int64(p.burst); reads > 0 && slept == 0 {
			t.Errorf("rate %d: never waited", rate)
		}
	}
}

func TestPaceBurst(t *testing.T) {
	for rate, want := range map[int64]float64{
		64: 16, 1000: 250, 4096: 1024, 5000: 1024, 51_200: 1024, 100_000: 2000, 200_000: 4000, 5_000_000: 100_000,
	} {
		if got := paceBurst(rate); got != want {
			t.Errorf("paceBurst(%d) = %g, want %g", rate, got, want)
		}
	}
}

func TestPacerStopsPacingWhenOff(t *testing.T) {
	src := &endless{}
	off := false
	p := newPacer(src, 100, func() bool { return off })
	p.sleep = func(time.Duration) { off = true } // the run stops while it waits
	buf := make([]byte, 4096)
	_, _ = p.Read(buf) // the first bucket (25 bytes)
	if n, _ := p.Read(buf); n != len(buf) {
		t.Errorf("read %d bytes after the run stopped; want the whole buffer, unpaced", n)
	}
}

// TestPacedConnRate reads a loopback socket whose peer writes as fast as
// it can through a paced conn, in real time.
func TestPacedConnRate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 32<<10)
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{}
	pc := r.paceConn(nc, 100_000)
	const runFor = 500 * time.Millisecond
	buf := make([]byte, 64<<10)
	var total int64
	start := time.Now()
	for time.Since(start) < runFor {
		n, err := pc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		total += int64(n)
	}
	elapsed := time.Since(start)
	pc.Close()
	<-writerDone
	rate := float64(total) / elapsed.Seconds()
	t.Logf("paced at 100000 B/s: read %d bytes in %v = %.0f B/s", total, elapsed.Round(time.Millisecond), rate)
	if rate > 150_000 || rate < 50_000 {
		t.Errorf("read %.0f B/s, want about 100000", rate)
	}
}

func TestRcvBufControl(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var got atomic.Int64
	d := &net.Dialer{Control: rcvBufControl(32<<10, &got)}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	v, _ := sockopt.RcvBufOf(raw)
	t.Logf("SO_RCVBUF 32 KiB requested: the socket reports %d, the hook recorded %d", v, got.Load())
	if v < 32<<10 || v > 2*(32<<10) || got.Load() != int64(v) {
		t.Errorf("SO_RCVBUF %d (recorded %d), want 32 KiB or twice that", v, got.Load())
	}
	if _, err := d.Dial("tcp", "10.0.0.1:80"); err == nil || !strings.Contains(err.Error(), "non-loopback") {
		t.Errorf("a non-loopback address: %v", err)
	}
}

func TestDropReason(t *testing.T) {
	for err, want := range map[error]string{
		websocket.CloseError{Code: 4000, Reason: "slow consumer"}: "close_4000",
		fmt.Errorf("read: %w", websocket.CloseError{Code: 1001}):  "close_1001",
		&net.OpError{Op: "read", Err: syscall.ECONNRESET}:         "reset",
		io.EOF:              "eof",
		io.ErrUnexpectedEOF: "eof",
		&net.OpError{Op: "read", Err: timeoutErr{}}: "timeout",
		errors.New("something else"):                "read",
	} {
		if got := dropReason(err); got != want {
			t.Errorf("dropReason(%v) = %q, want %q", err, got, want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var testBases = []*url.URL{{Scheme: "http", Host: "127.0.0.1:1"}}

// quotesAt returns one quote per symbol with seq and the fetched_at that
// makes its age ageMs at nowUs.
func quotesAt(nowUs int64, ageMs int64, seq int64, syms ...string) []quoteRec {
	var qs []quoteRec
	for _, s := range syms {
		qs = append(qs, quoteRec{Symbol: []byte(s), FetchedAt: nowUs/1000 - ageMs, Seq: seq, HasFetchedAt: true, HasSeq: true})
	}
	return qs
}

// TestAgeAccounting feeds synthetic quotes to two connections, one slow,
// over three 1 s windows, and checks the groups and windows of the report.
func TestAgeAccounting(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Conns, cfg.SlowShare, cfg.SlowRate, cfg.Window, cfg.Duration = 2, 0.5, 1000, time.Second, 3*time.Second
	aw := newAgeWindows(cfg.Window, cfg.Duration)
	const t0 = int64(1_700_000_000_000_000) // µs
	aw.startUs.Store(t0)
	conns := []*conn{{id: 0, done: make(chan struct{})}, {id: 1, done: make(chan struct{})}}
	for i, c := range conns {
		c.st.slow = isSlow(i, 2, slowCount(2, cfg.SlowShare))
		c.st.win = &connWindow{aw: aw, group: c.st.group()}
		c.st.connected = true
	}
	fast, slow := &conns[0].st, &conns[1].st
	if fast.slow || !slow.slow {
		t.Fatalf("conn 1 should be the slow one: %v %v", fast.slow, slow.slow)
	}
	// Warm-up quotes (before the window starts) only set the seq baseline.
	fast.recordQuotes(quotesAt(t0-500_000, 5, 1, "A", "B"), t0-500_000, false)
	for w := range int64(3) {
		for k := range int64(10) {
			now := t0 + w*1_000_000 + k*100_000
			fast.recordQuotes(quotesAt(now, 5+k%2, 2+w*10+k, "A", "B"), now, true)
			// The slow one falls behind: ages of 1 s, 2 s, 3 s by window.
			slow.recordQuotes(quotesAt(now, (w+1)*1000+k, 2+w*10+k, "A"), now, true)
		}
	}
	// A regression and a duplicate on the slow connection, in window 2.
	now := t0 + 2_900_000
	slow.recordQuotes(quotesAt(now, 3000, 5, "A"), now, true)
	slow.recordQuotes(quotesAt(now, 3000, 31, "A"), now, true)
	aw.drop(groupSlow, now)
	slow.dropped, slow.dropReason = true, "close_4000"
	for _, c := range conns {
		c.st.endWindow()
		close(c.done)
	}

	rep := newReport(cfg, testBases, 2)
	rep.MeasuredSeconds = 3
	rep.addConns(conns, 2)
	rep.addGroups(cfg, conns, 2, 0)
	rep.addWindows(aw)

	if len(rep.Groups) != 2 || rep.Groups[0].Name != "others" || rep.Groups[1].Name != "slow" {
		t.Fatalf("groups %+v", rep.Groups)
	}
	o, s := rep.Groups[0], rep.Groups[1]
	if o.Conns != 1 || o.Connected != 1 || o.ConnectedAtEnd != 1 || o.Dropped != 0 || o.Deliveries != 60 || o.SeqRegressions != 0 || o.SeqRepeats != 0 {
		t.Errorf("others %+v", o)
	}
	if s.Conns != 1 || s.ConnectedAtEnd != 0 || s.Dropped != 1 || s.Disconnects["close_4000"] != 1 || s.Deliveries != 32 ||
		s.SeqRegressions != 1 || s.SeqRepeats != 1 || s.ReadRate != 1000 {
		t.Errorf("slow %+v", s)
	}
	if o.Age.Max > 6.5 || o.Age.P50 < 4.5 {
		t.Errorf("others' age %+v, want 5–6 ms", o.Age)
	}
	if s.Age.Max < 3000 || s.Age.Max > 3010 || s.Age.P50 < 1900 || s.Age.P50 > 2100 {
		t.Errorf("slow age %+v", s.Age)
	}
	if o.DeliveriesPerSec != 20 {
		t.Errorf("others delivered %.1f/s, want 20", o.DeliveriesPerSec)
	}
	if len(rep.Windows) != 3 {
		t.Fatalf("%d windows, want 3: %+v", len(rep.Windows), rep.Windows)
	}
	for w, row := range rep.Windows {
		wantP99 := float64(w+1)*1000 + 9
		if w == 2 {
			wantP99 = 3009 // 3000 + 9: the last window holds the two extra quotes of 3000 ms
		}
		if row.StartSeconds != float64(w) || row.EndSeconds != float64(w+1) {
			t.Errorf("window %d: %v–%v s", w, row.StartSeconds, row.EndSeconds)
		}
		if row.Slow == nil || row.Others == nil {
			t.Fatalf("window %d: %+v", w, row)
		}
		// The histogram resolves values within 0.78 %.
		if math.Abs(row.Slow.P99-wantP99) > 0.01*wantP99 || row.Slow.Count < 10 {
			t.Errorf("window %d: slow %+v, want p99 ≈ %.0f", w, row.Slow, wantP99)
		}
		if row.Others.Count != 20 || row.Others.P99 > 6.5 {
			t.Errorf("window %d: others %+v", w, row.Others)
		}
		if wantDrop := uint64(0); w == 2 && row.Slow.Dropped != 1 || w != 2 && row.Slow.Dropped != wantDrop {
			t.Errorf("window %d: slow dropped %d", w, row.Slow.Dropped)
		}
	}

	var text bytes.Buffer
	rep.WriteText(&text)
	t.Logf("\n%s", text.String())
	for _, want := range []string{"group slow", "group others", "close_4000=1", "seq 1 regressions, 1 repeats", "age per window", "2–3s"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q", want)
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
}

// TestNoGroupsByDefault: a run without the new flags reports as before.
func TestNoGroupsByDefault(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Conns = 1
	c := &conn{done: make(chan struct{})}
	close(c.done)
	rep := newReport(cfg, testBases, 1)
	rep.addConns([]*conn{c}, 1)
	rep.addGroups(cfg, []*conn{c}, 1, 0)
	rep.addWindows(nil)
	if rep.Groups != nil || rep.Windows != nil || rep.RcvBuf != 0 {
		t.Errorf("groups %v windows %v rcvbuf %d without the flags", rep.Groups, rep.Windows, rep.RcvBuf)
	}
	b, _ := json.Marshal(rep)
	for _, k := range []string{`"groups"`, `"windows"`, `"rcvbuf_bytes"`} {
		if bytes.Contains(b, []byte(k)) {
			t.Errorf("JSON has %s without the flags", k)
		}
	}
}

// TestSlowReadersEndToEnd runs slow and normal readers against the real
// server, over WebSocket and SSE: the slow ones read at their rate, their
// ages are reported apart and grow, the others keep up.
func TestSlowReadersEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	// 100 symbols changing every 50 ms: about 400 KB/s to a connection
	// subscribed to all of them.
	srv := startServer(t, "-admin-addr=", "-sim-symbols", "100", "-sim-every-tick", "-sim-batch", "1000",
		"-refresh-interval", "50ms", "-log-level", "error")
	for _, mode := range []string{"ws", "sse"} {
		t.Run(mode, func(t *testing.T) {
			before := runtime.NumGoroutine()
			cfg := DefaultConfig()
			cfg.URL, cfg.Mode, cfg.Conns, cfg.Symbols, cfg.Universe = srv.url, mode, 4, 100, 100
			cfg.Warmup, cfg.Duration, cfg.ConnectTimeout = 300*time.Millisecond, 3*time.Second, 5*time.Second
			cfg.SlowShare, cfg.SlowRate, cfg.RcvBuf, cfg.Window = 0.5, 40_000, 16<<10, time.Second
			var logBuf bytes.Buffer
			cfg.Log = &logBuf
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			rep, err := Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			rep.WriteText(&text)
			t.Logf("run took %v\n%s", time.Since(start).Round(time.Millisecond), text.String())
			if rep.Connected != 4 || rep.SeqRegressions != 0 {
				t.Errorf("connected %d, seq regressions %d", rep.Connected, rep.SeqRegressions)
			}
			if len(rep.Groups) != 2 {
				t.Fatalf("groups %+v", rep.Groups)
			}
			o, s := rep.Groups[0], rep.Groups[1]
			if s.Conns != 2 || o.Conns != 2 || s.Connected != 2 || o.Connected != 2 {
				t.Errorf("groups: others %+v slow %+v", o, s)
			}
			if s.Deliveries == 0 || o.Deliveries == 0 {
				t.Fatalf("deliveries: others %d slow %d", o.Deliveries, s.Deliveries)
			}
			// The pace, within generous bounds (framing bytes are not
			// counted in the report's bytes, so it reads somewhat under).
			if s.BytesPerSecPerConn > 1.3*40_000 || s.BytesPerSecPerConn < 0.4*40_000 {
				t.Errorf("slow connections read %.0f B/s each, want about 40000", s.BytesPerSecPerConn)
			}
			if o.BytesPerSecPerConn < 3*s.BytesPerSecPerConn {
				t.Errorf("others read %.0f B/s each, slow %.0f: want the others well ahead", o.BytesPerSecPerConn, s.BytesPerSecPerConn)
			}
			if s.Age.P99 < 3*o.Age.P99 || s.Age.P99 < 500 {
				t.Errorf("age p99: slow %.1f ms, others %.1f ms; want the slow ones far behind", s.Age.P99, o.Age.P99)
			}
			if len(rep.Windows) != 3 || rep.RcvBuf != 16<<10 || rep.RcvBufKernel < 16<<10 {
				t.Errorf("windows %d, rcvbuf %d (kernel %d)", len(rep.Windows), rep.RcvBuf, rep.RcvBufKernel)
			}
			if rep.CloseSeconds > 3 {
				t.Errorf("closing took %.1fs: slow connections should stop pacing to close", rep.CloseSeconds)
			}
			checkNoLeaks(t, before)
			if t.Failed() {
				t.Logf("progress log:\n%s", logBuf.String())
			}
		})
	}
}
