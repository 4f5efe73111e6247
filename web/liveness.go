package web

import (
	"time"

	"quotehub/web/internal/wire"
)

// liveness decides, each time a WebSocket's ping timer fires, whether the
// peer is alive. A pong answers a ping only once the peer has read
// everything written before it, so a missing pong is evidence only when
// the peer has taken everything: while the socket still holds data the
// peer has not acknowledged, the peer is judged by whether it acknowledges
// more (it is reading, however slowly), and one that takes nothing for the
// stall time is a slow consumer.
//
// It is a pure state machine, driven by the ping timer alone.
type liveness struct {
	every   time.Duration // between pings
	timeout time.Duration // for the pong, once the peer has everything
	stall   time.Duration // the most time the peer may take nothing while data waits

	nextPing time.Time // when the next ping is due
	pinging  bool      // a ping is out, unanswered when last looked at
	deadline time.Time // when an unanswered ping fails the connection
	pending  bool      // the socket held data the peer had not acknowledged, at the last look
	acked    uint64    // the peer's acknowledged bytes at the last look
	moved    time.Time // when that last grew, or the socket was last drained
}

// verdict is what the ping timer does after a look.
type verdict int

const (
	waitMore     verdict = iota // nothing to do; look again after wait
	sendPing                    // send a ping (then pinged, if it went out)
	closeDead                   // no pong, though the peer has everything
	closeStalled                // the peer took nothing for the stall time
)

// start arms the machine at now: the first ping is due after every.
func (l *liveness) start(now time.Time) { l.nextPing = now.Add(l.every) }

// look decides at now, given whether a pong came since the last ping and
// the socket's state.
func (l *liveness) look(now time.Time, answered bool, s wire.State) verdict {
	l.pending = s.Known && s.Outstanding
	if !l.pending || l.moved.IsZero() || s.Acked != l.acked {
		l.acked, l.moved = s.Acked, now
	}
	if l.pending && now.Sub(l.moved) >= l.stall {
		return closeStalled
	}
	if l.pinging {
		switch {
		case answered:
			l.pinging = false
		case l.pending:
			l.deadline = now.Add(l.timeout) // the ping may wait behind what the peer has not taken
		case !now.Before(l.deadline):
			return closeDead
		}
	}
	if !l.pinging && !now.Before(l.nextPing) {
		return sendPing
	}
	return waitMore
}

// pinged records a ping that went out at now.
func (l *liveness) pinged(now time.Time) {
	l.pinging, l.deadline, l.nextPing = true, now.Add(l.timeout), now.Add(l.every)
}

// wait is how long after now the timer should look again.
func (l *liveness) wait(now time.Time) time.Duration {
	var d time.Duration
	switch {
	case l.pinging:
		d = l.deadline.Sub(now)
	case now.Before(l.nextPing):
		d = l.nextPing.Sub(now)
	default:
		d = l.timeout // a ping that did not go out is tried again
	}
	if l.pending { // watch the acknowledgements
		d = min(d, l.timeout, l.moved.Add(l.stall).Sub(now))
	}
	return max(d, time.Millisecond)
}
