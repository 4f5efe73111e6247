package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// httpConn is the read workers' HTTP/1.1 client for http:// targets: one
// keep-alive connection, requests written whole from prepared bytes and
// responses parsed in place, in the worker's own goroutine. net/http's
// client costs about as much CPU per request as the server's handling of
// it (two goroutines per connection, header maps, allocations), which on a
// shared machine is CPU taken from the server being measured.
type httpConn struct {
	dial    func(ctx context.Context) (net.Conn, error)
	stop    context.Context // closes the connection when done
	timeout time.Duration   // per request, dial included
	reqs    [][]byte        // one prepared request per path

	nc       net.Conn
	br       *bufio.Reader
	body     []byte
	unwatch  func() bool
	reused   bool // nc has answered a request before
	maxBody  int
	maxHeads int
}

// errHTTPResponse is a response quoteload does not take: no
// Content-Length, a chunked body, a body over the limit, or a malformed
// status line or header.
var errHTTPResponse = errors.New("unsupported or malformed HTTP response")

// newHTTPConn prepares GET requests of paths (escaped, with any query) to
// base's host, with headers ("Name: value") added to each.
func newHTTPConn(stop context.Context, d *net.Dialer, base *url.URL, paths []string, timeout time.Duration, headers ...string) *httpConn {
	h := &httpConn{stop: stop, timeout: timeout, maxBody: 1 << 20, maxHeads: 64}
	addr := base.Host
	if base.Port() == "" {
		addr = net.JoinHostPort(base.Hostname(), "80")
	}
	h.dial = func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	for _, p := range paths {
		req := []byte("GET " + p + " HTTP/1.1\r\nHost: " + base.Host + "\r\nUser-Agent: quoteload\r\n")
		req = headerList(headers).appendHeaders(req)
		h.reqs = append(h.reqs, append(req, "\r\n"...))
	}
	return h
}

// get sends request j and returns the status and the body (valid until
// the next call). A connection the server closed while idle is redialled
// once; any other failure closes the connection (the next call dials).
func (h *httpConn) get(j int) (status int, body []byte, err error) {
	for attempt := 0; ; attempt++ {
		reused := h.nc != nil && h.reused
		status, body, err = h.roundTrip(j)
		if err == nil {
			return status, body, nil
		}
		h.close()
		// A keep-alive connection may have been closed by the server just
		// before this request: try once more on a new one.
		if !reused || attempt > 0 || h.stop.Err() != nil || !(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)) {
			return 0, nil, err
		}
	}
}

func (h *httpConn) roundTrip(j int) (int, []byte, error) {
	deadline := time.Now().Add(h.timeout)
	if h.nc == nil {
		ctx, cancel := context.WithDeadline(h.stop, deadline)
		nc, err := h.dial(ctx)
		cancel()
		if err != nil {
			return 0, nil, err
		}
		h.nc, h.reused = nc, false
		if h.br == nil {
			h.br = bufio.NewReaderSize(nc, 4096)
		} else {
			h.br.Reset(nc)
		}
		h.unwatch = context.AfterFunc(h.stop, func() { _ = nc.Close() })
	}
	if err := h.nc.SetDeadline(deadline); err != nil {
		return 0, nil, err
	}
	if _, err := h.nc.Write(h.reqs[j]); err != nil {
		return 0, nil, err
	}
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			err = errHTTPResponse
		}
		return 0, nil, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, nil, fmt.Errorf("%w: status line %q", errHTTPResponse, line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil || status < 100 {
		return 0, nil, fmt.Errorf("%w: status line %q", errHTTPResponse, line)
	}
	length, closing := -1, false
	for n := 0; ; n++ {
		line, err := h.br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				err = errHTTPResponse
			}
			return 0, nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		if n == h.maxHeads {
			return 0, nil, fmt.Errorf("%w: more than %d header lines", errHTTPResponse, h.maxHeads)
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, nil, fmt.Errorf("%w: header line %q", errHTTPResponse, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.Atoi(string(value))
			if err != nil || length < 0 {
				return 0, nil, fmt.Errorf("%w: Content-Length %q", errHTTPResponse, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, nil, fmt.Errorf("%w: Transfer-Encoding %q", errHTTPResponse, value)
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		}
	}
	if length < 0 || length > h.maxBody {
		return 0, nil, fmt.Errorf("%w: body length %d (at most %d, given in Content-Length)", errHTTPResponse, length, h.maxBody)
	}
	if cap(h.body) < length {
		h.body = make([]byte, length)
	}
	body := h.body[:length]
	if _, err := io.ReadFull(h.br, body); err != nil {
		return 0, nil, err
	}
	h.reused = true
	if closing {
		h.close()
	}
	return status, body, nil
}

// close closes the connection, if any.
func (h *httpConn) close() {
	if h.nc == nil {
		return
	}
	h.unwatch()
	_ = h.nc.Close()
	h.nc = nil
}

// isReset reports whether err is a connection reset or broken pipe.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
