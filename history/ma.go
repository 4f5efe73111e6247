package history

// SMA is a simple moving average over the last N values, updated in O(1)
// per value from its previous state (a ring of the last N values and their
// sum). The zero SMA is not usable; use NewSMA. Not safe for concurrent use.
//
// A gap in a series (a period without a candle: no trade happened) is not a
// value: averages run over the candles that exist, as charts draw them.
type SMA struct {
	ring  []float64
	next  int
	count int
	sum   float64
	// adds since the sum was last recomputed from the ring; see Add.
	drift int
}

// NewSMA returns an SMA over n values (n ≥ 1).
func NewSMA(n int) *SMA { return &SMA{ring: make([]float64, n)} }

// N is the window length.
func (s *SMA) N() int { return len(s.ring) }

// Add appends v and returns the average of the last N values; ok is false
// for the first N−1 values, which have no average yet.
func (s *SMA) Add(v float64) (avg float64, ok bool) {
	n := len(s.ring)
	old := s.ring[s.next]
	s.ring[s.next] = v
	s.next++
	if s.next == n {
		s.next = 0
	}
	if s.count < n {
		s.count++
		s.sum += v
	} else {
		s.sum += v - old
	}
	// A running sum accumulates rounding error; re-adding the ring once
	// every N·64 values keeps it bounded at O(1) amortised per value.
	if s.drift++; s.drift >= 64*n {
		s.drift = 0
		s.sum = 0
		for _, x := range s.ring[:s.count] {
			s.sum += x
		}
	}
	if s.count < n {
		return 0, false
	}
	return s.sum / float64(n), true
}

// EMA is an exponential moving average with smoothing 2/(N+1), seeded with
// the simple average of its first N values (the usual charting convention),
// updated in O(1) per value. Not safe for concurrent use.
type EMA struct {
	n     int
	k     float64
	count int
	value float64 // the running sum until the seed, then the average
}

// NewEMA returns an EMA over n values (n ≥ 1).
func NewEMA(n int) *EMA { return &EMA{n: n, k: 2 / float64(n+1)} }

// N is the window length.
func (e *EMA) N() int { return e.n }

// Add appends v and returns the average; ok is false for the first N−1
// values.
func (e *EMA) Add(v float64) (avg float64, ok bool) {
	e.count++
	switch {
	case e.count < e.n:
		e.value += v
		return 0, false
	case e.count == e.n:
		e.value = (e.value + v) / float64(e.n)
	default:
		e.value += e.k * (v - e.value)
	}
	return e.value, true
}
