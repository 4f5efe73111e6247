package main

import (
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// connStats is one connection's tally. Only its own goroutine writes it;
// the report reads it after that goroutine has ended, so it needs no locks.
type connStats struct {
	slow       bool        // reads at -slow-rate (set before the connection starts)
	win        *connWindow // -window: this connection's share of the ages per window (nil without)
	connected  bool
	dropped    bool   // ended before the run closed it
	dropReason string // why, when dropped: see dropReason
	connectDur time.Duration

	deliveries uint64 // quotes received in the measured window
	frames     uint64 // WS messages / SSE events / HTTP responses in the window
	bytes      uint64
	lat        Hist // µs: delivery latency (ws, sse) or request latency (http)

	seqRegressions uint64
	seqRepeats     uint64
	symNames       []string       // symbol of lastSeq[i], while at most seqSmallMax
	symIdx         map[string]int // symbol → index into lastSeq, beyond seqSmallMax
	seqHint        int            // where seqIndex starts its linear search
	lastSeq        []int64

	errs   map[string]uint64
	status map[int]uint64 // http mode, measured window

	candles candleStats // -candles (see candles.go)
}

// group is the connection's group: groupSlow or groupOthers.
func (s *connStats) group() int {
	if s.slow {
		return groupSlow
	}
	return groupOthers
}

// endWindow adds what the connection recorded in its current window to
// the run's ages per window (a no-op without -window).
func (s *connStats) endWindow() {
	if s.win != nil {
		s.win.flush()
	}
}

func (s *connStats) addErr(kind string) {
	if s.errs == nil {
		s.errs = make(map[string]uint64)
	}
	s.errs[kind]++
}

func (s *connStats) addStatus(code int) {
	if s.status == nil {
		s.status = make(map[int]uint64)
	}
	s.status[code]++
}

// checkSeq compares q's seq with the last one this connection saw for the
// symbol: lower is a regression, equal a repeat (allowed for a snapshot
// re-sent on subscribe; reported, not an error).
func (s *connStats) checkSeq(q *quoteRec) {
	if !q.HasSeq {
		s.addErr("quote_without_seq")
		return
	}
	i := s.seqIndex(q.Symbol)
	if i < 0 {
		s.addSeqSymbol(q.Symbol, q.Seq)
		return
	}
	switch last := s.lastSeq[i]; {
	case q.Seq < last:
		s.seqRegressions++
	case q.Seq == last:
		s.seqRepeats++
	default:
		s.lastSeq[i] = q.Seq
	}
}

// seqSmallMax is how many symbols a connection tracks in a slice searched
// linearly (cheaper than a map lookup for the few symbols a connection
// usually has); beyond it, a map indexes them.
const seqSmallMax = 32

// seqIndex returns sym's index into lastSeq, or -1 when it was never seen.
// It does not allocate.
func (s *connStats) seqIndex(sym []byte) int {
	if s.symIdx != nil {
		if i, ok := s.symIdx[string(sym)]; ok {
			return i
		}
		return -1
	}
	// Frames list symbols in much the same order each time: try the one
	// after the last hit first.
	n := len(s.symNames)
	if n == 0 {
		return -1
	}
	i := s.seqHint
	if i >= n {
		i = 0
	}
	for range n {
		if s.symNames[i] == string(sym) {
			s.seqHint = i + 1
			return i
		}
		if i++; i == n {
			i = 0
		}
	}
	return -1
}

// addSeqSymbol starts tracking sym at seq.
func (s *connStats) addSeqSymbol(sym []byte, seq int64) {
	name := string(sym)
	i := len(s.lastSeq)
	s.lastSeq = append(s.lastSeq, seq)
	switch {
	case s.symIdx != nil:
		s.symIdx[name] = i
	case len(s.symNames) < seqSmallMax:
		s.symNames = append(s.symNames, name)
	default:
		s.symIdx = make(map[string]int, 2*seqSmallMax)
		for j, n := range s.symNames {
			s.symIdx[n] = j
		}
		s.symIdx[name] = i
		s.symNames = nil
	}
}

// recordQuotes checks the seq of every quote and, in the measured window,
// counts it and records its latency: nowUs (receive time, Unix µs) −
// fetched_at (Unix ms).
func (s *connStats) recordQuotes(qs []quoteRec, nowUs int64, measuring bool) {
	for i := range qs {
		q := &qs[i]
		s.checkSeq(q)
		if !measuring {
			continue
		}
		s.deliveries++
		if q.HasFetchedAt {
			age := nowUs - q.FetchedAt*1000
			s.lat.Record(age)
			if s.win != nil {
				s.win.record(age, nowUs)
			}
		} else {
			s.addErr("quote_without_fetched_at")
		}
	}
}

// Report is the outcome of one run; it is printed as a table and written
// as JSON with -json.
type Report struct {
	Label     string    `json:"label,omitempty"`
	Mode      string    `json:"mode"`
	URL       string    `json:"url"` // the -url list, comma-separated when several
	StartedAt time.Time `json:"started_at"`

	Conns          int     `json:"conns"`           // requested (http: workers; churn: attempts)
	Connected      int     `json:"conns_connected"` // churn: attempts that completed the whole cycle
	Failed         int     `json:"conns_failed"`
	Dropped        int     `json:"conns_dropped"` // connected, then lost before the end
	SymbolsPerConn int     `json:"symbols_per_conn"`
	Universe       int     `json:"universe"`
	Sources        int     `json:"sources"`
	ConnectRate    float64 `json:"connect_rate"`
	TargetRate     float64 `json:"target_rate,omitempty"` // http mode

	RampSeconds     float64 `json:"ramp_seconds"`
	WarmupSeconds   float64 `json:"warmup_seconds"`
	MeasuredSeconds float64 `json:"measured_seconds"`
	CloseSeconds    float64 `json:"close_seconds"`
	Interrupted     bool    `json:"interrupted"`
	HardDeadlineHit bool    `json:"hard_deadline_hit"`

	Deliveries       uint64  `json:"deliveries"` // quotes received in the window (http: 200 responses with a quote)
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	Frames           uint64  `json:"frames"` // WS messages, SSE events, or HTTP responses
	FramesPerSec     float64 `json:"frames_per_sec"`
	Bytes            uint64  `json:"bytes"`
	BytesPerSec      float64 `json:"bytes_per_sec"`

	// Latency is the delivery latency (receive time − fetched_at; fetched_at
	// has 1 ms resolution, so ±1 ms) or, in http mode, the request latency.
	Latency        *Summary       `json:"latency_ms"`
	LatencyNote    string         `json:"latency_note"`
	ConnectLatency *Summary       `json:"connect_latency_ms,omitempty"`
	Candles        *CandleFigures `json:"candles,omitempty"`

	HTTP *HTTPFigures `json:"http,omitempty"`

	Errors         map[string]uint64 `json:"errors"`
	SeqRegressions uint64            `json:"seq_regressions"`
	SeqRepeats     uint64            `json:"seq_repeats"`

	// ClientCPUSeconds is the CPU quoteload itself used in the window: when
	// client and server share the machine, a client near its cores' limit
	// bounds what the server can show.
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	ClientCPUCores   float64 `json:"client_cpu_cores"`

	// Server is the sum of the nodes' figures (with one -url, that node's).
	Server *ServerFigures `json:"server,omitempty"`
	// Nodes are every -url's own figures, in the order given: a list of one
	// for a single URL.
	Nodes []*NodeReport `json:"nodes"`
	// Churn holds the figures of -mode churn (nil in the other modes).
	Churn *ChurnFigures `json:"churn,omitempty"`

	// RcvBuf is -rcvbuf (bytes; 0 = the system's default) and
	// RcvBufKernel the SO_RCVBUF the kernel reported after setting it
	// (Linux doubles the request and caps it at net.core.rmem_max).
	RcvBuf       int64 `json:"rcvbuf_bytes,omitempty"`
	RcvBufKernel int64 `json:"rcvbuf_kernel_bytes,omitempty"`
	// Groups are the figures of the slow connections and the others apart
	// (with -slow-share or -window): "others" first, then "slow"; a group
	// without connections is left out.
	Groups []*GroupReport `json:"groups,omitempty"`
	// WindowSeconds is -window, and Windows the age of what arrived in
	// each window of the measured time, per group.
	WindowSeconds float64      `json:"window_seconds,omitempty"`
	Windows       []*WindowRow `json:"windows,omitempty"`

	Warnings []string `json:"warnings,omitempty"`
}

// GroupReport is one group of connections: the slow ones (reading at
// -slow-rate) or the others.
type GroupReport struct {
	Name           string `json:"name"`                              // "slow" or "others"
	Conns          int    `json:"conns"`                             // connections in the group
	ReadRate       int64  `json:"read_rate_bytes_per_sec,omitempty"` // slow: -slow-rate
	Connected      int    `json:"conns_connected"`
	ConnectedAtEnd int    `json:"conns_connected_at_end"` // connected and not lost before the run closed them
	Dropped        int    `json:"conns_dropped"`
	// Disconnects counts the lost connections by reason: close_<code>
	// for a close frame from the server (4000: slow consumer), reset,
	// eof (closed without a close frame: 1006 for a WebSocket client),
	// timeout or read.
	Disconnects        map[string]int `json:"disconnects"`
	Deliveries         uint64         `json:"deliveries"` // quotes received in the measured window
	DeliveriesPerSec   float64        `json:"deliveries_per_sec"`
	Bytes              uint64         `json:"bytes"`
	BytesPerSecPerConn float64        `json:"bytes_per_sec_per_conn"` // over the connections that connected
	// Age is receive time − fetched_at of every quote received in the
	// measured window (ms, ±1 ms): for a slow reader, how old what it
	// gets is when it gets it.
	Age            *Summary `json:"age_ms"`
	SeqRegressions uint64   `json:"seq_regressions"`
	SeqRepeats     uint64   `json:"seq_repeats"` // the same seq twice for a symbol (duplicates)
}

// WindowRow is the age of what arrived in one -window of the measured time.
type WindowRow struct {
	StartSeconds float64    `json:"start_s"` // from the start of the measured window
	EndSeconds   float64    `json:"end_s"`
	Others       *WindowAge `json:"others,omitempty"`
	Slow         *WindowAge `json:"slow,omitempty"`
}

// WindowAge is one group's ages (ms) in one window, and the connections it
// lost in it.
type WindowAge struct {
	Count   uint64  `json:"count"`
	P50     float64 `json:"p50"`
	P90     float64 `json:"p90"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
	Dropped uint64  `json:"dropped"`
}

// NodeReport is one node's (one -url's) share of a run: connection i went
// to node i mod len(nodes).
type NodeReport struct {
	URL        string         `json:"url"`
	Connected  int            `json:"conns_connected"` // churn: attempts that completed the whole cycle
	Deliveries uint64         `json:"deliveries"`      // quotes received from it in the window (http: 200 responses with a quote)
	Server     *ServerFigures `json:"server,omitempty"`
	Churn      *ChurnServer   `json:"churn,omitempty"` // churn mode
}

// Summary is a latency distribution in milliseconds.
type Summary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

// HTTPFigures are the http-mode totals of the measured window.
type HTTPFigures struct {
	Requests       uint64            `json:"requests"`
	RequestsPerSec float64           `json:"requests_per_sec"`
	Status         map[string]uint64 `json:"status"`
}

// ServerFigures are read from the server's /metrics before any connection
// (baseline) and at the start and end of the measured window. For several
// nodes, the report's total adds up the nodes' bytes, seconds, goroutines,
// connections and deliveries (cores too: each node's over its own window;
// window_seconds is the nodes' mean) and derives the ratios from the sums.
type ServerFigures struct {
	RSSBaselineBytes     float64            `json:"rss_baseline_bytes"`
	RSSStartBytes        float64            `json:"rss_start_bytes"`
	RSSEndBytes          float64            `json:"rss_end_bytes"`
	RSSPerConnBytes      float64            `json:"rss_per_conn_bytes"` // (end − baseline) / connected
	CPUSeconds           float64            `json:"cpu_seconds"`        // used during the window
	CPUCores             float64            `json:"cpu_cores"`
	GoroutinesStart      float64            `json:"goroutines_start"`
	GoroutinesEnd        float64            `json:"goroutines_end"`
	Connections          map[string]float64 `json:"connections"` // at window end, by transport
	DeliveredDelta       float64            `json:"delivered_delta"`
	CPUMicrosPerDelivery float64            `json:"cpu_us_per_delivery"` // http mode: per request
	WindowSeconds        float64            `json:"window_seconds"`      // between the two scrapes
}

func newReport(cfg Config, bases []*url.URL, universe int) *Report {
	urls := make([]string, len(bases))
	nodes := make([]*NodeReport, len(bases))
	for j, u := range bases {
		urls[j] = u.String()
		nodes[j] = &NodeReport{URL: urls[j]}
	}
	rep := &Report{
		Label: cfg.Label, Mode: cfg.Mode, URL: strings.Join(urls, ","),
		Conns: cfg.Conns, SymbolsPerConn: cfg.Symbols, Universe: universe,
		Sources: cfg.Sources, ConnectRate: cfg.ConnectRate,
		Errors: map[string]uint64{}, Nodes: nodes,
	}
	switch cfg.Mode {
	case "http":
		rep.TargetRate = cfg.Rate
		rep.LatencyNote = "request latency (send to body read)"
	case "churn":
		rep.LatencyNote = "churn: no deliveries are measured; see churn.connect_latency_ms and churn.cycle_latency_ms"
	default:
		rep.LatencyNote = "receive time - fetched_at; fetched_at is in ms, so values are ±1 ms"
	}
	return rep
}

func (rep *Report) warnf(format string, args ...any) {
	rep.Warnings = append(rep.Warnings, fmt.Sprintf(format, args...))
}

// addConns merges the stats of the connections whose goroutines ended
// (conns[:launched]); the rest were never started.
func (rep *Report) addConns(conns []*conn, launched int) {
	var lat, connLat Hist
	status := map[int]uint64{}
	for i, c := range conns {
		if i >= launched {
			rep.Errors["not_started"]++
			continue
		}
		select {
		case <-c.done:
		default:
			continue // still running: its stats cannot be read safely
		}
		st := &c.st
		node := rep.Nodes[c.id%len(rep.Nodes)]
		if st.connected {
			rep.Connected++
			node.Connected++
			if rep.Mode != "http" {
				connLat.Record(st.connectDur.Microseconds())
			}
		}
		if st.dropped {
			rep.Dropped++
		}
		rep.Deliveries += st.deliveries
		node.Deliveries += st.deliveries
		rep.Frames += st.frames
		rep.Bytes += st.bytes
		rep.SeqRegressions += st.seqRegressions
		rep.SeqRepeats += st.seqRepeats
		lat.Merge(&st.lat)
		for k, v := range st.errs {
			rep.Errors[k] += v
		}
		for k, v := range st.status {
			status[k] += v
		}
	}
	rep.Failed = rep.Conns - rep.Connected
	rep.Latency = summarize(&lat)
	if rep.Mode != "http" {
		rep.ConnectLatency = summarize(&connLat)
	} else {
		rep.HTTP = &HTTPFigures{Requests: rep.Frames, Status: map[string]uint64{}}
		for k, v := range status {
			rep.HTTP.Status[strconv.Itoa(k)] = v
		}
	}
	if lat.Overflow() > 0 {
		rep.warnf("%d latencies above %v were counted as %v in the percentiles", lat.Overflow(), time.Duration(HistMax)*time.Microsecond, time.Duration(HistMax)*time.Microsecond)
	}
}

// addGroups adds the slow connections' figures and the others' apart
// (only with -slow-share or -window; conns[:launched] were started).
func (rep *Report) addGroups(cfg Config, conns []*conn, launched int, rcvBufKernel int64) {
	rep.RcvBuf, rep.RcvBufKernel = cfg.RcvBuf, rcvBufKernel
	if cfg.SlowShare <= 0 && cfg.Window <= 0 {
		return
	}
	var groups [2]GroupReport
	var ages [2]Hist
	for g := range groups {
		groups[g].Name = groupNames[g]
		groups[g].Disconnects = map[string]int{}
	}
	groups[groupSlow].ReadRate = cfg.SlowRate
	for i, c := range conns {
		st := &c.st
		g := &groups[st.group()]
		g.Conns++
		if i >= launched {
			continue
		}
		select {
		case <-c.done:
		default:
			continue // still running: its stats cannot be read safely
		}
		if st.connected {
			g.Connected++
			if !st.dropped {
				g.ConnectedAtEnd++
			}
		}
		if st.dropped {
			g.Dropped++
			g.Disconnects[st.dropReason]++
		}
		g.Deliveries += st.deliveries
		g.Bytes += st.bytes
		g.SeqRegressions += st.seqRegressions
		g.SeqRepeats += st.seqRepeats
		ages[st.group()].Merge(&st.lat)
	}
	for gi := range groups {
		g := &groups[gi]
		if g.Conns == 0 {
			continue // no slow connections, or no others
		}
		g.Age = summarize(&ages[gi])
		if d := rep.MeasuredSeconds; d > 0 {
			g.DeliveriesPerSec = float64(g.Deliveries) / d
			if g.Connected > 0 {
				g.BytesPerSecPerConn = float64(g.Bytes) / d / float64(g.Connected)
			}
		}
		rep.Groups = append(rep.Groups, g)
	}
}

// addWindows adds the ages per window (nil aw: no -window). Windows that
// start after the measured time ended (a run cut short) are left out.
func (rep *Report) addWindows(aw *ageWindows) {
	if aw == nil {
		return
	}
	aw.mu.Lock() // a connection that did not end in time may still add to it
	defer aw.mu.Unlock()
	var has [2]bool
	for _, g := range rep.Groups {
		has[slices.Index(groupNames[:], g.Name)] = true
	}
	win := float64(aw.windowUs) / 1e6
	rep.WindowSeconds = win
	for w := range aw.n {
		start := float64(w) * win
		if start >= rep.MeasuredSeconds && w > 0 {
			break
		}
		row := &WindowRow{StartSeconds: start, EndSeconds: min(start+win, rep.MeasuredSeconds)}
		if has[groupOthers] {
			row.Others = windowAge(&aw.hist[groupOthers][w], aw.dropped[groupOthers][w])
		}
		if has[groupSlow] {
			row.Slow = windowAge(&aw.hist[groupSlow][w], aw.dropped[groupSlow][w])
		}
		rep.Windows = append(rep.Windows, row)
	}
}

// windowAge summarises one group's ages (µs) in one window, in ms.
func windowAge(h *Hist, dropped uint64) *WindowAge {
	return &WindowAge{
		Count: h.Count(), P50: h.Quantile(0.5) / 1000, P90: h.Quantile(0.9) / 1000,
		P99: h.Quantile(0.99) / 1000, Max: float64(h.Max()) / 1000, Dropped: dropped,
	}
}

// summarize turns a µs histogram into a millisecond Summary.
func summarize(h *Hist) *Summary {
	ms := func(us float64) float64 { return us / 1000 }
	return &Summary{
		Count: h.Count(), Mean: ms(h.Mean()),
		P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(float64(h.Max())),
	}
}

// sampleAt returns samples[j], nil when samples is nil.
func sampleAt(samples []*serverSample, j int) *serverSample {
	if samples == nil {
		return nil
	}
	return samples[j]
}

// addServer derives every node's server figures from its three /metrics
// samples (one slice entry per node, nil where a read failed), and their
// sum. A node without a baseline has no figures; one without both window
// samples has its baseline only, and the sum's window figures leave it out
// (with a warning).
func (rep *Report) addServer(baseline, s0, s1 []*serverSample) {
	sum := &ServerFigures{Connections: map[string]float64{}}
	var withBaseline, windowed, connected int
	var windowBaseline, deliveries float64
	for j, n := range rep.Nodes {
		f := rep.nodeServer(sampleAt(baseline, j), sampleAt(s0, j), sampleAt(s1, j), n.Connected, n.Deliveries)
		n.Server = f
		if f == nil {
			continue
		}
		withBaseline++
		sum.RSSBaselineBytes += f.RSSBaselineBytes
		if f.WindowSeconds <= 0 {
			continue
		}
		windowed++
		windowBaseline += f.RSSBaselineBytes
		connected += n.Connected
		deliveries += float64(n.Deliveries)
		sum.RSSStartBytes += f.RSSStartBytes
		sum.RSSEndBytes += f.RSSEndBytes
		sum.CPUSeconds += f.CPUSeconds
		sum.CPUCores += f.CPUCores
		sum.GoroutinesStart += f.GoroutinesStart
		sum.GoroutinesEnd += f.GoroutinesEnd
		for k, v := range f.Connections {
			sum.Connections[k] += v
		}
		sum.DeliveredDelta += f.DeliveredDelta
		sum.WindowSeconds += f.WindowSeconds
	}
	if withBaseline == 0 {
		return
	}
	rep.Server = sum
	if withBaseline < len(rep.Nodes) {
		rep.warnf("server totals cover %d of %d nodes (the others' /metrics were unavailable)", withBaseline, len(rep.Nodes))
	}
	if windowed == 0 {
		return
	}
	if windowed < withBaseline {
		rep.warnf("server window figures cover %d of %d nodes", windowed, withBaseline)
	}
	sum.WindowSeconds /= float64(windowed)
	if sum.DeliveredDelta > 0 {
		sum.CPUMicrosPerDelivery = sum.CPUSeconds * 1e6 / sum.DeliveredDelta
	} else if rep.Mode == "http" && deliveries > 0 {
		sum.CPUMicrosPerDelivery = sum.CPUSeconds * 1e6 / deliveries // per request
	}
	if connected > 0 && windowBaseline > 0 {
		sum.RSSPerConnBytes = (sum.RSSEndBytes - windowBaseline) / float64(connected)
	}
}

// nodeServer derives one node's figures from its samples; connected and
// deliveries are what the client saw of that node. Nil without a baseline.
func (rep *Report) nodeServer(baseline, s0, s1 *serverSample, connected int, deliveries uint64) *ServerFigures {
	if baseline == nil {
		return nil
	}
	f := &ServerFigures{RSSBaselineBytes: baseline.RSS, Connections: map[string]float64{}}
	if s0 == nil || s1 == nil {
		return f
	}
	f.RSSStartBytes, f.RSSEndBytes = s0.RSS, s1.RSS
	f.GoroutinesStart, f.GoroutinesEnd = s0.Goroutines, s1.Goroutines
	maps.Copy(f.Connections, s1.Conns)
	f.WindowSeconds = s1.At.Sub(s0.At).Seconds()
	f.CPUSeconds = s1.CPU - s0.CPU
	if f.WindowSeconds > 0 {
		f.CPUCores = f.CPUSeconds / f.WindowSeconds
	}
	f.DeliveredDelta = s1.Delivered - s0.Delivered
	if f.DeliveredDelta > 0 {
		f.CPUMicrosPerDelivery = f.CPUSeconds * 1e6 / f.DeliveredDelta
	} else if rep.Mode == "http" && deliveries > 0 {
		f.CPUMicrosPerDelivery = f.CPUSeconds * 1e6 / float64(deliveries) // per request
	}
	if connected > 0 && baseline.RSS > 0 {
		f.RSSPerConnBytes = (s1.RSS - baseline.RSS) / float64(connected)
	}
	return f
}

// finish computes the rates.
func (rep *Report) finish() {
	if d := rep.MeasuredSeconds; d > 0 {
		rep.DeliveriesPerSec = float64(rep.Deliveries) / d
		rep.FramesPerSec = float64(rep.Frames) / d
		rep.BytesPerSec = float64(rep.Bytes) / d
		if rep.HTTP != nil {
			rep.HTTP.RequestsPerSec = float64(rep.HTTP.Requests) / d
		}
	}
}

// WriteText prints the report as an aligned table.
func (rep *Report) WriteText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	title := "quoteload report"
	if rep.Label != "" {
		title += ": " + rep.Label
	}
	fmt.Fprintln(tw, title)
	row("mode", "%s  %s  (started %s)", rep.Mode, rep.URL, rep.StartedAt.Format(time.RFC3339))
	if rep.Churn != nil {
		rep.writeChurnText(row)
		tw.Flush()
		return
	}
	unit := "conns"
	if rep.Mode == "http" {
		unit = "workers"
	}
	row(unit, "%d connected, %d failed, %d dropped  (of %d; %d symbols each, universe %d, %d source addr)",
		rep.Connected, rep.Failed, rep.Dropped, rep.Conns, rep.SymbolsPerConn, rep.Universe, rep.Sources)
	row("timing", "ramp %.2fs (connect-rate %s), warmup %.2fs, measured %.2fs, close %.2fs",
		rep.RampSeconds, rateText(rep.ConnectRate), rep.WarmupSeconds, rep.MeasuredSeconds, rep.CloseSeconds)
	if rep.HTTP != nil {
		codes := slices.Sorted(maps.Keys(rep.HTTP.Status))
		var parts []string
		for _, k := range codes {
			parts = append(parts, fmt.Sprintf("%s=%d", k, rep.HTTP.Status[k]))
		}
		target := "max"
		if rep.TargetRate > 0 {
			target = fmt.Sprintf("%g/s", rep.TargetRate)
		}
		row("requests", "%d  (%.1f/s, target %s)  status %s", rep.HTTP.Requests, rep.HTTP.RequestsPerSec, target, orNone(strings.Join(parts, " ")))
		row("quotes read", "%d  (%.1f/s)", rep.Deliveries, rep.DeliveriesPerSec)
	} else {
		row("deliveries", "%d  (%.1f/s)", rep.Deliveries, rep.DeliveriesPerSec)
		row("frames", "%d  (%.1f/s, %.2f quotes/frame)", rep.Frames, rep.FramesPerSec, ratio(float64(rep.Deliveries), float64(rep.Frames)))
	}
	row("bytes", "%d  (%.2f MB/s)", rep.Bytes, rep.BytesPerSec/1e6)
	if l := rep.Latency; l != nil && l.Count == 0 {
		row("latency ms", "no samples in the measured window")
	} else if l != nil {
		row("latency ms", "p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f  (n=%d)", l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean, l.Count)
		row("", "%s", rep.LatencyNote)
	}
	rep.writeCandlesText(row)
	if l := rep.ConnectLatency; l != nil {
		what := "dial+handshake+welcome"
		if rep.Mode == "sse" {
			what = "until response headers"
		}
		row("connect ms", "p50 %.2f  p99 %.2f  max %.2f  (%s, n=%d)", l.P50, l.P99, l.Max, what, l.Count)
	}
	if rep.Mode == "http" {
		row("seq", "%d regressions, %d repeats  (re-reading an unchanged quote repeats its seq)", rep.SeqRegressions, rep.SeqRepeats)
	} else {
		row("seq", "%d regressions, %d repeats", rep.SeqRegressions, rep.SeqRepeats)
	}
	var errs []string
	for _, k := range slices.Sorted(maps.Keys(rep.Errors)) {
		errs = append(errs, fmt.Sprintf("%s=%d", k, rep.Errors[k]))
	}
	row("errors", "%s", orNone(strings.Join(errs, " ")))
	row("client CPU", "%.2fs = %.2f cores (quoteload itself, measured window)", rep.ClientCPUSeconds, rep.ClientCPUCores)
	if s := rep.Server; s != nil {
		if s.WindowSeconds > 0 {
			row("server RSS", "%s baseline, %s at start, %s at end  →  %s per connection%s",
				mib(s.RSSBaselineBytes), mib(s.RSSStartBytes), mib(s.RSSEndBytes), kib(s.RSSPerConnBytes), rep.sumNote())
			per := "delivered quote"
			if rep.Mode == "http" {
				per = "request"
			}
			perText := "no deliveries"
			if s.CPUMicrosPerDelivery > 0 {
				perText = fmt.Sprintf("%.2f µs per %s", s.CPUMicrosPerDelivery, per)
			}
			row("server CPU", "%.2fs in %.2fs = %.2f cores  →  %s", s.CPUSeconds, s.WindowSeconds, s.CPUCores, perText)
			var conns []string
			for _, k := range slices.Sorted(maps.Keys(s.Connections)) {
				conns = append(conns, fmt.Sprintf("%s=%.0f", k, s.Connections[k]))
			}
			row("server misc", "goroutines %.0f → %.0f, connections %s, delivered (server count) %.0f vs %d received",
				s.GoroutinesStart, s.GoroutinesEnd, orNone(strings.Join(conns, " ")), s.DeliveredDelta, rep.Deliveries)
		} else {
			row("server RSS", "%s baseline (no measured window)%s", mib(s.RSSBaselineBytes), rep.sumNote())
		}
	} else {
		row("server", "no figures (/metrics unavailable)")
	}
	if len(rep.Nodes) > 1 {
		for j, n := range rep.Nodes {
			s := n.Server
			switch {
			case s == nil:
				row(fmt.Sprintf("node %d", j+1), "%s  %d connected, %d deliveries; no server figures", n.URL, n.Connected, n.Deliveries)
			case s.WindowSeconds <= 0:
				row(fmt.Sprintf("node %d", j+1), "%s  %d connected, %d deliveries; RSS %s baseline", n.URL, n.Connected, n.Deliveries, mib(s.RSSBaselineBytes))
			default:
				row(fmt.Sprintf("node %d", j+1), "%s  %d connected, %d deliveries; RSS %s → %s, CPU %.2f cores, goroutines %.0f → %.0f, connections %s, delivered %.0f",
					n.URL, n.Connected, n.Deliveries, mib(s.RSSBaselineBytes), mib(s.RSSEndBytes), s.CPUCores,
					s.GoroutinesStart, s.GoroutinesEnd, orNone(connText(s.Connections)), s.DeliveredDelta)
			}
		}
	}
	rep.writeGroupsText(row)
	for _, w := range rep.Warnings {
		row("warning", "%s", w)
	}
	tw.Flush()
}

// writeGroupsText prints the slow connections' figures and the others'
// and the ages per window (nothing without -slow-share, -window, -rcvbuf).
func (rep *Report) writeGroupsText(row func(k, format string, args ...any)) {
	if rep.RcvBuf > 0 {
		kernel := "not reported"
		if rep.RcvBufKernel > 0 {
			kernel = sizeText(rep.RcvBufKernel)
		}
		row("rcvbuf", "SO_RCVBUF %s requested on every connection's socket, kernel reports %s", sizeText(rep.RcvBuf), kernel)
	}
	for _, g := range rep.Groups {
		what := "the others, reading as fast as they can"
		if g.Name == "slow" {
			what = fmt.Sprintf("reading %s/s each", sizeText(g.ReadRate))
		}
		row("group "+g.Name, "%d conns (%s): %d connected, %d still connected at the end, %d dropped%s",
			g.Conns, what, g.Connected, g.ConnectedAtEnd, g.Dropped, disconnectText(g.Disconnects))
		row("", "%d quotes (%.1f/s), %.1f KB/s per connection read; seq %d regressions, %d repeats",
			g.Deliveries, g.DeliveriesPerSec, g.BytesPerSecPerConn/1e3, g.SeqRegressions, g.SeqRepeats)
		if a := g.Age; a != nil && a.Count > 0 {
			row("", "age ms  p50 %.1f  p90 %.1f  p99 %.1f  max %.1f  (receive time − fetched_at, n=%d)", a.P50, a.P90, a.P99, a.Max, a.Count)
		} else {
			row("", "age ms  no quotes in the measured window")
		}
	}
	if len(rep.Windows) == 0 {
		return
	}
	cell := func(a *WindowAge) string {
		if a.Count == 0 {
			return fmt.Sprintf("n=0  dropped %d", a.Dropped)
		}
		return fmt.Sprintf("n=%d  p50 %.0f  p99 %.0f  max %.0f  dropped %d", a.Count, a.P50, a.P99, a.Max, a.Dropped)
	}
	row("age per window", "ms, receive time − fetched_at, per %gs of the measured time", rep.WindowSeconds)
	for _, w := range rep.Windows {
		var parts []string
		if w.Slow != nil {
			parts = append(parts, "slow "+cell(w.Slow))
		}
		if w.Others != nil {
			parts = append(parts, "others "+cell(w.Others))
		}
		text := strings.Join(parts, "  |  ")
		row(fmt.Sprintf("  %.4g–%.4gs", w.StartSeconds, w.EndSeconds), "%s", text)
	}
}

// disconnectText formats the disconnects by reason: " (close_4000=2
// reset=1)", "" when there are none.
func disconnectText(d map[string]int) string {
	if len(d) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(d)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, d[k]))
	}
	return " (" + strings.Join(parts, " ") + ")"
}

// sumNote marks the server rows of a several-node report as sums.
func (rep *Report) sumNote() string {
	if len(rep.Nodes) > 1 {
		return fmt.Sprintf("  (sum of %d nodes)", len(rep.Nodes))
	}
	return ""
}

// connText formats connections by transport: "sse=0 ws=5".
func connText(c map[string]float64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s=%.0f", k, c[k]))
	}
	return strings.Join(parts, " ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
func kib(b float64) string { return fmt.Sprintf("%.1f KiB", b/(1<<10)) }
