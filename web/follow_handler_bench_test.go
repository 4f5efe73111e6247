package web_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"quotehub"
	"quotehub/store/usercache"
)

// BenchmarkValuedPortfolioHandler: the node's own cost of one valued
// read of 50 holdings (prices fresh), the handler called without a
// socket, one request at a time: ns/op is the server's CPU per request,
// which a noisy machine disturbs far less than a throughput figure.
// The request takes the whole path a real one does past net/http:
// echo's routing and middleware (request id, recovery and logging, host
// and CORS checks), the bearer token's verification by the real
// verifier, the portfolio read, the valuation and its encoding.
func BenchmarkValuedPortfolioHandler(b *testing.B) {
	b.Run("store", func(b *testing.B) { benchValuedHandler(b, nil) })
	b.Run("cached", func(b *testing.B) {
		benchValuedHandler(b, func(st quotehub.UserStore) quotehub.UserStore { return usercache.New(st, 0, true) })
	})
}

func benchValuedHandler(b *testing.B, wrap func(quotehub.UserStore) quotehub.UserStore) {
	n := startValuedNode(b, wrap)
	h := n.srv.Handler()
	req := httptest.NewRequest("GET", "http://"+n.addr+"/v1/me/portfolio", nil)
	req.Host = n.addr
	req.RemoteAddr = "127.0.0.1:1234"
	req.Header.Set("Authorization", "Bearer "+benchToken(b, "alice"))
	w := &discardWriter{header: http.Header{}}
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK || w.written == 0 {
			b.Fatalf("status %d, %d bytes", w.status, w.written)
		}
	}
}

// discardWriter is a ResponseWriter that counts the body and keeps none
// of it, as a connection's buffered writer does: an httptest recorder
// would grow a buffer for every body, a cost a served request does not
// pay.
type discardWriter struct {
	header  http.Header
	status  int
	written int
}

func (w *discardWriter) reset() {
	clear(w.header)
	w.status, w.written = 0, 0
}

func (w *discardWriter) Header() http.Header { return w.header }

func (w *discardWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.written += len(p)
	return len(p), nil
}
