package upbittest

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"strings"
	"time"
)

// testdata holds the recorded-shape payloads the fake serves and that the
// tests of this package and of package upbit compare against.
//
//go:embed testdata/*.json
var testdata embed.FS

// ReadTestdata returns the embedded file testdata/name: market_all.json
// (the default market table), ticker_all.json (the starting ticker of every
// default market), ticker_krw_btc.json (Upbit's documented /v1/ticker
// example, byte for byte), ws_ticker.json (Upbit's documented WebSocket
// ticker example) or error_404.json (the unknown-market error body).
func ReadTestdata(name string) ([]byte, error) {
	return fs.ReadFile(testdata, "testdata/"+name)
}

// Market is one market listed by the fake.
type Market struct {
	// Code is the Upbit market code, quote currency first: "KRW-BTC".
	Code string
	// KoreanName and EnglishName are the names /v1/market/all reports.
	KoreanName  string
	EnglishName string
	// Price is the starting trade price, in the quote currency.
	Price float64
}

// DefaultMarkets returns the default market table, loaded from the
// embedded testdata/market_all.json and ticker_all.json: 50 KRW markets
// followed by a few BTC- and USDT- markets, in Upbit's listing order.
func DefaultMarkets() []Market {
	states := defaultStates()
	out := make([]Market, len(states))
	for i, st := range states {
		out[i] = st.info
	}
	return out
}

// MarketCodes returns the codes of DefaultMarkets whose quote currency is
// quote ("KRW", "BTC", "USDT"); an empty quote means all of them.
func MarketCodes(quote string) []string {
	var out []string
	for _, m := range DefaultMarkets() {
		if quote == "" || strings.HasPrefix(m.Code, quote+"-") {
			out = append(out, m.Code)
		}
	}
	return out
}

// Malformed is a way the fake can break one market's ticker object, to
// exercise a client's validation (see Server.SetMalformed).
type Malformed int

// Kinds of Malformed.
const (
	// WellFormed serves the object as it is (the default).
	WellFormed Malformed = iota
	// MissingMarket drops the "market" key (REST) or "code" key (WebSocket).
	MissingMarket
	// MissingPrice drops the "trade_price" key.
	MissingPrice
	// ZeroPrice sets "trade_price" to 0.
	ZeroPrice
	// SecondsTimestamp gives "trade_timestamp" and "timestamp" in seconds
	// instead of milliseconds.
	SecondsTimestamp
)

// restTicker is one object of /v1/ticker, keys in Upbit's order.
type restTicker struct {
	Market             string  `json:"market"`
	TradeDate          string  `json:"trade_date"`
	TradeTime          string  `json:"trade_time"`
	TradeDateKST       string  `json:"trade_date_kst"`
	TradeTimeKST       string  `json:"trade_time_kst"`
	TradeTimestamp     int64   `json:"trade_timestamp"`
	OpeningPrice       float64 `json:"opening_price"`
	HighPrice          float64 `json:"high_price"`
	LowPrice           float64 `json:"low_price"`
	TradePrice         float64 `json:"trade_price"`
	PrevClosingPrice   float64 `json:"prev_closing_price"`
	Change             string  `json:"change"`
	ChangePrice        float64 `json:"change_price"`
	ChangeRate         float64 `json:"change_rate"`
	SignedChangePrice  float64 `json:"signed_change_price"`
	SignedChangeRate   float64 `json:"signed_change_rate"`
	TradeVolume        float64 `json:"trade_volume"`
	AccTradePrice      float64 `json:"acc_trade_price"`
	AccTradePrice24h   float64 `json:"acc_trade_price_24h"`
	AccTradeVolume     float64 `json:"acc_trade_volume"`
	AccTradeVolume24h  float64 `json:"acc_trade_volume_24h"`
	Highest52WeekPrice float64 `json:"highest_52_week_price"`
	Highest52WeekDate  string  `json:"highest_52_week_date"`
	Lowest52WeekPrice  float64 `json:"lowest_52_week_price"`
	Lowest52WeekDate   string  `json:"lowest_52_week_date"`
	Timestamp          int64   `json:"timestamp"`
}

// wsTicker is one WebSocket ticker message (DEFAULT format), keys in the
// order of Upbit's documented example.
type wsTicker struct {
	Type               string  `json:"type"`
	Code               string  `json:"code"`
	OpeningPrice       float64 `json:"opening_price"`
	HighPrice          float64 `json:"high_price"`
	LowPrice           float64 `json:"low_price"`
	TradePrice         float64 `json:"trade_price"`
	PrevClosingPrice   float64 `json:"prev_closing_price"`
	AccTradePrice      float64 `json:"acc_trade_price"`
	Change             string  `json:"change"`
	ChangePrice        float64 `json:"change_price"`
	SignedChangePrice  float64 `json:"signed_change_price"`
	ChangeRate         float64 `json:"change_rate"`
	SignedChangeRate   float64 `json:"signed_change_rate"`
	AskBid             string  `json:"ask_bid"`
	TradeVolume        float64 `json:"trade_volume"`
	AccTradeVolume     float64 `json:"acc_trade_volume"`
	TradeDate          string  `json:"trade_date"`
	TradeTime          string  `json:"trade_time"`
	TradeTimestamp     int64   `json:"trade_timestamp"`
	AccAskVolume       float64 `json:"acc_ask_volume"`
	AccBidVolume       float64 `json:"acc_bid_volume"`
	Highest52WeekPrice float64 `json:"highest_52_week_price"`
	Highest52WeekDate  string  `json:"highest_52_week_date"`
	Lowest52WeekPrice  float64 `json:"lowest_52_week_price"`
	Lowest52WeekDate   string  `json:"lowest_52_week_date"`
	MarketState        string  `json:"market_state"`
	IsTradingSuspended bool    `json:"is_trading_suspended"`
	DelistingDate      *string `json:"delisting_date"`
	MarketWarning      string  `json:"market_warning"`
	Timestamp          int64   `json:"timestamp"`
	AccTradePrice24h   float64 `json:"acc_trade_price_24h"`
	AccTradeVolume24h  float64 `json:"acc_trade_volume_24h"`
	StreamType         string  `json:"stream_type"`
}

// marketJSON is one object of /v1/market/all.
type marketJSON struct {
	Market      string `json:"market"`
	KoreanName  string `json:"korean_name"`
	EnglishName string `json:"english_name"`
}

// mstate is the live state of one market. The Server's mutex guards it.
type mstate struct {
	info      Market
	t         restTicker
	base      float64 // starting price: the walk reverts towards it
	steps     uint64
	askBid    string
	accAsk    float64
	accBid    float64
	malformed Malformed
	delisted  bool
}

// defaultStates parses the embedded market table and starting tickers.
// The files are part of the package, so a parse error is a programming
// error and panics.
func defaultStates() []*mstate {
	var list []marketJSON
	var tickers []restTicker
	mustJSON("market_all.json", &list)
	mustJSON("ticker_all.json", &tickers)
	byCode := make(map[string]restTicker, len(tickers))
	for _, t := range tickers {
		byCode[t.Market] = t
	}
	out := make([]*mstate, 0, len(list))
	for _, m := range list {
		t, ok := byCode[m.Market]
		if !ok {
			panic("upbittest: no starting ticker for " + m.Market)
		}
		info := Market{Code: m.Market, KoreanName: m.KoreanName, EnglishName: m.EnglishName, Price: t.TradePrice}
		out = append(out, &mstate{info: info, t: t, base: t.TradePrice, askBid: "BID",
			accAsk: round(t.AccTradeVolume*0.48, 8), accBid: round(t.AccTradeVolume*0.52, 8)})
	}
	return out
}

func mustJSON(name string, v any) {
	b, err := ReadTestdata(name)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		panic(fmt.Sprintf("upbittest: embedded %s: %v", name, err))
	}
}

// newState makes the state of a custom market from its price alone: the
// previous close equals the price, volumes are plausible, timestamps
// start at now.
func newState(m Market, now time.Time) *mstate {
	p := roundTick(m.Code, m.Price, m.Price)
	if !(p > 0) {
		p = tickSize(m.Code, m.Price)
	}
	m.Price = p
	vol := round(5e8/max(p, 1e-8)/100, 8)
	st := &mstate{info: m, base: p, askBid: "BID"}
	st.t = restTicker{
		Market:             m.Code,
		OpeningPrice:       p,
		HighPrice:          p,
		LowPrice:           p,
		TradePrice:         p,
		PrevClosingPrice:   p,
		Change:             "EVEN",
		TradeVolume:        round(vol/1000, 8),
		AccTradeVolume:     vol,
		AccTradeVolume24h:  round(vol*2.5, 8),
		AccTradePrice:      round(vol*p, 8),
		AccTradePrice24h:   round(vol*2.5*p, 8),
		Highest52WeekPrice: roundTick(m.Code, p*1.8, p),
		Highest52WeekDate:  now.UTC().AddDate(0, -7, 0).Format(time.DateOnly),
		Lowest52WeekPrice:  roundTick(m.Code, p*0.55, p),
		Lowest52WeekDate:   now.UTC().AddDate(0, -3, 0).Format(time.DateOnly),
	}
	st.accAsk, st.accBid = round(vol*0.48, 8), round(vol*0.52, 8)
	st.setTime(now.UnixMilli())
	return st
}

var kst = time.FixedZone("KST", 9*3600)

// setTime sets the trade time fields (UTC and KST) from ms.
func (st *mstate) setTime(ms int64) {
	if ms < st.t.TradeTimestamp {
		ms = st.t.TradeTimestamp // never back in time
	}
	t := time.UnixMilli(ms)
	st.t.TradeTimestamp = ms
	st.t.Timestamp = ms + 37
	u, k := t.UTC(), t.In(kst)
	st.t.TradeDate, st.t.TradeTime = u.Format("20060102"), u.Format("150405")
	st.t.TradeDateKST, st.t.TradeTimeKST = k.Format("20060102"), k.Format("150405")
}

// step moves the market by one simulated trade at now: the price walks by
// one or two ticks (deterministic for a seed and step number, reverting
// towards the starting price), and volumes, change fields and times follow.
func (st *mstate) step(seed uint64, now time.Time) {
	st.steps++
	h := mix64(seed ^ strHash(st.info.Code) ^ st.steps*0x9e3779b97f4a7c15)
	t := &st.t
	p := t.TradePrice
	tick := tickSize(st.info.Code, p)
	k := [4]float64{-2, -1, 1, 2}[h&3]
	switch {
	case p > st.base*1.03 && k > 0, p < st.base*0.97 && k < 0:
		k = -k
	}
	np := roundTick(st.info.Code, p+k*tick, p)
	if !(np > 0) {
		np = tick
	}
	vol := round(float64((h>>8)%1000+1)/1000*2e5/max(np, 1e-8), 8)
	t.TradePrice = np
	t.TradeVolume = vol
	t.HighPrice = max(t.HighPrice, np)
	t.LowPrice = min(t.LowPrice, np)
	t.AccTradeVolume = round(t.AccTradeVolume+vol, 8)
	t.AccTradeVolume24h = round(t.AccTradeVolume24h+vol, 8)
	t.AccTradePrice = round(t.AccTradePrice+vol*np, 8)
	t.AccTradePrice24h = round(t.AccTradePrice24h+vol*np, 8)
	if h&(1<<40) != 0 {
		st.askBid = "ASK"
		st.accAsk = round(st.accAsk+vol, 8)
	} else {
		st.askBid = "BID"
		st.accBid = round(st.accBid+vol, 8)
	}
	st.setChange()
	st.setTime(now.UnixMilli())
}

// setChange derives the change fields from the price and previous close.
func (st *mstate) setChange() {
	t := &st.t
	_, dec := tickOf(st.info.Code, t.PrevClosingPrice)
	diff := round(t.TradePrice-t.PrevClosingPrice, dec+2)
	t.SignedChangePrice = diff
	t.ChangePrice = math.Abs(diff)
	t.SignedChangeRate = 0
	if t.PrevClosingPrice > 0 {
		t.SignedChangeRate = round(diff/t.PrevClosingPrice, 10)
	}
	t.ChangeRate = math.Abs(t.SignedChangeRate)
	switch {
	case diff > 0:
		t.Change = "RISE"
	case diff < 0:
		t.Change = "FALL"
	default:
		t.Change = "EVEN"
	}
}

// restJSON renders the market's /v1/ticker object.
func (st *mstate) restJSON() json.RawMessage {
	t := st.t
	switch st.malformed {
	case ZeroPrice:
		t.TradePrice = 0
	case SecondsTimestamp:
		t.TradeTimestamp /= 1000
		t.Timestamp /= 1000
	}
	b, _ := json.Marshal(t)
	switch st.malformed {
	case MissingMarket:
		b = dropKey(b, "market")
	case MissingPrice:
		b = dropKey(b, "trade_price")
	}
	return b
}

// wsJSON renders the market's WebSocket ticker message.
func (st *mstate) wsJSON(streamType string) []byte {
	t := st.t
	m := wsTicker{
		Type: "ticker", Code: t.Market,
		OpeningPrice: t.OpeningPrice, HighPrice: t.HighPrice, LowPrice: t.LowPrice,
		TradePrice: t.TradePrice, PrevClosingPrice: t.PrevClosingPrice, AccTradePrice: t.AccTradePrice,
		Change: t.Change, ChangePrice: t.ChangePrice, SignedChangePrice: t.SignedChangePrice,
		ChangeRate: t.ChangeRate, SignedChangeRate: t.SignedChangeRate, AskBid: st.askBid,
		TradeVolume: t.TradeVolume, AccTradeVolume: t.AccTradeVolume,
		TradeDate: t.TradeDate, TradeTime: t.TradeTime, TradeTimestamp: t.TradeTimestamp,
		AccAskVolume: st.accAsk, AccBidVolume: st.accBid,
		Highest52WeekPrice: t.Highest52WeekPrice, Highest52WeekDate: t.Highest52WeekDate,
		Lowest52WeekPrice: t.Lowest52WeekPrice, Lowest52WeekDate: t.Lowest52WeekDate,
		MarketState: "ACTIVE", MarketWarning: "NONE", Timestamp: t.Timestamp,
		AccTradePrice24h: t.AccTradePrice24h, AccTradeVolume24h: t.AccTradeVolume24h,
		StreamType: streamType,
	}
	switch st.malformed {
	case ZeroPrice:
		m.TradePrice = 0
	case SecondsTimestamp:
		m.TradeTimestamp /= 1000
		m.Timestamp /= 1000
	}
	b, _ := json.Marshal(m)
	switch st.malformed {
	case MissingMarket:
		b = dropKey(b, "code")
	case MissingPrice:
		b = dropKey(b, "trade_price")
	}
	return b
}

// dropKey removes key from the JSON object b (the other keys come out
// sorted, which JSON does not care about).
func dropKey(b []byte, key string) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return b
	}
	delete(m, key)
	out, _ := json.Marshal(m)
	return out
}

// tickOf returns the tick size of a market at price p and its number of
// decimals. KRW markets follow Upbit's KRW price bands; BTC markets trade in
// satoshis; USDT and other markets get about five significant digits.
func tickOf(code string, p float64) (float64, int) {
	quote, _, _ := strings.Cut(code, "-")
	switch quote {
	case "KRW":
		bands := [...]struct {
			min  float64
			tick float64
			dec  int
		}{
			{2000000, 1000, 0}, {1000000, 500, 0}, {500000, 100, 0}, {100000, 50, 0},
			{10000, 10, 0}, {1000, 1, 0}, {100, 0.1, 1}, {10, 0.01, 2}, {1, 0.001, 3},
			{0.1, 0.0001, 4}, {0.01, 0.00001, 5}, {0.001, 0.000001, 6}, {0.0001, 0.0000001, 7},
		}
		for _, b := range bands {
			if p >= b.min {
				return b.tick, b.dec
			}
		}
		return 0.00000001, 8
	case "BTC":
		return 0.00000001, 8
	default:
		if !(p > 0) {
			return 0.00000001, 8
		}
		dec := min(8, max(0, 4-int(math.Floor(math.Log10(p)))))
		return math.Pow(10, -float64(dec)), dec
	}
}

func tickSize(code string, p float64) float64 {
	t, _ := tickOf(code, p)
	return t
}

// roundTick rounds x to the tick of the band of ref.
func roundTick(code string, x, ref float64) float64 {
	tick, dec := tickOf(code, ref)
	if dec == 0 {
		return math.Round(x/tick) * tick
	}
	return round(x, dec)
}

// round rounds x to dec decimals.
func round(x float64, dec int) float64 {
	p := math.Pow(10, float64(dec))
	return math.Round(x*p) / p
}

// mix64 is the splitmix64 finaliser: a cheap, well-mixed hash.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// strHash is FNV-1a.
func strHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
