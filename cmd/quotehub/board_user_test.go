package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"quotehub/auth"
)

// The board's signed-in parts, in TestBoard: sign-in, a followed
// watchlist, the live portfolio, alerts as notes, and the candle chart.
// Each subtest has a user of its own, so their data never meet.

// boardSecret is the HS256 secret of the browser tests' node.
const boardSecret = "board-test-secret-of-at-least-32-bytes!"

type boardUserT struct{ name, token string }

// boardUser makes a user of its own for a subtest, with an hour's token.
func boardUser(t *testing.T) boardUserT {
	t.Helper()
	name := fmt.Sprintf("board-%d", rand.Uint64())
	return boardUserT{name: name, token: boardToken(t, name, time.Now(), time.Hour)}
}

func boardToken(t *testing.T, sub string, issued time.Time, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Sign([]byte(boardSecret), auth.Claims{Subject: sub, TTL: ttl}, issued)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// api sends a request with the user's token and checks its status; it
// returns the decoded reply.
func (rn *restartableNode) api(t *testing.T, token, method, path, body string, want int) map[string]any {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rn.url(path), r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: boardWait}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return out
}

// signIn pastes the user's token into the sign-in field, as a person does,
// and waits for the page to name the user.
func (tb *tab) signIn(t *testing.T, u boardUserT) {
	t.Helper()
	tb.do(t, "paste the token", chromedp.SendKeys(chromedp.ID("token"), u.token))
	tb.do(t, "sign in", chromedp.Click(chromedp.CSS(`#signin button[type="submit"]`)))
	tb.wait(t, "signed in as "+u.name, fmt.Sprintf(`document.getElementById('who').textContent === %q && document.getElementById('signin').hidden`, u.name))
}

// pick chooses a watchlist in the page's selector.
func (tb *tab) pick(t *testing.T, id string) {
	t.Helper()
	tb.wait(t, "watchlist "+id+" offered", fmt.Sprintf(`document.querySelector('#watchlist option[value=%q]') !== null`, id))
	tb.do(t, "pick watchlist "+id, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`(() => { const s = document.getElementById('watchlist'); s.value = %q; s.dispatchEvent(new Event('change')); })()`, id)))
}

func testBoardSignIn(t *testing.T, n *restartableNode, b *browser) {
	u := boardUser(t)
	tab := b.open(t, n.url("/?symbols=KRW-BTC"))
	tab.waitLive(t, "ws")
	tab.signIn(t, u)
	if got := tab.eval(t, `sessionStorage.getItem('quotehub.board.token') === `+strconv.Quote(u.token)+` && !location.href.includes('token')`); got != "true" {
		t.Errorf("the token is not in sessionStorage alone (address %s)", tab.eval(t, `location.href`))
	}
	// The WebSocket reopens with the token: a follow needs one, and the
	// portfolio's frame is the proof it was accepted.
	tab.waitLive(t, "ws")
	tab.wait(t, "the (empty) portfolio's valuation", `!document.getElementById('portfolio').hidden`)
	tab.waitMoves(t, "KRW-BTC")

	// A reload keeps the tab signed in; signing out forgets the token.
	tab.do(t, "reload", chromedp.Reload())
	tab.wait(t, "still signed in after a reload", fmt.Sprintf(`document.getElementById('who').textContent === %q`, u.name))
	tab.do(t, "sign out", chromedp.Click(chromedp.ID("signout")))
	tab.wait(t, "signed out", `!document.getElementById('signin').hidden && document.getElementById('portfolio').hidden &&
		sessionStorage.getItem('quotehub.board.token') === null`)
	tab.waitLive(t, "ws")
	tab.waitMoves(t, "KRW-BTC")

	// An expired token (an hour old, past the allowed skew) is refused:
	// the page stays signed out and says why.
	expired := boardToken(t, u.name, time.Now().Add(-2*time.Hour), time.Hour)
	tab.do(t, "paste an expired token", chromedp.SendKeys(chromedp.ID("token"), expired))
	tab.do(t, "sign in", chromedp.Click(chromedp.CSS(`#signin button[type="submit"]`)))
	tab.wait(t, "a notice of the expired token", `!document.getElementById('notice').hidden &&
		document.getElementById('notice').textContent.includes('expired') && !document.getElementById('signin').hidden`)
	// A stored token that has expired since signs out at load, with the notice.
	tab.do(t, "store the expired token", chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem('quotehub.board.token', `+strconv.Quote(expired)+`)`))
	tab.do(t, "reload", chromedp.Reload())
	tab.wait(t, "signed out again with a notice", `document.getElementById('notice').textContent.includes('expired') &&
		!document.getElementById('signin').hidden && sessionStorage.getItem('quotehub.board.token') === null`)
	tab.waitLive(t, "ws")
	tab.noErrors(t, func(m chromedp.ConsoleMessage) bool {
		return m.Type == chromedp.ConsoleError && m.Source == "network" && strings.Contains(m.Text, "401") // the refused /v1/me
	})
}

func testBoardWatchlist(t *testing.T, n *restartableNode, b *browser) {
	for _, tr := range []string{"ws", "sse"} {
		t.Run(tr, func(t *testing.T) { testBoardWatchlistOver(t, n, b, tr) })
	}
}

func testBoardWatchlistOver(t *testing.T, n *restartableNode, b *browser, transport string) {
	u := boardUser(t)
	wl := n.api(t, u.token, "POST", "/v1/me/watchlists", `{"name":"Coins","symbols":["KRW-ETH","KRW-XRP"]}`, http.StatusCreated)
	id := fmt.Sprint(wl["id"])
	tab := b.open(t, n.url("/?symbols=KRW-BTC"))
	tab.useTransport(t, transport)
	tab.signIn(t, u)
	tab.pick(t, id)
	tab.waitLive(t, transport)
	tab.wait(t, "the watchlist's rows", `[...document.querySelectorAll('#rows tr')].map(r => r.dataset.symbol).join() === 'KRW-ETH,KRW-XRP'`)
	tab.waitMoves(t, "KRW-ETH")
	// Edits made elsewhere (here over REST) reach the followed list.
	n.api(t, u.token, "PATCH", "/v1/me/watchlists/"+id, `{"add":["KRW-SOL"],"remove":["KRW-XRP"]}`, http.StatusOK)
	tab.wait(t, "KRW-SOL added and KRW-XRP gone", row("KRW-SOL")+` !== null && `+row("KRW-XRP")+` === null`)
	tab.waitMoves(t, "KRW-SOL")
	// Back to the board's own symbols.
	tab.pick(t, "")
	tab.wait(t, "the board's own rows", `[...document.querySelectorAll('#rows tr')].map(r => r.dataset.symbol).join() === 'KRW-BTC'`)
	tab.waitMoves(t, "KRW-BTC")
	// A watchlist deleted elsewhere while shown: the board goes back to
	// its own symbols, with a notice, and no longer offers the list.
	tab.pick(t, id)
	tab.wait(t, "the watchlist's rows again", `[...document.querySelectorAll('#rows tr')].map(r => r.dataset.symbol).join() === 'KRW-ETH,KRW-SOL'`)
	// The board's first check that the list is gone fails (as when the
	// node is busy): it checks again.
	tab.eval(t, `(() => {
		const fetch = window.fetch;
		window.listChecksFailed = 0;
		window.fetch = (path, opts) => {
			if (window.listChecksFailed === 0 && String(path) === '/v1/me/watchlists' && opts.method === 'GET') {
				window.listChecksFailed++;
				return Promise.reject(new TypeError('the node is busy'));
			}
			return fetch(path, opts);
		};
	})()`)
	n.api(t, u.token, "DELETE", "/v1/me/watchlists/"+id, "", http.StatusNoContent)
	tab.wait(t, "the board's own rows after the deletion", fmt.Sprintf(`[...document.querySelectorAll('#rows tr')].map(r => r.dataset.symbol).join() === 'KRW-BTC' &&
		document.getElementById('watchlist').value === '' && document.querySelector('#watchlist option[value=%q]') === null &&
		document.getElementById('notice').textContent.includes('deleted')`, id))
	if got := tab.eval(t, `window.listChecksFailed`); got != "1" {
		t.Errorf("failed checks of the watchlists: %s, want 1", got)
	}
	tab.waitMoves(t, "KRW-BTC")
	tab.useTransport(t, "ws")
	tab.noErrors(t, nil)
}

func testBoardPortfolio(t *testing.T, n *restartableNode, b *browser) {
	for _, tr := range []string{"ws", "sse"} {
		t.Run(tr, func(t *testing.T) { testBoardPortfolioOver(t, n, b, tr) })
	}
}

func testBoardPortfolioOver(t *testing.T, n *restartableNode, b *browser, transport string) {
	u := boardUser(t)
	n.api(t, u.token, "PUT", "/v1/me/portfolio", `{"base_currency":"KRW","holdings":[
		{"symbol":"KRW-BTC","quantity":0.5,"avg_cost":1000},{"symbol":"AAPL","quantity":2,"avg_cost":100000}]}`, http.StatusOK)
	tab := b.open(t, n.url("/?symbols=KRW-ETH"))
	tab.useTransport(t, transport)
	tab.signIn(t, u)
	tab.waitLive(t, transport)
	total := `document.querySelector('#portfolio .ptotal')?.dataset.value`
	tab.wait(t, "the portfolio's total", total+` > 0 && document.querySelectorAll('#portfolio .positions tr[data-position]').length === 2`)
	// KRW-BTC far above its cost gains; AAPL far below loses.
	tab.wait(t, "P&L coloured", `document.querySelector('#portfolio tr[data-position="KRW-BTC"] .pnl').classList.contains('up') &&
		document.querySelector('#portfolio tr[data-position="AAPL"] .pnl').classList.contains('down')`)
	if got := tab.eval(t, `[...document.querySelectorAll('#portfolio .ptotals li')].map(l => l.dataset.currency).sort().join()`); got != "KRW,USD" {
		t.Errorf("totals per currency %q, want KRW,USD", got)
	}
	first := tab.eval(t, total)
	tab.wait(t, "the total moving past "+first, total+` !== `+strconv.Quote(first))
	tab.useTransport(t, "ws")
	tab.noErrors(t, nil)
}

func testBoardAlerts(t *testing.T, n *restartableNode, b *browser) {
	u := boardUser(t)
	tab := b.open(t, n.url("/?symbols=KRW-BTC"))
	tab.signIn(t, u)
	tab.wait(t, "the alert stream open", `document.getElementById('alerts').dataset.state === 'open'`)
	// A rule far below the price fires at the next change.
	n.api(t, u.token, "POST", "/v1/me/alerts", `{"symbol":"KRW-BTC","kind":"above","threshold":1}`, http.StatusCreated)
	tab.wait(t, "the alert shown", `document.querySelector('#alerts .alert-note[data-symbol="KRW-BTC"]')?.textContent.includes('above')`)
	tab.noErrors(t, nil)
}

func testBoardChart(t *testing.T, n *restartableNode, b *browser) {
	tab := b.open(t, n.url("/?symbols=KRW-BTC"))
	tab.waitPriced(t, "KRW-BTC")
	tab.do(t, "click KRW-BTC's row", chromedp.Click(chromedp.CSS(`tr[data-symbol="KRW-BTC"] td.price`)))
	svg := `document.querySelector('#chart svg')`
	tab.wait(t, "candles and moving averages drawn", `!document.getElementById('chart').hidden &&
		document.getElementById('chart').dataset.interval === '1m' &&
		document.querySelectorAll('#chart g.candle').length > 20 &&
		Number(`+svg+`.dataset.candles) === document.querySelectorAll('#chart g.candle').length &&
		document.querySelector('#chart polyline.ma-5') !== null && document.querySelector('#chart polyline.ma-20') !== null`)
	// The newest candle follows the quotes.
	closeNow := tab.eval(t, svg+`.dataset.close`)
	tab.wait(t, "the live candle moving past "+closeNow, svg+`.dataset.close !== `+strconv.Quote(closeNow))
	for _, iv := range []string{"5m", "1h", "1d"} {
		tab.do(t, "pick "+iv, chromedp.Click(chromedp.CSS(`#chart button[data-interval="`+iv+`"]`)))
		tab.wait(t, iv+" candles", fmt.Sprintf(`document.getElementById('chart').dataset.interval === %q &&
			document.getElementById('chart').dataset.state === 'ready' && document.querySelectorAll('#chart g.candle').length > 0`, iv))
	}
	tab.do(t, "close the chart", chromedp.Click(chromedp.CSS(`#chart .chart-close`)))
	tab.wait(t, "the chart closed", `document.getElementById('chart').hidden`)
	tab.noErrors(t, nil)
}
