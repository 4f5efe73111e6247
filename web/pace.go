package web

import (
	"time"

	"quotehub/web/internal/wire"
)

// pace implements hub.Pacer for an SSE stream by time (a WebSocket is
// paced by what its peer confirms, see wsPace): it holds the writer
// while what the peer has not read yet — in flight, or in its own receive
// buffer, where a newer quote cannot replace an older one — would take it
// longer than age to read at the pace it reads. Held, the quotes wait in
// the hub's outbox and conflate, so what the peer reads next is the
// newest. A client that reads 47 KB/s and lags 8 KB behind (0.17 s) is not
// held; one that reads 4.7 KB/s is held once about age × 4.7 KB waits for
// it, instead of filling a 128 KiB receive buffer with 28 s of quotes.
//
// What the peer has read is what was written minus what it has not read
// (wire.Conn.Unread: TCP_INFO, with the receive buffer read off the
// peer's window). The pace is a moving average of samples of half a second
// or more (bytes seen read over the time, when the peer had a backlog at
// the sample's start), which falls to a lower sample at once and rises
// slowly. The limit is pace × age, at least minUnread.
//
// A hold lasts the time the backlog is predicted to take to come down to
// the limit at that pace, at most gap; when it ends one batch goes even if
// the window shows no read, because the window shows reads late and
// coarsely: a receiver counts memory, not bytes, and with small segments
// often keeps announcing the right edge it announced before, so 15–30 KB
// read can stay invisible for seconds until a segment's acknowledgement
// shows them at once. The window corrects the pace of those batches: when
// it opens and shows more than half the limit still unread, the peer was
// fed faster than it reads and gap grows; when it shows less than a
// quarter, gap shrinks (between age/2 and age). A peer whose window shows
// more than the limit plus hidden unread gets no batch until it shows a
// read, or for letGoAfter.
//
// A peer that keeps up costs one comparison per batch: the kernel is
// asked only once what was unread at the last look plus what was written
// since could have reached the limit. While held, Hold answers from the
// hold's end without asking. While held with nothing in flight, a look
// sends a probe the peer acknowledges without answering (an SSE comment
// line), at most every probeEvery, because a
// receiver announces its window only in a segment it sends.
//
// Only the client's writer calls Hold (one at a time), so pace needs no
// lock.
type pace struct {
	age      time.Duration // 0: never hold
	conn     *wire.Conn
	progress func() // the client's Progressed: the peer read while held

	limit  int     // bytes the peer may have unread before Hold looks
	unread int     // what the peer had not read at the last look
	at     uint64  // conn.Written() at the last look
	read   uint64  // the most the peer was seen to have read
	rate   float64 // bytes per second the peer reads, once rated
	rated  bool
	sAt    int64         // Unix ns the current sample of the rate began; 0: none
	sRead  uint64        // what the peer had read then
	sBusy  bool          // and whether it had a backlog then
	until  int64         // Unix ns the current hold ends; 0: not held
	window uint32        // the peer's window at the last look
	gap    time.Duration // how long a peer whose reads the window hides is held between batches
	quiet  int64         // since when a held peer has shown no read (Unix ns; 0: not held)
	probed int64         // Unix ns of the last probe
}

// newPace returns the pacer of a stream, or nil when age is 0 (pacing
// off): a connection then carries no pacing state at all.
func newPace(age time.Duration, conn *wire.Conn, progress func()) *pace {
	if age <= 0 {
		return nil
	}
	return &pace{age: age, conn: conn, progress: progress, limit: firstLimit, gap: age * 3 / 4}
}

const (
	// minUnread is the least the limit gets: below it a peer is never
	// held (a batch of 10 quotes is about 2.3 KB).
	minUnread = 2 << 10
	// firstLimit is the limit before the peer's pace is known.
	firstLimit = minUnread
	// hidden is how much of what a peer read its window may hide: a
	// peer whose window shows more than its limit plus this unread gets
	// no batch at the end of a hold.
	hidden     = 32 << 10
	probeEvery = 100 * time.Millisecond
	// minHold is the shortest hold.
	minHold = 10 * time.Millisecond
	// A sample of the pace spans minSample to maxSample; rateTau is the
	// time constant of the average.
	minSample = 500 * time.Millisecond
	maxSample = 5 * time.Second
	rateTau   = 2 * time.Second
	// maxRise bounds how much the pace may rise at one sample (times the
	// pace, plus minUnread bytes per second).
	maxRise = 1.25
	// moveBytes is the least read that counts as progress.
	moveBytes = 512
	// letGoAfter is how long a held peer over its limit plus hidden, with
	// nothing in flight, may go without showing a read before the writer
	// lets one batch go anyway, whose acknowledgement carries the peer's
	// window afresh (a window shows reads only when a segment arrives).
	// A peer that reads nothing gets one batch each letGoAfter until its
	// window is full and what was written stays in flight: then it is
	// held for good, and the sweeper closes it.
	letGoAfter = time.Second
)

// sseProbe is the probe of an SSE stream: a line starting with a colon is
// a comment.
var sseProbe = []byte(":\n")

// Hold implements hub.Pacer.
func (p *pace) Hold() time.Duration {
	if p == nil || p.age <= 0 {
		return 0
	}
	if p.until == 0 && p.unread+int(p.conn.Written()-p.at) < p.limit {
		return 0 // what was unread at the last look plus what was written since
	}
	now := time.Now().UnixNano()
	if p.until > now {
		return time.Duration(p.until - now) // woken early (a control frame): the hold stands
	}
	return p.look(now)
}

// look asks the kernel how far the peer is, updates its pace and decides.
func (p *pace) look(now int64) time.Duration {
	u := p.conn.Unread()
	if !u.Known {
		p.age = 0 // not a TCP socket: nothing to pace by
		return 0
	}
	read := u.Written - uint64(u.Bytes)
	moved := read >= p.read+moveBytes
	if moved {
		p.read = read
		if p.progress != nil {
			p.progress()
		}
	}
	// A sample of the pace, if the peer had a backlog when it began. The
	// pace falls to a lower sample at once and rises slowly: a window
	// that hid reads and then shows them at once makes one sample far too
	// high, and a peer paced too fast is stale.
	if ds := time.Duration(now - p.sAt); p.sAt == 0 || ds >= minSample {
		if p.sAt != 0 && ds <= maxSample && p.sBusy {
			s := float64(p.read-p.sRead) / ds.Seconds()
			switch {
			case !p.rated || s < p.rate:
				p.rate, p.rated = s, true
			default:
				p.rate = min(p.rate+float64(ds)/float64(ds+rateTau)*(s-p.rate), p.rate*maxRise+minUnread)
			}
		}
		p.sAt, p.sRead, p.sBusy = now, p.read, u.Bytes >= minUnread/2
	}
	held := p.until != 0
	if p.rated {
		p.limit = max(minUnread, int(p.rate*p.age.Seconds()))
	}
	// A window that opens shows what the peer has not read as it is: the
	// gap between batches for a peer whose reads it hid grows when that
	// is more than the limit (it was fed faster than it reads) and
	// shrinks when it is less than half.
	if u.Window >= p.window+moveBytes {
		switch {
		case u.Bytes > p.limit/2:
			p.gap = min(p.gap*5/4, p.age)
		case u.Bytes < p.limit/4:
			p.gap = max(p.gap*9/10, p.age/2)
		}
	}
	p.unread, p.at, p.until, p.window = u.Bytes, u.Written, 0, u.Window
	if !held || moved {
		p.quiet = now
	}
	switch {
	case u.Bytes < p.limit:
		return 0
	case u.Socket > 0:
		p.quiet = now // the window is full, or a batch is on its way
	case held && u.Bytes < p.limit+hidden:
		// The hold ran its predicted time and the window does not show
		// a backlog beyond what it can hide: one batch. Its
		// acknowledgement carries the peer's window afresh.
		return 0
	case time.Duration(now-p.quiet) >= letGoAfter:
		// A window can hide more than that, and shows reads only when a
		// segment arrives.
		p.quiet = now
		return 0
	}
	if u.Socket == 0 && time.Duration(now-p.probed) >= probeEvery {
		p.probed = now
		_, _ = p.conn.TrySend(sseProbe) // a failed probe is a failed connection: its reader or the next write sees it
	}
	d := p.gap // a peer whose reads the window hides gets one batch each
	switch {
	case !p.rated:
		d = minSample // held until its pace is known
	case p.rate >= 1:
		d = min(max(time.Duration(float64(u.Bytes-p.limit)/p.rate*float64(time.Second)), minHold), d)
	}
	p.until = now + int64(d)
	return d
}
