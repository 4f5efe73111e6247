package web

import (
	"time"

	"quotehub/web/internal/wire"
)

// pace implements hub.Pacer for a stream: it holds the writer while the
// peer has more than limit bytes of what was written not read yet — in
// flight, or in its own receive buffer, where a newer quote cannot replace
// an older one and a client reading 5 KB/s would otherwise hold 25 s of
// quotes in a 128 KiB buffer. Held, the quotes wait in the hub's outbox
// and conflate, so what the peer reads next is the newest.
//
// A peer that keeps up costs one comparison per batch: the kernel is asked
// (TCP_INFO, see wire.Conn.Unread) only once what was unread at the last
// look plus what was written since could have reached the limit. While it
// holds, each look sends a probe the peer acknowledges without answering
// (an unsolicited pong, an SSE comment line) when nothing else is in
// flight, because a receiver announces a window that grew only in a
// segment it sends; the writer looks again at its next wake or after the
// duration Hold returns, which grows from firstRetry to maxRetry while it
// stays held.
//
// Only the client's writer calls Hold (one at a time), so pace needs no
// lock.
type pace struct {
	limit    int // 0: never hold
	conn     *wire.Conn
	probe    []byte
	progress func() // the client's Progressed: the peer read while held

	unread int       // what the peer had not read at the last look
	at     uint64    // conn.Written() at the last look
	holds  int       // looks in a row that held
	window uint32    // the peer's window at the last look
	same   time.Time // since when a held peer's window has not opened
	probed time.Time // when the last probe went out
}

// newPace returns the pacer of a stream, or nil when limit is 0 (pacing
// off, the default): a connection then carries no pacing state at all.
func newPace(limit int, conn *wire.Conn, probe []byte, progress func()) *pace {
	if limit <= 0 {
		return nil
	}
	return &pace{limit: limit, conn: conn, probe: probe, progress: progress}
}

const (
	probeEvery = 100 * time.Millisecond
	firstRetry = 50 * time.Millisecond
	maxRetry   = 400 * time.Millisecond
	// letGoAfter is how long a held peer with nothing in flight may go
	// without opening its window (the probes' acknowledgements show it)
	// before the writer lets one batch go anyway. A receiver announces an
	// opening only when it is about a segment or more, and may come to
	// offer less than before (it counts memory, not bytes), so a peer
	// that read everything can show a window a little short of the
	// largest seen, which would otherwise hold it until the sweeper closed
	// it; the acknowledgement of a batch carries its window afresh. A peer
	// that reads nothing gets one batch each letGoAfter until its window
	// is full and what was written stays in flight: then it is held for
	// good, and the sweeper closes it.
	letGoAfter = time.Second
)

// Probes: an unsolicited pong needs no answer (RFC 6455, 5.5.3); a line
// starting with a colon is an SSE comment.
var (
	wsProbe  = []byte{0x80 | wire.OpPong, 0}
	sseProbe = []byte(":\n")
)

// Hold implements hub.Pacer.
func (p *pace) Hold() time.Duration {
	if p == nil || p.limit <= 0 {
		return 0
	}
	if p.unread+int(p.conn.Written()-p.at) < p.limit {
		return 0 // what was unread at the last look plus what was written since
	}
	u := p.conn.Unread()
	if !u.Known {
		p.limit = 0 // not a TCP socket: nothing to pace by
		return 0
	}
	before := p.unread + int(u.Written-p.at)
	read := u.Bytes < before
	if read && p.progress != nil {
		p.progress()
	}
	opened := u.Window > p.window // the peer read (the probes alone close it a little)
	p.unread, p.at, p.window = u.Bytes, u.Written, u.Window
	if u.Bytes < p.limit {
		p.holds = 0
		return 0
	}
	now := time.Now()
	switch {
	case p.holds == 0 || opened || u.Socket > 0:
		p.same = now
	case now.Sub(p.same) >= letGoAfter:
		p.same, p.holds = now, 0
		return 0 // one batch: its acknowledgement carries the peer's window afresh
	}
	if u.Socket == 0 && now.Sub(p.probed) >= probeEvery {
		p.probed = now
		_, _ = p.conn.TrySend(p.probe) // a failed probe is a failed connection: its reader or the next write sees it
	}
	p.holds++
	return min(firstRetry<<min(p.holds-1, 8), maxRetry)
}
