package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"quotehub/internal/poll"
)

// frameOf is a client frame: first byte b0 (FIN, RSV, opcode), masked
// payload.
func frameOf(b0 byte, payload []byte) []byte {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	f := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	f = append(f, key[:]...)
	for i, c := range payload {
		f = append(f, c^key[i&3])
	}
	return f
}

// recorder is a net.Conn that records what is written to it.
type recorder struct {
	net.Conn // nil: only Write is used
	mu       sync.Mutex
	buf      bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(b)
}

func (r *recorder) written() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

type result struct {
	op  byte
	msg string
}

// readAll runs a Reader over in until it ends and returns the messages,
// the error it ended with, and what it wrote back.
func readAll(in []byte, limit int) ([]result, error, []byte) {
	rec := &recorder{}
	r := NewReader(bufio.NewReaderSize(bytes.NewReader(in), 256), New(rec, 0), limit, nil)
	var out []result
	for {
		op, msg, err := r.Next()
		if err != nil {
			return out, err, rec.written()
		}
		out = append(out, result{op, string(msg)})
	}
}

func closeFrame(code int) []byte { return AppendClose(nil, code, "")[:4] }

// TestReader: every kind of client frame, well formed or not, and what the
// reader makes of it.
func TestReader(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		name  string
		in    []byte
		limit int
		msgs  []result
		code  int    // the close code the reader sent and ended with; 0: none
		reply []byte // what it wrote back, when code is 0
		err   error
	}{
		{name: "text", in: frameOf(0x81, []byte(`{"op":"ping"}`)), msgs: []result{{OpText, `{"op":"ping"}`}}, err: io.EOF},
		{name: "binary", in: frameOf(0x82, []byte{0, 1}), msgs: []result{{OpBinary, "\x00\x01"}}, err: io.EOF},
		{name: "empty", in: frameOf(0x81, nil), msgs: []result{{OpText, ""}}, err: io.EOF},
		{name: "16-bit length", in: frameOf(0x81, []byte(long)), msgs: []result{{OpText, long}}, err: io.EOF},
		{name: "fragmented with a ping inside",
			in:    bytes.Join([][]byte{frameOf(0x01, []byte("ab")), frameOf(0x89, []byte("p")), frameOf(0x00, []byte("cd")), frameOf(0x80, []byte("e"))}, nil),
			msgs:  []result{{OpText, "abcde"}},
			reply: []byte{0x8a, 1, 'p'}, err: io.EOF},
		{name: "ping answered with its payload", in: frameOf(0x89, []byte("hi")), reply: []byte{0x8a, 2, 'h', 'i'}, err: io.EOF},
		{name: "pong taken", in: frameOf(0x8a, []byte("x")), err: io.EOF},
		{name: "close echoed", in: frameOf(0x88, []byte{0x03, 0xe8, 'o', 'k'}), reply: []byte{0x88, 4, 0x03, 0xe8, 'o', 'k'}, err: ErrPeerClosed},
		{name: "close without status", in: frameOf(0x88, nil), reply: []byte{0x88, 0}, err: ErrPeerClosed},
		{name: "close with 1005", in: frameOf(0x88, []byte{0x03, 0xed}), reply: closeFrame(1002), err: ErrPeerClosed},
		{name: "close of one byte", in: frameOf(0x88, []byte{0x03}), reply: closeFrame(1002), err: ErrPeerClosed},
		{name: "close reason not UTF-8", in: frameOf(0x88, []byte{0x03, 0xe8, 0xff}), reply: closeFrame(1002), err: ErrPeerClosed},
		{name: "unmasked", in: []byte{0x81, 0x01, 'a'}, code: 1002},
		{name: "reserved bit", in: frameOf(0xc1, []byte("a")), code: 1002},
		{name: "unknown data opcode", in: frameOf(0x83, []byte("a")), code: 1002},
		{name: "unknown control opcode", in: frameOf(0x8b, nil), code: 1002},
		{name: "fragmented control", in: frameOf(0x09, nil), code: 1002},
		{name: "control over 125 bytes", in: frameOf(0x89, []byte(long)), code: 1002},
		{name: "continuation first", in: frameOf(0x80, []byte("a")), code: 1002},
		{name: "message inside a message", in: append(frameOf(0x01, []byte("a")), frameOf(0x81, []byte("b"))...), code: 1002},
		{name: "too big", in: frameOf(0x81, []byte(long)), limit: 256, code: 1009},
		{name: "too big once continued", in: append(frameOf(0x01, []byte(long[:200])), frameOf(0x80, []byte(long[:100]))...), limit: 256, code: 1009},
		{name: "64-bit length with the top bit", in: []byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, limit: 256, code: 1009},
		{name: "cut short", in: frameOf(0x81, []byte("abcdef"))[:8], err: io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit := tc.limit
			if limit == 0 {
				limit = 4096
			}
			msgs, err, wrote := readAll(tc.in, limit)
			if len(msgs) != len(tc.msgs) || (len(msgs) > 0 && msgs[0] != tc.msgs[0]) {
				t.Errorf("messages %q, want %q", msgs, tc.msgs)
			}
			if tc.code != 0 {
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Code != tc.code {
					t.Fatalf("ended with %v, want a protocol error %d", err, tc.code)
				}
				if len(wrote) < 4 || wrote[0] != 0x88 || int(wrote[2])<<8|int(wrote[3]) != tc.code {
					t.Fatalf("wrote % x, want a close frame %d", wrote, tc.code)
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("ended with %v, want %v", err, tc.err)
			}
			if !bytes.Equal(wrote, tc.reply) {
				t.Errorf("wrote % x, want % x", wrote, tc.reply)
			}
		})
	}
}

// TestReaderPong: each pong is reported with its unmasked payload, and
// nothing is written back.
func TestReaderPong(t *testing.T) {
	rec := &recorder{}
	var pongs []string
	in := append(frameOf(0x8a, nil), frameOf(0x8a, []byte("\x00\x00\x00\x00\x00\x00\x01\x2a"))...)
	r := NewReader(bufio.NewReaderSize(bytes.NewReader(in), 256), New(rec, 0), 4096, func(p []byte) { pongs = append(pongs, string(p)) })
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next = %v, want EOF", err)
	}
	if len(pongs) != 2 || pongs[0] != "" || pongs[1] != "\x00\x00\x00\x00\x00\x00\x01\x2a" || len(rec.written()) != 0 {
		t.Errorf("pongs %q, wrote % x; want an empty one and the offset 298, and nothing written", pongs, rec.written())
	}
}

// TestReaderOverTCP: the reader waits for frames that arrive a byte at a
// time and answers on the socket.
func TestReaderOverTCP(t *testing.T) {
	server, client := tcpPair(t, 64<<10)
	r := NewReader(bufio.NewReaderSize(server, 256), New(server, 16<<10), 4096, nil)
	in := append(frameOf(0x89, []byte("x")), frameOf(0x81, []byte("hello"))...)
	// Each byte goes out once the reader has taken the one before (the
	// socket holds nothing unread) and waits on the socket again, so that
	// it gets every byte in a read of its own.
	raw, err := server.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	waiting := func() bool {
		unread := -1
		_ = raw.Control(func(fd uintptr) { unread, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		return unread == 0 && slices.ContainsFunc(poll.Goroutines("IO wait"), func(g string) bool {
			return strings.Contains(g, "wire.(*Reader).Next(")
		})
	}
	go func() {
		for _, b := range in {
			for end := time.Now().Add(5 * time.Second); !waiting() && time.Now().Before(end); {
				time.Sleep(time.Millisecond)
			}
			_, _ = client.Write([]byte{b})
		}
	}()
	op, msg, err := r.Next()
	if err != nil || op != OpText || string(msg) != "hello" {
		t.Fatalf("Next = %d %q %v", op, msg, err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	pong := make([]byte, 3)
	if _, err := io.ReadFull(client, pong); err != nil || !bytes.Equal(pong, []byte{0x8a, 1, 'x'}) {
		t.Fatalf("client read % x, %v; want the pong", pong, err)
	}
}

func TestAppendHeader(t *testing.T) {
	for _, c := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xff, 0xff}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		if got := AppendHeader(nil, OpText, c.n); !bytes.Equal(got, c.want) {
			t.Errorf("AppendHeader(%d) = %x, want %x", c.n, got, c.want)
		}
	}
	if got := AppendClose(nil, 4000, strings.Repeat("r", 200)); len(got) != 2+MaxControl || got[1] != MaxControl {
		t.Errorf("a close with a long reason is %d bytes, header %x; want %d", len(got), got[:2], 2+MaxControl)
	}
}

// FuzzReader feeds arbitrary bytes to the reader: it never panics, never
// returns a message over the limit or of another opcode than text or
// binary, and whenever it ends on the peer's fault it has written a close
// frame last.
func FuzzReader(f *testing.F) {
	f.Add(frameOf(0x81, []byte(`{"op":"subscribe","symbols":["KRW-BTC"]}`)))
	f.Add(append(frameOf(0x01, []byte("ab")), frameOf(0x80, []byte("cd"))...))
	f.Add(frameOf(0x89, []byte("ping")))
	f.Add(frameOf(0x88, []byte{0x03, 0xe8}))
	f.Add([]byte{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'})
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 512
		msgs, err, wrote := readAll(in, limit)
		for _, m := range msgs {
			if len(m.msg) > limit || (m.op != OpText && m.op != OpBinary) {
				t.Fatalf("message op %d of %d bytes", m.op, len(m.msg))
			}
		}
		var pe *ProtocolError
		if errors.As(err, &pe) || errors.Is(err, ErrPeerClosed) {
			if i := bytes.LastIndexByte(wrote, 0x88); i < 0 || len(wrote)-i > 2+MaxControl {
				t.Fatalf("ended with %v without a close frame last: % x", err, wrote)
			}
		}
	})
}
