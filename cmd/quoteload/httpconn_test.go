package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scriptServer answers each request line it reads with the next of its
// responses (raw bytes; "" = close the connection without answering) and
// counts the connections it accepted.
type scriptServer struct {
	ln       net.Listener
	accepted atomic.Int32
	requests chan string
}

func newScriptServer(t *testing.T, responses ...string) *scriptServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptServer{ln: ln, requests: make(chan string, 64)}
	next := make(chan string, len(responses))
	for _, r := range responses {
		next <- r
	}
	close(next)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					for { // the rest of the request head
						h, err := br.ReadString('\n')
						if err != nil || h == "\r\n" {
							break
						}
					}
					s.requests <- strings.TrimSpace(line)
					resp, ok := <-next
					if !ok || resp == "" {
						return
					}
					if resp == "hang" {
						_, _ = br.ReadByte() // until the client closes
						return
					}
					if _, err := c.Write([]byte(resp)); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return s
}

func (s *scriptServer) conn(t *testing.T, ctx context.Context, timeout time.Duration) *httpConn {
	t.Helper()
	base, err := url.Parse("http://" + s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	h := newHTTPConn(ctx, &net.Dialer{Control: loopbackOnly}, base, []string{"/v1/quotes/A", "/v1/quotes/B%2FC"}, timeout)
	t.Cleanup(h.close)
	return h
}

const okResp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"symbol\":\"A\"}"

func TestHTTPConnKeepAlive(t *testing.T) {
	s := newScriptServer(t, okResp, "HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 14\r\n\r\n{\"symbol\":\"A\"}", okResp)
	h := s.conn(t, context.Background(), 5*time.Second)
	for i, want := range []struct {
		status int
		body   string
	}{{200, `{"symbol":"A"}`}, {404, `{}`}, {200, `{"symbol":"A"}`}, {200, `{"symbol":"A"}`}} {
		status, body, err := h.get(i % 2)
		if err != nil || status != want.status || string(body) != want.body {
			t.Fatalf("request %d: %d %q %v; want %d %q", i, status, body, err, want.status, want.body)
		}
	}
	if got := s.accepted.Load(); got != 2 {
		t.Errorf("%d connections, want 2 (keep-alive, then a new one after Connection: close)", got)
	}
	for _, want := range []string{"GET /v1/quotes/A HTTP/1.1", "GET /v1/quotes/B%2FC HTTP/1.1"} {
		if got := <-s.requests; got != want {
			t.Errorf("request line %q, want %q", got, want)
		}
	}
}

// A keep-alive connection the server closed is redialled once, silently.
func TestHTTPConnRedialsAClosedKeepAlive(t *testing.T) {
	s := newScriptServer(t, okResp, "", okResp)
	h := s.conn(t, context.Background(), 5*time.Second)
	for i := range 2 {
		if status, _, err := h.get(0); err != nil || status != 200 {
			t.Fatalf("request %d: %d %v", i, status, err)
		}
	}
	if got := s.accepted.Load(); got != 2 {
		t.Errorf("%d connections, want 2", got)
	}
	// A new connection that fails is an error, not retried.
	s2 := newScriptServer(t, "")
	if _, _, err := s2.conn(t, context.Background(), 5*time.Second).get(0); err == nil {
		t.Error("a fresh connection closed without an answer gave no error")
	}
}

func TestHTTPConnRefusesWhatItCannotRead(t *testing.T) {
	for name, resp := range map[string]string{
		"chunked":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"no length":      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello",
		"bad length":     "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",
		"huge body":      "HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n",
		"status line":    "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
		"not http":       "SSH-2.0-OpenSSH\r\n\r\n",
		"header line":    "HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n",
		"too many heads": "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: b\r\n", 65) + "Content-Length: 0\r\n\r\n",
		"long line":      "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 5000) + "\r\nContent-Length: 0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			s := newScriptServer(t, resp)
			h := s.conn(t, context.Background(), 5*time.Second)
			if _, _, err := h.get(0); !errors.Is(err, errHTTPResponse) {
				t.Fatalf("get = %v, want errHTTPResponse", err)
			}
			if h.nc != nil {
				t.Error("the connection stays open after a response it could not read")
			}
		})
	}
}

func TestHTTPConnTimeoutAndStop(t *testing.T) {
	s := newScriptServer(t, "hang")
	start := time.Now()
	_, _, err := s.conn(t, context.Background(), 100*time.Millisecond).get(0)
	if !isTimeout(err) || time.Since(start) > 3*time.Second {
		t.Fatalf("get = %v after %v, want a timeout after 100 ms", err, time.Since(start))
	}

	s2 := newScriptServer(t, "hang")
	ctx, cancel := context.WithCancel(context.Background())
	h := s2.conn(t, ctx, time.Minute)
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	if _, _, err := h.get(0); err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("get = %v after %v, want the stop to end it at once", err, time.Since(start))
	}
}
