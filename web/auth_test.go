package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"quotehub"
	"quotehub/auth"
	"quotehub/internal/poll"
	"quotehub/web"
)

// tokens is a Verifier for the routes' own tests: a fixed token per user.
type tokens map[string]string

func (v tokens) Verify(_ context.Context, tok string) (quotehub.Principal, error) {
	if u, ok := v[tok]; ok {
		return quotehub.Principal{UserID: u}, nil
	}
	return quotehub.Principal{}, quotehub.Errorf(quotehub.EUnauthorized, "bad token")
}

func TestRequireUser(t *testing.T) {
	t.Run("NoVerifier", func(t *testing.T) {
		n := startNode(t, nil)
		resp, body := n.get(t, "/v1/me/anything", "Authorization", "Bearer t-alice")
		wantError(t, resp, body, http.StatusUnauthorized, quotehub.EUnauthorized)
	})
	n := startNode(t, func(o *web.Options) { o.Verifier = tokens{"t-alice": "alice"} })
	for _, tc := range []struct{ name, header string }{
		{"Missing", ""},
		{"NotBearer", "Basic YWxpY2U6eA=="},
		{"Empty", "Bearer  "},
		{"Refused", "Bearer t-mallory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := n.get(t, "/v1/me/anything", "Authorization", tc.header)
			wantError(t, resp, body, http.StatusUnauthorized, quotehub.EUnauthorized)
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	t.Run("Accepted", func(t *testing.T) {
		// Past the check, an unknown path under /v1/me is a plain 404.
		resp, body := n.get(t, "/v1/me/anything", "Authorization", "bearer t-alice")
		wantError(t, resp, body, http.StatusNotFound, quotehub.ENotFound)
	})
}

// secret is the HS256 key of the stream tests' tokens.
var secret = []byte("web-test-secret-of-at-least-32-bytes")

// jwtNode starts a node whose Verifier is the real one of package auth.
func jwtNode(t *testing.T, mod func(*web.Options)) *node {
	t.Helper()
	v, err := auth.New(auth.Options{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return startNode(t, func(o *web.Options) {
		o.Verifier = v
		if mod != nil {
			mod(o)
		}
	})
}

// token signs a token for user that expires after ttl.
func token(t *testing.T, user string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Sign(secret, auth.Claims{Subject: user, TTL: ttl}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestMe(t *testing.T) {
	n := jwtNode(t, nil)
	tok := token(t, "alice", time.Hour)
	resp, body := n.get(t, "/v1/me", "Authorization", "Bearer "+tok)
	var me struct {
		User    string `json:"user"`
		Expires int64  `json:"expires"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &me) != nil || me.User != "alice" {
		t.Fatalf("GET /v1/me: %d %s", resp.StatusCode, body)
	}
	if d := time.Until(time.UnixMilli(me.Expires)); d < 58*time.Minute || d > time.Hour {
		t.Errorf("expires %d is %v away, want about an hour", me.Expires, d)
	}
	for _, tc := range []struct{ name, path, header string }{
		{"NoToken", "/v1/me", ""},
		{"Expired", "/v1/me", "Bearer " + expiredToken(t)},
		{"Garbage", "/v1/me", "Bearer abc.def.ghi"},
		// token= is for the streams only: an address that carries a
		// credential ends up in histories and proxy logs.
		{"QueryToken", "/v1/me?token=" + tok, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := n.get(t, tc.path, "Authorization", tc.header)
			wantError(t, resp, body, http.StatusUnauthorized, quotehub.EUnauthorized)
			if resp.Header.Get("WWW-Authenticate") != `Bearer realm="quotehub"` {
				t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// expiredToken is a well-signed token that expired an hour ago.
func expiredToken(t *testing.T) string {
	t.Helper()
	tok, err := auth.Sign(secret, auth.Claims{Subject: "alice", TTL: time.Minute}, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestAuthRequired: with AuthRequired every quote route and stream needs
// a token; without it they are anonymous. Health stays open.
func TestAuthRequired(t *testing.T) {
	tok := token(t, "alice", time.Hour)
	for _, required := range []bool{false, true} {
		t.Run(fmt.Sprintf("required=%v", required), func(t *testing.T) {
			n := jwtNode(t, func(o *web.Options) { o.AuthRequired = required })
			if _, err := n.cache.Put(context.Background(), quote("KRW-BTC", 100, 1, 0)); err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{"/v1/quotes/KRW-BTC", "/v1/quotes?symbols=KRW-BTC", "/v1/symbols?q=BTC"} {
				resp, body := n.get(t, path)
				if required {
					wantError(t, resp, body, http.StatusUnauthorized, quotehub.EUnauthorized)
				} else if resp.StatusCode != http.StatusOK {
					t.Errorf("anonymous %s: %d %s", path, resp.StatusCode, body)
				}
				if resp, body := n.get(t, path, "Authorization", "Bearer "+tok); resp.StatusCode != http.StatusOK {
					t.Errorf("%s with a token: %d %s", path, resp.StatusCode, body)
				}
				if required {
					resp, body := n.get(t, path+"&token="+tok)
					wantError(t, resp, body, http.StatusUnauthorized, quotehub.EUnauthorized)
				}
			}
			_, resp, err := dialWS(t, n, "", nil)
			if required {
				wantDialRefused(t, resp, err)
			} else if err != nil {
				t.Errorf("anonymous WebSocket: %v", err)
			}
			s := openSSE(t, n, "?symbols=KRW-BTC")
			if want := map[bool]int{false: http.StatusOK, true: http.StatusUnauthorized}[required]; s.resp.StatusCode != want {
				t.Errorf("anonymous SSE: %d, want %d", s.resp.StatusCode, want)
			}
			s.conn.Close()
			if resp, _ := n.get(t, "/healthz"); resp.StatusCode != http.StatusOK {
				t.Errorf("/healthz: %d", resp.StatusCode)
			}
		})
	}
}

// dialWS opens a WebSocket with query and header; the connection is
// closed when the test ends.
func dialWS(t *testing.T, n *node, query string, h http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+n.addr+"/v1/ws"+query, &websocket.DialOptions{HTTPHeader: h, HTTPClient: n.client})
	if c != nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

// wantDialRefused checks a WebSocket handshake answered 401 in the error
// shape, before any upgrade.
func wantDialRefused(t *testing.T, resp *http.Response, err error) string {
	t.Helper()
	if err == nil || resp == nil {
		t.Fatalf("handshake: %v, response %v; want a 401", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	return wantError(t, resp, body, http.StatusUnauthorized, quotehub.EUnauthorized)
}

// readFrame reads one WebSocket message as JSON.
func readFrame(t *testing.T, c *websocket.Conn) (map[string]any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, data, err := c.Read(ctx)
	if err != nil {
		return nil, err
	}
	var f map[string]any
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("frame %s: %v", data, err)
	}
	return f, nil
}

func TestWSToken(t *testing.T) {
	n := jwtNode(t, nil)
	tok := token(t, "alice", time.Hour)
	for _, tc := range []struct {
		name  string
		query string
		h     http.Header
		user  string
	}{
		{"Query", "?token=" + tok, nil, "alice"},
		{"Header", "", http.Header{"Authorization": {"Bearer " + tok}}, "alice"},
		{"Anonymous", "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := dialWS(t, n, tc.query, tc.h)
			if err != nil {
				t.Fatal(err)
			}
			f, err := readFrame(t, c)
			if err != nil || f["type"] != "welcome" {
				t.Fatalf("first frame %v, %v", f, err)
			}
			if u, _ := f["user"].(string); u != tc.user {
				t.Errorf("welcome names user %q, want %q", u, tc.user)
			}
		})
	}
	for _, tc := range []struct{ name, query, header, msg string }{
		{"Expired", "?token=" + expiredToken(t), "", "expired"},
		{"Malformed", "?token=nonsense", "", "malformed"},
		{"BadSignature", "?token=" + tok[:len(tok)-4] + "AAAA", "", "signature"},
		{"BadHeader", "", "Bearer nonsense", "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h http.Header
			if tc.header != "" {
				h = http.Header{"Authorization": {tc.header}}
			}
			_, resp, err := dialWS(t, n, tc.query, h)
			if msg := wantDialRefused(t, resp, err); !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q, want it to say %q", msg, tc.msg)
			}
		})
	}
	t.Run("NoVerifier", func(t *testing.T) {
		n := startNode(t, nil)
		_, resp, err := dialWS(t, n, "?token="+tok, nil)
		wantDialRefused(t, resp, err)
	})
	if c := n.hub.Connections(); c > 3 {
		t.Errorf("%d connections after refused handshakes", c)
	}
}

// TestWSTokenExpires: a WebSocket whose token expires gets an error frame
// with code unauthorized, then a close with 1008; not a silent cut.
func TestWSTokenExpires(t *testing.T) {
	n := jwtNode(t, nil)
	if _, err := n.cache.Put(context.Background(), quote("KRW-BTC", 100, 1, 0)); err != nil {
		t.Fatal(err)
	}
	c, _, err := dialWS(t, n, "?symbols=KRW-BTC&token="+token(t, "alice", 2*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		f, err := readFrame(t, c)
		if err != nil {
			if s := websocket.CloseStatus(err); s != websocket.StatusPolicyViolation {
				t.Fatalf("after %v: %v (close status %v), want a close with 1008", got, err, s)
			}
			break
		}
		typ, _ := f["type"].(string)
		got = append(got, typ)
		if typ == "error" && f["code"] != quotehub.EUnauthorized {
			t.Fatalf("error frame %v", f)
		}
	}
	if len(got) < 2 || got[0] != "welcome" || got[len(got)-1] != "error" {
		t.Fatalf("frames %v; want welcome first and the error frame last, before the close", got)
	}
	poll.Until(t, 5*time.Second, "the session to end", func() bool { return n.hub.Connections() == 0 })
}

// TestSSEToken: token= opens a stream, a bad one is a 401 before the
// stream opens, and when the token expires the stream gets an error event
// and ends.
func TestSSEToken(t *testing.T) {
	n := jwtNode(t, nil)
	btc := quote("KRW-BTC", 100, 1, 0)
	if _, err := n.cache.Put(context.Background(), btc); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"&token=nonsense", "&token=" + expiredToken(t)} {
		resp, body := n.get(t, "/v1/sse?symbols=KRW-BTC"+q)
		wantError(t, resp, body, http.StatusUnauthorized, quotehub.EUnauthorized)
	}
	s := openSSE(t, n, "?symbols=KRW-BTC&token="+token(t, "alice", 2*time.Second))
	if s.resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", s.resp.StatusCode)
	}
	s.expect(t, "snapshot", "retry: 3000\n\n"+quoteEvent(1, btc))
	_ = s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(s.body)
	if err != nil {
		t.Fatalf("stream did not end: %v (read %q)", err, rest)
	}
	want := `event: error` + "\n" + `data: {"code":"unauthorized","message":"The token expired; reconnect with a new one."}` + "\n\n"
	if !strings.HasSuffix(string(rest), want) {
		t.Fatalf("stream ended with %q, want the expiry event %q last", rest, want)
	}
	poll.Until(t, 5*time.Second, "the session to end", func() bool { return n.hub.Connections() == 0 })
}

// TestTokenRedactedFromLogs: the request log never prints a token.
func TestTokenRedactedFromLogs(t *testing.T) {
	var buf syncBuffer
	log := zerolog.New(&buf).Level(zerolog.DebugLevel)
	n := jwtNode(t, func(o *web.Options) { o.Logger = &log })
	tok := token(t, "alice", time.Hour)
	n.get(t, "/v1/quotes/KRW-BTC?token="+tok)
	n.get(t, "/v1/me?x=1&%74oken="+tok+"&y=2", "Authorization", "Bearer "+tok)
	c, _, err := dialWS(t, n, "?token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readFrame(t, c); err != nil {
		t.Fatal(err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	poll.Until(t, 5*time.Second, "the session to end", func() bool { return n.hub.Connections() == 0 })
	// Refused handshakes are logged with their address too.
	_, resp, err := dialWS(t, n, "?token="+tok+"x", nil)
	wantDialRefused(t, resp, err)
	if s := openSSE(t, n, "?symbols=KRW-BTC&token="+tok+"x"); s.resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("SSE with a bad token: %d", s.resp.StatusCode)
	}
	out := buf.String()
	if strings.Contains(out, tok) || strings.Contains(out, tok[strings.LastIndexByte(tok, '.')+1:]) {
		t.Fatalf("a log line carries the token:\n%s", out)
	}
	if strings.Count(out, "token=REDACTED") < 3 || !strings.Contains(out, "%74oken=REDACTED") {
		t.Errorf("the request log does not show the redacted parameters:\n%s", out)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTokenRefusalsOverHTTP: the attacks on tokens, through the real
// server with an RS256 verifier: each is a 401 in the one error shape
// whose message says what was wrong.
func TestTokenRefusalsOverHTTP(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	v, err := auth.New(auth.Options{PublicKey: &key.PublicKey, Issuer: "https://id.example", Audience: "quotehub"})
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, func(o *web.Options) { o.Verifier = v })
	claims := func(k string, val any) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "alice", "iss": "https://id.example", "aud": "quotehub",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
		if val == nil {
			delete(c, k)
		} else if k != "" {
			c[k] = val
		}
		return c
	}
	signed := func(m jwt.SigningMethod, k any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if resp, body := n.get(t, "/v1/me", "Authorization", "Bearer "+signed(jwt.SigningMethodRS256, key, claims("", ""))); resp.StatusCode != http.StatusOK {
		t.Fatalf("a good token: %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct{ name, tok, msg string }{
		{"AlgNone", signed(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("", "")), "signed with none"},
		{"KeyConfusion", signed(jwt.SigningMethodHS256, pubPEM, claims("", "")), "signed with HS256; this node accepts RS256 only"},
		{"Expired", signed(jwt.SigningMethodRS256, key, claims("exp", time.Now().Add(-time.Hour).Unix())), "expired"},
		{"WrongIssuer", signed(jwt.SigningMethodRS256, key, claims("iss", "https://evil.example")), "iss"},
		{"WrongAudience", signed(jwt.SigningMethodRS256, key, claims("aud", "billing")), "aud"},
		{"MissingSub", signed(jwt.SigningMethodRS256, key, claims("sub", nil)), "no sub"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := n.get(t, "/v1/me", "Authorization", "Bearer "+tc.tok)
			if msg := wantError(t, resp, body, http.StatusUnauthorized, quotehub.EUnauthorized); !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q, want it to say %q", msg, tc.msg)
			}
			_, resp, err := dialWS(t, n, "?token="+tc.tok, nil)
			wantDialRefused(t, resp, err)
		})
	}
}
