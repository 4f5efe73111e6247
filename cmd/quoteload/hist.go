package main

import (
	"math"
	"math/bits"
)

// Histogram layout: values are non-negative integers (quoteload records
// microseconds). Values below 2*histSub are counted exactly; above that,
// every power of two is split into histSub equal sub-buckets, so a bucket
// is at most 1/histSub (0.78 %) of its values wide and the midpoint that
// Quantile reports is within 0.39 % of any value in it.
const (
	histSubBits = 7
	histSub     = 1 << histSubBits // sub-buckets per power of two

	// HistMax is the largest value a Hist resolves (60 s in µs). Larger
	// values are counted in the top bucket; Max still reports them exactly.
	HistMax = 60_000_000
)

// histIndex returns the bucket of v (0 <= v <= HistMax).
func histIndex(v int64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - 1 - histSubBits
	return shift*histSub + int(v>>uint(shift))
}

// histBounds returns the smallest value of bucket i and its width.
func histBounds(i int) (low, width int64) {
	if i < histSub {
		return int64(i), 1
	}
	shift := i/histSub - 1
	mant := int64(i%histSub + histSub)
	return mant << uint(shift), 1 << uint(shift)
}

// Hist is a log-linear ("HDR-like") histogram of non-negative integer
// values from 0 to HistMax with under 1 % relative error. It is not safe
// for concurrent use: each connection records into its own Hist and the
// Hists are merged when the run ends. Buckets are allocated lazily over the
// range of values actually seen, so an idle Hist costs a few words.
type Hist struct {
	counts   []uint64 // counts[k] is bucket offset+k
	offset   int
	total    uint64
	overflow uint64 // values above HistMax (counted in the top bucket)
	min, max int64
	sum      float64
}

// Record adds one value; negative values count as 0.
func (h *Hist) Record(v int64) {
	if v < 0 {
		v = 0
	}
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total++
	h.sum += float64(v)
	if v > HistMax {
		h.overflow++
		v = HistMax
	}
	h.addBucket(histIndex(v), 1)
}

// addBucket adds n to bucket i, growing the slice to cover it.
func (h *Hist) addBucket(i int, n uint64) {
	if len(h.counts) == 0 {
		h.counts = make([]uint64, 64)
		h.offset = max(0, i-32)
	}
	if i < h.offset {
		grow := h.offset - i
		if grow < len(h.counts)/2 {
			grow = min(len(h.counts)/2, h.offset)
		}
		nc := make([]uint64, len(h.counts)+grow)
		copy(nc[grow:], h.counts)
		h.counts = nc
		h.offset -= grow
	} else if i >= h.offset+len(h.counts) {
		need := i - h.offset + 1
		nc := make([]uint64, max(need, len(h.counts)*3/2))
		copy(nc, h.counts)
		h.counts = nc
	}
	h.counts[i-h.offset] += n
}

// Merge adds every value of o to h.
func (h *Hist) Merge(o *Hist) {
	if o == nil || o.total == 0 {
		return
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.total += o.total
	h.overflow += o.overflow
	h.sum += o.sum
	// Grow once to cover o's range, then add bucket by bucket.
	first, last := -1, -1
	for k, c := range o.counts {
		if c != 0 {
			if first < 0 {
				first = k
			}
			last = k
		}
	}
	if first < 0 {
		return
	}
	h.addBucket(o.offset+first, 0)
	h.addBucket(o.offset+last, 0)
	for k := first; k <= last; k++ {
		if c := o.counts[k]; c != 0 {
			h.counts[o.offset+k-h.offset] += c
		}
	}
}

// Count returns the number of recorded values.
func (h *Hist) Count() uint64 { return h.total }

// Min returns the smallest recorded value (0 when empty).
func (h *Hist) Min() int64 { return h.min }

// Max returns the largest recorded value, exactly (0 when empty).
func (h *Hist) Max() int64 { return h.max }

// Overflow returns how many values were above HistMax.
func (h *Hist) Overflow() uint64 { return h.overflow }

// Mean returns the exact mean of the recorded values (0 when empty).
func (h *Hist) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// Quantile returns the value at quantile q (0 <= q <= 1): the midpoint of
// the bucket holding the ceil(q*count)-th smallest value, clamped to the
// exact minimum and maximum. It returns 0 for an empty Hist.
func (h *Hist) Quantile(q float64) float64 {
	if h.total == 0 {
		return 0
	}
	if q <= 0 {
		return float64(h.min)
	}
	if q >= 1 {
		return float64(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	var cum uint64
	for k, c := range h.counts {
		cum += c
		if cum >= rank {
			low, width := histBounds(h.offset + k)
			v := float64(low) + float64(width-1)/2
			return math.Min(math.Max(v, float64(h.min)), float64(h.max))
		}
	}
	return float64(h.max)
}

// Reset empties h and keeps its buckets' memory for the next values.
func (h *Hist) Reset() {
	clear(h.counts)
	*h = Hist{counts: h.counts, offset: h.offset}
}
