package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"
)

// -header is sent with every read, by the hand-made HTTP/1.1 client and
// by net/http; a malformed one is refused when the flags are parsed.
func TestHeaderFlag(t *testing.T) {
	cfg, _, err := parseFlags([]string{"-mode", "http", "-header", "authorization: Bearer abc", "-header", "X-Trace:1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := (headerList{"Authorization: Bearer abc", "X-Trace: 1"}); !slices.Equal(cfg.Headers, want) {
		t.Fatalf("headers %q, want %q", cfg.Headers, want)
	}
	for _, bad := range []string{"no colon", ": empty name", "Bad Name: x", "X: a\r\nY: b"} {
		if _, _, err := parseFlags([]string{"-header", bad}, io.Discard); err == nil {
			t.Errorf("-header %q accepted", bad)
		}
	}

	got := make(chan http.Header, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.Header().Set("Content-Length", "2")
		_, _ = w.Write([]byte("{}"))
	}))
	defer srv.Close()
	base, _ := url.Parse(srv.URL)
	h := newHTTPConn(context.Background(), &net.Dialer{Control: loopbackOnly}, base, []string{"/v1/me/portfolio"}, 5*time.Second, cfg.Headers...)
	defer h.close()
	if status, _, err := h.get(0); err != nil || status != 200 {
		t.Fatalf("get: %d %v", status, err)
	}
	r := &runner{cfg: cfg, bases: []*url.URL{base}}
	r.stopCtx = context.Background()
	r.clients = []*http.Client{srv.Client()}
	if status, _, err := r.netHTTPGet(0, []string{srv.URL + "/v1/me/portfolio"})(0); err != nil || status != 200 {
		t.Fatalf("net/http get: %d %v", status, err)
	}
	for _, client := range []string{"hand-made", "net/http"} {
		hd := <-got
		if hd.Get("Authorization") != "Bearer abc" || hd.Get("X-Trace") != "1" {
			t.Errorf("%s client sent %v", client, hd)
		}
	}
}

// The age of a portfolio frame is read from its as_of.
func TestAsOfMillis(t *testing.T) {
	for msg, want := range map[string]int64{
		`{"type":"portfolio","total":{"value":1},"as_of":1764751234567}`: 1764751234567,
		`{"type":"portfolio","as_of":0}`:                                 0,
		`{"type":"portfolio"}`:                                           0,
		`{"type":"portfolio","as_of":-5}`:                                0,
	} {
		got, ok := asOfMillis([]byte(msg))
		if got != want && ok || ok != (want > 0) {
			t.Errorf("%s: %d %v, want %d", msg, got, ok, want)
		}
	}
}
