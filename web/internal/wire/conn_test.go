package wire

import (
	"bytes"
	"io"
	"net"
	"quotehub/internal/sockopt"
	"strings"
	"testing"
)

// tcpPair connects a client socket with the given receive buffer to a
// server socket over loopback and returns both.
func tcpPair(t *testing.T, rcvbuf int) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Control: sockopt.RcvBuf(rcvbuf)}
	client, err = d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return server, client
}

// fill writes 4 KiB chunks without blocking until the socket refuses more
// and returns how much it took.
func fill(t *testing.T, w *Conn) int {
	t.Helper()
	chunk := []byte(strings.Repeat("q", 4<<10))
	total := 0
	w.mu.Lock()
	defer w.mu.Unlock()
	for range 4096 { // 16 MiB at most: beyond any send buffer here
		n, err := w.write(chunk, false)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if n < len(chunk) {
			return total
		}
	}
	t.Fatal("the socket never filled")
	return 0
}

// TestUnsentLimitBoundsTheSocket: with the limit, a socket whose peer does
// not read takes far less before it refuses more than with the kernel's
// default, so what a slow client has not taken waits with the node (where
// it conflates) rather than in the kernel.
func TestUnsentLimitBoundsTheSocket(t *testing.T) {
	limitedConn, _ := tcpPair(t, 16<<10)
	unlimitedConn, _ := tcpPair(t, 16<<10)
	limited, unlimited := fill(t, New(limitedConn, 16<<10)), fill(t, New(unlimitedConn, 0))
	t.Logf("a socket whose peer does not read took %d bytes with a 16 KiB unsent limit, %d without", limited, unlimited)
	if limited*2 > unlimited {
		t.Errorf("the limit did not bound the socket: %d bytes taken with it, %d without", limited, unlimited)
	}
	st := New(limitedConn, 0).State()
	if !st.Known || !st.Outstanding {
		t.Errorf("State of a full socket = %+v, want known and outstanding", st)
	}
}

// TestTrySendKeepsTheRestAndFinishWritesIt: a non-blocking write to a full
// socket keeps its rest, which goes out (with progress reported) before
// anything written after it, whoever writes; TrySend does not wait for it.
func TestTrySendKeepsTheRestAndFinishWritesIt(t *testing.T) {
	server, client := tcpPair(t, 16<<10)
	w := New(server, 16<<10)
	progressed := 0
	w.OnProgress(func() { progressed++ })
	w.Hold([]byte("HEAD|"))
	var want bytes.Buffer
	for i := 0; ; i++ {
		if i == 4096 {
			t.Fatal("the socket never filled")
		}
		bp := Buf()
		*bp = append(*bp, strings.Repeat(string(rune('a'+i%26)), 8<<10)...)
		if i == 0 {
			want.WriteString("HEAD|")
		}
		want.Write(*bp)
		done, err := w.TrySendBuf(bp)
		if err != nil {
			t.Fatal(err)
		}
		if !done {
			break
		}
	}
	if sent, err := w.TrySend([]byte("PING")); sent || err != nil {
		t.Fatalf("TrySend with a rest kept = %v, %v; want not sent", sent, err)
	}
	if done, err := w.TrySendBuf(Buf()); !done || err == nil {
		t.Fatalf("a second TrySendBuf before Finish = %v, %v; want an error", done, err)
	}
	want.WriteString("LAST")
	got := make(chan []byte, 1)
	go func(n int) {
		b := make([]byte, n)
		_, _ = io.ReadFull(client, b)
		got <- b
	}(want.Len())
	if err := w.Send([]byte("LAST"), false); err != nil { // finishes the rest first
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("the peer read %d bytes that differ from the %d written, in order", len(b), want.Len())
	}
	if progressed == 0 {
		t.Error("a write that waited for the peer reported no progress")
	}
	if err := w.Finish(); err != nil {
		t.Fatalf("Finish with nothing kept = %v", err)
	}
}

// TestCloseEndsTheStream: after a close frame, nothing more goes out.
func TestCloseEndsTheStream(t *testing.T) {
	server, client := tcpPair(t, 64<<10)
	w := New(server, 0)
	if err := w.Send([]byte("bye"), true); err != nil {
		t.Fatal(err)
	}
	if err := w.Send([]byte("more"), false); err != net.ErrClosed {
		t.Errorf("Send after a close = %v, want net.ErrClosed", err)
	}
	if done, err := w.TrySendBuf(Buf()); !done || err != net.ErrClosed {
		t.Errorf("TrySendBuf after a close = %v, %v", done, err)
	}
	if sent, err := w.TrySend([]byte("ping")); sent || err != net.ErrClosed {
		t.Errorf("TrySend after a close = %v, %v", sent, err)
	}
	server.Close()
	if b, _ := io.ReadAll(client); string(b) != "bye" {
		t.Errorf("the peer read %q, want only the close", b)
	}
}

// Without a file descriptor (net.Pipe) nothing is written without
// blocking: TrySendBuf keeps everything and Finish writes it.
func TestNoFileDescriptor(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	w := New(server, 16<<10)
	bp := Buf()
	*bp = append(*bp, "hello"...)
	if done, err := w.TrySendBuf(bp); done || err != nil {
		t.Fatalf("TrySendBuf on a pipe = %v, %v; want it kept", done, err)
	}
	if st := w.State(); st.Known {
		t.Errorf("State of a pipe = %+v, want unknown", st)
	}
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, 5)
		_, _ = io.ReadFull(client, b)
		got <- b
	}()
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != "hello" {
		t.Fatalf("peer got %q", b)
	}
}

// TestRefuseWrites: a library handed the refusing writer cannot write.
func TestRefuseWrites(t *testing.T) {
	if n, err := (RefuseWrites{}).Write([]byte("x")); n != 0 || err != ErrNotTheWire {
		t.Errorf("Write = %d, %v", n, err)
	}
}
