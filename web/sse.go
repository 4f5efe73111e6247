package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"quotehub"
	"quotehub/hub"
)

// serveSSE runs one SSE stream. Everything that can be refused is checked
// before the stream opens, so a client gets a JSON error and a status
// instead of an empty stream.
func (s *Server) serveSSE(c echo.Context) error {
	s.cors(c)
	ctx := c.Request().Context()
	raw := c.QueryParam("symbols")
	if raw == "" {
		return s.writeError(c, quotehub.Errorf(quotehub.EBadRequest, "symbols is missing or empty: /v1/sse?symbols=A,B"))
	}
	accepted, rejected, err := s.opts.Hub.Resolve(ctx, quotehub.SplitList(raw))
	if err != nil {
		return s.writeError(c, err)
	}
	if len(accepted) == 0 {
		return s.writeError(c, allRejected(rejected))
	}
	rc := http.NewResponseController(c.Response())
	t := &sseTransport{w: c.Response(), rc: rc}
	client := s.opts.Hub.NewClient(t, "sse")
	if client == nil {
		return s.writeError(c, quotehub.Errorf(quotehub.ERateLimited, "node over its connection limit; reconnect later"))
	}
	defer client.Close()

	h := c.Response().Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if c.Request().ProtoMajor == 1 {
		h.Set("Connection", "keep-alive")
	}
	c.Response().WriteHeader(http.StatusOK)
	head := []byte("retry: 3000\n\n")
	for _, r := range rejected {
		head = append(head, "event: error\ndata: "...)
		head = append(head, mustJSON(r)...)
		head = append(head, "\n\n"...)
	}
	if _, err := c.Response().Write(head); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return nil
	}
	client.Attach(context.WithoutCancel(ctx), accepted)
	// The stream ends when the client goes away (request context), the hub
	// shuts down, or a write fails.
	stop := context.AfterFunc(ctx, client.Close)
	defer stop()
	_ = client.WriteLoop(s.opts.SSEKeepalive, true, t.keepalive)
	return nil
}

// allRejected is the error of a stream whose every symbol was refused:
// invalid_symbol if any was malformed, else unknown_symbol.
func allRejected(rejected []hub.Rejection) error {
	code := quotehub.EUnknownSymbol
	for _, r := range rejected {
		if r.Code == quotehub.EInvalidSymbol {
			code = quotehub.EInvalidSymbol
			break
		}
	}
	for _, r := range rejected {
		if r.Code == code {
			msg := r.Message
			if len(rejected) > 1 {
				msg += " (and " + strconv.Itoa(len(rejected)-1) + " more rejected)"
			}
			return &quotehub.Error{Code: code, Message: msg}
		}
	}
	return &quotehub.Error{Code: quotehub.EInternal, Message: "no symbols accepted"}
}

// sseTransport writes a client's batches as SSE events, all of one batch in
// one flushed chunk.
type sseTransport struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
	id  uint64
}

// Write implements hub.Transport. SSE clients send no requests, so they
// never get control frames.
func (t *sseTransport) Write(_ [][]byte, quotes []*hub.Update) error {
	b := t.buf[:0]
	for _, u := range quotes {
		t.id++
		b = append(b, "event: quote\nid: "...)
		b = strconv.AppendUint(b, t.id, 10)
		b = append(b, "\ndata: "...)
		b = append(b, u.JSON...)
		b = append(b, '\n', '\n')
	}
	t.buf = b
	if cap(t.buf) > 64<<10 {
		t.buf = nil
	}
	if _, err := t.w.Write(b); err != nil {
		return err
	}
	return t.rc.Flush()
}

var keepaliveLine = []byte(": keepalive\n\n")

func (t *sseTransport) keepalive() error {
	if _, err := t.w.Write(keepaliveLine); err != nil {
		return err
	}
	return t.rc.Flush()
}

// Abort implements hub.Transport: a write deadline in the past fails the
// stuck write at once, which ends the stream.
func (t *sseTransport) Abort(int, string) {
	_ = t.rc.SetWriteDeadline(time.Unix(1, 0))
}
