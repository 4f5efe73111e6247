package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// sseURL is connection i's stream URL for syms (on node i mod n).
func (r *runner) sseURL(i int, syms []string) string {
	u := *r.base(i)
	u.Path += "/v1/sse"
	u.RawQuery = "symbols=" + url.QueryEscape(strings.Join(syms, ","))
	return u.String()
}

// SSE event kinds the reader tells apart.
const (
	sseMessage = iota // no event: line, or an unknown event
	sseQuote
	sseError
)

// runSSE runs one SSE stream: the request until the response headers is
// the connect phase (bounded by the connect timeout and the ramp), then the
// stream is read line by line until the run cancels it.
func (r *runner) runSSE(rampCtx context.Context, c *conn, connected func(bool)) {
	st := &c.st
	t0 := time.Now()
	ctx, cancel := context.WithCancel(r.stopCtx)
	defer cancel()
	timeout := time.AfterFunc(r.cfg.ConnectTimeout, cancel)
	unhook := context.AfterFunc(rampCtx, cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.sseURL(c.id, c.syms), nil)
	if err != nil {
		st.addErr("handshake")
		connected(false)
		return
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := r.connClient(c).Do(req)
	inTime := timeout.Stop()
	inRamp := unhook()
	if err != nil {
		switch {
		case !inTime:
			st.addErr("connect_timeout")
		default:
			st.addErr(connectErrKind(err, nil, ctx, rampCtx))
		}
		connected(false)
		return
	}
	defer resp.Body.Close()
	if !inTime || !inRamp {
		if inTime {
			st.addErr(connectErrKind(context.Canceled, nil, ctx, rampCtx))
		} else {
			st.addErr("connect_timeout")
		}
		connected(false)
		return
	}
	if resp.StatusCode != http.StatusOK {
		st.addErr(fmt.Sprintf("handshake_%d", resp.StatusCode))
		connected(false)
		return
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		st.addErr("handshake_content_type")
		connected(false)
		return
	}
	st.connectDur = time.Since(t0)
	st.connected = true
	connected(true)

	br := bufio.NewReaderSize(resp.Body, 16<<10)
	var long []byte
	var qs []quoteRec
	event, sawData := sseMessage, false
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil { // a partial last line is dropped, as EventSource does
			st.endWindow()
			if !r.stopping.Load() {
				r.lost(st, dropReason(err))
				if errors.Is(err, io.EOF) {
					st.addErr("sse_eof")
				} else {
					st.addErr("read")
				}
			}
			return
		}
		measuring := r.phase.Load() == phaseMeasure
		if measuring {
			st.bytes += uint64(len(line))
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte{'\n'}), []byte{'\r'})
		switch {
		case len(line) == 0: // end of event
			if sawData && measuring {
				st.frames++
			}
			event, sawData = sseMessage, false
		case line[0] == ':': // comment: keepalive
		case bytes.HasPrefix(line, []byte("data:")):
			v := line[len("data:"):]
			if len(v) > 0 && v[0] == ' ' {
				v = v[1:]
			}
			sawData = true
			switch event {
			case sseQuote:
				now := time.Now().UnixMicro()
				qs = scanQuotes(qs[:0], v)
				if len(qs) != 1 {
					st.addErr("sse_bad_quote")
				}
				st.recordQuotes(qs, now, measuring)
			case sseError:
				var e struct{ Symbol, Code string }
				_ = json.Unmarshal(v, &e)
				if e.Symbol != "" {
					st.addErr("rejected_" + e.Code)
				} else {
					st.addErr("error_event_" + e.Code)
				}
			default:
				st.addErr("sse_unexpected_event")
			}
		case bytes.HasPrefix(line, []byte("event:")):
			switch string(bytes.TrimSpace(line[len("event:"):])) {
			case "quote":
				event = sseQuote
			case "error":
				event = sseError
			default:
				event = sseMessage
			}
		}
	}
}
