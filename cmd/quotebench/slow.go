package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// slowFraction is the share of what a slow reader is offered that it
// reads, in both parts of the slowreaders scenario.
const slowFraction = 0.4

// slowRcvBuf is the slow readers' SO_RCVBUF (quoteload -rcvbuf), and
// slowRcvBufText how the results write it.
const (
	slowRcvBuf     = "64KiB"
	slowRcvBufText = "64 KiB"
)

// slowGroup is one group of quoteload's report: the slow connections or
// the others.
type slowGroup struct {
	Name           string         `json:"name"`
	Conns          int            `json:"conns"`
	Connected      int            `json:"conns_connected"`
	ConnectedAtEnd int            `json:"conns_connected_at_end"`
	Dropped        int            `json:"conns_dropped"`
	Disconnects    map[string]int `json:"disconnects"`
	Deliveries     uint64         `json:"deliveries"`
	DeliveriesPS   float64        `json:"deliveries_per_sec"`
	BytesPSPerConn float64        `json:"bytes_per_sec_per_conn"`
	Age            *ageStats      `json:"age_ms"`
	SeqRegressions uint64         `json:"seq_regressions"`
	SeqRepeats     uint64         `json:"seq_repeats"`
}

// ageStats is a group's age percentiles (ms) in quoteload's report.
type ageStats struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// windowAge is one group's ages in one window of quoteload's report.
type windowAge struct {
	Count   uint64  `json:"count"`
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
	Dropped uint64  `json:"dropped"`
}

type windowRow struct {
	Start  float64    `json:"start_s"`
	End    float64    `json:"end_s"`
	Others *windowAge `json:"others"`
	Slow   *windowAge `json:"slow"`
}

// group returns the report's group name, nil when it has none.
func (r *report) group(name string) *slowGroup {
	for _, g := range r.Groups {
		if g.Name == name {
			return g
		}
	}
	return nil
}

// disconnects formats a group's disconnects by reason: "close_4000=3
// reset=1", "none".
func disconnects(d map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(d)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, d[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// checkSlow fails a slow-reader run whose figures cannot be used: not all
// n clients connected, a group received nothing, or a seq regression. It
// does not judge the ages or the disconnects: they are what is measured.
func (r *report) checkSlow(n int) error {
	switch {
	case r.Connected < n:
		return fmt.Errorf("%d of %d clients connected (%d failed)", r.Connected, n, r.Failed)
	case len(r.Groups) == 0:
		return errors.New("quoteload reported no groups")
	case r.SeqRegressions > 0:
		return fmt.Errorf("%d seq regressions", r.SeqRegressions)
	}
	for _, g := range r.Groups {
		if g.Deliveries == 0 || g.Age == nil || g.Age.Count == 0 {
			return fmt.Errorf("no quotes delivered to the %s clients", g.Name)
		}
	}
	return nil
}

// ageCell formats one age in ms for a table.
func ageCell(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

// slowReaders measures clients that read slower than they are offered:
// (a) one client of 200 symbols every 100 ms reading at 40 % of what it is
// offered with a 64 KiB receive buffer, its age (receive time −
// fetched_at) per window and whether it stays connected; (b) many clients
// of 10 symbols every 200 ms, 10 % of them reading at 40 % of what they are
// offered: age percentiles of the slow ones and the others apart,
// disconnects, delivered/s and server CPU per delivered quote. It reports;
// it does not judge the ages against a target.
func (b *bench) slowReaders() error {
	d, win := b.sz.slowFor, b.sz.slowWindow
	fmt.Fprintf(&b.md, "\n### slowreaders: clients that read slower than they are offered, for %s\n\n", d)
	fmt.Fprintf(&b.md, "A slow client reads its socket at a fixed pace (quoteload -slow-rate, a token bucket, so TCP flow control backs up to the server) with SO_RCVBUF %s (`-rcvbuf`). Age is receive time − `fetched_at` of each quote when the client reads it; quotehub keeps it bounded by the client's own pace (latest wins down to the socket).\n\n", slowRcvBufText)
	var cmds []string

	// (a) One client, 200 symbols every 100 ms.
	const hubA = "-sim-symbols 1000 -sim-every-tick -sim-batch 1000 -refresh-interval 100ms"
	p, err := b.node("slowreaders-one", nil, strings.Fields(hubA)...)
	if err != nil {
		return err
	}
	cal, calCmd, err := b.load("-url", p.url, "-mode", "ws", "-conns", "1", "-symbols", "200", "-universe", "1000",
		"-duration", b.sz.slowCalibrate.String(), "-warmup", "1s")
	if err != nil {
		p.stop()
		return fmt.Errorf("calibration: %v", err)
	}
	if err := cal.check(1); err != nil || cal.BytesPS == 0 {
		p.stop()
		return fmt.Errorf("calibration (one fast reader): %v, %.0f B/s", err, cal.BytesPS)
	}
	offered := cal.BytesPS
	perQuote := cal.BytesPS / cal.DeliveriesPS
	rateA := int64(offered * slowFraction)
	fmt.Fprintf(&b.md, "Offered to one client of 200 symbols every 100 ms (a fast reader, %s): %.1f KB/s, %.0f quotes/s, %.0f bytes per quote.\n\n",
		b.sz.slowCalibrate, offered/1e3, cal.DeliveriesPS, perQuote)
	a, aCmd, err := b.load("-url", p.url, "-mode", "ws", "-conns", "1", "-symbols", "200", "-universe", "1000",
		"-slow-share", "1", "-slow-rate", strconv.FormatInt(rateA, 10), "-rcvbuf", slowRcvBuf,
		"-window", win.String(), "-duration", d.String(), "-warmup", "0s")
	p.stop()
	if err != nil {
		return err
	}
	cmds = append(cmds, "quotehub "+hubA, calCmd, aCmd)
	if err := a.checkSlow(1); err != nil {
		return fmt.Errorf("one slow client: %v", err)
	}
	g := a.group("slow")
	if g == nil {
		return errors.New("one slow client: no slow group in the report")
	}
	fmt.Fprintf(&b.md, "**One slow client**: 200 of 1,000 symbols every 100 ms, reading %.1f KB/s (%.0f %% of what it is offered; it read %.1f KB/s), SO_RCVBUF %s (the kernel reports %s).\n\n",
		float64(rateA)/1e3, slowFraction*100, g.BytesPSPerConn/1e3, slowRcvBufText, kernelBuf(a.RcvBufKernel))
	fmt.Fprintf(&b.md, "| window | quotes | age p50 ms | age p99 ms | age max ms | disconnected |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, w := range a.Windows {
		if w.Slow == nil {
			continue
		}
		fmt.Fprintf(&b.md, "| %g–%g s | %d | %s | %s | %s | %s |\n", w.Start, round1(w.End), w.Slow.Count,
			ageCell(w.Slow.P50), ageCell(w.Slow.P99), ageCell(w.Slow.Max), yesNo(w.Slow.Dropped > 0))
	}
	stayed := "yes"
	if g.ConnectedAtEnd == 0 {
		stayed = fmt.Sprintf("no (%s, after %.1f s of %s)", disconnects(g.Disconnects), a.MeasuredSeconds, d)
	}
	fmt.Fprintf(&b.md, "\nStayed connected: %s. Age over the whole run: p50 %s ms, p99 %s ms, max %s ms (%d quotes); seq %d regressions, %d repeats.\n\n",
		stayed, ageCell(g.Age.P50), ageCell(g.Age.P99), ageCell(g.Age.Max), g.Age.Count, g.SeqRegressions, g.SeqRepeats)
	say("slowreaders one client: age p99 %.0f ms, stayed connected: %s", g.Age.P99, stayed)

	// (b) Many clients, 10 symbols every 200 ms, a share of them slow.
	n := b.sz.slowClients
	const hubB = "-sim-symbols 1000 -sim-every-tick -sim-batch 1000 -refresh-interval 200ms"
	offeredB := 10 * 5 * perQuote // bytes/s: 10 symbols, 5 changes per second each
	rateB := max(int64(offeredB*slowFraction), 64)
	p, err = b.node("slowreaders-many", nil, strings.Fields(hubB)...)
	if err != nil {
		return err
	}
	m, mCmd, err := b.load("-url", p.url, "-mode", "ws", "-conns", strconv.Itoa(n), "-symbols", "10", "-universe", "1000",
		"-slow-share", "0.1", "-slow-rate", strconv.FormatInt(rateB, 10), "-rcvbuf", slowRcvBuf,
		"-window", win.String(), "-duration", d.String(), "-warmup", "1s", "-connect-rate", "5000")
	p.stop()
	if err != nil {
		return err
	}
	cmds = append(cmds, "quotehub "+hubB, mCmd)
	if err := m.checkSlow(n); err != nil {
		return fmt.Errorf("many clients: %v", err)
	}
	slow, others := m.group("slow"), m.group("others")
	if slow == nil || others == nil {
		return errors.New("many clients: the report lacks the slow or the other clients")
	}
	fmt.Fprintf(&b.md, "**Many clients**: %d clients × 10 of 1,000 symbols every 200 ms; 10 %% of them (%d) read %.1f KB/s each (%.0f %% of the ≈ %.1f KB/s each is offered), all with SO_RCVBUF %s.\n\n",
		n, slow.Conns, float64(rateB)/1e3, slowFraction*100, offeredB/1e3, slowRcvBufText)
	fmt.Fprintf(&b.md, "| clients | count | connected at end | disconnects | delivered/s | read KB/s each | age p50 ms | age p90 ms | age p99 ms | age max ms | seq regressions | seq repeats |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, g := range []*slowGroup{slow, others} {
		fmt.Fprintf(&b.md, "| %s | %d | %d | %s | %.0f | %.1f | %s | %s | %s | %s | %d | %d |\n", g.Name, g.Conns, g.ConnectedAtEnd,
			disconnects(g.Disconnects), g.DeliveriesPS, g.BytesPSPerConn/1e3, ageCell(g.Age.P50), ageCell(g.Age.P90),
			ageCell(g.Age.P99), ageCell(g.Age.Max), g.SeqRegressions, g.SeqRepeats)
	}
	fmt.Fprintf(&b.md, "\n| window | slow age p99 ms | others age p99 ms | slow disconnected | others disconnected |\n| --- | --- | --- | --- | --- |\n")
	for _, w := range m.Windows {
		if w.Slow == nil || w.Others == nil {
			continue
		}
		fmt.Fprintf(&b.md, "| %g–%g s | %s | %s | %d | %d |\n", w.Start, round1(w.End), ageCell(w.Slow.P99), ageCell(w.Others.P99),
			w.Slow.Dropped, w.Others.Dropped)
	}
	server := "no server figures"
	if m.Server != nil {
		server = fmt.Sprintf("server %.2f cores, %.2f µs per delivered quote", m.Server.CPUCores, m.Server.CPUus)
	}
	fmt.Fprintf(&b.md, "\n%.0f quotes delivered per second in all; %s.\n\n", m.DeliveriesPS, server)
	say("slowreaders many clients: age p99 slow %.0f ms, others %.0f ms; %d of %d slow clients dropped", slow.Age.P99, others.Age.P99, slow.Dropped, slow.Conns)
	for _, w := range append(a.Warnings, m.Warnings...) {
		fmt.Fprintf(&b.md, "quoteload: %s.\n", w)
	}
	writeCommands(&b.md, cmds)
	return nil
}

func kernelBuf(v int64) string {
	if v <= 0 {
		return "nothing"
	}
	return fmt.Sprintf("%d KiB", v>>10)
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
