package main

// The floor scenario: what the bare kernel and Go netpoller can do on this
// machine for the fan-out scenario's per-tick write burst, with no
// WebSocket, no JSON and no hub. quotebench (the writer) accepts N loopback
// TCP connections from a copy of itself started as the reader peer, and on
// every tick writes one 2,560-byte message to each of them; the message
// carries the tick's start time, so the reader measures receive time − tick
// start. Both processes measure their own CPU time over the measured ticks.

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"time"

	"quotehub/internal/proc"
)

const (
	floorPeerEnv = "QUOTEBENCH_FLOOR_PEER" // "1": run as the floor scenario's reader
	floorMsgSize = 2560
	floorBucket  = 10 * time.Microsecond // latency histogram resolution
	floorBuckets = 300_000               // 3 s of 10 µs buckets, then one overflow bucket
)

// floorPeerResult is the reader's report of one run, one JSON line on stdout.
type floorPeerResult struct {
	Run      int     `json:"run"`
	Received int64   `json:"received"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
	CPUus    float64 `json:"cpu_us_per_read"`
	LastNS   int64   `json:"last_recv_unix_ns"`
	TimedOut bool    `json:"timed_out,omitempty"`
}

// floorRun is the writer's side of one run.
type floorRun struct {
	writes    int64         // measured messages written
	cpu       time.Duration // writer CPU over the measured ticks
	drainP50  float64       // ms from tick start to the tick's last write returning
	drainMax  float64
	firstTick int64 // unix ns
}

func (b *bench) floor() error {
	n := b.sz.floorConns
	if _, err := proc.RaiseFileLimit(uint64(n) + 64); err != nil {
		return fmt.Errorf("%d connections: %w", n, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()

	intervals := b.sz.floorIntervals
	variants := []struct {
		name    string
		workers int // 0: one goroutine per connection
	}{{"goroutine per conn", 0}, {"2 workers", 2}}
	total := time.Minute // connect, teardown and slack
	for _, iv := range intervals {
		total += time.Duration(len(variants)) * (b.sz.floorFor + floorWarmup(iv) + 2*iv + 30*time.Second)
	}

	logf, err := os.Create(filepath.Join(b.dir, "floor-peer.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.CommandContext(b.ctx, exe)
	cmd.Env = append(os.Environ(), floorPeerEnv+"=1", "QUOTEBENCH_FLOOR_ADDR="+ln.Addr().String(),
		"QUOTEBENCH_FLOOR_CONNS="+strconv.Itoa(n), "QUOTEBENCH_FLOOR_TIMEOUT="+total.String())
	cmd.Stderr = logf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	peerDone := make(chan struct{})
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	go func() { _ = cmd.Wait(); close(peerDone) }()
	var conns []net.Conn
	defer func() {
		stdin.Close() // the peer exits on EOF
		for _, c := range conns {
			c.Close()
		}
		select {
		case <-peerDone:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-peerDone
		}
	}()
	go func() {
		select {
		case <-peerDone:
		case <-b.ctx.Done():
		}
		ln.Close() // unblocks Accept if the peer died or we are interrupted
	}()

	// Accept the peer's n connections.
	start := time.Now()
	_ = ln.(*net.TCPListener).SetDeadline(start.Add(60 * time.Second))
	for len(conns) < n {
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("accepted %d of %d connections: %v (peer log: %s)", len(conns), n, err, peerLog(logf))
		}
		conns = append(conns, c)
	}
	say("floor: %d loopback connections in %s", n, time.Since(start).Round(time.Millisecond))

	fmt.Fprintf(&b.md, "\n### floor: bare TCP, %d loopback sockets, one 2,560-byte write each per tick\n\n", n)
	fmt.Fprintf(&b.md, "No WebSocket, JSON or hub: quotebench writes one 2,560-byte message per tick to each of %d loopback TCP connections "+
		"(Go net, TCP_NODELAY) that a second quotebench process reads, one goroutine per connection. This is the floor on this machine "+
		"for the fan-out scenario's per-tick write burst: no hub can get a tick to %d clients here faster than the tick drain and max latency below. "+
		"Latency is receive time − tick start; tick drain is tick start → the tick's last write returning; CPU is each process's user+sys time over the measured ticks.\n\n", n, n)
	fmt.Fprintf(&b.md, "| tick | writers | offered writes/s | received/s | tick drain p50 ms | tick drain max ms | p50 ms | p90 ms | p99 ms | max ms | writer CPU µs/write | reader CPU µs/read |\n")
	fmt.Fprintf(&b.md, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	run := 0
	for _, iv := range intervals {
		for _, v := range variants {
			if err := b.ctx.Err(); err != nil {
				return err
			}
			run++
			w, err := floorWrite(conns, run, iv, floorWarmup(iv), b.sz.floorFor, v.workers)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(stdin, "%d %d\n", run, w.writes); err != nil {
				return fmt.Errorf("peer: %v (log: %s)", err, peerLog(logf))
			}
			var r floorPeerResult
			select {
			case line, ok := <-lines:
				if !ok {
					return fmt.Errorf("peer exited (log: %s)", peerLog(logf))
				}
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					return fmt.Errorf("peer said %q: %v", line, err)
				}
			case <-time.After(45 * time.Second):
				return errors.New("no result from the peer")
			case <-b.ctx.Done():
				return b.ctx.Err()
			}
			if r.Run != run {
				return fmt.Errorf("peer answered run %d, want %d", r.Run, run)
			}
			window := max(time.Duration(b.sz.floorFor/iv)*iv, time.Duration(r.LastNS-w.firstTick))
			offered := float64(n) * float64(time.Second) / float64(iv)
			recvPS := float64(r.Received) / window.Seconds()
			wus := float64(w.cpu.Microseconds()) / max(float64(w.writes), 1)
			note := ""
			if r.TimedOut {
				note = " (reader timed out)"
			}
			fmt.Fprintf(&b.md, "| %s | %s | %.0f | %.0f%s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", iv, v.name,
				offered, recvPS, note, w.drainP50, w.drainMax, r.P50, r.P90, r.P99, r.Max, wus, r.CPUus)
			say("floor tick %s, %s: %d writes, %d received, drain p50 %.1f ms, latency p50 %.1f p99 %.1f max %.1f ms, writer %.1f µs/write, reader %.1f µs/read",
				iv, v.name, w.writes, r.Received, w.drainP50, r.P50, r.P99, r.Max, wus, r.CPUus)
		}
	}
	fmt.Fprintf(&b.md, "\nEach row: %s of measured ticks after %s of warm-up ticks; the same connections throughout. "+
		"\"2 workers\" writes from two goroutines that each loop over half the connections (fewer goroutine wake-ups).\n\n",
		b.sz.floorFor, "about 1 s")
	writeCommands(&b.md, []string{fmt.Sprintf("go run ./cmd/quotebench -size %s -only floor", b.sz.name)})
	return nil
}

// floorWarmup is the warm-up before the measured ticks: about one second,
// at least one tick.
func floorWarmup(iv time.Duration) time.Duration { return max(iv, time.Second/iv*iv) }

// floorWrite runs one tick interval on conns: warm-up ticks, then measured
// ticks for about runFor, with one goroutine per connection (workers 0) or
// a pool of workers that each loop over their share of the connections.
// Like the hub, a writer that has not finished one tick when the next two
// arrive skips to the newest.
func floorWrite(conns []net.Conn, run int, iv, warmup, runFor time.Duration, workers int) (floorRun, error) {
	nWarm, nMeas := int(warmup/iv), int(runFor/iv)
	nTicks := nWarm + nMeas
	starts := make([]int64, nTicks)
	lastEnd := make([]atomic.Int64, nTicks)
	var writes atomic.Int64
	var firstErr atomic.Pointer[error]
	deadline := time.Now().Add(warmup + runFor + 30*time.Second)
	for _, c := range conns {
		_ = c.SetWriteDeadline(deadline)
	}

	type tick struct {
		seq int
		msg []byte // immutable once sent
	}
	write := func(c net.Conn, t tick) {
		if firstErr.Load() != nil {
			return
		}
		if _, err := c.Write(t.msg); err != nil {
			firstErr.CompareAndSwap(nil, &err)
			return
		}
		now := time.Now().UnixNano()
		if t.seq >= nWarm {
			writes.Add(1)
		}
		for e := &lastEnd[t.seq]; ; {
			if old := e.Load(); old >= now || e.CompareAndSwap(old, now) {
				break
			}
		}
	}
	// Each writer has a one-slot mailbox; the tick loop replaces a tick
	// still waiting there.
	var groups [][]net.Conn
	if workers == 0 {
		for _, c := range conns {
			groups = append(groups, []net.Conn{c})
		}
	} else {
		for i := range workers {
			groups = append(groups, conns[i*len(conns)/workers:(i+1)*len(conns)/workers])
		}
	}
	boxes := make([]chan tick, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		boxes[i] = make(chan tick, 1)
		wg.Add(1)
		go func(box chan tick, g []net.Conn) {
			defer wg.Done()
			for t := range box {
				for _, c := range g {
					write(c, t)
				}
			}
		}(boxes[i], g)
	}

	var cpu0 time.Duration
	next := time.Now()
	for seq := range nTicks {
		if seq == nWarm {
			time.Sleep(time.Until(next))
			cpu0 = proc.CPUTime()
			next = time.Now()
		}
		time.Sleep(time.Until(next))
		now := time.Now()
		msg := make([]byte, floorMsgSize)
		binary.LittleEndian.PutUint64(msg[0:], uint64(now.UnixNano()))
		binary.LittleEndian.PutUint64(msg[8:], uint64(run))
		binary.LittleEndian.PutUint64(msg[16:], uint64(seq))
		if seq >= nWarm {
			msg[24] = 1 // measured
		}
		for i := 25; i < len(msg); i++ {
			msg[i] = byte('a' + i%26)
		}
		starts[seq] = now.UnixNano()
		t := tick{seq, msg}
		for _, box := range boxes {
			select {
			case box <- t:
			default:
				select { // conflate: drop the waiting tick for the newest
				case <-box:
				default:
				}
				select {
				case box <- t:
				default:
				}
			}
		}
		next = now.Add(iv)
	}
	for _, box := range boxes {
		close(box) // writers finish what is in their mailbox and exit
	}
	wg.Wait()
	r := floorRun{writes: writes.Load(), cpu: proc.CPUTime() - cpu0, firstTick: starts[nWarm]}
	if e := firstErr.Load(); e != nil {
		return r, fmt.Errorf("write: %v", *e)
	}
	var drains []float64
	for seq := nWarm; seq < nTicks; seq++ {
		if end := lastEnd[seq].Load(); end > 0 {
			drains = append(drains, float64(end-starts[seq])/1e6)
		}
	}
	slices.Sort(drains)
	if len(drains) > 0 {
		r.drainP50, r.drainMax = drains[len(drains)/2], drains[len(drains)-1]
	}
	return r, nil
}

// floorPeer is the reader side, run in a second quotebench process when
// QUOTEBENCH_FLOOR_PEER=1. It dials QUOTEBENCH_FLOOR_CONNS connections to
// QUOTEBENCH_FLOOR_ADDR and reads 2,560-byte messages on each; for every
// line "run total" on stdin it waits until it has read total measured
// messages of that run, then prints that run's result as one JSON line. It
// exits on EOF on stdin or after QUOTEBENCH_FLOOR_TIMEOUT.
func floorPeer() {
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "floor peer: "+format+"\n", args...)
		os.Exit(1)
	}
	addr := os.Getenv("QUOTEBENCH_FLOOR_ADDR")
	if host, _, err := net.SplitHostPort(addr); err != nil || !isLoopback(host) {
		fail("QUOTEBENCH_FLOOR_ADDR %q is not a loopback address", addr)
	}
	n, err := strconv.Atoi(os.Getenv("QUOTEBENCH_FLOOR_CONNS"))
	if err != nil || n <= 0 {
		fail("bad QUOTEBENCH_FLOOR_CONNS")
	}
	if _, err := proc.RaiseFileLimit(uint64(n) + 64); err != nil {
		fail("%d connections: %v", n, err)
	}
	timeout, err := time.ParseDuration(os.Getenv("QUOTEBENCH_FLOOR_TIMEOUT"))
	if err != nil {
		timeout = 10 * time.Minute
	}
	time.AfterFunc(timeout, func() { fail("timed out after %s", timeout) })

	var (
		hist     = make([]atomic.Uint64, floorBuckets+1)
		count    atomic.Int64
		maxNS    atomic.Int64
		lastRecv atomic.Int64
		started  atomic.Bool
		mu       sync.Mutex
		cpu0     time.Duration // CPU time at the run's first measured message
	)
	read := func(c net.Conn) {
		buf := make([]byte, floorMsgSize)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return // the writer closed the connection, or we are exiting
			}
			now := time.Now().UnixNano()
			if buf[24] != 1 {
				continue // warm-up
			}
			if !started.Load() && started.CompareAndSwap(false, true) {
				mu.Lock()
				cpu0 = proc.CPUTime()
				mu.Unlock()
			}
			lat := now - int64(binary.LittleEndian.Uint64(buf))
			hist[min(max(lat/int64(floorBucket), 0), floorBuckets)].Add(1)
			for old := maxNS.Load(); lat > old && !maxNS.CompareAndSwap(old, lat); old = maxNS.Load() {
			}
			for old := lastRecv.Load(); now > old && !lastRecv.CompareAndSwap(old, now); old = lastRecv.Load() {
			}
			count.Add(1)
		}
	}

	// Dial n connections, 64 at a time.
	var (
		dialed atomic.Int64
		dialWG sync.WaitGroup
		dErr   atomic.Pointer[error]
	)
	d := net.Dialer{Timeout: 10 * time.Second}
	for range 64 {
		dialWG.Add(1)
		go func() {
			defer dialWG.Done()
			for dialed.Add(1) <= int64(n) && dErr.Load() == nil {
				c, err := d.Dial("tcp", addr)
				if err != nil {
					dErr.CompareAndSwap(nil, &err)
					return
				}
				go read(c)
			}
		}()
	}
	dialWG.Wait()
	if e := dErr.Load(); e != nil {
		fail("dial: %v", *e)
	}

	sc := bufio.NewScanner(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			fail("bad command %q", sc.Text())
		}
		run, _ := strconv.Atoi(f[0])
		total, _ := strconv.ParseInt(f[1], 10, 64)
		r := floorPeerResult{Run: run}
		for wait := time.Now().Add(30 * time.Second); count.Load() < total; time.Sleep(time.Millisecond) {
			if time.Now().After(wait) {
				r.TimedOut = true
				break
			}
		}
		cpu1 := proc.CPUTime()
		// The writer sends nothing more until it has this result, so the
		// counters are quiet here.
		r.Received = count.Load()
		mu.Lock()
		r.CPUus = float64((cpu1 - cpu0).Microseconds()) / max(float64(r.Received), 1)
		mu.Unlock()
		r.Max = float64(maxNS.Load()) / 1e6
		r.LastNS = lastRecv.Load()
		var seen uint64
		pct := []float64{0.50, 0.90, 0.99}
		out := []*float64{&r.P50, &r.P90, &r.P99}
		for i := range hist {
			seen += hist[i].Swap(0)
			for len(pct) > 0 && r.Received > 0 && float64(seen) >= math.Ceil(pct[0]*float64(r.Received)) {
				*out[0] = float64(time.Duration(i+1)*floorBucket) / 1e6 // bucket's upper bound
				pct, out = pct[1:], out[1:]
			}
		}
		if r.Received > 0 {
			r.P50, r.P90, r.P99 = min(r.P50, r.Max), min(r.P90, r.Max), min(r.P99, r.Max)
		}
		count.Store(0)
		maxNS.Store(0)
		lastRecv.Store(0)
		started.Store(false)
		if err := enc.Encode(r); err != nil {
			fail("%v", err)
		}
	}
	os.Exit(0)
}

// peerLog is the last line of the peer's log so far.
func peerLog(f *os.File) string {
	data, _ := os.ReadFile(f.Name())
	if len(strings.TrimSpace(string(data))) == 0 {
		return "empty"
	}
	return lastLine(string(data))
}
