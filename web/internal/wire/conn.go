// Package wire is the byte stream of one client connection on a hijacked
// TCP socket: a WebSocket (framed by this package too) or an SSE stream.
// It owns every byte the node writes on the connection, and for a
// WebSocket it reads the client's frames as well.
package wire

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn is one connection's byte stream.
//
// Every byte the node sends on the connection goes through Conn, in whole
// frames (WebSocket frames, or a run of SSE events), each written under
// Conn's lock, so frames never interleave. Three parties write:
//
//   - the connection's hub writer, one write at a time: SendBuf, or
//     TrySendBuf and then Finish when the socket did not take it all;
//   - the reader goroutine, for the replies the protocol makes it send (a
//     pong, a close): Send;
//   - the ping timer: TrySend, which never waits, neither for the peer
//     nor for another write.
//
// Once a close frame went out (Send with closing), nothing more is
// written: later writes fail with net.ErrClosed. Nothing else writes to
// the socket: the WebSocket handshake's library gets a writer that
// refuses (see RefuseWrites), and the handshake's response is held
// (Hold) to go out with the first frame.
type Conn struct {
	net.Conn
	raw      syscall.RawConn // nil when the conn has no file descriptor: writes then block
	progress func()          // called each time a blocking write moves; set before the first write
	written  atomic.Uint64   // bytes the socket took from every write
	maxWnd   uint32          // the largest send window seen by Unread; only Unread's caller touches it

	mu     sync.Mutex
	closed bool    // a close frame went out; nothing may follow it
	head   []byte  // written in front of the next write (a held response head)
	rest   []byte  // what TrySendBuf could not write; goes out before anything else
	restBP *[]byte // rest's pooled buffer
}

// New returns the stream of c. unsent bounds how much of what was written
// the socket may hold that the kernel has not sent yet (TCP_NOTSENT_LOWAT):
// a write that does not fit waits (or, without blocking, is kept), so that
// what a slow client has not taken waits with the node, where a newer
// quote can replace an older one, instead of in the kernel's send buffer.
// 0 leaves the kernel's default.
func New(c net.Conn, unsent int) *Conn {
	w := &Conn{Conn: c}
	if sc, ok := c.(syscall.Conn); ok {
		w.raw, _ = sc.SyscallConn()
	}
	if w.raw != nil && unsent > 0 {
		_ = w.raw.Control(func(fd uintptr) {
			// Best effort: a socket that is not TCP keeps the kernel's default.
			_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, unsent)
		})
	}
	return w
}

// OnProgress sets the function called each time the socket takes part of
// a write that waits for room (the peer is reading). It must be cheap, and
// set before the first write.
func (w *Conn) OnProgress(f func()) { w.progress = f }

// Hold keeps head to be written in front of the next write, in the same
// system call.
func (w *Conn) Hold(head []byte) {
	w.mu.Lock()
	w.head = head
	w.mu.Unlock()
}

// Send writes b whole, waiting for room as long as the peer reads, after
// anything a TrySendBuf kept. closing marks b as ending with a close frame.
func (w *Conn) Send(b []byte, closing bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.finishLocked(); err != nil {
		return err
	}
	if w.closed {
		return net.ErrClosed
	}
	w.closed = closing
	return w.send(w.withHead(b))
}

// SendBuf is Send of the frames in *bp, a buffer from Buf, which it gives
// back.
func (w *Conn) SendBuf(bp *[]byte) error {
	err := w.Send(*bp, false)
	PutBuf(bp)
	return err
}

// TrySendBuf writes the frames in *bp, a buffer from Buf, as far as the
// socket takes them at once, and reports whether that was all. If it was
// not, the Conn keeps the buffer and writes the rest before anything else
// (Finish, or the next write of any party); either way the buffer goes
// back to the pool once written.
func (w *Conn) TrySendBuf(bp *[]byte) (done bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.rest != nil {
		PutBuf(bp)
		return true, errors.New("wire: a kept write is not finished") // the hub never does this
	}
	if w.closed {
		PutBuf(bp)
		return true, net.ErrClosed
	}
	b := w.withHead(*bp)
	n := 0
	if w.raw != nil {
		if n, err = w.write(b, false); err != nil {
			PutBuf(bp)
			return true, err
		}
	}
	if n == len(b) {
		PutBuf(bp)
		return true, nil
	}
	w.rest, w.restBP = b[n:], bp
	return false, nil
}

// Finish writes what TrySendBuf kept, waiting for room as Send does.
func (w *Conn) Finish() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.finishLocked()
}

// TrySend writes a small frame (a ping) if no other write is under way or
// kept and the socket takes it at once; it reports whether it went out.
func (w *Conn) TrySend(f []byte) (bool, error) {
	if !w.mu.TryLock() {
		return false, nil // a write is under way, perhaps waiting for the peer
	}
	defer w.mu.Unlock()
	if w.closed {
		return false, net.ErrClosed
	}
	if w.rest != nil || w.raw == nil {
		return false, nil
	}
	b := w.withHead(f)
	n, err := w.write(b, false)
	if err == nil && n > 0 && n < len(b) {
		err = w.send(b[n:]) // the socket took part of a few bytes: the rest fits at once
	}
	return n > 0, err
}

// State is what the kernel says of a connection's sending side.
type State struct {
	Known       bool   // the kernel answered (a TCP socket on Linux)
	Outstanding bool   // bytes not sent yet, or sent and not acknowledged
	Acked       uint64 // bytes the peer has acknowledged so far
}

// State asks the kernel how far the peer has taken what was written.
func (w *Conn) State() State {
	var st State
	if w.raw == nil {
		return st
	}
	_ = w.raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return
		}
		st = State{Known: true, Outstanding: info.Notsent_bytes > 0 || info.Unacked > 0, Acked: info.Bytes_acked}
	})
	return st
}

// Written is how many bytes the socket has taken so far. It is one atomic
// load, for telling cheaply how much was written since Unread last looked.
func (w *Conn) Written() uint64 { return w.written.Load() }

// Unread is what Conn.Unread found.
type Unread struct {
	Known   bool   // the kernel answered (a TCP socket on Linux)
	Bytes   int    // what the peer's application has not read yet
	Socket  int    // of which still in this socket: not sent, or in flight
	Written uint64 // Written when it looked
	Window  uint32 // the peer's advertised window
}

// Unread asks the kernel how much of what was written the peer's
// application has not read yet: what the socket has not sent, what is in
// flight (sent − retransmitted − acknowledged), and what sits in the
// peer's receive buffer. The last is read off the peer's advertised
// window: it shrinks as data arrives that the application has not read (a
// receiver never moves the window's right edge back), so the largest
// window seen minus the current one is what the peer holds. A peer
// announces a window that grew only when it sends a segment, so a caller
// waiting for that should send something small that the peer
// acknowledges.
//
// It is one system call and no allocation; one goroutine at a time may
// call it (it keeps the largest window seen).
func (w *Conn) Unread() Unread {
	if w.raw == nil {
		return Unread{}
	}
	l := lookPool.Get().(*look)
	defer func() { l.w = nil; lookPool.Put(l) }()
	l.w, l.err = w, syscall.EINVAL
	if err := w.raw.Control(l.fn); err != nil || l.err != nil {
		return Unread{}
	}
	info := &l.info
	w.maxWnd = max(w.maxWnd, info.Snd_wnd)
	flight := max(int64(info.Bytes_sent)-int64(info.Bytes_retrans)-int64(info.Bytes_acked), 0)
	sock := int(info.Notsent_bytes) + int(flight)
	return Unread{Known: true, Bytes: sock + int(w.maxWnd-info.Snd_wnd), Socket: sock, Written: l.written, Window: info.Snd_wnd}
}

// look is one TCP_INFO read: pooled, with its function made once, so that
// a look allocates nothing (a closure passed to RawConn.Control escapes,
// and unix.GetsockoptTCPInfo returns a new TCPInfo).
type look struct {
	w       *Conn
	info    unix.TCPInfo
	written uint64
	err     error
	fn      func(fd uintptr)
}

var lookPool = sync.Pool{New: func() any {
	l := &look{}
	l.fn = func(fd uintptr) {
		l.written = l.w.written.Load()
		n := uint32(unix.SizeofTCPInfo)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_INFO,
			uintptr(unsafe.Pointer(&l.info)), uintptr(unsafe.Pointer(&n)), 0)
		l.err = nil
		if e != 0 {
			l.err = e
		}
	}
	return l
}}

// withHead returns b behind the held head, if it was not sent yet, so
// that both go out in one write; w.mu is held.
func (w *Conn) withHead(b []byte) []byte {
	if w.head == nil {
		return b
	}
	b = append(w.head, b...)
	w.head = nil
	return b
}

// finishLocked writes what TrySendBuf kept, if anything; w.mu is held.
func (w *Conn) finishLocked() error {
	if w.rest == nil {
		return nil
	}
	err := w.send(w.rest)
	PutBuf(w.restBP)
	w.rest, w.restBP = nil, nil
	return err
}

// send writes b whole, waiting for room; w.mu is held.
func (w *Conn) send(b []byte) error {
	if w.raw == nil {
		_, err := w.Conn.Write(b)
		return err
	}
	_, err := w.write(b, true)
	return err
}

// write writes b to the socket's file descriptor: all of it, waiting for
// room when block is set, else what the socket takes at once. It calls
// progress whenever a waiting write moves, and reports how much went out.
// w.raw is not nil and w.mu is held.
func (w *Conn) write(b []byte, block bool) (n int, err error) {
	var werr error
	err = w.raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := syscall.Write(int(fd), b[n:])
			if m > 0 {
				n += m
				w.written.Add(uint64(m))
				if block && w.progress != nil {
					w.progress()
				}
			}
			switch {
			case err == syscall.EINTR:
			case err == syscall.EAGAIN:
				return !block // waiting: the poller calls again when there is room
			case err != nil:
				werr = err
				return true
			case m == 0:
				werr = io.ErrUnexpectedEOF
				return true
			}
		}
		return true
	})
	if err == nil && werr != nil {
		err = &net.OpError{Op: "write", Net: "tcp", Source: w.LocalAddr(), Addr: w.RemoteAddr(), Err: werr}
	}
	return n, err
}

// bufPool holds the buffers frames are built in: a connection holds one
// only while it writes.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooled caps the buffers bufPool keeps, so one burst to a client of
// many symbols does not pin a large buffer.
const maxPooled = 64 << 10

// Buf returns an empty buffer from the pool.
func Buf() *[]byte { return bufPool.Get().(*[]byte) }

// PutBuf gives a buffer back to the pool, unless it grew too big.
func PutBuf(bp *[]byte) {
	if cap(*bp) <= maxPooled {
		*bp = (*bp)[:0]
		bufPool.Put(bp)
	}
}

// RefuseWrites is the writer to give a library that must never write on
// the connection (the WebSocket handshake's, once the handshake is done):
// every frame is Conn's.
type RefuseWrites struct{}

// ErrNotTheWire is what RefuseWrites answers.
var ErrNotTheWire = errors.New("wire: every write on this connection goes through wire.Conn")

func (RefuseWrites) Write([]byte) (int, error) { return 0, ErrNotTheWire }
