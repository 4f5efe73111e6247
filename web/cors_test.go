package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"quotehub"
	"quotehub/web"
)

// TestCORSPreflight: a preflight from an allowed origin is answered 204
// with the methods, the headers a page sends (the token, If-Match) and how
// long to keep the answer, before any token check; a refused origin gets a
// 403 and no grant. Responses let pages read ETag.
func TestCORSPreflight(t *testing.T) {
	const app = "https://app.example.com"
	n := jwtNode(t, func(o *web.Options) { o.AllowedOrigins = []string{app}; o.AuthRequired = true })
	for _, path := range []string{"/v1/quotes/KRW-BTC", "/v1/me", "/v1/me/watchlists/1", "/v1/sse?symbols=KRW-BTC"} {
		for _, origin := range []string{app, "http://" + n.addr} {
			resp, body := n.do(t, http.MethodOptions, path, "Origin", origin,
				"Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "authorization, if-match, content-type")
			h := resp.Header
			if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
				t.Fatalf("preflight %s from %s: %d %s", path, origin, resp.StatusCode, body)
			}
			if h.Get("Access-Control-Allow-Origin") != origin {
				t.Errorf("preflight %s: Allow-Origin %q", path, h.Get("Access-Control-Allow-Origin"))
			}
			for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
				if !strings.Contains(h.Get("Access-Control-Allow-Methods"), m) {
					t.Errorf("preflight %s: Allow-Methods %q lacks %s", path, h.Get("Access-Control-Allow-Methods"), m)
				}
			}
			for _, hd := range []string{"Authorization", "If-Match", "Content-Type"} {
				if !strings.Contains(h.Get("Access-Control-Allow-Headers"), hd) {
					t.Errorf("preflight %s: Allow-Headers %q lacks %s", path, h.Get("Access-Control-Allow-Headers"), hd)
				}
			}
			if h.Get("Access-Control-Max-Age") == "" || !strings.Contains(h.Get("Vary"), "Origin") {
				t.Errorf("preflight %s: Max-Age %q, Vary %q", path, h.Get("Access-Control-Max-Age"), h.Get("Vary"))
			}
		}
		for _, origin := range []string{"https://evil.example.net", "http://app.example.com", "null"} {
			resp, body := n.do(t, http.MethodOptions, path, "Origin", origin, "Access-Control-Request-Method", "GET")
			wantError(t, resp, body, http.StatusForbidden, quotehub.EForbidden)
			for _, hd := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers"} {
				if v := resp.Header.Get(hd); v != "" {
					t.Errorf("preflight %s from refused %s: %s %q", path, origin, hd, v)
				}
			}
		}
	}

	// The requests themselves: granted, ETag readable, and a refusal
	// readable too (a page must see why it got a 401).
	tok := token(t, "alice", time.Hour)
	resp, body := n.get(t, "/v1/me", "Origin", app, "Authorization", "Bearer "+tok)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != app ||
		resp.Header.Get("Access-Control-Expose-Headers") != "ETag" {
		t.Errorf("GET /v1/me from %s: %d %s %v", app, resp.StatusCode, body, resp.Header)
	}
	resp, body = n.get(t, "/v1/me", "Origin", app)
	wantError(t, resp, body, http.StatusUnauthorized, quotehub.EUnauthorized)
	if resp.Header.Get("Access-Control-Allow-Origin") != app {
		t.Errorf("401 from %s without a grant: the page cannot read it", app)
	}
	resp, _ = n.get(t, "/v1/me", "Origin", "https://evil.example.net", "Authorization", "Bearer "+tok)
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Expose-Headers") != "" {
		t.Errorf("a refused origin got a grant: %v", resp.Header)
	}
}
