package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// soakSample is one reading of the node's process during a soak.
type soakSample struct {
	at         time.Duration
	rss        float64 // bytes
	goroutines float64
	fds        float64
}

// readProcess reads RSS, goroutines and open fds from a node's /metrics.
func readProcess(url string) (soakSample, error) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return soakSample{}, err
	}
	defer resp.Body.Close()
	var s soakSample
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case "process_resident_memory_bytes":
			dst = &s.rss
		case "go_goroutines":
			dst = &s.goroutines
		case "process_open_fds":
			dst = &s.fds
		default:
			continue
		}
		if *dst, err = strconv.ParseFloat(v, 64); err != nil {
			return s, fmt.Errorf("%s: %v", name, err)
		}
		found++
	}
	if found != 3 {
		return s, errors.New("/metrics lacks process_resident_memory_bytes, go_goroutines or process_open_fds")
	}
	return s, sc.Err()
}

// soakVerdict judges a soak's samples: after the warm-up (the first third
// of the run), the mean of the last third of the samples may exceed the
// mean of the first third by at most 5 % for RSS and goroutines (judged
// only with at least 12 samples after the warm-up: shorter runs cannot tell
// growth from noise); and after the load stopped, open fds and goroutines
// are back to where they were before it started.
func soakVerdict(samples []soakSample, before, after soakSample) (flat bool, judged bool, problems []string) {
	flat = true
	steady := samples[len(samples)/3:]
	if len(steady) >= 12 {
		judged = true
		k := len(steady) / 3
		mean := func(xs []soakSample, f func(soakSample) float64) float64 {
			sum := 0.0
			for _, x := range xs {
				sum += f(x)
			}
			return sum / float64(len(xs))
		}
		for _, m := range []struct {
			name string
			f    func(soakSample) float64
		}{{"RSS", func(s soakSample) float64 { return s.rss }}, {"goroutines", func(s soakSample) float64 { return s.goroutines }}} {
			first, last := mean(steady[:k], m.f), mean(steady[len(steady)-k:], m.f)
			if last > first*1.05 {
				flat = false
				problems = append(problems, fmt.Sprintf("%s grew %.1f %% after the warm-up (%.0f → %.0f)", m.name, 100*(last/first-1), first, last))
			}
		}
	}
	if after.fds > before.fds+2 {
		problems = append(problems, fmt.Sprintf("open fds %v after the load, %v before", after.fds, before.fds))
	}
	if after.goroutines > before.goroutines+2 {
		problems = append(problems, fmt.Sprintf("goroutines %v after the load, %v before", after.goroutines, before.goroutines))
	}
	return flat, judged, problems
}

// soak runs connection churn, a steady fan-out and HTTP reads against one
// node at once for b.sz.soakFor, reading the node's RSS, goroutines and
// open fds every b.sz.soakEvery, then checks that nothing grows (see
// soakVerdict).
func (b *bench) soak() error {
	p, err := b.node("soak", nil, "-sim-symbols", "1000", "-sim-every-tick", "-refresh-interval", "250ms")
	if err != nil {
		return err
	}
	defer p.stop()
	before, err := readProcess(p.url)
	if err != nil {
		return err
	}
	dur := b.sz.soakFor.String()
	type result struct {
		r   *report
		cmd string
		err error
	}
	runs := [][]string{
		{"-url", p.url, "-mode", "ws", "-conns", strconv.Itoa(b.sz.soakClients), "-symbols", "10", "-universe", "1000",
			"-duration", dur, "-connect-rate", "2000"},
		{"-url", p.url, "-mode", "churn", "-connect-rate", strconv.Itoa(b.sz.soakChurn), "-symbols", "5", "-universe", "1000",
			"-duration", dur},
		{"-url", p.url, "-mode", "http", "-conns", "8", "-symbols", "10", "-universe", "1000",
			"-rate", strconv.Itoa(b.sz.soakReads), "-duration", dur},
	}
	results := make(chan result, len(runs))
	for _, args := range runs {
		go func() {
			r, cmd, err := b.load(args...)
			results <- result{r, cmd, err}
		}()
	}
	start := time.Now()
	var samples []soakSample
	tick := time.NewTicker(b.sz.soakEvery)
	defer tick.Stop()
	var cmds []string
	var loads []*report
	var loadErr error
	for done := 0; done < len(runs); {
		select {
		case <-b.ctx.Done():
			return b.ctx.Err()
		case <-tick.C:
			s, err := readProcess(p.url)
			if err != nil {
				return fmt.Errorf("sampling the node: %v", err)
			}
			s.at = time.Since(start)
			samples = append(samples, s)
		case res := <-results:
			done++
			if res.err != nil && loadErr == nil {
				loadErr = res.err
			}
			cmds = append(cmds, res.cmd)
			loads = append(loads, res.r)
		}
	}
	if loadErr != nil {
		return loadErr
	}
	if len(samples) < 3 {
		return fmt.Errorf("only %d samples", len(samples))
	}
	// Back to baseline: the clients are gone; give the node a moment to
	// close what they left.
	var after soakSample
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if after, err = readProcess(p.url); err != nil {
			return err
		}
		if after.fds <= before.fds+2 && after.goroutines <= before.goroutines+2 || time.Now().After(deadline) {
			break
		}
	}
	flat, judged, problems := soakVerdict(samples, before, after)

	fmt.Fprintf(&b.md, "\n### soak: %s of churn (%d/s), fan-out (%d WebSockets × 10 of 1,000 symbols at 250 ms) and reads (%d/s) at once\n\n",
		b.sz.soakFor, b.sz.soakChurn, b.sz.soakClients, b.sz.soakReads)
	fmt.Fprintf(&b.md, "| t | RSS MiB | goroutines | open fds |\n| --- | --- | --- | --- |\n")
	fmt.Fprintf(&b.md, "| before | %.1f | %.0f | %.0f |\n", before.rss/(1<<20), before.goroutines, before.fds)
	for _, s := range samples {
		fmt.Fprintf(&b.md, "| %s | %.1f | %.0f | %.0f |\n", s.at.Round(time.Second), s.rss/(1<<20), s.goroutines, s.fds)
	}
	fmt.Fprintf(&b.md, "| after | %.1f | %.0f | %.0f |\n\n", after.rss/(1<<20), after.goroutines, after.fds)
	switch {
	case !judged:
		fmt.Fprintf(&b.md, "Flat after warm-up: not judged (fewer than 12 samples after the warm-up). ")
	case flat:
		fmt.Fprintf(&b.md, "Flat after warm-up (RSS and goroutines within 5 %%): yes. ")
	default:
		fmt.Fprintf(&b.md, "Flat after warm-up: **no**. ")
	}
	fmt.Fprintf(&b.md, "Back to baseline after the load (fds and goroutines): %s.\n\n", yesNo(after.fds <= before.fds+2 && after.goroutines <= before.goroutines+2))
	fmt.Fprintf(&b.md, "The load:%s\n\n", soakLoads(loads))
	writeCommands(&b.md, append([]string{"quotehub -sim-symbols 1000 -sim-every-tick -refresh-interval 250ms"}, cmds...))
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// soakLoads summarises what the soak's load generators did.
func soakLoads(loads []*report) string {
	var parts []string
	for _, r := range loads {
		switch {
		case r == nil:
		case len(r.Churn) > 0:
			var c struct{ Successes, Failures uint64 }
			_ = json.Unmarshal(r.Churn, &c)
			parts = append(parts, fmt.Sprintf(" churn %d connect cycles (%d failed)", c.Successes, c.Failures))
		case r.HTTP != nil:
			parts = append(parts, fmt.Sprintf(" reads %.0f/s", r.HTTP.RequestsPS))
		case r.Latency != nil:
			parts = append(parts, fmt.Sprintf(" fan-out %.0f quotes/s delivered to %d clients (%d dropped), p99 %.1f ms", r.DeliveriesPS, r.Connected, r.Dropped, r.Latency.P99))
		}
	}
	return strings.Join(parts, ";")
}
