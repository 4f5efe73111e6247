package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"quotehub/auth"
)

// -mode follow: -conns users, each with its own token, each a WebSocket
// following its portfolio ({"op":"follow","lists":["portfolio"]}); the
// report gives the age of the portfolio frames (receive time − as_of),
// portfolio frames per second, and connections dropped.
//
// With -seed-rate > 0 each user's portfolio (-symbols holdings, connection
// i holding symbols (i*k + j) mod S as in the other modes) is first
// written with PUT /v1/me/portfolio, at most -seed-rate writes per second:
// a bounded, repeatable seeding (the same users get the same holdings).

// followOpts are the follow mode's own flags.
type followOpts struct {
	secret     string        // HS256 secret the node verifies tokens with
	users      string        // user id prefix: user i is prefix + i
	seedRate   float64       // portfolio writes per second; 0 = no seeding
	seedWorker int           // concurrent seeding requests
	tokenTTL   time.Duration // tokens' time to live
}

var follow = followOpts{users: "load-u", seedWorker: 8, tokenTTL: time.Hour}

// followFlags adds the follow mode's flags to fs.
func followFlags(fs *flag.FlagSet) {
	fs.StringVar(&follow.secret, "jwt-secret", os.Getenv("QUOTEHUB_JWT_SECRET"), "follow mode: the node's HS256 secret, to sign each user's token (default $QUOTEHUB_JWT_SECRET)")
	fs.StringVar(&follow.users, "users", follow.users, "follow mode: user ids are this prefix followed by the connection number")
	fs.Float64Var(&follow.seedRate, "seed-rate", 0, "follow mode: first write each user's portfolio (PUT /v1/me/portfolio, -symbols holdings), at most this many per second; 0 = the portfolios are there already")
}

// FollowReport is the follow mode's report.
type FollowReport struct {
	Users           int       `json:"users"`
	Connected       int       `json:"conns_connected"`
	Failed          int       `json:"conns_failed"`
	Dropped         int       `json:"conns_dropped"`
	SeedSeconds     float64   `json:"seed_seconds,omitempty"`
	SeedErrors      int       `json:"seed_errors,omitempty"`
	MeasuredSeconds float64   `json:"measured_seconds"`
	Frames          uint64    `json:"portfolio_frames"`
	FramesPS        float64   `json:"frames_per_sec"`
	ErrorFrames     uint64    `json:"error_frames"`
	Age             *ageStats `json:"latency_ms"` // age of the portfolio frames
	Warnings        []string  `json:"warnings,omitempty"`
}

type ageStats struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

func (r *FollowReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "follow: %d users, %d connected, %d failed, %d dropped\n", r.Users, r.Connected, r.Failed, r.Dropped)
	if r.SeedSeconds > 0 {
		fmt.Fprintf(w, "seeded the portfolios in %.1f s (%d errors)\n", r.SeedSeconds, r.SeedErrors)
	}
	fmt.Fprintf(w, "measured %.1f s: %d portfolio frames, %.0f/s, %d error frames\n", r.MeasuredSeconds, r.Frames, r.FramesPS, r.ErrorFrames)
	if a := r.Age; a != nil {
		fmt.Fprintf(w, "age of portfolio frames (receive − as_of), ms: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", a.P50, a.P90, a.P99, a.P999, a.Max)
	}
	for _, s := range r.Warnings {
		fmt.Fprintln(w, "warning:", s)
	}
}

// followUser is what one user of the run is.
type followUser struct {
	id    string
	token string
	syms  []string
	base  *url.URL
}

// RunFollow runs the follow mode.
func RunFollow(ctx context.Context, cfg Config) (*FollowReport, error) {
	bases, err := checkTargets(cfg.URL)
	if err != nil {
		return nil, err
	}
	switch {
	case follow.secret == "":
		return nil, errors.New("-mode follow needs -jwt-secret (or QUOTEHUB_JWT_SECRET): the node's HS256 secret")
	case cfg.Conns < 1 || cfg.Conns > maxConns:
		return nil, fmt.Errorf("-conns %d: want 1 … %d", cfg.Conns, maxConns)
	case cfg.Duration <= 0 || cfg.Duration > maxDuration:
		return nil, fmt.Errorf("-duration %v: want > 0 and at most %v", cfg.Duration, maxDuration)
	case cfg.Warmup < 0 || cfg.Warmup > maxWarmup:
		return nil, fmt.Errorf("-warmup %v: want 0 … %v", cfg.Warmup, maxWarmup)
	case follow.seedRate < 0:
		return nil, fmt.Errorf("-seed-rate %g: want >= 0", follow.seedRate)
	case cfg.Symbols < 1 || cfg.Symbols > cfg.universeSize():
		return nil, fmt.Errorf("-symbols %d: want 1 … %d (the universe size)", cfg.Symbols, cfg.universeSize())
	}
	universe := cfg.SymbolList
	if universe == nil {
		for i := 1; i <= cfg.Universe; i++ {
			universe = append(universe, fmt.Sprintf("%s%06d", cfg.Prefix, i))
		}
	}
	users := make([]*followUser, cfg.Conns)
	now := time.Now()
	for i := range users {
		id := follow.users + strconv.Itoa(i)
		tok, err := auth.Sign([]byte(follow.secret), auth.Claims{Subject: id, TTL: follow.tokenTTL}, now)
		if err != nil {
			return nil, err
		}
		syms := make([]string, cfg.Symbols)
		for j := range syms {
			syms[j] = universe[(i*cfg.Symbols+j)%len(universe)]
		}
		users[i] = &followUser{id: id, token: tok, syms: syms, base: bases[i%len(bases)]}
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, Control: loopbackOnly}
	client := &http.Client{
		Transport:     &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 64, ResponseHeaderTimeout: cfg.ConnectTimeout},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	rep := &FollowReport{Users: len(users)}
	if follow.seedRate > 0 {
		t0 := time.Now()
		rep.SeedErrors, err = seedPortfolios(ctx, client, users, follow.seedRate, cfg.Log)
		if err != nil {
			return nil, err
		}
		rep.SeedSeconds = time.Since(t0).Seconds()
	}

	// Connect every user at -connect-rate, then warm up, then measure.
	var measuring atomic.Bool
	var connected, failed, dropped atomic.Int64
	var mu sync.Mutex
	var all Hist
	var frames, errFrames atomic.Uint64
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, cfg.DialConcurrency))
	var pace <-chan time.Time
	if cfg.ConnectRate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / cfg.ConnectRate))
		defer t.Stop()
		pace = t.C
	}
	for _, u := range users {
		if pace != nil {
			select {
			case <-pace:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h Hist
			defer func() {
				mu.Lock()
				all.Merge(&h)
				mu.Unlock()
			}()
			ws, err := followConnect(runCtx, client, dialer, u, cfg.ConnectTimeout)
			<-sem
			if err != nil {
				failed.Add(1)
				if runCtx.Err() == nil {
					warnOnce(cfg.Log, "connect: %v", err)
				}
				return
			}
			connected.Add(1)
			stopRead := context.AfterFunc(runCtx, ws.CloseNow)
			defer stopRead()
			defer ws.CloseNow()
			for {
				msg, _, err := ws.ReadMessage()
				if err != nil {
					if runCtx.Err() == nil {
						dropped.Add(1)
						warnOnce(cfg.Log, "a connection ended: %v", err)
					}
					return
				}
				at := time.Now().UnixMicro()
				switch {
				case bytes.HasPrefix(msg, []byte(`{"type":"portfolio"`)):
					if !measuring.Load() {
						continue
					}
					asOf, ok := asOfMillis(msg)
					if !ok {
						continue
					}
					frames.Add(1)
					h.Record(at - asOf*1000)
				case bytes.HasPrefix(msg, []byte(`{"type":"error"`)):
					errFrames.Add(1)
					warnOnce(cfg.Log, "error frame: %.200s", msg)
				}
			}
		}()
	}
	// Wait for the ramp to end (every dial answered), then warm up.
	for i := 0; i < cap(sem); i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
	}
	select {
	case <-time.After(cfg.Warmup):
	case <-ctx.Done():
	}
	measuring.Store(true)
	t0 := time.Now()
	select {
	case <-time.After(cfg.Duration):
	case <-ctx.Done():
	}
	measuring.Store(false)
	rep.MeasuredSeconds = time.Since(t0).Seconds()
	rep.Frames = frames.Load()
	cancel()
	wg.Wait()
	rep.Connected, rep.Failed, rep.Dropped = int(connected.Load()), int(failed.Load()), int(dropped.Load())
	rep.ErrorFrames = errFrames.Load()
	if rep.MeasuredSeconds > 0 {
		rep.FramesPS = float64(rep.Frames) / rep.MeasuredSeconds
	}
	if all.Count() > 0 {
		q := func(p float64) float64 { return all.Quantile(p) / 1000 }
		rep.Age = &ageStats{P50: q(0.5), P90: q(0.9), P99: q(0.99), P999: q(0.999), Max: float64(all.Max()) / 1000}
	}
	if all.Overflow() > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d frames older than 60 s", all.Overflow()))
	}
	return rep, nil
}

var warned sync.Map

// warnOnce logs a warning of each kind (its format) once per run.
func warnOnce(w io.Writer, format string, args ...any) {
	if w == nil {
		return
	}
	if _, seen := warned.LoadOrStore(format, true); !seen {
		fmt.Fprintf(w, "quoteload: "+format+"\n", args...)
	}
}

// followConnect dials u's WebSocket with its token (the lean wsConn for
// ws:// targets, coder/websocket for wss://), follows its portfolio and
// waits for the reply.
func followConnect(ctx context.Context, client *http.Client, d *net.Dialer, u *followUser, timeout time.Duration) (wsClient, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wu := *u.base
	wu.Path += "/v1/ws"
	wu.RawPath = ""
	wu.RawQuery = "token=" + url.QueryEscape(u.token)
	var ws wsClient
	if wu.Scheme == "http" {
		c, _, err := dialWS(dctx, d, &wu, wsReadLimit)
		if err != nil {
			return nil, err
		}
		if err := c.writeControl(0x1, []byte(followOp), false); err != nil { // one small text frame
			c.CloseNow()
			return nil, err
		}
		ws = c
	} else {
		wu.Scheme = "wss"
		c, _, err := websocket.Dial(dctx, wu.String(), &websocket.DialOptions{HTTPClient: client})
		if err != nil {
			return nil, err
		}
		c.SetReadLimit(wsReadLimit)
		if err := c.Write(dctx, websocket.MessageText, []byte(followOp)); err != nil {
			c.CloseNow()
			return nil, err
		}
		ws = &coderClient{ws: c, ctx: dctx}
	}
	for {
		msg, _, err := ws.ReadMessage()
		if err != nil {
			ws.CloseNow()
			return nil, err
		}
		switch {
		case bytes.HasPrefix(msg, []byte(`{"type":"subscribed"`)):
			if !ws.EndConnect() {
				ws.CloseNow()
				return nil, errors.New("the connection ended while connecting")
			}
			return ws, nil
		case bytes.HasPrefix(msg, []byte(`{"type":"error"`)):
			ws.CloseNow()
			return nil, fmt.Errorf("follow refused: %.200s", msg)
		}
	}
}

const followOp = `{"op":"follow","id":1,"lists":["portfolio"]}`

// asOfMillis reads the "as_of" of a portfolio frame (the last field the
// node writes, so it is searched from the end).
func asOfMillis(msg []byte) (int64, bool) {
	i := bytes.LastIndex(msg, []byte(`"as_of":`))
	if i < 0 {
		return 0, false
	}
	rest := msg[i+len(`"as_of":`):]
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	v, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	return v, err == nil && v > 0
}

// seedPortfolios writes every user's portfolio at most rate per second;
// it returns how many writes failed (a failure of every one is an error).
func seedPortfolios(ctx context.Context, client *http.Client, users []*followUser, rate float64, log io.Writer) (int, error) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var failed atomic.Int64
	sem := make(chan struct{}, follow.seedWorker)
	var wg sync.WaitGroup
	for _, u := range users {
		select {
		case <-tick.C:
		case <-ctx.Done():
			wg.Wait()
			return int(failed.Load()), ctx.Err()
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := putPortfolio(ctx, client, u); err != nil {
				failed.Add(1)
				warnOnce(log, "seeding: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n == int64(len(users)) {
		return int(n), errors.New("seeding: every portfolio write failed")
	}
	return int(failed.Load()), nil
}

func putPortfolio(ctx context.Context, client *http.Client, u *followUser) error {
	type holding struct {
		Symbol   string  `json:"symbol"`
		Quantity float64 `json:"quantity"`
		AvgCost  float64 `json:"avg_cost"`
	}
	body := struct {
		Holdings []holding `json:"holdings"`
	}{}
	for j, s := range u.syms {
		body.Holdings = append(body.Holdings, holding{Symbol: s, Quantity: float64(j + 1), AvgCost: 100})
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.base.String()+"/v1/me/portfolio", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+u.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT /v1/me/portfolio of %s: %d %s", u.id, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// mainFollow runs the follow mode for main and returns the exit code.
func mainFollow(ctx context.Context, stop func(), cfg Config, jsonPath string, stopProfile func() error) int {
	rep, err := RunFollow(ctx, cfg)
	stop()
	if perr := stopProfile(); perr != nil {
		fmt.Fprintln(os.Stderr, "quoteload: -cpuprofile:", perr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "quoteload:", err)
		return 1
	}
	if jsonPath != "-" {
		rep.WriteText(os.Stdout)
	}
	if jsonPath != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		b = append(b, '\n')
		if jsonPath == "-" {
			_, err = os.Stdout.Write(b)
		} else {
			err = os.WriteFile(jsonPath, b, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "quoteload:", err)
			return 1
		}
	}
	return 0
}
