// Command quotebench runs quotehub's benchmark scenarios with the real
// binaries on this machine — one node (or three, on Redis) on loopback and
// quoteload beside it — and appends the results, with the commands, date,
// commit and machine, to docs/BENCHMARKS.md.
//
//	go run ./cmd/quotebench -size short   # what `make bench` runs (a few minutes)
//	go run ./cmd/quotebench -size full    # what scripts/bench.sh runs (about half an hour)
//
// Scenarios: fanout-ws and fanout-sse (find the highest tick rate whose p99
// stays within 50 ms), idle (RSS per idle WebSocket, connect rate and
// latency), reads (HTTP reads while fan-out runs at half its best rate),
// churn (connects + subscribes + disconnects, back to baseline after),
// cluster (three nodes on Redis, clients spread over them), floor (bare
// TCP, no hub: one 2,560-byte write to each of N loopback sockets per tick,
// between two quotebench processes — this machine's floor for the fan-out
// burst), slowreaders (clients that read slower than they are offered:
// the age of what they receive, per window, and whether they stay
// connected), and soak (churn, fan-out and reads at once for minutes while
// the node's RSS, goroutines and open fds are sampled: nothing may grow;
// scripts/soak.sh runs it for 10 minutes), portfolios (users following
// their portfolios: the age of the portfolio frames; then valued reads). Every process binds 127.0.0.1 only, every run is bounded in
// time, and every process is stopped at the end.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// size is one set of scenario sizes.
type size struct {
	name                   string
	fanoutClients          int
	fanoutIntervals        []time.Duration
	sseClients             int
	runFor                 time.Duration
	idleConns, idleSources int
	readClients            int
	readRate               int
	churnRate              int
	churnFor               time.Duration
	clusterClients         int
	clusterOffered         int // quotes per second offered to the cluster's clients
	floorConns             int
	floorFor               time.Duration
	floorIntervals         []time.Duration
	slowFor                time.Duration // slowreaders: each part's measured time
	slowWindow             time.Duration // slowreaders: age percentiles per window of this length
	slowCalibrate          time.Duration // slowreaders: the fast reader that measures what is offered
	slowClients            int           // slowreaders: clients of the many-clients part
	benchtime              string        // go test -benchtime of the micro-benchmarks ("" = Go's default)
	soakFor, soakEvery     time.Duration // soak: how long, and how often the node is sampled
	soakClients            int           // soak: steady fan-out WebSockets
	soakChurn, soakReads   int           // soak: connects per second, HTTP reads per second
}

var sizes = map[string]size{
	"short": {
		name: "short", fanoutClients: 2000, fanoutIntervals: ms(1000, 500, 200, 100), sseClients: 1000,
		runFor: 4 * time.Second, idleConns: 5000, idleSources: 1, readClients: 1000, readRate: 20000,
		churnRate: 500, churnFor: 10 * time.Second, clusterClients: 1000, clusterOffered: 100000,
		floorConns: 2000, floorFor: 4 * time.Second, floorIntervals: ms(1000, 500, 200, 100),
		slowFor: 15 * time.Second, slowWindow: 3 * time.Second, slowCalibrate: 2 * time.Second, slowClients: 2000,
		soakFor: 2 * time.Minute, soakEvery: 5 * time.Second, soakClients: 1000, soakChurn: 100, soakReads: 1000,
	},
	"full": {
		name: "full", fanoutClients: 10000, fanoutIntervals: ms(1000, 500, 250, 200, 150, 100, 75, 50), sseClients: 10000,
		runFor: 10 * time.Second, idleConns: 18000, idleSources: 2, readClients: 10000, readRate: 20000,
		churnRate: 1000, churnFor: 60 * time.Second, clusterClients: 3000, clusterOffered: 100000,
		floorConns: 10000, floorFor: 8 * time.Second, floorIntervals: ms(1000, 500, 200, 100),
		slowFor: 60 * time.Second, slowWindow: 5 * time.Second, slowCalibrate: 3 * time.Second, slowClients: 10000,
		soakFor: 10 * time.Minute, soakEvery: 10 * time.Second, soakClients: 2000, soakChurn: 200, soakReads: 2000,
	},
	// tiny checks that every scenario still runs (the package's test); its
	// figures mean nothing.
	"tiny": {
		name: "tiny", fanoutClients: 20, fanoutIntervals: ms(200, 100), sseClients: 20,
		runFor: time.Second, idleConns: 50, idleSources: 1, readClients: 20, readRate: 500,
		churnRate: 20, churnFor: 2 * time.Second, clusterClients: 30, clusterOffered: 3000,
		floorConns: 20, floorFor: time.Second, floorIntervals: ms(100), benchtime: "1x",
		slowFor: 3 * time.Second, slowWindow: time.Second, slowCalibrate: time.Second, slowClients: 20,
		soakFor: 6 * time.Second, soakEvery: time.Second, soakClients: 20, soakChurn: 10, soakReads: 50,
	},
}

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

// p99Limit is the latency budget of the fan-out scenarios.
const p99Limit = 50.0

type bench struct {
	sz        size
	root      string // the module's directory: builds, micro-benchmarks and git run there
	dir       string // binaries and logs
	quotehub  string
	quoteload string
	redis     string
	md        bytes.Buffer // the section appended to the results file
	ctx       context.Context
}

func main() {
	if os.Getenv(floorPeerEnv) == "1" {
		floorPeer() // the floor scenario's reader process; never returns
	}
	sizeName := flag.String("size", "short", "short (make bench) or full (scripts/bench.sh); tiny only checks that every scenario runs")
	out := flag.String("out", "docs/BENCHMARKS.md", "results file to append to (empty: print only)")
	only := flag.String("only", "", "comma-separated scenarios to run (default all): "+strings.Join(scenarios, ","))
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis for the cluster scenario (loopback)")
	soakFor := flag.Duration("soak-for", 0, "how long the soak scenario runs (default: the size's, 2m short, 10m full; at most 24h)")
	flag.Parse()
	sz, ok := sizes[*sizeName]
	if !ok {
		fatal("unknown -size %q (short, full or tiny)", *sizeName)
	}
	switch {
	case *soakFor < 0 || *soakFor > 24*time.Hour:
		fatal("-soak-for %s: want a duration up to 24h", *soakFor)
	case *soakFor > 0:
		sz.soakFor = *soakFor
	}
	want, err := parseOnly(*only)
	if err != nil {
		fatal("%v", err)
	}
	if host, _, err := net.SplitHostPort(*redisAddr); err != nil || !isLoopback(host) {
		fatal("-redis must be a loopback host:port")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b, err := newBench(ctx, sz, *redisAddr)
	if err != nil {
		fatal("%v", err)
	}
	defer b.close()
	b.run(want)
	os.Stdout.Write(b.md.Bytes())
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			fatal("%v", err)
		}
		defer f.Close()
		if _, err := f.Write(b.md.Bytes()); err != nil {
			fatal("%v", err)
		}
		say("appended to %s", *out)
	}
}

// scenarios are the scenario names, in the order they run.
var scenarios = []string{"micro", "floor", "fanout-ws", "fanout-sse", "idle", "reads", "churn", "cluster", "slowreaders", "portfolios", "soak"}

// parseOnly parses -only: the set of scenarios to run (empty: all).
func parseOnly(only string) (map[string]bool, error) {
	want := map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(scenarios, s) {
			return nil, fmt.Errorf("-only: unknown scenario %q (want %s)", s, strings.Join(scenarios, ", "))
		}
		want[s] = true
	}
	return want, nil
}

// newBench builds quotehub and quoteload into a temporary directory; close
// removes it.
func newBench(ctx context.Context, sz size, redisAddr string) (*bench, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(gomod)) == 0 || string(bytes.TrimSpace(gomod)) == os.DevNull {
		return nil, fmt.Errorf("run quotebench inside the quotehub module (go env GOMOD: %q, %v)", bytes.TrimSpace(gomod), err)
	}
	dir, err := os.MkdirTemp("", "quotebench-")
	if err != nil {
		return nil, err
	}
	b := &bench{sz: sz, root: filepath.Dir(string(bytes.TrimSpace(gomod))), dir: dir, redis: redisAddr, ctx: ctx,
		quotehub: filepath.Join(dir, "quotehub"), quoteload: filepath.Join(dir, "quoteload")}
	for bin, pkg := range map[string]string{b.quotehub: "./cmd/quotehub", b.quoteload: "./cmd/quoteload"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		cmd.Dir = b.root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.close()
			return nil, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return b, nil
}

func (b *bench) close() { os.RemoveAll(b.dir) }

// run runs the scenarios in want (all when want is empty) and writes their
// results, or why one did not complete, to b.md. It returns the names of
// the scenarios that did not complete.
func (b *bench) run(want map[string]bool) (failed []string) {
	b.header()
	run := func(name string, f func() error) {
		if len(want) > 0 && !want[name] || b.ctx.Err() != nil {
			return
		}
		say("== %s", name)
		if err := f(); err != nil {
			say("%s: %v", name, err)
			fmt.Fprintf(&b.md, "\n### %s\n\nnot completed: %v\n", name, err)
			failed = append(failed, name)
		}
	}
	best := 0.0 // best WebSocket fan-out tick rate, for the reads scenario
	run("micro", b.micro)
	run("floor", b.floor)
	run("fanout-ws", func() (err error) { best, err = b.fanout("ws", b.sz.fanoutClients); return err })
	run("fanout-sse", func() error { _, err := b.fanout("sse", b.sz.sseClients); return err })
	run("idle", b.idle)
	run("reads", func() error { return b.reads(best) })
	run("churn", b.churn)
	run("cluster", b.cluster)
	run("slowreaders", b.slowReaders)
	run("portfolios", b.portfolios)
	run("soak", b.soak)
	return failed
}

func (b *bench) header() {
	git := exec.Command("git", "rev-parse", "--short", "HEAD")
	git.Dir = b.root
	commit, _ := git.Output()
	model := "unknown CPU"
	if cpu, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(cpu), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if mi, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(strings.SplitN(string(mi), "\n", 2)[0]); len(f) >= 2 {
			kb, _ := strconv.Atoi(f[1])
			mem = fmt.Sprintf(", %d GiB", (kb+(1<<19))>>20)
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(&b.md, "\n## quotebench -size %s — %s, commit %s\n\n", b.sz.name, time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		strings.TrimSpace(string(commit)))
	fmt.Fprintf(&b.md, "Machine: %d × %s%s, Linux %s, %s; server and load generator share it over loopback.\n",
		runtime.NumCPU(), model, mem, strings.TrimSpace(string(kernel)), runtime.Version())
	fmt.Fprintf(&b.md, "Command: `go run ./cmd/quotebench -size %s`. Latency is receive time − `fetched_at` (ms, ±1 ms).\n", b.sz.name)
}

// report is the part of quoteload's JSON report the scenarios read.
type report struct {
	Connected      int     `json:"conns_connected"`
	Failed         int     `json:"conns_failed"`
	Dropped        int     `json:"conns_dropped"`
	DeliveriesPS   float64 `json:"deliveries_per_sec"`
	FramesPS       float64 `json:"frames_per_sec"`
	BytesPS        float64 `json:"bytes_per_sec"`
	SeqRegressions uint64  `json:"seq_regressions"`
	Latency        *stats  `json:"latency_ms"`
	Connect        *stats  `json:"connect_latency_ms"`
	RampSeconds    float64 `json:"ramp_seconds"`
	HTTP           *struct {
		RequestsPS float64 `json:"requests_per_sec"`
	} `json:"http"`
	Server *struct {
		RSSPerConn float64 `json:"rss_per_conn_bytes"`
		CPUCores   float64 `json:"cpu_cores"`
		CPUus      float64 `json:"cpu_us_per_delivery"`
	} `json:"server"`
	Churn json.RawMessage `json:"churn"`
	// Slow readers (-slow-share, -window, -rcvbuf).
	MeasuredSeconds float64      `json:"measured_seconds"`
	RcvBufKernel    int64        `json:"rcvbuf_kernel_bytes"`
	Groups          []*slowGroup `json:"groups"`
	Windows         []*windowRow `json:"windows"`
	Warnings        []string     `json:"warnings"`
	Text            string       `json:"-"`
}

// check fails a streaming run whose figures cannot be used: not all n
// clients connected, one was dropped, nothing was delivered, or a client
// saw a seq regression (a hub bug, not a load limit).
func (r *report) check(n int) error {
	switch {
	case r.Connected < n:
		return fmt.Errorf("%d of %d clients connected (%d failed)", r.Connected, n, r.Failed)
	case r.Dropped > 0:
		return fmt.Errorf("%d of %d clients dropped by the server", r.Dropped, n)
	case r.DeliveriesPS == 0 || r.Latency == nil:
		return errors.New("no quotes delivered")
	case r.SeqRegressions > 0:
		return fmt.Errorf("%d seq regressions", r.SeqRegressions)
	}
	return nil
}

type stats struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// node starts one quotehub on a free loopback port with args.
func (b *bench) node(name string, env []string, args ...string) (*process, error) {
	addr := "127.0.0.1:" + strconv.Itoa(freePort())
	args = append([]string{"-addr", addr, "-admin-addr=", "-log-level", "warn", "-max-connections", "200000",
		"-data-dir", filepath.Join(b.dir, name+"-data")}, args...)
	logf, err := os.Create(filepath.Join(b.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(b.quotehub, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, url: "http://" + addr, done: make(chan struct{}), log: logf}
	go func() { _ = cmd.Wait(); close(p.done) }()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if resp, err := http.Get(p.url + "/healthz"); err == nil {
			resp.Body.Close()
			return p, nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New(name + " did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type process struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
	log  *os.File
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
}

// load runs quoteload with args and returns its report.
func (b *bench) load(args ...string) (*report, string, error) {
	out := filepath.Join(b.dir, fmt.Sprintf("load-%d.json", time.Now().UnixNano()))
	full := append(args, "-json", out)
	cmd := exec.CommandContext(b.ctx, b.quoteload, full...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, "", fmt.Errorf("quoteload: %v: %s", err, lastLine(stderr.String()))
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, "", err
	}
	var r report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, "", err
	}
	return &r, "quoteload " + strings.Join(args, " "), nil
}

func (b *bench) secs() string { return strconv.Itoa(int(b.sz.runFor.Seconds())) + "s" }

// fanout finds the highest tick rate of all 1,000 symbols whose delivery
// p99 stays within 50 ms, for n clients × 10 symbols. It returns that rate
// (ticks per second).
func (b *bench) fanout(mode string, n int) (float64, error) {
	fmt.Fprintf(&b.md, "\n### fanout-%s: %d clients × 10 of 1,000 symbols, every symbol changing on every tick\n\n", mode, n)
	fmt.Fprintf(&b.md, "| tick | offered/s | delivered/s | frames/s | p50 ms | p99 ms | p99.9 ms | server cores | server µs/quote | seq regressions |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	best, bestRate, peak := 0.0, 0.0, 0.0
	var cmds []string
	for _, iv := range b.sz.fanoutIntervals {
		p, err := b.node("fanout", nil, "-sim-symbols", "1000", "-sim-every-tick", "-sim-batch", "1000",
			"-refresh-interval", iv.String(), "-write-delay", "1ms")
		if err != nil {
			return best, err
		}
		r, cmd, err := b.load("-url", p.url, "-mode", mode, "-conns", strconv.Itoa(n), "-symbols", "10", "-universe", "1000",
			"-duration", b.secs(), "-connect-rate", "5000")
		p.stop()
		if err != nil {
			return best, err
		}
		cmds = append(cmds, fmt.Sprintf("quotehub -sim-symbols 1000 -sim-every-tick -sim-batch 1000 -refresh-interval %s -write-delay 1ms; %s", iv, cmd))
		ticks := float64(time.Second) / float64(iv)
		offered := ticks * float64(n) * 10
		fmt.Fprintf(&b.md, "| %s | %.0f | %.0f | %.0f | %.1f | %.1f | %.1f | %.2f | %.2f | %d |\n", iv, offered, r.DeliveriesPS,
			r.FramesPS, r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Server.CPUCores, r.Server.CPUus, r.SeqRegressions)
		say("%s tick %s: %.0f/s delivered, p99 %.1f ms", mode, iv, r.DeliveriesPS, r.Latency.P99)
		if err := r.check(n); err != nil {
			if peak == 0 {
				return best, err // not even the slowest tick works
			}
			fmt.Fprintf(&b.md, "\nStopped at tick %s: %v.\n", iv, err)
			break
		}
		peak = max(peak, r.DeliveriesPS)
		if r.Latency.P99 <= p99Limit {
			best, bestRate = ticks, r.DeliveriesPS
		}
		if r.DeliveriesPS < 0.8*offered && r.Latency.P99 > 4*p99Limit {
			break // saturated: faster ticks only conflate more
		}
	}
	fmt.Fprintf(&b.md, "\nHighest tick rate within p99 ≤ %.0f ms: %.1f/s (%.0f quotes delivered per second); most delivered at any tick rate: %.0f/s.\n\n",
		p99Limit, best, bestRate, peak)
	writeCommands(&b.md, cmds)
	return best, nil
}

// micro runs the Go micro-benchmarks of the hot paths.
func (b *bench) micro() error {
	args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "1"}
	if b.sz.benchtime != "" {
		args = append(args, "-benchtime", b.sz.benchtime)
	}
	args = append(args, "./hub", ".")
	cmd := exec.CommandContext(b.ctx, "go", args...)
	cmd.Dir = b.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go test -bench: %v\n%s", err, out)
	}
	var rows []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Benchmark") {
			rows = append(rows, line)
		}
	}
	fmt.Fprintf(&b.md, "\n### micro-benchmarks (`go %s`)\n\n```\n%s\n```\n", strings.Join(args, " "), strings.Join(rows, "\n"))
	return nil
}

func (b *bench) idle() error {
	p, err := b.node("idle", nil, "-sim-symbols", "1000", "-refresh-interval", "1h")
	if err != nil {
		return err
	}
	defer p.stop()
	r, cmd, err := b.load("-url", p.url, "-mode", "ws", "-conns", strconv.Itoa(b.sz.idleConns), "-symbols", "1", "-universe", "1000",
		"-duration", "5s", "-connect-rate", "5000", "-sources", strconv.Itoa(b.sz.idleSources))
	if err != nil {
		return err
	}
	if r.Connected < b.sz.idleConns {
		return fmt.Errorf("%d of %d connected (%d failed)", r.Connected, b.sz.idleConns, r.Failed)
	}
	rate := float64(r.Connected) / max(r.RampSeconds, 1e-9)
	fmt.Fprintf(&b.md, "\n### idle: %d idle WebSockets, 1 symbol each\n\n", b.sz.idleConns)
	fmt.Fprintf(&b.md, "| connected | RSS per connection | connects/s | connect p50 | connect p99 |\n| --- | --- | --- | --- | --- |\n")
	fmt.Fprintf(&b.md, "| %d | %.1f KiB | %.0f | %.2f ms | %.2f ms |\n\n", r.Connected, r.Server.RSSPerConn/1024, rate, r.Connect.P50, r.Connect.P99)
	writeCommands(&b.md, []string{"quotehub -sim-symbols 1000 -refresh-interval 1h; " + cmd})
	return nil
}

// reads measures cache-hit reads while WebSocket fan-out runs at half the
// best tick rate found.
func (b *bench) reads(bestTicks float64) error {
	if bestTicks == 0 {
		bestTicks = 5
	}
	iv := time.Duration(float64(time.Second) / (bestTicks / 2)).Round(time.Millisecond)
	p, err := b.node("reads", nil, "-sim-symbols", "1000", "-sim-every-tick", "-sim-batch", "1000",
		"-refresh-interval", iv.String(), "-write-delay", "1ms", "-freshness", "1h")
	if err != nil {
		return err
	}
	defer p.stop()
	type result struct {
		r   *report
		cmd string
		err error
	}
	fan := make(chan result, 1)
	go func() {
		r, cmd, err := b.load("-url", p.url, "-mode", "ws", "-conns", strconv.Itoa(b.sz.readClients), "-symbols", "10",
			"-universe", "1000", "-duration", b.secs(), "-warmup", "3s", "-connect-rate", "5000")
		fan <- result{r, cmd, err}
	}()
	time.Sleep(2 * time.Second) // the fan-out is connected and running
	hr, hcmd, herr := b.load("-url", p.url, "-mode", "http", "-conns", "32", "-symbols", "10", "-universe", "1000",
		"-rate", strconv.Itoa(b.sz.readRate), "-duration", b.secs(), "-warmup", "1s")
	fr := <-fan
	if herr != nil {
		return herr
	}
	if fr.err != nil {
		return fr.err
	}
	if hr.HTTP == nil || hr.HTTP.RequestsPS == 0 || hr.Latency == nil {
		return errors.New("no reads answered")
	}
	if err := fr.r.check(b.sz.readClients); err != nil {
		return fmt.Errorf("fan-out beside the reads: %v", err)
	}
	fmt.Fprintf(&b.md, "\n### reads: cache hits at up to %d/s while %d WebSocket clients get quotes every %s\n\n", b.sz.readRate, b.sz.readClients, iv)
	fmt.Fprintf(&b.md, "| reads/s | read p50 | read p99 | read p99.9 | fan-out delivered/s | fan-out p99 |\n| --- | --- | --- | --- | --- | --- |\n")
	fmt.Fprintf(&b.md, "| %.0f | %.2f ms | %.2f ms | %.2f ms | %.0f | %.1f ms |\n\n", hr.HTTP.RequestsPS, hr.Latency.P50, hr.Latency.P99,
		hr.Latency.P999, fr.r.DeliveriesPS, fr.r.Latency.P99)
	writeCommands(&b.md, []string{
		fmt.Sprintf("quotehub -sim-symbols 1000 -sim-every-tick -sim-batch 1000 -refresh-interval %s -write-delay 1ms -freshness 1h", iv),
		fr.cmd, hcmd,
	})
	return nil
}

func (b *bench) churn() error {
	p, err := b.node("churn", nil, "-sim-symbols", "1000", "-refresh-interval", "1s")
	if err != nil {
		return err
	}
	defer p.stop()
	r, cmd, err := b.load("-url", p.url, "-mode", "churn", "-connect-rate", strconv.Itoa(b.sz.churnRate), "-symbols", "5",
		"-universe", "1000", "-duration", b.sz.churnFor.String())
	if err != nil {
		return err
	}
	var cf struct {
		Successes uint64 `json:"successes"`
	}
	if err := json.Unmarshal(r.Churn, &cf); err != nil || cf.Successes == 0 {
		return fmt.Errorf("no connect cycle completed (%v)", err)
	}
	fmt.Fprintf(&b.md, "\n### churn: %d connects + subscribes + disconnects per second for %s\n\n", b.sz.churnRate, b.sz.churnFor)
	fmt.Fprintf(&b.md, "```json\n%s\n```\n\n", strings.TrimSpace(string(r.Churn)))
	writeCommands(&b.md, []string{"quotehub -sim-symbols 1000 -refresh-interval 1s; " + cmd})
	return nil
}

// cluster runs three nodes on Redis with clients spread over them, at an
// offered 100,000 quotes per second.
func (b *bench) cluster() error {
	conn, err := net.DialTimeout("tcp", b.redis, time.Second)
	if err != nil {
		return fmt.Errorf("no Redis at %s (run scripts/services.sh)", b.redis)
	}
	conn.Close()
	prefix := fmt.Sprintf("qhbench:%d:", time.Now().UnixNano())
	env := []string{"QUOTEHUB_REDIS_URL=redis://" + b.redis + "/0", "QUOTEHUB_REDIS_PREFIX=" + prefix}
	n := b.sz.clusterClients
	iv := time.Duration(float64(time.Second) * float64(n) * 10 / float64(b.sz.clusterOffered)) // offered = 1000 symbols × n·10/1000 subscribers × 1/iv
	var urls []string
	for i := range 3 {
		p, err := b.node("cluster"+strconv.Itoa(i), env, "-node-id", "bench"+strconv.Itoa(i), "-sim-symbols", "1000",
			"-sim-every-tick", "-sim-batch", "1000", "-refresh-interval", iv.String(), "-write-delay", "1ms")
		if err != nil {
			return err
		}
		defer p.stop()
		urls = append(urls, p.url)
	}
	time.Sleep(time.Second) // leases spread
	r, cmd, err := b.load("-url", strings.Join(urls, ","), "-mode", "ws", "-conns", strconv.Itoa(n), "-symbols", "10",
		"-universe", "1000", "-duration", b.secs(), "-connect-rate", "5000")
	if err != nil {
		return err
	}
	if err := r.check(n); err != nil {
		return err
	}
	fmt.Fprintf(&b.md, "\n### cluster: 3 nodes on one Redis, %d clients spread over them, every symbol every %s\n\n", n, iv)
	fmt.Fprintf(&b.md, "| offered/s | delivered/s | p50 ms | p99 ms | p99.9 ms | seq regressions |\n| --- | --- | --- | --- | --- | --- |\n")
	fmt.Fprintf(&b.md, "| %.0f | %.0f | %.1f | %.1f | %.1f | %d |\n\n", float64(n)*10*float64(time.Second)/float64(iv), r.DeliveriesPS,
		r.Latency.P50, r.Latency.P99, r.Latency.P999, r.SeqRegressions)
	writeCommands(&b.md, []string{fmt.Sprintf("3 × quotehub -sim-symbols 1000 -sim-every-tick -sim-batch 1000 -refresh-interval %s -write-delay 1ms (QUOTEHUB_REDIS_URL set)", iv), cmd})
	return nil
}

func writeCommands(w *bytes.Buffer, cmds []string) {
	w.WriteString("<details><summary>commands</summary>\n\n```\n")
	for _, c := range cmds {
		w.WriteString(c + "\n")
	}
	w.WriteString("```\n</details>\n")
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal("%v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "quotebench: "+format+"\n", args...)
}

func fatal(format string, args ...any) {
	say(format, args...)
	os.Exit(1)
}
