package sim

import (
	"math"
	"time"

	"quotehub"
)

// class holds the simulation parameters of one kind of market.
type class struct {
	sigma    float64                        // volatility per sqrt(second) of the mid price
	moveProb float64                        // probability that a fetch sees a trade
	tick     func(p float64) (float64, int) // tick size at p and its decimals (0 for whole ticks)
	minTick  float64                        // smallest positive price
	rolling  bool                           // always open: UTC-day reference, rolling 24 h volume
	turnover float64                        // typical daily turnover, in the quote currency
	volDec   int                            // decimals of the volume
}

var (
	krxClass = &class{sigma: 1.5e-4, moveProb: 0.5, tick: krxTick, minTick: 1,
		turnover: 150e9}
	usClass = &class{sigma: 1.2e-4, moveProb: 0.5, tick: usTick, minTick: 0.0001,
		turnover: 3e9}
	upbitClass = &class{sigma: 1.5e-4, moveProb: 0.7, tick: upbitTick, minTick: 1e-8,
		rolling: true, turnover: 100e9, volDec: 8}
	simClass = &class{sigma: 1.5e-4, moveProb: 0.6, tick: usTick, minTick: 0.0001,
		rolling: true, turnover: 20e6}
)

// classOf maps an exchange to its market class. Exchanges unknown to the
// calendar (such as ExchangeSim) are always open and priced in cents.
func classOf(exchange string) *class {
	switch exchange {
	case quotehub.ExchangeKRX:
		return krxClass
	case quotehub.ExchangeNYSE, quotehub.ExchangeNASDAQ:
		return usClass
	case quotehub.ExchangeUpbit:
		return upbitClass
	default:
		return simClass
	}
}

// krxTick is the KRX tick size by price band (since 2023).
func krxTick(p float64) (float64, int) {
	switch {
	case p < 2000:
		return 1, 0
	case p < 5000:
		return 5, 0
	case p < 20000:
		return 10, 0
	case p < 50000:
		return 50, 0
	case p < 200000:
		return 100, 0
	case p < 500000:
		return 500, 0
	default:
		return 1000, 0
	}
}

// upbitTick is the Upbit KRW-market tick size by price band.
func upbitTick(p float64) (float64, int) {
	switch {
	case p >= 2000000:
		return 1000, 0
	case p >= 1000000:
		return 500, 0
	case p >= 500000:
		return 100, 0
	case p >= 100000:
		return 50, 0
	case p >= 10000:
		return 10, 0
	case p >= 1000:
		return 1, 0
	case p >= 100:
		return 0.1, 1
	case p >= 10:
		return 0.01, 2
	case p >= 1:
		return 0.001, 3
	case p >= 0.1:
		return 0.0001, 4
	case p >= 0.01:
		return 0.00001, 5
	case p >= 0.001:
		return 0.000001, 6
	case p >= 0.0001:
		return 0.0000001, 7
	default:
		return 0.00000001, 8
	}
}

// usTick is the US tick size: one cent, or 0.0001 below one dollar.
func usTick(p float64) (float64, int) {
	if p < 1 {
		return 0.0001, 4
	}
	return 0.01, 2
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}

// roundDec rounds x to dec decimals (0 ≤ dec ≤ 8), giving the float64
// nearest to the decimal value.
func roundDec(x float64, dec int) float64 {
	if dec <= 0 {
		return math.Round(x)
	}
	return math.Round(x*pow10[dec]) / pow10[dec]
}

// round rounds x to the tick of its price band; the result is always at
// least the smallest tick.
func (c *class) round(x float64) float64 {
	step, dec := c.tick(x)
	var r float64
	if dec > 0 {
		r = roundDec(x, dec)
	} else {
		r = math.Round(x/step) * step
	}
	if !(r > 0) || math.IsInf(r, 0) {
		return c.minTick
	}
	return r
}

// decimals returns the decimals of the tick at price p.
func (c *class) decimals(p float64) int {
	_, dec := c.tick(p)
	return dec
}

// nudge returns a price one tick away from price, towards mid (upwards when
// a downward step would not stay positive).
func (c *class) nudge(price, mid float64) float64 {
	step, _ := c.tick(price)
	if mid < price {
		if down := c.round(price - step); down < price {
			return down
		}
	}
	return c.round(price + step)
}

// roundVolume rounds a volume to the class's precision.
func (c *class) roundVolume(v float64) float64 {
	if c.volDec == 0 || v >= 1e7 {
		return math.Round(v)
	}
	return roundDec(v, c.volDec)
}

const (
	maxStep       = 3600.0                     // longest walk step, in seconds (caps overnight gaps)
	sessionSecs   = 6.5 * 3600                 // a regular stock session, in seconds
	daySecs       = 86400.0                    // the rolling volume window, in seconds
	dayMillis     = 86400 * 1000               // a UTC day, in milliseconds
	reversionRate = 0.6931471805599453 / 2.6e6 // pull of the mid price towards base: a half-life of ~30 days
)

// state is the simulation state of one symbol.
type state struct {
	rng       uint64  // splitmix64 state, seeded from the seed and the symbol
	base      float64 // price the walk reverts to
	daily     float64 // typical daily volume
	mid       float64 // unrounded price
	price     float64 // last trade price, on tick
	prevClose float64 // reference price of the current session
	volume    float64 // session volume (stocks) or rolling 24 h volume (always-open markets)
	key       int64   // session the reference price belongs to (Unix ms)
	lastMove  int64   // time of the last walk step (Unix ns)
	tradeTime int64   // TradeTime of the quote (Unix ms)
	stamp     int64   // last Fetch call that quoted the symbol
}

// sessionKey identifies the session whose reference price applies at now:
// the start of the UTC day for always-open markets; for stock markets the
// close before the session that is open, or before the most recent session
// when closed, so that the key changes only when a session opens.
func (e *entry) sessionKey(now time.Time, open bool) int64 {
	if e.cls.rolling {
		ms := now.UnixMilli()
		r := ms % dayMillis
		if r < 0 {
			r += dayMillis
		}
		return ms - r
	}
	lc := e.cal.LastClose(now)
	if !open {
		lc = e.cal.LastClose(lc.Add(-time.Nanosecond))
	}
	return lc.UnixMilli()
}

// newState creates the state of e at its first fetch: the base price walked
// deterministically (a previous close and a move since), and a plausible
// volume so far.
func (p *Provider) newState(e *entry, now time.Time, open bool, key int64) *state {
	c := e.cls
	st := &state{rng: mix64(p.seed*golden ^ hashString(e.info.Symbol))}
	st.base = basePrice(e.info.Symbol)
	st.daily = c.turnover * turnoverWeight(e.info.Symbol) * math.Exp(0.4*st.normal()) / st.base
	// The walk starts on the history path (history.go), so a chart's past
	// runs into the live prices; the two draws are kept so the generator's
	// sequence after them is what it always was.
	st.normal()
	st.normal()
	// key is the close (or UTC midnight) the reference price belongs to;
	// a closed market stands at its last close.
	st.prevClose = c.round(p.pathAt(e, time.UnixMilli(key)))
	at := now
	if !open {
		at = e.cal.LastClose(now)
	}
	st.mid = p.pathAt(e, at)
	st.price = c.round(st.mid)
	frac := 0.6 + 0.8*st.float()
	if open && !c.rolling {
		frac *= 0.5
	}
	st.volume = c.roundVolume(st.daily * frac)
	st.key = key
	st.lastMove = now.UnixNano()
	if open {
		st.tradeTime = now.UnixMilli()
	} else {
		st.tradeTime = e.cal.LastClose(now).UnixMilli()
	}
	return st
}

// walk moves the mid price by one geometric step of dt seconds, with a weak
// pull towards the base price so that long runs stay realistic.
func (p *Provider) walk(c *class, st *state, dt float64) {
	sig := c.sigma * p.vol
	z := st.normal()
	st.mid *= math.Exp(sig*math.Sqrt(dt)*z - 0.5*sig*sig*dt - reversionRate*math.Log(st.mid/st.base)*dt)
	if !(st.mid > 0) || math.IsInf(st.mid, 0) {
		st.mid = st.base
	}
}

// advance updates st for a fetch while e's market is open.
func (p *Provider) advance(e *entry, st *state, now time.Time, key int64) {
	c := e.cls
	if key != st.key { // a new session (stocks) or UTC day (always open)
		st.prevClose = st.price
		if !c.rolling {
			st.volume = 0
		}
		st.key = key
	}
	if !p.changeEvery && st.float() >= c.moveProb {
		return // no trade: the quote keeps its value
	}
	dt := float64(now.UnixNano()-st.lastMove) / 1e9
	dt = math.Min(math.Max(dt, 0), maxStep)
	p.walk(c, st, dt)

	// The trade happens near the mid price: bid/ask bounce of about half
	// a tick makes prices flicker as on a real order book.
	step, _ := c.tick(st.mid)
	price := c.round(st.mid + 0.5*step*st.normal())
	if p.changeEvery && price == st.price {
		price = c.nudge(st.price, st.mid)
	}
	st.price = price

	add := st.daily * dt / sessionSecs * (0.5 + st.float())
	if c.rolling {
		st.volume = st.volume*math.Exp(-dt/daySecs) + add
	} else {
		st.volume += math.Max(1, math.Round(add))
	}
	st.volume = c.roundVolume(st.volume)
	st.lastMove = now.UnixNano()
	st.tradeTime = now.UnixMilli()
}

// settle updates st for a fetch while e's market is closed: the price does
// not move, except that a whole session missed since the last fetch is
// simulated in one step, so the values stay identical for the whole closed
// period.
func (p *Provider) settle(e *entry, st *state, now time.Time, key int64) {
	c := e.cls
	lastClose := e.cal.LastClose(now)
	if key != st.key {
		st.prevClose = st.price
		p.walk(c, st, sessionSecs)
		st.price = c.round(st.mid)
		st.volume = c.roundVolume(st.daily * (0.6 + 0.8*st.float()))
		st.key = key
		st.lastMove = lastClose.UnixNano()
	}
	st.tradeTime = lastClose.UnixMilli()
}

// quoteOf builds the quote of e from st.
func (e *entry) quoteOf(st *state, market string) quotehub.Quote {
	c := e.cls
	dec := max(c.decimals(st.price), c.decimals(st.prevClose))
	change := roundDec(st.price-st.prevClose, dec)
	rate := math.Round(change/st.prevClose*1e6) / 1e6
	if change == 0 {
		change = 0 // no negative zero
	}
	if rate == 0 {
		rate = 0
	}
	return quotehub.Quote{
		Symbol:     e.info.Symbol,
		Price:      st.price,
		PrevClose:  st.prevClose,
		Change:     change,
		ChangeRate: rate,
		Volume:     st.volume,
		Has:        quotehub.HasPrevClose | quotehub.HasChange | quotehub.HasChangeRate | quotehub.HasVolume,
		Currency:   e.info.Currency,
		TradeTime:  st.tradeTime,
		Source:     Name,
		Market:     market,
	}
}

// golden is the splitmix64 increment (2^64 / φ).
const golden = 0x9e3779b97f4a7c15

// mix64 is the splitmix64 finaliser: a good 64-bit hash of x.
func mix64(x uint64) uint64 {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// hashString is 64-bit FNV-1a.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// unitFloat maps 64 random bits to [0, 1).
func unitFloat(x uint64) float64 { return float64(x>>11) / (1 << 53) }

// next returns the next 64 random bits of the symbol's generator.
func (st *state) next() uint64 {
	st.rng += golden
	return mix64(st.rng)
}

// float returns a uniform number in [0, 1).
func (st *state) float() float64 { return unitFloat(st.next()) }

// normal returns a standard normal number (Box–Muller).
func (st *state) normal() float64 {
	u1 := 1 - st.float() // (0, 1]
	u2 := st.float()
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}
