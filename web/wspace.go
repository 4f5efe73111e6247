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
// one comparison and no system call: a peer that keeps up is never asked
// more than once per ask. Past ask, the next batch carries a ping (no
// extra write). Past age, with the answer still out, the writer is held:
// its quotes wait in the hub's outbox, where newer ones replace older, and
// the pong resumes it at once. So what a peer reads was written while it
// had less than age to catch up on, and the age of what it reads is about
// age plus the time it takes to read a batch or two, at its own pace.
//
// A peer that never answers is held until the hub's sweeper closes it as a
// slow consumer (4000), like a write that does not move: only a
// confirmation counts as progress. A pong whose payload is not the
// outstanding question (the liveness pinger's empty pings, an unsolicited
// pong) confirms nothing.
//
// Only the client's writer calls Hold and appendAsk; answer runs on the
// reader goroutine and meets the writer through two atomics.
type wsPace struct {
	age, ask time.Duration
	conn     *wire.Conn
	progress func() // the client's Progressed: the peer read
	resume   func() // the client's Resume: an answer ends a hold at once

	want      atomic.Uint64 // the offset the outstanding ping confirms; 0: none out
	confirmed atomic.Uint64 // the furthest offset the peer confirmed

	// The writer's.
	marks  [maxMarks]mark // ring of batches not confirmed read, oldest first
	first  int            // index of the oldest mark
	n      int            // marks in the ring
	attach bool           // the next batch carries a ping
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
	// askFraction is ask as a share of age.
	askFraction = 2
	// retryAsk is how soon a held writer whose ping could not go out (the
	// socket was busy) tries again.
	retryAsk = 25 * time.Millisecond
	// askSize is the size of a ping frame with an offset: header and 8 bytes.
	askSize = 2 + 8
)

// newWSPace returns the pacer of a WebSocket, or nil when age is 0
// (pacing off).
func newWSPace(age time.Duration, conn *wire.Conn, progress, resume func()) *wsPace {
	if age <= 0 {
		return nil
	}
	return &wsPace{age: age, ask: age / askFraction, conn: conn, progress: progress, resume: resume}
}

// Hold implements hub.Pacer.
func (p *wsPace) Hold() time.Duration {
	if p == nil {
		return 0
	}
	now := time.Now().UnixNano()
	written := p.conn.Written()
	oldest := p.oldest(p.confirmed.Load(), written)
	if oldest == 0 || time.Duration(now-oldest) < p.ask {
		p.note(written, now)
		return 0
	}
	out := p.want.Load() != 0
	if time.Duration(now-oldest) < p.age {
		p.attach = p.attach || !out // ask with this batch
		p.note(written, now)
		return 0
	}
	if !out && !p.askNow() {
		return retryAsk
	}
	return p.age // until the answer resumes the writer, or look again then
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
	end := written + uint64(len(b)) + askSize
	p.want.Store(end) // before the ping can be answered
	return appendPing(b, end)
}

// askNow sends a ping on its own and reports whether it went out.
func (p *wsPace) askNow() bool {
	end := p.conn.Written() + askSize
	p.want.Store(end)
	var f [askSize]byte
	if sent, _ := p.conn.TrySend(appendPing(f[:0], end)); !sent {
		p.want.Store(0) // a failed connection: its reader or the next write sees it
		return false
	}
	return true
}

// answer takes a pong's payload: the answer to the outstanding ping
// confirms that the peer read everything before it.
func (p *wsPace) answer(payload []byte) {
	if p == nil || len(payload) != 8 {
		return
	}
	end := binary.BigEndian.Uint64(payload)
	if end == 0 || !p.want.CompareAndSwap(end, 0) {
		return
	}
	p.confirmed.Store(end)
	p.progress()
	p.resume()
}

// appendPing appends a ping whose payload is off.
func appendPing(b []byte, off uint64) []byte {
	b = append(b, 0x80|wire.OpPing, 8)
	return binary.BigEndian.AppendUint64(b, off)
}
