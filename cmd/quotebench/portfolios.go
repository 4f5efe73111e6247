package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"quotehub/auth"
)

// The portfolios scenario: users each following a 20-symbol portfolio
// (of 120 symbols all changing every second) over their own WebSocket,
// with quoteload in its own process — the age of the portfolio frames —
// then valued reads of a 50-holding portfolio (GET /v1/me/portfolio)
// from quoteload's http mode with a bearer token.

// portfoliosSecret signs the scenario's tokens (the node is given it).
const portfoliosSecret = "quotebench-portfolios-secret-of-32+-bytes"

// portfolioUsers is the number of following users per size.
var portfolioUsers = map[string]int{"tiny": 20, "short": 2000, "full": 10000}

// followFor is how long the followers are measured: the size's run time,
// but at least three of the node's 1 s refreshes, so that a busy machine
// delaying one still leaves frames to measure (at size tiny the run time
// is 1 s).
func followFor(runFor time.Duration) string {
	return strconv.Itoa(int(max(runFor, 3*time.Second).Seconds())) + "s"
}

// portfolioReadRate is the rate of the second run of valued reads per size.
var portfolioReadRate = map[string]int{"tiny": 200, "short": 5000, "full": 5000}

func (b *bench) portfolios() error {
	users := portfolioUsers[b.sz.name]
	seedRate := strconv.Itoa(min(1000, 10*users))
	fmt.Fprintf(&b.md, "\n### portfolios: %d users × 20 of 120 symbols followed (`portfolio` frames), then valued reads of 50 holdings\n\n", users)
	p, err := b.node("portfolios", []string{"QUOTEHUB_JWT_SECRET=" + portfoliosSecret},
		"-sim-symbols", "120", "-sim-every-tick", "-sim-batch", "1000", "-refresh-interval", "1s")
	if err != nil {
		return err
	}
	defer p.stop()
	var f struct {
		Connected   int     `json:"conns_connected"`
		Failed      int     `json:"conns_failed"`
		Dropped     int     `json:"conns_dropped"`
		SeedSeconds float64 `json:"seed_seconds"`
		SeedErrors  int     `json:"seed_errors"`
		FramesPS    float64 `json:"frames_per_sec"`
		ErrorFrames uint64  `json:"error_frames"`
		Age         *stats  `json:"latency_ms"`
	}
	followArgs := []string{"-url", p.url, "-mode", "follow", "-conns", strconv.Itoa(users), "-symbols", "20", "-universe", "120",
		"-seed-rate", seedRate, "-connect-rate", "2000", "-warmup", "2s", "-duration", followFor(b.sz.runFor)}
	if err := b.loadInto(&f, followArgs, "QUOTEHUB_JWT_SECRET="+portfoliosSecret); err != nil {
		return err
	}
	switch {
	case f.Connected < users:
		return fmt.Errorf("%d of %d followers connected (%d failed)", f.Connected, users, f.Failed)
	case f.Age == nil || f.FramesPS == 0:
		return errors.New("no portfolio frame received")
	case f.ErrorFrames > 0:
		return fmt.Errorf("%d error frames", f.ErrorFrames)
	}
	fmt.Fprintf(&b.md, "| users | seeding | portfolio frames/s | age p50 | p99 | p99.9 | max | dropped |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	fmt.Fprintf(&b.md, "| %d | %.1f s (%d errors) | %.0f | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %d |\n\n",
		users, f.SeedSeconds, f.SeedErrors, f.FramesPS, f.Age.P50, f.Age.P99, f.Age.P999, f.Age.Max, f.Dropped)

	// Valued reads: one user's 50 holdings, written here.
	tok, err := auth.Sign([]byte(portfoliosSecret), auth.Claims{Subject: "quotebench-reader", TTL: time.Hour}, time.Now())
	if err != nil {
		return err
	}
	var hs []string
	for i := 1; i <= 50; i++ {
		hs = append(hs, fmt.Sprintf(`{"symbol":"SYN-%06d","quantity":%d,"avg_cost":100}`, i, i))
	}
	req, _ := http.NewRequest(http.MethodPut, p.url+"/v1/me/portfolio", strings.NewReader(`{"holdings":[`+strings.Join(hs, ",")+`]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT /v1/me/portfolio: %d", resp.StatusCode)
	}
	// Valued reads flat out, then at the target rate (5,000 a second; a
	// little at size tiny), where the p99 is judged.
	readArgs := []string{"-url", p.url, "-mode", "http", "-conns", "8", "-symbols", "1", "-universe", "1",
		"-read-path", "/v1/me/portfolio", "-header", "Authorization: Bearer " + tok, "-duration", b.secs()}
	target := portfolioReadRate[b.sz.name]
	fmt.Fprintf(&b.md, "| valued reads (8 keep-alive clients) | reads/s | p50 | p99 | p99.9 | server cores |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, rate := range []int{0, target} {
		hr, _, err := b.load(append(slices.Clone(readArgs), "-rate", strconv.Itoa(rate))...)
		if err != nil {
			return err
		}
		if hr.HTTP == nil || hr.HTTP.RequestsPS == 0 || hr.Latency == nil {
			return errors.New("no valued read answered")
		}
		cores := 0.0
		if hr.Server != nil {
			cores = hr.Server.CPUCores
		}
		offered := "as fast as answered"
		if rate > 0 {
			offered = fmt.Sprintf("%d/s offered", rate)
		}
		fmt.Fprintf(&b.md, "| %s | %.0f | %.2f ms | %.2f ms | %.2f ms | %.2f |\n", offered, hr.HTTP.RequestsPS, hr.Latency.P50, hr.Latency.P99, hr.Latency.P999, cores)
	}
	b.md.WriteString("\n")
	readArgs = append(readArgs, "-rate", "0|"+strconv.Itoa(target))
	readArgs[slices.Index(readArgs, "-header")+1] = "'Authorization: Bearer TOKEN'"
	writeCommands(&b.md, []string{
		"QUOTEHUB_JWT_SECRET=… quotehub -sim-symbols 120 -sim-every-tick -sim-batch 1000 -refresh-interval 1s",
		"QUOTEHUB_JWT_SECRET=… quoteload " + strings.Join(followArgs, " "),
		"quoteload " + strings.Join(readArgs, " "),
	})
	return nil
}

// loadInto runs quoteload with args (and env added to this process's)
// and decodes its JSON report into into.
func (b *bench) loadInto(into any, args []string, env ...string) error {
	out := filepath.Join(b.dir, fmt.Sprintf("load-%d.json", time.Now().UnixNano()))
	cmd := execLoad(b, append(args, "-json", out), env)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("quoteload: %v: %s", err, lastLine(stderr.String()))
	}
	data, err := readFile(out)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, into)
}

func execLoad(b *bench, args, env []string) *exec.Cmd {
	cmd := exec.CommandContext(b.ctx, b.quoteload, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }
