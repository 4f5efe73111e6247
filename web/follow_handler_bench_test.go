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
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %.200s", rec.Code, rec.Body.Bytes())
		}
	}
}
