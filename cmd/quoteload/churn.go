package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// The back-to-baseline verdict of a churn run: after -settle, every node's
// goroutines are at most baselineGoroutineSlack above its baseline, it has
// no connection open, its subscriptions are back to the baseline value and
// its RSS is at most the larger of baselineRSSFraction and baselineRSSMin
// above the baseline (the Go runtime returns freed memory lazily).
const (
	baselineGoroutineSlack = 5
	baselineRSSFraction    = 0.20
	baselineRSSMin         = 16 << 20
)

// churnCloseReason is the reason sent with every churn close (code 1000).
const churnCloseReason = "churn"

// ChurnFigures are the outcome of -mode churn.
type ChurnFigures struct {
	TargetRate      float64 `json:"target_rate"`      // -connect-rate; 0 = as fast as possible
	DurationSeconds float64 `json:"duration_seconds"` // -duration: how long attempts were to be started
	DialConcurrency int     `json:"dial_concurrency"`
	HoldSeconds     float64 `json:"hold_seconds"`
	SettleSeconds   float64 `json:"settle_seconds"`

	Attempts       uint64            `json:"attempts"`
	Successes      uint64            `json:"successes"` // whole cycle, the close handshake included
	Failures       uint64            `json:"failures"`
	FailuresByKind map[string]uint64 `json:"failures_by_kind"` // one kind per failed attempt
	MaxInFlight    int64             `json:"max_in_flight"`

	LaunchSeconds  float64 `json:"launch_seconds"`   // first attempt started → last attempt started
	ChurnSeconds   float64 `json:"churn_seconds"`    // first attempt started → last attempt finished
	AttemptsPerSec float64 `json:"attempts_per_sec"` // attempts / churn_seconds
	ConnectsPerSec float64 `json:"connects_per_sec"` // successes / churn_seconds

	ConnectLatency    *Summary `json:"connect_latency_ms"`               // dial → welcome
	CycleLatency      *Summary `json:"cycle_latency_ms"`                 // dial → subscribed
	CloseLatency      *Summary `json:"close_latency_ms"`                 // close 1000 sent → close handshake done
	QuotesWithinHold  uint64   `json:"quotes_within_hold"`               // attempts that got a quotes frame within -churn-hold
	FirstQuoteLatency *Summary `json:"first_quote_latency_ms,omitempty"` // dial → first quotes frame (-churn-hold > 0)

	// Server is the sum over the nodes that had a baseline (a later point
	// is null when one of them failed that read); each node's own figures
	// are in the report's nodes.
	Server *ChurnServer `json:"server,omitempty"`
	// BackToBaseline is true when every node is back to its baseline after
	// the settle period, false when one is not, null when a node's figures
	// are missing.
	BackToBaseline   *bool    `json:"back_to_baseline"`
	BaselineFailures []string `json:"baseline_failures,omitempty"` // the checks that failed, per node
}

// ChurnServer is one node's state around a churn run (or the sum over the
// nodes): /metrics read before the first attempt, right after the last
// attempt finished, and -settle later.
type ChurnServer struct {
	Before              *ServerPoint `json:"before"`
	End                 *ServerPoint `json:"end"`
	Settled             *ServerPoint `json:"settled"`
	CPUSeconds          float64      `json:"cpu_seconds"` // before → end
	CPUCores            float64      `json:"cpu_cores"`
	CPUMicrosPerConnect float64      `json:"cpu_us_per_connect"` // per successful cycle
	BackToBaseline      *bool        `json:"back_to_baseline"`   // null when unknown
	BaselineFailures    []string     `json:"baseline_failures,omitempty"`
}

// ServerPoint is one read of a node's /metrics, as churn mode reports it.
type ServerPoint struct {
	RSSBytes      float64 `json:"rss_bytes"`     // process_resident_memory_bytes
	Goroutines    float64 `json:"goroutines"`    // go_goroutines
	Connections   float64 `json:"connections"`   // quotehub_connections, summed over transports
	Subscriptions float64 `json:"subscriptions"` // quotehub_subscriptions
	CPUSeconds    float64 `json:"cpu_seconds"`   // process_cpu_seconds_total
	// Missing names the series above that /metrics did not have.
	Missing []string `json:"missing,omitempty"`

	at time.Time
}

// pointOf converts a /metrics sample; nil for nil.
func pointOf(s *serverSample) *ServerPoint {
	if s == nil {
		return nil
	}
	p := &ServerPoint{
		RSSBytes: s.RSS, Goroutines: s.Goroutines, Subscriptions: s.Subscriptions,
		CPUSeconds: s.CPU, at: s.At,
	}
	for _, v := range s.Conns {
		p.Connections += v
	}
	for _, name := range []string{"process_resident_memory_bytes", "go_goroutines", "quotehub_connections", "quotehub_subscriptions"} {
		if !s.has[name] {
			p.Missing = append(p.Missing, name)
		}
	}
	return p
}

// baselineVerdict compares a node's settled figures with its baseline (see
// baselineGoroutineSlack). It returns nil when a sample or one of its series
// is missing; else whether every check passed, and the failed checks.
func baselineVerdict(before, settled *ServerPoint) (*bool, []string) {
	if before == nil || settled == nil || len(before.Missing) > 0 || len(settled.Missing) > 0 {
		return nil, nil
	}
	var fails []string
	if settled.Goroutines > before.Goroutines+baselineGoroutineSlack {
		fails = append(fails, fmt.Sprintf("goroutines %.0f > %.0f + %d", settled.Goroutines, before.Goroutines, baselineGoroutineSlack))
	}
	if settled.Connections != 0 {
		fails = append(fails, fmt.Sprintf("connections %.0f, want 0", settled.Connections))
	}
	if settled.Subscriptions != before.Subscriptions {
		fails = append(fails, fmt.Sprintf("subscriptions %.0f, baseline %.0f", settled.Subscriptions, before.Subscriptions))
	}
	slack := max(before.RSSBytes*baselineRSSFraction, baselineRSSMin)
	if settled.RSSBytes > before.RSSBytes+slack {
		fails = append(fails, fmt.Sprintf("RSS %s > %s + %s", mib(settled.RSSBytes), mib(before.RSSBytes), mib(slack)))
	}
	ok := len(fails) == 0
	return &ok, fails
}

// churnWorker runs churn attempts one after another; its tally is written
// only by its own goroutine and read after done is closed.
type churnWorker struct {
	done chan struct{}
	buf  []byte

	attempts, ok, quotes                  uint64
	connectLat, cycleLat, closeLat, qtLat Hist // µs
	fails, errs                           map[string]uint64
	nodeOK                                []int
}

func (w *churnWorker) addErr(kind string) {
	if w.errs == nil {
		w.errs = make(map[string]uint64)
	}
	w.errs[kind]++
}

// fail records why an attempt failed (also counted in the errors).
func (w *churnWorker) fail(kind string) {
	if w.fails == nil {
		w.fails = make(map[string]uint64)
	}
	w.fails[kind]++
	w.addErr(kind)
}

// runChurn is Run for -mode churn: connect cycles at the connect rate for
// the duration, at most DialConcurrency in flight, with the server read
// before, at the end and after the settle period.
func runChurn(ctx context.Context, cfg Config, bases []*url.URL, universe []string) (*Report, error) {
	if err := ensureFileLimit(cfg.DialConcurrency); err != nil {
		return nil, err
	}
	r := newRunner(cfg, bases)
	defer r.closeIdle()
	hardBudget := cfg.Duration + cfg.ConnectTimeout + cfg.ChurnHold + cfg.Settle + 40*time.Second
	hardCtx, hardCancel := context.WithTimeout(context.Background(), hardBudget)
	defer hardCancel()
	r.stopCtx = hardCtx

	rep := newReport(cfg, bases, len(universe))
	rep.StartedAt = time.Now().UTC()
	before := r.scrapeAll(hardCtx, nil, func(node string, err error) {
		rep.warnf("%sserver metrics unavailable (%v): no server figures", node, err)
	})

	r.logf("churn: WebSocket connect cycles at %s for %v, at most %d in flight", rateText(cfg.ConnectRate), cfg.Duration, cfg.DialConcurrency)
	cpu0 := processCPU()
	t0 := time.Now()
	workers, launched, lastLaunch, unfinished := r.churn(ctx, hardCtx, universe)
	t1 := time.Now()
	rep.ClientCPUSeconds = processCPU() - cpu0
	if d := t1.Sub(t0).Seconds(); d > 0 {
		rep.ClientCPUCores = rep.ClientCPUSeconds / d
	}
	if ctx.Err() != nil {
		rep.Interrupted = true
		rep.warnf("interrupted: no attempt was started after the interrupt")
	}
	if unfinished > 0 {
		rep.warnf("%d churn workers did not end within the hard deadline plus %v; their figures are left out", unfinished, shutdownGrace)
	}

	end := r.scrapeAll(hardCtx, before, func(node string, err error) {
		rep.warnf("%sserver metrics at churn end: %v", node, err)
	})
	if cfg.Settle > 0 && hardCtx.Err() == nil {
		r.logf("settling %v", cfg.Settle)
		sleepCtx(hardCtx, hardCtx, cfg.Settle)
	}
	settled := r.scrapeAll(hardCtx, before, func(node string, err error) {
		rep.warnf("%sserver metrics after settling: %v", node, err)
	})
	if hardCtx.Err() != nil {
		rep.HardDeadlineHit = true
		rep.warnf("hard deadline (%v) reached: attempts were cut short", hardBudget.Round(time.Millisecond))
	}

	f := &ChurnFigures{
		TargetRate: cfg.ConnectRate, DurationSeconds: cfg.Duration.Seconds(), DialConcurrency: cfg.DialConcurrency,
		HoldSeconds: cfg.ChurnHold.Seconds(), SettleSeconds: cfg.Settle.Seconds(),
		FailuresByKind: map[string]uint64{}, MaxInFlight: r.maxInFlight.Load(),
		ChurnSeconds: t1.Sub(t0).Seconds(),
	}
	if launched > 0 {
		f.LaunchSeconds = lastLaunch.Sub(t0).Seconds()
	}
	rep.Churn = f
	rep.addChurn(workers, launched)
	rep.addChurnServer(before, end, settled)
	return rep, nil
}

// churn starts attempt i at i/rate into the run (as soon as a worker is
// free with rate 0) until the duration has passed, ctx ends or
// maxChurnAttempts were started, then waits for the attempts in flight.
// DialConcurrency workers run the attempts, so at most that many are in
// flight. It returns the workers, how many attempts were started, when the
// last one was, and how many workers had not ended by the hard deadline
// plus the grace period.
func (r *runner) churn(ctx, hardCtx context.Context, universe []string) (workers []*churnWorker, launched int, lastLaunch time.Time, unfinished int) {
	cfg := r.cfg
	jobs := make(chan int)
	workers = make([]*churnWorker, cfg.DialConcurrency)
	for k := range workers {
		w := &churnWorker{done: make(chan struct{}), nodeOK: make([]int, len(r.bases))}
		workers[k] = w
		go func() {
			defer close(w.done)
			for i := range jobs {
				n := r.inFlight.Add(1)
				for m := r.maxInFlight.Load(); n > m && !r.maxInFlight.CompareAndSwap(m, n); m = r.maxInFlight.Load() {
					// another worker raised it meanwhile: compare again
				}
				if r.churnAttempt(hardCtx, w, i, connSymbols(universe, i, cfg.Symbols)) {
					r.nOK.Add(1)
				} else {
					r.nFail.Add(1)
				}
				r.inFlight.Add(-1)
			}
		}()
	}

	start := time.Now()
	endTimer := time.NewTimer(cfg.Duration)
	defer endTimer.Stop()
	end := endTimer.C
	if cfg.ConnectRate > 0 {
		// The schedule alone bounds the attempts: a hand-off that is late
		// (a busy machine) still happens, so 300/s for 1 s is 300 attempts.
		end = nil
	}
	progress := time.NewTicker(2 * time.Second)
	defer progress.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
loop:
	for i := range maxChurnAttempts {
		if cfg.ConnectRate > 0 {
			// i/rate, not i times a rounded interval: 300/s for 1 s is
			// exactly 300 attempts.
			offset := time.Duration(float64(i) * float64(time.Second) / cfg.ConnectRate)
			if offset >= cfg.Duration {
				break
			}
			if wait := time.Until(start.Add(offset)); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
					break loop
				case <-hardCtx.Done():
					break loop
				}
			}
		}
		select {
		case jobs <- i:
		case <-end:
			break loop
		case <-ctx.Done():
			break loop
		case <-hardCtx.Done():
			break loop
		}
		launched, lastLaunch = i+1, time.Now()
		select {
		case <-progress.C:
			r.logf("churn: %d started, %d ok, %d failed, %d in flight", launched, r.nOK.Load(), r.nFail.Load(), r.inFlight.Load())
		default:
		}
	}
	close(jobs)

	allDone := make(chan struct{})
	go func() {
		for _, w := range workers {
			<-w.done
		}
		close(allDone)
	}()
	for waiting := true; waiting; {
		select {
		case <-allDone:
			return workers, launched, lastLaunch, 0
		case <-progress.C:
			r.logf("churn: %d started, %d ok, %d failed, %d in flight", launched, r.nOK.Load(), r.nFail.Load(), r.inFlight.Load())
		case <-hardCtx.Done():
			waiting = false
		}
	}
	grace := time.NewTimer(shutdownGrace)
	defer grace.Stop()
	select {
	case <-allDone:
		return workers, launched, lastLaunch, 0
	case <-grace.C:
	}
	for _, w := range workers {
		select {
		case <-w.done:
		default:
			unfinished++
		}
	}
	return workers, launched, lastLaunch, unfinished
}

// churnAttempt runs one connect cycle on node i mod n: dial, handshake and
// welcome (the connect latency), subscribed (the cycle latency), with
// ChurnHold > 0 the first quotes frame if one comes within it, then close
// with 1000 and wait for the server's close. Dial to subscribed must fit in
// the connect timeout. It reports whether the whole cycle succeeded.
func (r *runner) churnAttempt(hardCtx context.Context, w *churnWorker, i int, syms []string) bool {
	w.attempts++
	t0 := time.Now()
	dctx, cancel := context.WithTimeout(hardCtx, r.cfg.ConnectTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(dctx, r.wsURL(i, syms), &websocket.DialOptions{HTTPClient: r.client(i)})
	if err != nil {
		w.fail(connectErrKind(err, resp, dctx, hardCtx))
		return false
	}
	defer ws.CloseNow()
	ws.SetReadLimit(wsReadLimit)

	var typ websocket.MessageType
	w.buf, typ, err = readMessage(dctx, ws, w.buf)
	if err != nil {
		w.fail(connectErrKind(err, nil, dctx, hardCtx))
		return false
	}
	if kind, _ := frameKind(w.buf); typ != websocket.MessageText || kind != "welcome" {
		w.fail("handshake_no_welcome")
		return false
	}
	w.connectLat.Record(time.Since(t0).Microseconds())

	// subscribed answers the symbols of the URL.
	for subscribed := false; !subscribed; {
		w.buf, typ, err = readMessage(dctx, ws, w.buf)
		if err != nil {
			w.fail(phaseErrKind("subscribe", err, dctx))
			return false
		}
		kind, cf := frameKind(w.buf)
		switch {
		case typ != websocket.MessageText:
			w.addErr("binary_frame")
		case kind == "subscribed":
			subscribed = true
			for _, rj := range cf.Rejected {
				w.addErr("rejected_" + rj.Code)
			}
		case kind == "error":
			w.fail("subscribe_error_" + cf.Code)
			return false
		case kind == "quotes":
			w.addErr("quote_before_subscribed")
		default:
			w.addErr("unexpected_frame")
		}
	}
	w.cycleLat.Record(time.Since(t0).Microseconds())
	cancel()

	if hold := r.cfg.ChurnHold; hold > 0 {
		// A read whose context ends closes the connection without a close
		// frame, so the hold is a timer that closes with 1000 while the
		// read is blocked; the library hands the server's close frame to
		// whichever of the two is reading.
		type closeResult struct {
			err error
			dur time.Duration
		}
		closed := make(chan closeResult, 1)
		timer := time.AfterFunc(hold, func() {
			tc := time.Now()
			err := ws.Close(websocket.StatusNormalClosure, churnCloseReason)
			closed <- closeResult{err, time.Since(tc)}
		})
		var readErr error
		for {
			w.buf, _, readErr = readMessage(context.Background(), ws, w.buf)
			if readErr != nil {
				break
			}
			if kind, cf := frameKind(w.buf); kind == "quotes" {
				w.quotes++
				w.qtLat.Record(time.Since(t0).Microseconds())
				break
			} else if kind == "error" {
				w.addErr("error_frame_" + cf.Code)
			}
		}
		if !timer.Stop() { // the hold ended: the timer closed the connection
			res := <-closed
			return w.closed(i, res.err, res.dur)
		}
		if readErr != nil { // lost before the hold ended
			w.fail(phaseErrKind("hold", readErr, nil))
			return false
		}
	}
	tc := time.Now()
	err = ws.Close(websocket.StatusNormalClosure, churnCloseReason)
	return w.closed(i, err, time.Since(tc))
}

// closed records the end of attempt i's close handshake (err from Close,
// taking dur) and reports whether the attempt succeeded.
func (w *churnWorker) closed(i int, err error, dur time.Duration) bool {
	if err != nil {
		w.fail(phaseErrKind("close", err, nil))
		return false
	}
	w.closeLat.Record(dur.Microseconds())
	w.ok++
	w.nodeOK[i%len(w.nodeOK)]++
	return true
}

// phaseErrKind names a failure after the handshake: <phase>_close_<code>
// when the server closed the WebSocket, <phase>_timeout when ctx (or a
// network deadline) ended, else <phase>_read.
func phaseErrKind(phase string, err error, ctx context.Context) string {
	switch {
	case websocket.CloseStatus(err) != -1:
		return fmt.Sprintf("%s_close_%d", phase, websocket.CloseStatus(err))
	case ctx != nil && ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return phase + "_timeout"
	default:
		return phase + "_read"
	}
}

// addChurn merges the tallies of the workers that ended.
func (rep *Report) addChurn(workers []*churnWorker, launched int) {
	f := rep.Churn
	var connLat, cycleLat, closeLat, qtLat Hist
	for _, w := range workers {
		select {
		case <-w.done:
		default:
			continue // still running: its tally cannot be read safely
		}
		f.Attempts += w.attempts
		f.Successes += w.ok
		f.QuotesWithinHold += w.quotes
		connLat.Merge(&w.connectLat)
		cycleLat.Merge(&w.cycleLat)
		closeLat.Merge(&w.closeLat)
		qtLat.Merge(&w.qtLat)
		for k, v := range w.fails {
			f.FailuresByKind[k] += v
		}
		for k, v := range w.errs {
			rep.Errors[k] += v
		}
		for j, n := range w.nodeOK {
			rep.Nodes[j].Connected += n
		}
	}
	// Attempts of a worker that never ended are counted, as failures.
	if uint64(launched) > f.Attempts {
		missing := uint64(launched) - f.Attempts
		f.FailuresByKind["unfinished"] += missing
		rep.Errors["unfinished"] += missing
		f.Attempts += missing
	}
	f.Failures = f.Attempts - f.Successes
	f.ConnectLatency = summarize(&connLat)
	f.CycleLatency = summarize(&cycleLat)
	f.CloseLatency = summarize(&closeLat)
	if f.HoldSeconds > 0 {
		f.FirstQuoteLatency = summarize(&qtLat)
	}
	if d := f.ChurnSeconds; d > 0 {
		f.AttemptsPerSec = float64(f.Attempts) / d
		f.ConnectsPerSec = float64(f.Successes) / d
	}
	rep.Conns, rep.Connected, rep.Failed = int(f.Attempts), int(f.Successes), int(f.Failures)
	rep.MeasuredSeconds = f.ChurnSeconds
	rep.ConnectLatency = f.ConnectLatency
	for _, h := range []*Hist{&connLat, &cycleLat, &closeLat, &qtLat} {
		if h.Overflow() > 0 {
			rep.warnf("%d latencies above %v were counted as %v in the percentiles", h.Overflow(), time.Duration(HistMax)*time.Microsecond, time.Duration(HistMax)*time.Microsecond)
			break
		}
	}
}

// addChurnServer fills every node's churn figures and their sum, and the
// verdict: yes when every node is back to its baseline, no when one is not,
// unknown (nil) otherwise.
func (rep *Report) addChurnServer(before, end, settled []*serverSample) {
	f := rep.Churn
	sum := &ChurnServer{}
	sumBefore, sumEnd, sumSettled := &ServerPoint{}, &ServerPoint{}, &ServerPoint{}
	var nBefore, nEnd, nSettled, withCPU, connected int
	anyNode, verdictNo, verdictUnknown := false, false, false
	for j, n := range rep.Nodes {
		b, e, s := pointOf(sampleAt(before, j)), pointOf(sampleAt(end, j)), pointOf(sampleAt(settled, j))
		ok, fails := baselineVerdict(b, s)
		switch {
		case ok == nil:
			verdictUnknown = true
		case !*ok:
			verdictNo = true
			for _, fl := range fails {
				if len(rep.Nodes) > 1 {
					fl = n.URL + ": " + fl
				}
				f.BaselineFailures = append(f.BaselineFailures, fl)
			}
		}
		if b == nil {
			continue
		}
		anyNode = true
		cs := &ChurnServer{Before: b, End: e, Settled: s, BackToBaseline: ok, BaselineFailures: fails}
		n.Churn = cs
		addPoint(sumBefore, b)
		nBefore++
		if e != nil {
			addPoint(sumEnd, e)
			nEnd++
			cs.CPUSeconds = e.CPUSeconds - b.CPUSeconds
			if d := e.at.Sub(b.at).Seconds(); d > 0 {
				cs.CPUCores = cs.CPUSeconds / d
			}
			if n.Connected > 0 {
				cs.CPUMicrosPerConnect = cs.CPUSeconds * 1e6 / float64(n.Connected)
			}
			sum.CPUSeconds += cs.CPUSeconds
			sum.CPUCores += cs.CPUCores
			connected += n.Connected
			withCPU++
		}
		if s != nil {
			addPoint(sumSettled, s)
			nSettled++
		}
	}
	switch {
	case verdictNo:
		f.BackToBaseline = new(false)
	case !verdictUnknown:
		f.BackToBaseline = new(true)
	}
	if !anyNode {
		return
	}
	// The sum covers the nodes with a baseline; a later read that failed
	// on one of them leaves that point of the sum unknown.
	sum.Before = sumBefore
	if nEnd == nBefore {
		sum.End = sumEnd
	}
	if nSettled == nBefore {
		sum.Settled = sumSettled
	}
	if nBefore < len(rep.Nodes) {
		rep.warnf("server totals cover %d of %d nodes (the others' /metrics were unavailable)", nBefore, len(rep.Nodes))
	}
	if withCPU > 0 && connected > 0 {
		sum.CPUMicrosPerConnect = sum.CPUSeconds * 1e6 / float64(connected)
	}
	sum.BackToBaseline, sum.BaselineFailures = f.BackToBaseline, f.BaselineFailures
	f.Server = sum
}

// addPoint adds p to sum, series by series.
func addPoint(sum, p *ServerPoint) {
	sum.RSSBytes += p.RSSBytes
	sum.Goroutines += p.Goroutines
	sum.Connections += p.Connections
	sum.Subscriptions += p.Subscriptions
	sum.CPUSeconds += p.CPUSeconds
	for _, m := range p.Missing {
		if !slices.Contains(sum.Missing, m) {
			sum.Missing = append(sum.Missing, m)
		}
	}
}

// verdictText is the verdict line's value: yes, no or unknown.
func verdictText(ok *bool) string {
	switch {
	case ok == nil:
		return "unknown"
	case *ok:
		return "yes"
	default:
		return "no"
	}
}

// writeChurnText prints the churn part of the table (after the mode row).
func (rep *Report) writeChurnText(row func(k, format string, args ...any)) {
	f := rep.Churn
	row("churn", "%d attempts at %s for %v: %d succeeded, %d failed  (%d symbols each, universe %d, %d source addr)",
		f.Attempts, rateText(f.TargetRate), time.Duration(f.DurationSeconds*float64(time.Second)), f.Successes, f.Failures, rep.SymbolsPerConn, rep.Universe, rep.Sources)
	row("rate", "%.1f connects/s achieved  (%.1f attempts/s; started over %.2fs, all done after %.2fs; at most %d in flight, dial-concurrency %d)",
		f.ConnectsPerSec, f.AttemptsPerSec, f.LaunchSeconds, f.ChurnSeconds, f.MaxInFlight, f.DialConcurrency)
	lat := func(k string, l *Summary, what string) {
		if l == nil || l.Count == 0 {
			row(k, "no samples  (%s)", what)
			return
		}
		row(k, "p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f  (%s, n=%d)", l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean, what, l.Count)
	}
	lat("connect ms", f.ConnectLatency, "dial → welcome")
	lat("cycle ms", f.CycleLatency, "dial → subscribed")
	lat("close ms", f.CloseLatency, "close 1000 sent → server's close received")
	if f.HoldSeconds > 0 {
		row("quotes", "%d of %d got a quotes frame within %v", f.QuotesWithinHold, f.Attempts, time.Duration(f.HoldSeconds*float64(time.Second)))
		lat("first quote ms", f.FirstQuoteLatency, "dial → first quotes frame")
	} else {
		row("quotes", "not waited for (-churn-hold 0: closed right after subscribed)")
	}
	row("failures", "%s", orNone(countsText(f.FailuresByKind)))
	row("errors", "%s", orNone(countsText(rep.Errors)))
	row("client CPU", "%.2fs = %.2f cores (quoteload itself, during the churn)", rep.ClientCPUSeconds, rep.ClientCPUCores)
	pt := func(p *ServerPoint, v func(*ServerPoint) string) string {
		if p == nil {
			return "?"
		}
		return v(p)
	}
	points := func(k string, s *ChurnServer, v func(*ServerPoint) string) {
		row(k, "%s → %s → %s", pt(s.Before, v), pt(s.End, v), pt(s.Settled, v))
	}
	rss := func(p *ServerPoint) string { return mib(p.RSSBytes) }
	gor := func(p *ServerPoint) string { return fmt.Sprintf("%.0f", p.Goroutines) }
	con := func(p *ServerPoint) string { return fmt.Sprintf("%.0f", p.Connections) }
	sub := func(p *ServerPoint) string { return fmt.Sprintf("%.0f", p.Subscriptions) }
	if s := f.Server; s != nil {
		row("server", "before → end → settled (%.2fs after the last close)%s", f.SettleSeconds, rep.sumNote())
		points("  RSS", s, rss)
		points("  goroutines", s, gor)
		points("  connections", s, con)
		points("  subscriptions", s, sub)
		row("server CPU", "%.2fs during the churn = %.2f cores  →  %.1f µs per connect cycle", s.CPUSeconds, s.CPUCores, s.CPUMicrosPerConnect)
	} else {
		row("server", "no figures (/metrics unavailable)")
	}
	if len(rep.Nodes) > 1 {
		for j, n := range rep.Nodes {
			s := n.Churn
			if s == nil {
				row(fmt.Sprintf("node %d", j+1), "%s  %d ok; no server figures", n.URL, n.Connected)
				continue
			}
			row(fmt.Sprintf("node %d", j+1), "%s  %d ok; RSS %s → %s → %s, goroutines %s → %s → %s, connections %s → %s → %s, subscriptions %s → %s → %s; baseline: %s",
				n.URL, n.Connected,
				pt(s.Before, rss), pt(s.End, rss), pt(s.Settled, rss),
				pt(s.Before, gor), pt(s.End, gor), pt(s.Settled, gor),
				pt(s.Before, con), pt(s.End, con), pt(s.Settled, con),
				pt(s.Before, sub), pt(s.End, sub), pt(s.Settled, sub),
				verdictText(s.BackToBaseline))
		}
	}
	why := fmt.Sprintf("goroutines ≤ baseline + %d, connections 0, subscriptions = baseline, RSS ≤ baseline + max(%.0f %%, %s)",
		baselineGoroutineSlack, baselineRSSFraction*100, mib(baselineRSSMin))
	switch {
	case f.BackToBaseline == nil:
		why = "server figures missing"
	case !*f.BackToBaseline:
		why = strings.Join(f.BaselineFailures, "; ")
	}
	row("verdict", "back to baseline: %s  (%s)", verdictText(f.BackToBaseline), why)
	for _, w := range rep.Warnings {
		row("warning", "%s", w)
	}
}

// countsText formats counts by kind in key order: "a=1 b=2".
func countsText(m map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
