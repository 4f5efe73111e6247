package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
)

// getWithToken GETs url with a bearer token (none when empty) and decodes
// the JSON body into into.
func getWithToken(t *testing.T, url, tok string, into any) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatalf("GET %s: %d, body: %v", url, resp.StatusCode, err)
	}
	return resp
}

// me is the body of GET /v1/me.
type me struct {
	User    string `json:"user"`
	Expires int64  `json:"expires"`
}

// TestTokenCommandEndToEnd is the README's way of trying users out: a
// node with no key makes a development secret in its data directory, and
// `quotehub token` run against the same directory prints a token the node
// accepts on /v1/me and on a WebSocket's token=.
func TestTokenCommandEndToEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := startProc(t, "a", map[string]string{"QUOTEHUB_DATA_DIR": dir, "QUOTEHUB_LOG_LEVEL": "info"})
	if !strings.Contains(p.output(), "created a development secret") {
		t.Errorf("the node did not say it created a development secret:\n%s", p.output())
	}
	fi, err := os.Stat(filepath.Join(dir, devSecretFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", fi, err)
	}

	cmd := exec.Command(quotehubBinary(t), "token", "-sub", "alice", "-ttl", "10m")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "QUOTEHUB_DATA_DIR=" + dir}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("quotehub token: %v\n%s", err, stderr.String())
	}
	tok := strings.TrimSpace(stdout.String())
	if strings.Count(tok, ".") != 2 || stderr.Len() != 0 {
		t.Fatalf("token %q, stderr %q", tok, stderr.String())
	}

	var m me
	if resp := getWithToken(t, "http://"+p.addr+"/v1/me", tok, &m); resp.StatusCode != http.StatusOK || m.User != "alice" {
		t.Fatalf("/v1/me: %d %+v", resp.StatusCode, m)
	}
	if d := time.Until(time.UnixMilli(m.Expires)); d <= 8*time.Minute || d > 10*time.Minute {
		t.Errorf("expires in %v, want about 10 m", d)
	}
	var e apiError
	if resp := getWithToken(t, "http://"+p.addr+"/v1/me", "", &e); resp.StatusCode != http.StatusUnauthorized || e.Error.Code != "unauthorized" {
		t.Fatalf("/v1/me without a token: %d %+v", resp.StatusCode, e)
	}

	c := dialWS(t, p.node(), "?symbols=KRW-BTC&token="+url.QueryEscape(tok), nil)
	if w := c.next("welcome"); w.User != "alice" {
		t.Fatalf("welcome %s does not name alice", w.raw)
	}
	c.next("subscribed")
	c.conn.Close(websocket.StatusNormalClosure, "")

	// The same command against another data directory makes another
	// secret, whose tokens this node refuses.
	other := exec.Command(quotehubBinary(t), "token", "-sub", "alice")
	other.Env = []string{"PATH=" + os.Getenv("PATH"), "QUOTEHUB_DATA_DIR=" + t.TempDir()}
	out, err := other.Output()
	if err != nil {
		t.Fatal(err)
	}
	if resp := getWithToken(t, "http://"+p.addr+"/v1/me", strings.TrimSpace(string(out)), &e); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a token of another secret: %d", resp.StatusCode)
	}
	if strings.Contains(p.output(), tok) {
		t.Error("the node's log carries the token")
	}
}

// TestJWKSEndToEnd: a node verifying RS256 tokens from an issuer's key
// set, with iss and aud checked and every route behind a token.
func TestJWKSEndToEnd(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	doc, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	issuer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(issuer.Close)
	p := startProc(t, "a", map[string]string{
		"QUOTEHUB_JWT_JWKS_URL": issuer.URL + "/.well-known/jwks.json", "QUOTEHUB_JWT_ISSUER": "https://id.example",
		"QUOTEHUB_JWT_AUDIENCE": "quotehub", "QUOTEHUB_AUTH_REQUIRED": "true",
	})
	sign := func(m jwt.SigningMethod, k any, kid, iss string) string {
		tok := jwt.NewWithClaims(m, jwt.MapClaims{"sub": "alice", "iss": iss, "aud": "quotehub",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(jwt.SigningMethodRS256, key, "k1", "https://id.example")
	var m me
	if resp := getWithToken(t, "http://"+p.addr+"/v1/me", good, &m); resp.StatusCode != http.StatusOK || m.User != "alice" {
		t.Fatalf("/v1/me: %d %+v", resp.StatusCode, m)
	}
	for name, tok := range map[string]string{
		"wrong issuer": sign(jwt.SigningMethodRS256, key, "k1", "https://evil.example"),
		"unknown kid":  sign(jwt.SigningMethodRS256, key, "k2", "https://id.example"),
		"HS256":        sign(jwt.SigningMethodHS256, []byte("an attacker's secret of 32 bytes"), "k1", "https://id.example"),
		"none":         "",
	} {
		var e apiError
		if resp := getWithToken(t, "http://"+p.addr+"/v1/quotes/KRW-BTC", tok, &e); resp.StatusCode != http.StatusUnauthorized || e.Error.Code != "unauthorized" {
			t.Errorf("%s: %d %+v", name, resp.StatusCode, e)
		}
	}
	var q map[string]any
	if resp := getWithToken(t, "http://"+p.addr+"/v1/quotes/KRW-BTC", good, &q); resp.StatusCode != http.StatusOK {
		t.Fatalf("quote with a token: %d %v", resp.StatusCode, q)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws://"+p.addr+"/v1/ws", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous WebSocket with auth required: %v %v", resp, err)
	}
	c := dialWS(t, p.node(), "", http.Header{"Authorization": {"Bearer " + good}})
	if w := c.next("welcome"); w.User != "alice" {
		t.Fatalf("welcome %s", w.raw)
	}
	c.conn.Close(websocket.StatusNormalClosure, "")
}
