package web

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"quotehub/web/internal/wire"
)

// wsPace implements hub.Pacer for a WebSocket by what the peer confirms it
// has read. A WebSocket peer answers a ping only once it has read every
// byte before it, so a ping whose payload is the offset at which it ends
// comes back, as a pong with the same payload, exactly when the peer has
// read that far — whatever its receive buffer holds and whatever its TCP
// window shows (a receiver does not announce small reads, so the window
// can hide seconds of a slow reader's progress).
//
// The writer notes when each batch went out (offset, time). While the
// oldest byte the peer has not confirmed is younger than ask, a batch costs
// one comparison and no system call. Past ask, each batch carries a ping
// (no extra write; at most one per askGap); a peer that keeps up answers
// the first at once. An
// answer costs the node a wake-up of the connection's reader, so a peer
// that answers every question within a quarter of age is asked after 4 ×
// age, then a quarter as often each time, down to once per maxBackoff ×
// age (asked every 0.75 s, 10,000 fan-out clients cost the node 10 % more
// CPU; so, 2–3 %). A slower answer
// marks the peer as behind: then every batch carries a ping, so that
// what it confirms follows what it reads closely (asked only past ask, it
// would get ask's worth of batches at the full rate before the first
// question, and read them late). Past age, with a question out, the writer
// is held: its quotes wait in the hub's outbox, where newer ones replace
// older, and the answer resumes it at once. Past age with no question out
// (the batches came further apart than ask), the batch goes, asking: a
// peer is held only when it was asked and has not answered. So what a
// peer reads was written while it had less than about age to catch up on,
// and the age of what it reads is about age plus the time it takes to read
// a batch or two, at its own pace.
//
// A peer that never answers is held until the hub's sweeper closes it as a
// slow consumer (4000), like a write that does not move: only a
// confirmation counts as progress. A pong confirms only an offset that was
// asked and not yet confirmed: the liveness pinger's empty pings and
// unsolicited pongs confirm nothing. (A client that answers an offset
// before reading up to it only makes its own quotes older.)
//
// Only the client's writer calls Hold and appendAsk; answer runs on the
// reader goroutine and meets the writer through two atomics.
type wsPace struct {
	age, ask time.Duration
	conn     *wire.Conn
	progress func() // the client's Progressed: the peer read
	resume   func() // the client's Resume: an answer ends a hold at once

	asked      atomic.Uint64 // the end of the last ping sent
	confirmed  atomic.Uint64 // the furthest offset the peer confirmed; written by answer alone
	answeredAt atomic.Int64  // Unix ns of the last confirmation

	// The writer's.
	marks     [maxMarks]mark // ring of batches not confirmed read, oldest first
	first     int            // index of the oldest mark
	n         int            // marks in the ring
	attach    bool           // the next batch carries a ping
	every     time.Duration  // ask after this long: ask, more for a peer that answers at once, 0 (every batch) for one behind
	askedAt   int64          // Unix ns the first question not yet answered went out; 0: none
	seen      uint64         // confirmed, as Hold last saw it
	lastAsk   int64          // Unix ns of the last batch that asked
	askedFrom uint64         // where the batch that asked at askedAt began
	rate      float64        // bytes a second the peer reads while behind; 0: not known
	sAt       int64          // Unix ns the current sample of the pace began (an answer); 0: none
	sFrom     uint64         // what was confirmed then
	sBusy     bool           // and whether the peer had a backlog then
}

// mark says that the bytes from off on (up to the next mark) went out at
// at (Unix ns) or later.
type mark struct {
	off uint64
	at  int64
}

const (
	// maxMarks bounds the ring. A batch past it is counted as written at
	// the newest mark's time, which is earlier than it was: the peer then
	// looks further behind than it is, never less.
	maxMarks = 16
	// askShare is ask as a share of age, in quarters: a peer that keeps
	// up is asked once per three quarters of age, and answers long before
	// the last quarter runs out.
	askShare = 3
	// maxBackoff bounds how rarely a peer that keeps up is asked, in
	// multiples of age: a peer that then stops reading is seen within
	// that time, and held.
	maxBackoff = 16
	// A sample of a peer's pace spans at least rateSample, from a backlog
	// of at least rateBusy.
	rateSample = 250 * time.Millisecond
	rateBusy   = 2 << 10
	// askGap is the least time between two questions: the answers stay
	// well within a client's allowance of control frames (pongs count),
	// however often batches go.
	askGap = 200 * time.Millisecond
	// askSize is the size of a ping frame with an offset: header and 8 bytes.
	askSize = 2 + 8
)

// newWSPace returns the pacer of a WebSocket, or nil when age is 0
// (pacing off).
func newWSPace(age time.Duration, conn *wire.Conn, progress, resume func()) *wsPace {
	if age <= 0 {
		return nil
	}
	ask := age * askShare / 4
	// Until its first answer, every batch asks: a peer that answers at once
	// is then asked every ask and less, and one behind has its pace
	// measured from the start.
	return &wsPace{age: age, ask: ask, conn: conn, progress: progress, resume: resume}
}

// Hold implements hub.Pacer.
func (p *wsPace) Hold() time.Duration {
	if p == nil {
		return 0
	}
	now := time.Now().UnixNano()
	written, confirmed := p.conn.Written(), p.confirmed.Load()
	if confirmed > p.seen {
		p.answered(confirmed)
	}
	oldest := p.oldest(confirmed, written)
	if p.every == 0 || oldest != 0 && time.Duration(now-oldest) >= p.every {
		out := p.asked.Load() > confirmed
		if oldest != 0 && time.Duration(now-oldest) >= p.age && out {
			return p.age // until the answer resumes the writer, or look again then
		}
		if d := p.backlog(written - confirmed); d > 0 && out {
			return d
		}
		if time.Duration(now-p.lastAsk) >= askGap {
			p.attach, p.lastAsk = true, now
			if p.askedAt == 0 {
				p.askedAt, p.askedFrom = now, written
			}
		}
	}
	p.note(written, now)
	return 0
}

// backlog is how much longer than half of age a peer that is behind
// (and whose pace is known) would take to read the unconfirmed bytes at
// its pace, or 0: a batch written now waits that long behind them. It
// holds such a peer until it is within half of age, whatever the time its
// oldest byte went out, so that it is not written to at the full rate
// until the oldest byte is age old (the bytes behind it would take
// seconds more).
func (p *wsPace) backlog(unconfirmed uint64) time.Duration {
	if p.every != 0 || p.rate <= 0 {
		return 0
	}
	d := time.Duration(float64(unconfirmed)/p.rate*float64(time.Second)) - p.age/2
	if d <= 0 {
		return 0
	}
	return min(max(d, minHold), p.age)
}

// answered measures the peer's pace while it is behind, and adapts how
// often it is asked to how soon it answered: half as often once it has
// answered every question within a quarter of age (after 4 × age at
// first), every batch after a slower answer.
func (p *wsPace) answered(confirmed uint64) {
	p.pace(confirmed, p.answeredAt.Load())
	p.seen = confirmed
	if p.askedAt == 0 {
		return
	}
	switch took := time.Duration(p.answeredAt.Load() - p.askedAt); {
	case took > p.age/4:
		p.every = 0
		if p.rate <= 0 && confirmed > p.askedFrom {
			// Until a sample measures it, the first slow answer gives the
			// pace: what the peer read from the question's batch on, in
			// the time it took.
			p.rate = float64(confirmed-p.askedFrom) / took.Seconds()
		}
	case confirmed >= p.asked.Load():
		p.every = min(max(4*p.every, 4*p.age), maxBackoff*p.age)
	default:
		return // questions still out
	}
	if confirmed >= p.asked.Load() {
		p.askedAt = 0
	}
}

// pace takes a sample of the peer's pace, confirmed at at, once the
// current sample spans rateSample, if the peer had a backlog of at least
// rateBusy when it began (else the peer read what there was, not what it
// could). The pace falls to a lower sample at once and rises by a share of
// a higher one: a peer held to a pace too fast for it is stale, one held
// to a pace too slow is only less busy.
func (p *wsPace) pace(confirmed uint64, at int64) {
	if p.sAt != 0 && time.Duration(at-p.sAt) < rateSample {
		return
	}
	if p.sAt != 0 && p.sBusy {
		s := float64(confirmed-p.sFrom) / time.Duration(at-p.sAt).Seconds()
		if p.rate <= 0 || s < p.rate {
			p.rate = s
		} else {
			p.rate += (s - p.rate) / 4
		}
	}
	p.sAt, p.sFrom, p.sBusy = at, confirmed, p.conn.Written()-confirmed >= rateBusy
}

// oldest drops the marks of what the peer confirmed (every byte before
// confirmed) and returns when the oldest byte it has not confirmed went
// out, or 0 if it confirmed everything written.
func (p *wsPace) oldest(confirmed, written uint64) int64 {
	if confirmed >= written {
		p.n = 0
		return 0
	}
	for p.n > 1 && p.marks[(p.first+1)%maxMarks].off <= confirmed {
		p.first = (p.first + 1) % maxMarks
		p.n--
	}
	if p.n == 0 {
		return 0 // written before the first batch (the welcome): not paced
	}
	return p.marks[p.first].at
}

// note records that what is written from offset written on goes out at
// now.
func (p *wsPace) note(written uint64, now int64) {
	if p.n > 0 {
		last := &p.marks[(p.first+p.n-1)%maxMarks]
		if last.off == written {
			last.at = now // nothing went out since: the newer time is the true one
			return
		}
		if p.n == maxMarks {
			return
		}
	}
	p.marks[(p.first+p.n)%maxMarks] = mark{off: written, at: now}
	p.n++
}

// appendAsk appends to b, a batch about to be written at offset written,
// a ping that confirms it, if Hold asked for one.
func (p *wsPace) appendAsk(b []byte, written uint64) []byte {
	if p == nil || !p.attach {
		return b
	}
	p.attach = false
	// Other writes (the reader's replies, a held response head) may go
	// out before the batch: its true end is then further than end, and
	// the peer looks less far than it is, never further.
	end := written + uint64(len(b)) + askSize
	p.asked.Store(end) // before the ping can be answered
	return appendPing(b, end)
}

// answer takes a pong's payload: an asked offset confirms that the peer
// read everything before it.
func (p *wsPace) answer(payload []byte) {
	if p == nil || len(payload) != 8 {
		return
	}
	end := binary.BigEndian.Uint64(payload)
	if end <= p.confirmed.Load() || end > p.asked.Load() {
		return
	}
	p.answeredAt.Store(time.Now().UnixNano())
	p.confirmed.Store(end)
	p.progress()
	p.resume()
}

// appendPing appends a ping whose payload is off.
func appendPing(b []byte, off uint64) []byte {
	b = append(b, 0x80|wire.OpPing, 8)
	return binary.BigEndian.AppendUint64(b, off)
}
