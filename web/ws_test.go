package web

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"quotehub/hub"
	"quotehub/internal/poll"
	"quotehub/web/internal/wire"
)

// wsPair is one WebSocket over loopback: the server's transport, read by
// its own read loop, and a coder/websocket client.
type wsPair struct {
	t      *wsTransport
	client *websocket.Conn
	got    chan string // messages the server read
}

// newWSPair serves one WebSocket with acceptWS and wsTransport.read,
// dials it and reads the first frame (a welcome).
func newWSPair(t *testing.T) *wsPair {
	t.Helper()
	p := &wsPair{got: make(chan string, 16)}
	accepted := make(chan *wsTransport, 1)
	e := echo.New()
	e.GET("/ws", func(c echo.Context) error {
		tr, err := acceptWS(c.Response(), c.Request(), 0, 1<<20)
		if err != nil {
			return nil
		}
		// The 101 response is held until the first frame, which carries it,
		// as serveWS's welcome does.
		if err := tr.Write([][]byte{[]byte(`{"type":"welcome"}`)}, nil); err != nil {
			t.Error(err)
		}
		accepted <- tr
		go tr.read(func(_ bool, b []byte) { p.got <- string(b) })
		return nil
	})
	srv := httptest.NewServer(e)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	client.SetReadLimit(1 << 20)
	p.client = client
	p.t = <-accepted
	if got, err := p.read(t); err != nil || got != `{"type":"welcome"}` {
		t.Fatalf("first message %q, %v; want the welcome", got, err)
	}
	t.Cleanup(func() {
		client.CloseNow()
		p.t.conn.CloseNow()
		<-p.t.readDone
		p.t.wait()
		srv.Close()
	})
	return p
}

func (p *wsPair) read(t *testing.T) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, b, err := p.client.Read(ctx)
	if err == nil && typ != websocket.MessageText {
		t.Errorf("message type %v, want text", typ)
	}
	return string(b), err
}

// TestWSFramesEverySize: the transport's own framing, at every boundary of
// the length encoding, reads back whole and in order with a real client.
func TestWSFramesEverySize(t *testing.T) {
	p := newWSPair(t)
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000, 64<<10 + 1} { // the last is over what the buffer pool keeps
		control := bytes.Repeat([]byte{'c'}, n)
		if err := p.t.Write([][]byte{control, []byte("second")}, nil); err != nil {
			t.Fatalf("write of %d bytes: %v", n, err)
		}
		for _, want := range []string{string(control), "second"} {
			got, err := p.read(t)
			if err != nil {
				t.Fatalf("read after a %d-byte frame: %v", n, err)
			}
			if got != want {
				t.Fatalf("got %d bytes, want %d", len(got), len(want))
			}
		}
	}
	quotes := []*hub.Update{{JSON: []byte(`{"symbol":"A"}`)}, {JSON: []byte(`{"symbol":"B"}`)}}
	if err := p.t.Write([][]byte{[]byte(`{"type":"welcome"}`)}, quotes); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`{"type":"welcome"}`, `{"type":"quotes","quotes":[{"symbol":"A"},{"symbol":"B"}]}`} {
		if got, err := p.read(t); err != nil || got != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	}
}

// TestWSReaderAnswersPingsAndPassesMessages: between messages the reader
// answers the peer's pings itself (with the ping's payload, which the
// client checks) and hands messages on.
func TestWSReaderAnswersPingsAndPassesMessages(t *testing.T) {
	p := newWSPair(t)
	p.client.CloseRead(context.Background()) // the client reads, for its pongs
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := p.client.Ping(ctx)
		cancel()
		if err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.client.Write(ctx, websocket.MessageText, []byte(`{"op":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-p.got:
		if got != `{"op":"ping"}` {
			t.Fatalf("server read %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not read the message")
	}
}

// TestWSServerPings: a client that reads answers the server's pings and
// stays; one that does not is closed after the pong timeout.
func TestWSServerPings(t *testing.T) {
	answering := newWSPair(t)
	silent := newWSPair(t)
	closed := answering.client.CloseRead(context.Background())
	answering.t.startPings(20*time.Millisecond, 60*time.Millisecond, time.Minute, func() {})
	silent.t.startPings(20*time.Millisecond, 60*time.Millisecond, time.Minute, func() {})
	select {
	case <-silent.t.readDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the silent client was not closed")
	}
	select {
	case <-answering.t.readDone:
		t.Fatal("the answering client was closed")
	case <-closed.Done():
		t.Fatal("the answering client's connection ended")
	case <-time.After(300 * time.Millisecond): // 15 ping intervals, each of which closes without a pong
	}
}

// TestWSCloseHandshake: the transport's close reaches the client with its
// code and (truncated) reason, ends the server's reader as soon as the
// client replies, and nothing is written after it.
func TestWSCloseHandshake(t *testing.T) {
	p := newWSPair(t)
	long := strings.Repeat("r", 200)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		p.t.close(hub.CloseSlowConsumer, long)
	}()
	_, err := p.read(t) // the client answers the close frame and reports it
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("client read: %v, want a close", err)
	}
	if int(ce.Code) != hub.CloseSlowConsumer || ce.Reason != long[:wire.MaxControl-2] {
		t.Errorf("close %d %q (%d bytes), want %d and the first %d bytes", ce.Code, ce.Reason, len(ce.Reason), hub.CloseSlowConsumer, wire.MaxControl-2)
	}
	select {
	case <-done:
	case <-time.After(closeTimeout):
		t.Fatal("close did not return")
	}
	if d := time.Since(start); d > closeTimeout/2 {
		t.Errorf("close took %v: it waited out its timeout instead of the reply", d)
	}
	if err := p.t.Write(nil, []*hub.Update{{JSON: []byte(`{}`)}}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after close: %v, want net.ErrClosed", err)
	}
}

// TestWSCloseToSilentPeer: a peer that never answers (nor reads) is cut
// off after closeTimeout, a write stuck on it included.
func TestWSCloseToSilentPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the close timeout")
	}
	p := newWSPair(t)
	big := []*hub.Update{{JSON: bytes.Repeat([]byte{'x'}, 1<<20)}}
	writeErr := make(chan error, 1)
	go func() { // fills the socket buffers: the client never reads
		for {
			if err := p.t.Write(nil, big); err != nil {
				writeErr <- err
				return
			}
		}
	}()
	// Stuck: the writer waits in the kernel for room the client never makes.
	poll.Until(t, 10*time.Second, "a write to wait for room", func() bool {
		return inGoroutine("IO wait", "web.(*wsTransport).Write(")
	})
	start := time.Now()
	p.t.close(hub.CloseSlowConsumer, "slow")
	if d := time.Since(start); d < closeTimeout-time.Second || d > closeTimeout+2*time.Second {
		t.Errorf("close took %v, want about %v", d, closeTimeout)
	}
	select {
	case err := <-writeErr:
		if err == nil {
			t.Error("stuck write returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck write did not end")
	}
}

// TestWSTryWriteFillsThenFinishes: non-blocking writes to a peer that does
// not read fill the socket and keep the rest; a ping written meanwhile
// waits for that rest, and the peer reads every message whole and in order.
func TestWSTryWriteFillsThenFinishes(t *testing.T) {
	p := newWSPair(t)
	pad := strings.Repeat("x", 64<<10)
	msg := func(i int) []byte { return []byte(fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, pad)) }
	sent := 0
	fill := func() { // writes until the socket keeps a rest
		for kept := false; !kept; sent++ {
			if sent == 2000 { // 128 MiB: far beyond any loopback socket buffer
				t.Fatal("the socket never filled")
			}
			done, err := p.t.TryWrite([][]byte{msg(sent)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			kept = !done
		}
	}
	// A full socket can still make room: segments the kernel had not yet
	// delivered to the peer (deferred on a busy machine) are acknowledged
	// and free the send buffer, and the ping then writes the rest without
	// waiting. Once the peer advertises a zero window nothing more frees
	// up, so fill, wait for that, and fill again until the ping is stuck.
	var pinged chan error
	for try := 0; ; try++ {
		if try == 20 {
			t.Fatal("the ping never had to wait for the rest")
		}
		fill()
		if u := p.t.wire.Unread(); u.Known {
			poll.Until(t, 5*time.Second, "the peer to close its window", func() bool {
				return p.t.wire.Unread().Window == 0
			})
		}
		pinged = make(chan error, 1)
		go func() { pinged <- p.t.wire.Send(pingFrame, false) }() // must write the rest first
		// The ping holds the wire and writes the rest (only Send calls
		// finishLocked so far) before FinishWrite starts.
		poll.Until(t, 5*time.Second, "the ping to write the rest or wait", func() bool {
			return len(pinged) > 0 || inGoroutine("IO wait", "wire.(*Conn).finishLocked(")
		})
		if len(pinged) == 0 {
			break
		}
		if err := <-pinged; err != nil {
			t.Fatal(err)
		}
	}
	finished := make(chan error, 1)
	go func() { finished <- p.t.FinishWrite() }()
	poll.Until(t, 5*time.Second, "FinishWrite to wait for the ping", func() bool {
		return len(finished) > 0 || inGoroutine("", "web.(*wsTransport).FinishWrite(")
	})
	select {
	case err := <-finished:
		t.Fatalf("FinishWrite returned (%v) before the peer read anything", err)
	default:
	}
	for i := range sent {
		got, err := p.read(t)
		if err != nil {
			t.Fatalf("message %d of %d: %v", i, sent, err)
		}
		if want := string(msg(i)); got != want {
			t.Fatalf("message %d is %.40q…, want %.40q…", i, got, want)
		}
	}
	for _, ch := range []chan error{finished, pinged} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	// Drained: the next write goes out whole at once, after the pong the
	// client's read loop sent back for the ping.
	if done, err := p.t.TryWrite([][]byte{[]byte(`{"n":"last"}`)}, nil); !done || err != nil {
		t.Fatalf("TryWrite after the rest went out = %v, %v", done, err)
	}
	if got, err := p.read(t); err != nil || got != `{"n":"last"}` {
		t.Fatalf("last message %q, %v", got, err)
	}
}

// Without a file descriptor (net.Pipe) nothing is written without
// blocking: TryWrite keeps everything and FinishWrite writes it.
func TestWSTryWriteWithoutFD(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	tr := &wsTransport{wire: wire.New(server, 0)}
	done, err := tr.TryWrite([][]byte{[]byte("hello")}, nil)
	if done || err != nil {
		t.Fatalf("TryWrite on a pipe = %v, %v; want the whole frame kept", done, err)
	}
	if _, err := tr.TryWrite([][]byte{[]byte("again")}, nil); err == nil {
		t.Fatal("a second TryWrite before FinishWrite must fail")
	}
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, 7)
		_, _ = io.ReadFull(client, b)
		got <- b
	}()
	if err := tr.FinishWrite(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, append([]byte{0x81, 5}, "hello"...)) {
		t.Fatalf("wire got %q", b)
	}
	if err := tr.FinishWrite(); err != nil {
		t.Fatalf("FinishWrite with nothing kept = %v", err)
	}
}

// A write to a closed connection fails at once, without keeping anything.
func TestWSTryWriteClosed(t *testing.T) {
	p := newWSPair(t)
	_ = p.t.conn.CloseNow()
	done, err := p.t.TryWrite([][]byte{[]byte("x")}, nil)
	if !done || err == nil {
		t.Fatalf("TryWrite on a closed connection = %v, %v; want done with an error", done, err)
	}
	if err := p.t.FinishWrite(); err != nil {
		t.Errorf("a failed write kept a rest: FinishWrite = %v", err)
	}
}

// TestWSHandshakeRidesWithFirstFrame: the 101 response is not written on
// its own but with the first frame, in one write (a client's first read
// gets both), and it carries the handshake's headers.
func TestWSHandshakeRidesWithFirstFrame(t *testing.T) {
	e := echo.New()
	done := make(chan struct{})
	e.GET("/ws", func(c echo.Context) error {
		tr, err := acceptWS(c.Response(), c.Request(), 0, 1<<20)
		if err != nil {
			t.Error(err)
			return nil
		}
		// Nothing may have been written before the first frame: the kernel
		// has no byte of ours, sent or acknowledged.
		if st := tr.wire.State(); !st.Known || st.Outstanding || st.Acked > 0 {
			t.Errorf("socket state after the handshake %+v: something was written before the first frame", st)
		}
		if err := tr.Write([][]byte{[]byte(`{"type":"welcome"}`)}, nil); err != nil {
			t.Error(err)
		}
		<-done
		_ = tr.conn.CloseNow()
		return nil
	})
	srv := httptest.NewServer(e)
	defer srv.Close()
	defer close(done)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const key = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455's example: accept key s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := string(buf[:n])
	head, frame, ok := strings.Cut(got, "\r\n\r\n")
	if !ok || !strings.HasPrefix(head, "HTTP/1.1 101 Switching Protocols\r\n") {
		t.Fatalf("first read %q: want the 101 response", got)
	}
	for _, h := range []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-Websocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="} {
		if !strings.Contains(head, "\r\n"+h) {
			t.Errorf("101 response lacks %q:\n%s", h, head)
		}
	}
	if want := "\x81\x12" + `{"type":"welcome"}`; frame != want {
		t.Errorf("the same read carried %q after the 101, want the welcome frame %q", frame, want)
	}
}

// rawWS serves one WebSocket with acceptWS and wsTransport.read (whose end
// it reports on readEnded) and dials it with a raw TCP client, returned
// after the 101 response and the welcome frame.
func rawWS(t *testing.T) (conn net.Conn, br *bufio.Reader, readEnded <-chan struct{}) {
	t.Helper()
	ended := make(chan struct{})
	e := echo.New()
	e.GET("/ws", func(c echo.Context) error {
		tr, err := acceptWS(c.Response(), c.Request(), 0, 1<<20)
		if err != nil {
			t.Error(err)
			return nil
		}
		if err := tr.Write([][]byte{[]byte(`{"type":"welcome"}`)}, nil); err != nil {
			t.Error(err)
		}
		go func() {
			tr.read(func(bool, []byte) {})
			close(ended)
			_ = tr.conn.CloseNow()
			tr.wait()
		}()
		return nil
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	br = bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	welcome := make([]byte, 2+len(`{"type":"welcome"}`))
	if _, err := io.ReadFull(br, welcome); err != nil {
		t.Fatal(err)
	}
	return conn, br, ended
}

// maskedFrame is a client frame: FIN, opcode op, masked payload.
func maskedFrame(op byte, payload []byte) []byte {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	f := append([]byte{0x80 | op, 0x80 | byte(len(payload))}, key[:]...)
	for i, c := range payload {
		f = append(f, c^key[i&3])
	}
	return f
}

// TestWSPeerClose: a close frame from the client is answered by the
// reader itself — echoed when valid, 1002 when not — and ends the read
// loop; nothing else is written after it.
func TestWSPeerClose(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		reply   []byte
	}{
		{"normal with reason", append([]byte{0x03, 0xe8}, "bye"...), append([]byte{0x88, 5, 0x03, 0xe8}, "bye"...)},
		{"no status", nil, []byte{0x88, 0}},
		{"application code", []byte{0x0f, 0xa0}, []byte{0x88, 2, 0x0f, 0xa0}},             // 4000
		{"one byte", []byte{0x03}, []byte{0x88, 2, 0x03, 0xea}},                           // 1002
		{"code not allowed on the wire", []byte{0x03, 0xed}, []byte{0x88, 2, 0x03, 0xea}}, // 1005 → 1002
		{"code out of range", []byte{0x03, 0xe7}, []byte{0x88, 2, 0x03, 0xea}},            // 999 → 1002
		{"reason not UTF-8", []byte{0x03, 0xe8, 0xff, 0xfe}, []byte{0x88, 2, 0x03, 0xea}}, // → 1002
		{"unassigned 2000", []byte{0x07, 0xd0}, []byte{0x88, 2, 0x03, 0xea}},              // → 1002
		{"1014", []byte{0x03, 0xf6}, []byte{0x88, 2, 0x03, 0xf6}},                         // bad gateway, valid
		{"reason at the limit", append([]byte{0x03, 0xe8}, strings.Repeat("z", wire.MaxControl-2)...), append([]byte{0x88, wire.MaxControl, 0x03, 0xe8}, strings.Repeat("z", wire.MaxControl-2)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, br, ended := rawWS(t)
			if _, err := conn.Write(maskedFrame(0x8, tc.payload)); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(br) // the reply, then EOF: the server closed the socket
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.reply) {
				t.Fatalf("server wrote % x, want % x", got, tc.reply)
			}
			select {
			case <-ended:
			case <-time.After(5 * time.Second):
				t.Fatal("the read loop did not end")
			}
		})
	}
}

// inGoroutine reports whether some goroutine whose status contains state
// ("IO wait": waiting for the socket; "" for any) is inside fn, as stack
// traces name it ("web.(*wsTransport).Write(").
func inGoroutine(state, fn string) bool {
	return slices.ContainsFunc(poll.Goroutines(state), func(g string) bool { return strings.Contains(g, fn) })
}
