package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"quotehub/internal/sockopt"
)

// Slow readers (-slow-share, -slow-rate, -rcvbuf): a share of the ws or
// sse connections read their socket through a token bucket, at most
// -slow-rate bytes per second, so that what they do not read backs up
// through TCP flow control to the server, as it does for a client on a slow
// link or a slow device. The pace holds from the first byte: a slow
// connection reads its handshake and welcome at it too (a few hundred
// bytes, included in its connect latency). -rcvbuf sets SO_RCVBUF on every
// connection's socket before it connects, bounding what the client's
// kernel buffers.

// Limits on the slow-reader options.
const (
	maxRcvBuf   = 64 << 20 // -rcvbuf
	minWindow   = 100 * time.Millisecond
	maxWindows  = 600 // -duration / -window
	minSlowRate = 64  // bytes per second: below this a read could wait minutes
	// A paced read waits for (and then reads at most) one bucket of
	// bytes: rate × paceTick, but at least paceMinRead bytes as long as
	// that is at most paceMaxTick's worth, so that a slow reader does not
	// make a system call and a sleep for every hundred bytes (at 5 KB/s:
	// 1 KiB, about 5 reads a second, instead of 100 bytes 50 times).
	paceTick    = 20 * time.Millisecond
	paceMinRead = 1024
	paceMaxTick = 250 * time.Millisecond
)

// parseByteSize parses a byte count or rate: a number with an optional unit
// B, KB (1000), KiB (1024), MB, MiB, GB or GiB, and an optional "/s"
// suffix ("200KB", "64KiB", "1.5MB/s", "4096"). Units are case-insensitive
// except that "kb" and "KB" both mean 1000 bytes.
func parseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(t, "/s")
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || strings.IndexByte(".-+eE", t[i]) >= 0) {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("%q: want a number of bytes with an optional unit (B, KB, KiB, MB, MiB, GB, GiB)", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %q is not a number", s, num)
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1e3, "kb": 1e3, "kib": 1 << 10,
		"m": 1e6, "mb": 1e6, "mib": 1 << 20,
		"g": 1e9, "gb": 1e9, "gib": 1 << 30,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q (want B, KB, KiB, MB, MiB, GB or GiB)", s, t[i:])
	}
	if v < 0 {
		return 0, fmt.Errorf("%q: negative", s)
	}
	b := v * mult
	if b > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return int64(math.Round(b)), nil
}

// byteSizeFlag is a flag.Value for a byte count or rate.
type byteSizeFlag struct{ v *int64 }

func (f byteSizeFlag) String() string {
	if f.v == nil || *f.v == 0 {
		return "0"
	}
	return strconv.FormatInt(*f.v, 10)
}

func (f byteSizeFlag) Set(s string) error {
	v, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*f.v = v
	return nil
}

// sizeText formats a byte count for reports: "200.0 KB" (1000s) or, for a
// count that is a whole number of KiB, "64 KiB".
func sizeText(b int64) string {
	switch {
	case b >= 1<<10 && b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", b>>10)
	case b >= 1e6:
		return fmt.Sprintf("%.2f MB", float64(b)/1e6)
	case b >= 1e3:
		return fmt.Sprintf("%.1f KB", float64(b)/1e3)
	}
	return fmt.Sprintf("%d B", b)
}

// validateSlow checks the slow-reader and window options.
func (cfg *Config) validateSlow() error {
	switch {
	case math.IsNaN(cfg.SlowShare) || cfg.SlowShare < 0 || cfg.SlowShare > 1:
		return fmt.Errorf("-slow-share %g: want a fraction of the connections, 0 … 1", cfg.SlowShare)
	case cfg.SlowRate < 0:
		return fmt.Errorf("-slow-rate %d: want > 0 bytes per second", cfg.SlowRate)
	case cfg.SlowShare > 0 && cfg.SlowRate == 0:
		return errors.New("-slow-share needs -slow-rate (bytes per second each slow connection reads, e.g. 200KB)")
	case cfg.SlowShare > 0 && cfg.SlowRate < minSlowRate:
		return fmt.Errorf("-slow-rate %d: want at least %d bytes per second", cfg.SlowRate, minSlowRate)
	case cfg.SlowRate > 0 && cfg.SlowShare == 0:
		return errors.New("-slow-rate needs -slow-share (the fraction of connections that read slowly, e.g. 0.1)")
	case cfg.SlowShare > 0 && cfg.Mode != "ws" && cfg.Mode != "sse":
		return fmt.Errorf("-slow-share applies to -mode ws and sse only, not %s", cfg.Mode)
	case cfg.RcvBuf < 0 || cfg.RcvBuf > maxRcvBuf:
		return fmt.Errorf("-rcvbuf %d: want 0 (the system's default) … %s", cfg.RcvBuf, sizeText(maxRcvBuf))
	case cfg.Window < 0:
		return fmt.Errorf("-window %v: want > 0, or 0 for no per-window rows", cfg.Window)
	case cfg.Window > 0 && cfg.Mode != "ws" && cfg.Mode != "sse":
		return fmt.Errorf("-window applies to -mode ws and sse only, not %s", cfg.Mode)
	case cfg.Window > 0 && cfg.Window < minWindow:
		return fmt.Errorf("-window %v: want at least %v", cfg.Window, minWindow)
	case cfg.Window > 0 && cfg.Duration/cfg.Window >= maxWindows:
		return fmt.Errorf("-window %v: -duration %v would make over %d windows", cfg.Window, cfg.Duration, maxWindows)
	}
	return nil
}

// slowCount is how many of n connections read slowly: share × n rounded,
// at least one when share > 0.
func slowCount(n int, share float64) int {
	if share <= 0 || n <= 0 {
		return 0
	}
	k := int(math.Round(share * float64(n)))
	return min(n, max(k, 1))
}

// isSlow reports whether connection i of n is one of the k slow ones; the k
// are spread evenly over 0 … n-1, so over the symbols too (over several
// -url nodes, connection i going to node i mod nodes, they may fall on
// some nodes more than others).
func isSlow(i, n, k int) bool {
	if k <= 0 {
		return false
	}
	return int64(i)*int64(k)/int64(n) != int64(i+1)*int64(k)/int64(n)
}

// pacer is a token bucket over reads: a Read waits until the bucket is
// full (or holds len(p), if smaller), then reads at most what it holds. Bytes not read stay in the socket, so the peer's
// writes back up through TCP flow control. Once off reports true (the run
// is stopping) reads are no longer paced, so that closing does not wait
// for the backlog to trickle in.
type pacer struct {
	r      io.Reader
	rate   float64 // bytes per second
	burst  float64 // the bucket's size: see paceBurst
	tokens float64
	last   time.Time
	off    func() bool
	sleep  func(time.Duration) // time.Sleep; tests may replace it
	now    func() time.Time    // time.Now; tests may replace it
}

func newPacer(r io.Reader, rate int64, off func() bool) *pacer {
	return &pacer{r: r, rate: float64(rate), burst: paceBurst(rate), off: off, sleep: time.Sleep, now: time.Now}
}

// paceBurst is the bucket's size for rate bytes per second: rate ×
// paceTick, raised to paceMinRead bytes when that is at most paceMaxTick's
// worth (else to that), and at least 1 byte.
func paceBurst(rate int64) float64 {
	r := float64(rate)
	return max(1, math.Round(max(r*paceTick.Seconds(), min(paceMinRead, r*paceMaxTick.Seconds()))))
}

func (p *pacer) Read(b []byte) (int, error) {
	if len(b) == 0 || p.off != nil && p.off() {
		return p.r.Read(b)
	}
	want := min(float64(len(b)), p.burst)
	for {
		now := p.now()
		if p.last.IsZero() {
			p.last = now
			p.tokens = p.burst // start full
		}
		p.tokens = min(p.burst, p.tokens+now.Sub(p.last).Seconds()*p.rate)
		p.last = now
		if p.tokens >= want {
			break
		}
		p.sleep(time.Duration((want - p.tokens) / p.rate * float64(time.Second)))
		if p.off != nil && p.off() {
			return p.r.Read(b)
		}
	}
	n, err := p.r.Read(b[:min(len(b), int(p.tokens))])
	p.tokens -= float64(n)
	return n, err
}

// pacedConn is a net.Conn whose reads go through a pacer.
type pacedConn struct {
	net.Conn
	p *pacer
}

func (c *pacedConn) Read(b []byte) (int, error) { return c.p.Read(b) }

// paceConn wraps nc so that it reads at most rate bytes per second.
func (r *runner) paceConn(nc net.Conn, rate int64) net.Conn {
	return &pacedConn{Conn: nc, p: newPacer(nc, rate, r.stopping.Load)}
}

// rcvBufControl returns a dialer Control hook that refuses non-loopback
// addresses (loopbackOnly) and, when size > 0, sets SO_RCVBUF before the
// socket connects (so that the TCP window is negotiated from it). The
// kernel's effective value (Linux doubles the request, capped by
// net.core.rmem_max) is stored in got once.
func rcvBufControl(size int, got *atomic.Int64) func(network, address string, rc syscall.RawConn) error {
	return func(network, address string, rc syscall.RawConn) error {
		if err := loopbackOnly(network, address, rc); err != nil {
			return err
		}
		if size <= 0 || rc == nil {
			return nil
		}
		if err := sockopt.RcvBuf(size)(network, address, rc); err != nil {
			return fmt.Errorf("SO_RCVBUF %d: %w", size, err)
		}
		if v, err := sockopt.RcvBufOf(rc); err == nil && got != nil {
			got.CompareAndSwap(0, int64(v))
		}
		return nil
	}
}

// ageWindows collects the age (receive time − fetched_at) of the quotes
// received in each -window of the measured window, per group (slow,
// others), with the connections each group lost in that window. Each
// connection records into its own Hist for the window it is in and adds it
// here when it moves to the next window or ends, so the lock is taken about
// once per connection and window.
type ageWindows struct {
	startUs  atomic.Int64 // start of the measured window, Unix µs; 0 before
	windowUs int64
	n        int

	mu      sync.Mutex
	hist    [2][]Hist   // [group][window]
	dropped [2][]uint64 // [group][window]
}

// Groups of connections.
const (
	groupOthers = 0
	groupSlow   = 1
)

var groupNames = [2]string{"others", "slow"}

func newAgeWindows(window, duration time.Duration) *ageWindows {
	n := int((duration + window - 1) / window)
	a := &ageWindows{windowUs: window.Microseconds(), n: n}
	for g := range a.hist {
		a.hist[g] = make([]Hist, n)
		a.dropped[g] = make([]uint64, n)
	}
	return a
}

// index returns the window holding nowUs (clamped to the first and last).
func (a *ageWindows) index(nowUs int64) int {
	start := a.startUs.Load()
	if start == 0 || nowUs < start {
		return 0
	}
	return min(int((nowUs-start)/a.windowUs), a.n-1)
}

// add merges one connection's Hist for window w of group g.
func (a *ageWindows) add(g, w int, h *Hist) {
	if h.Count() == 0 {
		return
	}
	a.mu.Lock()
	a.hist[g][w].Merge(h)
	a.mu.Unlock()
}

// drop counts a connection of group g lost at nowUs.
func (a *ageWindows) drop(g int, nowUs int64) {
	w := a.index(nowUs)
	a.mu.Lock()
	a.dropped[g][w]++
	a.mu.Unlock()
}

// connWindow is one connection's share of ageWindows: the Hist of the
// window it is in.
type connWindow struct {
	aw    *ageWindows
	group int
	cur   int
	h     Hist
}

// record adds one age (µs) received at nowUs.
func (cw *connWindow) record(ageUs, nowUs int64) {
	if w := cw.aw.index(nowUs); w != cw.cur {
		cw.flush()
		cw.cur = w
	}
	cw.h.Record(ageUs)
}

// flush adds the current window's Hist to the run's and empties it.
func (cw *connWindow) flush() {
	cw.aw.add(cw.group, cw.cur, &cw.h)
	cw.h.Reset()
}
