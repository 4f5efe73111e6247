package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"quotehub/internal/poll"
)

// The board's browser tests: Debian's chromium, headless, driven over the
// DevTools protocol, against a real node on loopback with the sim provider
// changing every symbol at every refresh. scripts/browser.sh installs
// chromium (make test runs it); outside CI a missing chromium skips.

// boardWait bounds every wait of the browser tests.
const boardWait = 20 * time.Second

// TestBoard opens the live board in headless Chromium: the page loads
// with no console error; a symbol added through the search shows a price
// that then changes; both transports carry it; stopping the node and
// starting it again on the same port reconnects the page by itself; a
// screenshot is written as an artifact.
func TestBoard(t *testing.T) {
	exe := chromiumPath(t)
	n := startRestartableNode(t)
	b := startBrowser(t, exe)

	t.Run("LoadsWithoutErrors", func(t *testing.T) {
		tab := b.open(t, n.url("/?symbols=KRW-BTC,005930.KS"))
		tab.waitLive(t, "ws")
		tab.waitPriced(t, "KRW-BTC")
		tab.waitPriced(t, "005930.KS")
		tab.waitMoves(t, "KRW-BTC")
		// The badge says what the quote says (Upbit never closes; KRX
		// depends on the hour the test runs at).
		for sym, market := range map[string]string{"KRW-BTC": "open", "005930.KS": n.market(t, "005930.KS")} {
			if got := tab.eval(t, row(sym)+`.querySelector('.badge').textContent`); got != market {
				t.Errorf("%s's badge %q, want %q", sym, got, market)
			}
		}
		cells := tab.eval(t, `['.chg', '.rate'].map(c => `+row("KRW-BTC")+`.querySelector(c).className).join(' | ')`)
		if !regexp.MustCompile(`^num chg (up|down|flat) \| num rate (up|down|flat)$`).MatchString(cells) {
			t.Errorf("change and rate cells %q, want each coloured up, down or flat", cells)
		}
		tab.wait(t, "a delivery age and its summary", row("KRW-BTC")+`.querySelector('.age').textContent.match(/^\d+(\.\d)? (ms|s)$/) &&
			/delivery age p50 \d/.test(document.getElementById('stats').textContent)`)
		tab.noErrors(t, nil)
	})

	t.Run("KoreanColours", func(t *testing.T) {
		tab := b.open(t, n.url("/?symbols=KRW-BTC"))
		up := `getComputedStyle(document.body).getPropertyValue('--up').trim()`
		before := tab.eval(t, up)
		tab.do(t, "tick the Korean colours", chromedp.Click(chromedp.ID("scheme-kr")))
		after := tab.eval(t, up)
		if !strings.Contains(tab.eval(t, `document.body.className`), "scheme-kr") || after == before || after != "#f04452" {
			t.Errorf("--up %s, then %s after the switch; want red (#f04452)", before, after)
		}
		tab.do(t, "reload", chromedp.Reload())
		if got := tab.eval(t, up); got != after {
			t.Errorf("--up %s after a reload, want the remembered %s", got, after)
		}
		tab.do(t, "untick the Korean colours", chromedp.Click(chromedp.ID("scheme-kr")))
		tab.noErrors(t, nil)
	})

	t.Run("SearchAddsSymbolAndPriceMoves", func(t *testing.T) {
		tab := b.open(t, n.url("/?symbols="))
		tab.waitLive(t, "ws")
		if got := tab.eval(t, `document.querySelectorAll('#rows tr').length`); got != "0" {
			t.Fatalf("an empty ?symbols= shows %s rows", got)
		}
		tab.do(t, "type a Korean name into the search", chromedp.SendKeys(chromedp.ID("search"), "비트코인"))
		item := `#results li[data-symbol="KRW-BTC"]`
		tab.do(t, "pick KRW-BTC from the results", chromedp.Click(chromedp.CSS(item)))
		tab.waitPriced(t, "KRW-BTC")
		tab.waitMoves(t, "KRW-BTC")
		if url := tab.eval(t, `location.search`); url != "?symbols=KRW-BTC" {
			t.Errorf("address bar %q, want the added symbol in ?symbols=", url)
		}
		if stored := tab.eval(t, `localStorage.getItem('quotehub.board.symbols')`); stored != `["KRW-BTC"]` {
			t.Errorf("localStorage has %s, want [\"KRW-BTC\"]", stored)
		}
		tab.noErrors(t, nil)
	})

	t.Run("BothTransports", func(t *testing.T) {
		tab := b.open(t, n.url("/?symbols=KRW-ETH"))
		for _, tr := range []string{"sse", "ws", "sse"} {
			tab.useTransport(t, tr)
			tab.waitLive(t, tr)
			tab.waitMoves(t, "KRW-ETH")
		}
		tab.useTransport(t, "ws") // leave the next tabs on the default
		tab.waitLive(t, "ws")
		tab.noErrors(t, nil)
	})

	t.Run("ReconnectsAfterRestart", func(t *testing.T) {
		for _, tr := range []string{"ws", "sse"} {
			t.Run(tr, func(t *testing.T) {
				tab := b.open(t, n.url("/?symbols=KRW-XRP"))
				tab.useTransport(t, tr)
				tab.waitLive(t, tr)
				tab.waitMoves(t, "KRW-XRP")
				stopped := time.Now()
				n.stop()
				tab.waitState(t, "waiting", tr)
				started := time.Now()
				n.start()
				tab.waitLive(t, tr)
				t.Logf("%s: the node took %v to stop; the page was live %v after it started again",
					tr, started.Sub(stopped).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
				tab.waitMoves(t, "KRW-XRP")
				tab.useTransport(t, "ws")
				// While the node was away the browser logged failed
				// connections: those are expected, nothing else is.
				tab.noErrors(t, func(m chromedp.ConsoleMessage) bool {
					return m.Type == chromedp.ConsoleError && (m.Source == "network" ||
						strings.Contains(m.Text, "ERR_CONNECTION_REFUSED") || strings.Contains(m.Text, "WebSocket connection to"))
				})
			})
		}
	})

	t.Run("RejectedSymbolsLeave", func(t *testing.T) {
		for _, tr := range []string{"ws", "sse"} {
			t.Run(tr, func(t *testing.T) {
				tab := b.open(t, n.url("/?symbols="))
				tab.useTransport(t, tr)
				// A shared link naming a symbol the catalogue lacks: the
				// row goes, a notice says why, the rest still moves.
				tab.do(t, "open a link with an unknown symbol", chromedp.Navigate(n.url("/?symbols=KRW-BTC,NOPE-X")))
				tab.waitLive(t, tr)
				tab.wait(t, "NOPE-X gone with a notice", row("NOPE-X")+` === null && !document.getElementById('notice').hidden &&
					document.getElementById('notice').textContent.includes('NOPE-X')`)
				tab.waitMoves(t, "KRW-BTC")
				if got := tab.eval(t, `location.search`); got != "?symbols=KRW-BTC" {
					t.Errorf("address bar %q after the rejection, want ?symbols=KRW-BTC", got)
				}
				// Only rejected symbols: the node refuses the SSE stream
				// before it opens, which the page must understand too
				// rather than retry forever.
				tab.do(t, "open a link with malformed symbols only", chromedp.Navigate(n.url("/?symbols=NOPE!,%E2%82%A9X")))
				tab.wait(t, "the rows of malformed symbols gone", `document.querySelectorAll('#rows tr').length === 0 &&
					document.getElementById('notice').textContent.includes('NOPE!')`)
				if tr == "sse" {
					tab.waitState(t, "idle", tr)
				} else {
					tab.waitLive(t, tr)
				}
				tab.useTransport(t, "ws")
				tab.noErrors(t, func(m chromedp.ConsoleMessage) bool {
					return tr == "sse" && m.Type == chromedp.ConsoleError && m.Source == "network" // the refused stream
				})
			})
		}
	})

	t.Run("BackoffIsJitteredAndCapped", func(t *testing.T) {
		tab := b.open(t, n.url("/?symbols="))
		// The page's own module, with the random draw pinned to both ends of
		// its range: waits double from 500 ms, are never under half of
		// their step, and stop growing at 15 s.
		got := tab.await(t, `(async () => {
			const { Backoff } = await import('/board/backoff.js');
			const run = (r) => { const b = new Backoff({ random: () => r }); return Array.from({ length: 8 }, () => b.next()); };
			const lo = run(0), hi = run(0.999999), b = new Backoff({ random: () => 0 });
			b.next(); b.next(); b.reset();
			return JSON.stringify([lo, hi, b.next()]);
		})()`)
		want := `[[250,500,1000,2000,4000,7500,7500,7500],[500,1000,2000,4000,8000,15000,15000,15000],250]`
		if got != want {
			t.Errorf("backoff waits %s, want %s", got, want)
		}
		tab.noErrors(t, nil)
	})

	t.Run("NameFoundAsAFlashEnds", func(t *testing.T) {
		tab := b.open(t, n.url("/?symbols="))
		// The page's own table, its frames driven by hand: a name found
		// for a row whose price flash ends in the same frame is shown.
		got := tab.await(t, `(async () => {
			const { Table } = await import('/board/table.js');
			const table = new Table(document.createElement('tbody'), { onRemove: () => {} });
			const q = (seq, price) => ({ symbol: 'AAPL', seq, price, currency: 'USD', market: 'open', fetched_at: 0 });
			table.add('AAPL', '');
			table.push([q(1, 100)], 0);
			table.flush(1000);
			table.push([q(2, 101)], 0);
			table.flush(2000); // the price moved: the cell flashes
			table.setName('AAPL', 'Apple Inc.');
			table.flush(1e9); // the flash is over, the name is due
			return table.tbody.querySelector('.name').textContent;
		})()`)
		if got != "Apple Inc." {
			t.Errorf("the row's name is %q after its flash ended in the frame that was to show it, want \"Apple Inc.\"", got)
		}
		tab.noErrors(t, nil)
	})

	t.Run("TwoHundredSymbols", func(t *testing.T) {
		syms := make([]string, 200)
		for i := range syms {
			syms[i] = fmt.Sprintf("SYN-%06d", i+1)
		}
		tab := b.open(t, n.url("/?symbols="+strings.Join(syms, ",")))
		// Over SSE every quote is an event of its own: about 1,300 a
		// second here, far more messages than frames.
		for _, tr := range []string{"ws", "sse"} {
			t.Run(tr, func(t *testing.T) {
				tab.useTransport(t, tr)
				tab.waitLive(t, tr)
				tab.wait(t, "200 rows priced", `[...document.querySelectorAll('#rows tr')].filter(r => r.dataset.seq > 0).length === 200`)
				r := tab.measure(t)
				if r.Moved != 200 {
					t.Errorf("%d rows of 200 moved in 3 s", r.Moved)
				}
				// However many messages arrive, the DOM changes in at
				// most one batch per frame.
				if r.Batches > r.Frames+1 {
					t.Errorf("the DOM changed in %d batches over %d frames: it is written outside animation frames", r.Batches, r.Frames)
				}
			})
		}
		tab.useTransport(t, "ws")
		tab.noErrors(t, nil)
	})

	t.Run("SignIn", func(t *testing.T) { testBoardSignIn(t, n, b) })
	t.Run("Watchlist", func(t *testing.T) { testBoardWatchlist(t, n, b) })
	t.Run("Portfolio", func(t *testing.T) { testBoardPortfolio(t, n, b) })
	t.Run("Alerts", func(t *testing.T) { testBoardAlerts(t, n, b) })
	t.Run("Chart", func(t *testing.T) { testBoardChart(t, n, b) })

	t.Run("Screenshot", func(t *testing.T) {
		// Signed in, with a portfolio valued live and a chart open.
		user := boardUserT{name: "alice", token: boardToken(t, "alice", time.Now(), time.Hour)}
		n.api(t, user.token, "PUT", "/v1/me/portfolio", `{"base_currency":"KRW","holdings":[
			{"symbol":"KRW-BTC","quantity":0.35,"avg_cost":140000000},{"symbol":"005930.KS","quantity":120,"avg_cost":71000},
			{"symbol":"AAPL","quantity":40,"avg_cost":180}]}`, http.StatusOK)
		tab := b.open(t, n.url("/?symbols=KRW-BTC,KRW-ETH,KRW-XRP,KRW-SOL,KRW-DOGE,005930.KS,000660.KS,AAPL,NVDA,MSFT"))
		tab.do(t, "size the page", chromedp.EmulateViewport(1280, 1280))
		tab.signIn(t, user)
		tab.waitLive(t, "ws")
		tab.wait(t, "the portfolio valued", `document.querySelectorAll('#portfolio .positions tr[data-position]').length === 3`)
		tab.do(t, "open KRW-BTC's chart", chromedp.Click(chromedp.CSS(`tr[data-symbol="KRW-BTC"] td.price`)))
		tab.wait(t, "the chart drawn", `document.querySelectorAll('#chart g.candle').length > 0`)
		for _, s := range []string{"KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-DOGE", "005930.KS", "000660.KS", "AAPL", "NVDA", "MSFT"} {
			tab.waitPriced(t, s)
		}
		// Enough updates for the sparklines to show a trend.
		tab.wait(t, "30 points in KRW-BTC's sparkline",
			`document.querySelector('tr[data-symbol="KRW-BTC"] polyline').getAttribute('points').trim().split(' ').length >= 30`)
		tab.wait(t, "every name filled in", `[...document.querySelectorAll('#rows .name')].every(e => e.textContent !== '')`)
		png, err := runTimed(tab.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(t.ArtifactDir(), "board.png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of the board: %s (%d bytes)", path, len(png))
		tab.noErrors(t, nil)
	})
}

// chromiumPath finds Debian's chromium; without it the test fails under
// CI=true and skips elsewhere.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: scripts/browser.sh installs it (make test runs it)")
	}
	t.Skip("chromium is not installed, so the board's browser tests do not run: run scripts/browser.sh (apt-get install chromium)")
	return ""
}

// restartableNode is a real node on a fixed loopback address that the test
// can stop and start again on the same port, as an operator restarts one.
type restartableNode struct {
	t    *testing.T
	cfg  Config
	log  zerolog.Logger
	addr string
	mu   sync.Mutex
	n    *node
}

func startRestartableNode(t *testing.T) *restartableNode {
	t.Helper()
	cfg, err := LoadConfig(nil, mapEnv(map[string]string{
		"QUOTEHUB_ADDR": "127.0.0.1:0", "QUOTEHUB_ADMIN_ADDR": "", "QUOTEHUB_NODE_ID": "node-board",
		"QUOTEHUB_REFRESH_INTERVAL": "150ms", "QUOTEHUB_LOG_LEVEL": "error", "QUOTEHUB_SIM_EVERY_TICK": "true",
		"QUOTEHUB_SHUTDOWN_TIMEOUT": "5s", "QUOTEHUB_SIM_SYMBOLS": "200", "QUOTEHUB_DATA_DIR": t.TempDir(),
		"QUOTEHUB_JWT_SECRET": boardSecret,
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rn := &restartableNode{t: t, cfg: cfg, log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), addr: "127.0.0.1:0"}
	rn.start()
	t.Cleanup(rn.stop)
	return rn
}

func (rn *restartableNode) url(path string) string { return "http://" + rn.addr + path }

// market reads symbol's market state over HTTP.
func (rn *restartableNode) market(t *testing.T, symbol string) string {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: boardWait}
	resp, err := client.Get(rn.url("/v1/quotes/" + symbol))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var q struct{ Market string }
	if err := json.NewDecoder(resp.Body).Decode(&q); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/quotes/%s: %d %v", symbol, resp.StatusCode, err)
	}
	return q.Market
}

// start serves on the node's address (a free port the first time, the same
// one after).
func (rn *restartableNode) start() {
	rn.t.Helper()
	rn.mu.Lock()
	defer rn.mu.Unlock()
	ln, err := net.Listen("tcp", rn.addr)
	if err != nil {
		rn.t.Fatalf("listen on %s again: %v", rn.addr, err)
	}
	rn.addr = ln.Addr().String()
	n, err := build(rn.cfg, &rn.log, prometheus.NewRegistry())
	if err != nil {
		ln.Close()
		rn.t.Fatal(err)
	}
	n.start(ln)
	rn.n = n
}

// stop shuts the node down as a SIGTERM does: its WebSockets get 1001,
// its SSE streams end, and the port closes.
func (rn *restartableNode) stop() {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	if rn.n != nil {
		rn.n.shutdown(rn.cfg.ShutdownTimeout, &rn.log)
		rn.n = nil
	}
}

// browser is one headless Chromium with its own profile directory.
type browser struct {
	ctx context.Context
}

func startBrowser(t *testing.T, exe string) *browser {
	t.Helper()
	profile := t.TempDir() // removed after the cleanups below, which stop Chromium
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.UserDataDir(profile), chromedp.DisableGPU,
		chromedp.WindowSize(1280, 760), chromedp.Flag("lang", "en-US"),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses to run as root
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser process to end
		// Every process of this browser (renderers, GPU and network
		// helpers) runs with this profile on its command line.
		var left string
		poll.Until(t, boardWait, "every chromium process of the test to end", func() bool {
			out, err := exec.Command("pgrep", "-a", "-f", "--", profile).Output()
			var exit *exec.ExitError
			switch {
			case errors.As(err, &exit) && exit.ExitCode() == 1: // pgrep: nothing matches
				return true
			case err != nil:
				t.Fatalf("pgrep: %v", err)
			}
			if string(out) != left {
				left = string(out)
				t.Logf("chromium processes still running: %s", out)
			}
			return false
		})
	})
	// The first action starts the browser; its context must be the
	// browser's own (a timeout on it would end the browser), so a timer
	// bounds it instead.
	watchdog := time.AfterFunc(boardWait, cancelAlloc)
	err := chromedp.Do(ctx)
	watchdog.Stop()
	if err != nil {
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	return &browser{ctx: ctx}
}

// tab is one page of the browser with what its console said.
type tab struct {
	ctx  context.Context
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

// open opens url in a new tab, closed when the test ends.
func (b *browser) open(t *testing.T, url string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	tb := &tab{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // creates the tab
		cancel()
		t.Fatalf("new tab: %v", err)
	}
	msgs := chromedp.Console(ctx) // subscribes now: nothing of the page is missed
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.msgs = append(tb.msgs, m)
			tb.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	tb.do(t, "navigate to "+url, chromedp.Navigate(url))
	return tb
}

// runTimed runs a with a deadline.
func runTimed[T any](ctx context.Context, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, boardWait)
	defer cancel()
	return chromedp.Run(ctx, a)
}

func (tb *tab) do(t *testing.T, what string, a chromedp.Action[chromedp.Void]) {
	t.Helper()
	if _, err := runTimed(tb.ctx, a); err != nil {
		t.Fatalf("%s: %v%s", what, err, tb.console())
	}
}

// eval returns the value of a JavaScript expression, as a string.
func (tb *tab) eval(t *testing.T, expr string) string {
	t.Helper()
	v, err := runTimed(tb.ctx, chromedp.Evaluate[any](`String(`+expr+`)`))
	if err != nil {
		t.Fatalf("evaluate %s: %v%s", expr, err, tb.console())
	}
	return fmt.Sprint(v)
}

// await returns the string a JavaScript promise resolves to.
func (tb *tab) await(t *testing.T, promise string) string {
	t.Helper()
	v, err := runTimed(tb.ctx, chromedp.Evaluate[string](promise, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v%s", promise, err, tb.console())
	}
	return v
}

// wait polls a JavaScript predicate until it holds, for at most boardWait.
func (tb *tab) wait(t *testing.T, what, predicate string) {
	t.Helper()
	_, err := runTimed(tb.ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(boardWait)))
	if err != nil {
		status, _ := runTimed(tb.ctx, chromedp.Evaluate[string](`document.getElementById('status').textContent`))
		t.Fatalf("waiting for %s: %v (status: %q)%s", what, err, status, tb.console())
	}
}

func (tb *tab) waitState(t *testing.T, state, transport string) {
	t.Helper()
	tb.wait(t, "status "+state+" over "+transport, fmt.Sprintf(
		`document.getElementById('status').dataset.state === %q && document.getElementById('status').dataset.transport === %q`,
		state, transport))
}

func (tb *tab) waitLive(t *testing.T, transport string) {
	t.Helper()
	tb.waitState(t, "live", transport)
}

func row(symbol string) string {
	return fmt.Sprintf(`document.querySelector('tr[data-symbol=%q]')`, symbol)
}

// waitPriced waits for symbol's row to show a price.
func (tb *tab) waitPriced(t *testing.T, symbol string) {
	t.Helper()
	tb.wait(t, symbol+" priced", fmt.Sprintf(`%s?.dataset.seq > 0 && /\d/.test(%[1]s.querySelector('.price').textContent)`, row(symbol)))
}

// waitMoves waits for symbol's row to show a newer quote than it shows now.
func (tb *tab) waitMoves(t *testing.T, symbol string) {
	t.Helper()
	tb.waitPriced(t, symbol)
	seq := tb.eval(t, row(symbol)+`.dataset.seq`)
	price := tb.eval(t, row(symbol)+`.querySelector('.price').textContent`)
	tb.wait(t, symbol+" moving past seq "+seq, fmt.Sprintf(`Number(%s.dataset.seq) > %s && %[1]s.querySelector('.price').textContent !== %q`, row(symbol), seq, price))
}

// frameStats is what the page measured over 3 s: rows that moved,
// animation frames, and deliveries of DOM changes to an observer (one per
// frame when the page writes only in animation frames).
type frameStats struct{ Moved, Frames, Batches int }

// measure watches the page for 3 s, logs what it saw (frame rate, worst
// frame, the page's own delivery figures: logged, not asserted) and
// returns it.
func (tb *tab) measure(t *testing.T) frameStats {
	t.Helper()
	got := tb.await(t, `new Promise((done) => {
		const seqs = () => [...document.querySelectorAll('#rows tr')].map(r => Number(r.dataset.seq));
		const before = seqs();
		let frames = 0, worst = 0, batches = 0;
		const mo = new MutationObserver(() => batches++);
		mo.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
		const t0 = performance.now();
		let last = t0;
		const frame = (now) => {
			frames++; worst = Math.max(worst, now - last); last = now;
			if (now - t0 < 3000) { requestAnimationFrame(frame); return; }
			mo.disconnect();
			const moved = seqs().filter((s, i) => s > before[i]).length;
			done(JSON.stringify({ moved, frames, batches, fps: Math.round(frames * 1000 / (now - t0)),
				worstFrameMs: Math.round(worst), stats: document.getElementById('stats').textContent }));
		};
		requestAnimationFrame(frame);
	})`)
	t.Logf("%d rows for 3 s: %s", tb.rows(t), got)
	var r frameStats
	if err := json.Unmarshal([]byte(got), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func (tb *tab) rows(t *testing.T) int {
	t.Helper()
	n, err := strconv.Atoi(tb.eval(t, `document.querySelectorAll('#rows tr').length`))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// useTransport picks a transport in the page's switch, as a user does.
func (tb *tab) useTransport(t *testing.T, transport string) {
	t.Helper()
	tb.do(t, "switch to "+transport, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`(() => { const s = document.getElementById('transport'); s.value = %q; s.dispatchEvent(new Event('change')); })()`, transport)))
}

// noErrors fails the test for any exception or console error the page
// logged, except those expected says are.
func (tb *tab) noErrors(t *testing.T, expected func(chromedp.ConsoleMessage) bool) {
	t.Helper()
	// A round trip through the page, so that what it logged before is in.
	tb.eval(t, `1`)
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, m := range tb.msgs {
		if m.Type != chromedp.ConsoleError && !m.IsException() {
			continue
		}
		if expected != nil && !m.IsException() && expected(m) {
			t.Logf("expected console message: %s", m)
			continue
		}
		t.Errorf("console %s (source %q, %s:%d)", m, m.Source, m.URL, m.Line)
	}
}

// console lists what the page logged, for a failure message.
func (tb *tab) console() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var b strings.Builder
	for _, m := range tb.msgs {
		fmt.Fprintf(&b, "\n  console %s", m)
	}
	return b.String()
}
