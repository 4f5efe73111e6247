package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"quotehub/internal/poll"
	"quotehub/internal/testcert"
)

// TestSecuritySettings runs the binary with TLS, the admin listener on
// loopback holding /metrics, and the per-address limits applied to
// loopback: reads over the rate get 429, an unlisted Host 403, and a new
// certificate is served after SIGHUP (a broken one is not: the old stays).
func TestSecuritySettings(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := testcert.Write(t, certFile, keyFile)
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	p := startProc(t, "tls", map[string]string{
		"QUOTEHUB_TLS_CERT": certFile, "QUOTEHUB_TLS_KEY": keyFile, "QUOTEHUB_ADMIN_ADDR": admin,
		"QUOTEHUB_METRICS_PUBLIC": "false", "QUOTEHUB_LIMIT_EXEMPT": "", "QUOTEHUB_IP_READS_PER_SECOND": "1",
	})
	client := func(pool *x509.CertPool) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}
		return &http.Client{Transport: tr, Timeout: 5 * time.Second}
	}
	get := func(c *http.Client, url, host string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	c := client(pool)
	base := "https://" + p.addr

	if code, body := get(c, base+"/metrics", ""); code != http.StatusNotFound {
		t.Errorf("/metrics on the public port: %d %s, want 404", code, body)
	}
	if code, body := get(http.DefaultClient, "http://"+admin+"/metrics", ""); code != http.StatusOK || !strings.Contains(body, "quotehub_refused_total") {
		t.Errorf("/metrics on the admin listener: %d", code)
	}
	if code, body := get(c, base+"/v1/quotes/SYN-000001", "evil.example"); code != http.StatusForbidden || !strings.Contains(body, `"forbidden"`) {
		t.Errorf("an unlisted Host: %d %s, want 403 forbidden", code, body)
	}
	codes := []int{}
	for range 3 {
		code, _ := get(c, base+"/v1/symbols?q=SYN", "")
		codes = append(codes, code)
	}
	if codes[0] != 200 || codes[2] != http.StatusTooManyRequests {
		t.Errorf("reads at 1/s from one address: %v, want 200 first and 429 by the third", codes)
	}

	// A new certificate, then SIGHUP: new handshakes present it.
	pool2 := testcert.Write(t, certFile, keyFile)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "the new certificate to be served", func() bool {
		conn, err := tls.Dial("tcp", p.addr, &tls.Config{RootCAs: pool2})
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
	// A broken file and SIGHUP: the node keeps the certificate it has.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "the failed reload to be logged", func() bool {
		return strings.Contains(p.output(), "TLS reload failed")
	})
	conn, err := tls.Dial("tcp", p.addr, &tls.Config{RootCAs: pool2})
	if err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
	conn.Close()
}
