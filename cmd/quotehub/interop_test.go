package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// interopResult is what an independent client reports of its exchanges.
type interopResult struct {
	Welcome      map[string]any `json:"welcome"`
	Subscribed   map[string]any `json:"subscribed"`
	QuoteSymbols []string       `json:"quote_symbols"`
	R1           struct {
		Type     string   `json:"type"`
		Symbols  []string `json:"symbols"`
		Rejected []struct {
			Symbol, Code string
		} `json:"rejected"`
	} `json:"r1"`
	Pong      map[string]any `json:"pong"`
	LibPong   bool           `json:"lib_pong"`
	R2        map[string]any `json:"r2"`
	CloseCode int            `json:"close_code"`
}

// TestInteropClients: WebSocket clients written by others — Python's
// websockets and Node's ws, installed by scripts/clients.sh — subscribe,
// get quotes, ping at both levels, send a message in fragments and close
// with the node. Outside CI a missing client skips its subtest.
func TestInteropClients(t *testing.T) {
	dir, err := filepath.Abs("testdata/interop")
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, nil)
	for _, c := range []struct {
		name  string
		probe []string // must succeed for the client to be there
		run   []string
	}{
		{"python-websockets", []string{"/usr/bin/python3", "-c", "import websockets"}, []string{"/usr/bin/python3", filepath.Join(dir, "client.py")}},
		{"node-ws", []string{"node", "-e", "require('" + filepath.Join(dir, "node_modules", "ws") + "')"}, []string{"node", filepath.Join(dir, "client.js")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := exec.Command(c.probe[0], c.probe[1:]...).Run(); err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatalf("the %s client is not installed (%v): scripts/clients.sh installs it", c.name, err)
				}
				t.Skipf("the %s client is not installed (%v): run scripts/clients.sh", c.name, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, c.run[0], append(c.run[1:], "ws://"+n.addr)...)
			out, err := cmd.Output()
			if err != nil {
				var stderr []byte
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = ee.Stderr
				}
				t.Fatalf("%s client: %v\n%s\n%s", c.name, err, out, stderr)
			}
			var r interopResult
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("%s client printed %q: %v", c.name, out, err)
			}
			if r.Welcome["type"] != "welcome" || r.Welcome["node"] != "node-test" {
				t.Errorf("first frame %v, want the welcome", r.Welcome)
			}
			if r.Subscribed["type"] != "subscribed" {
				t.Errorf("second frame %v, want subscribed", r.Subscribed)
			}
			if !slices.Contains(r.QuoteSymbols, "KRW-BTC") {
				t.Errorf("quotes frame of %v, want KRW-BTC", r.QuoteSymbols)
			}
			if r.R1.Type != "subscribed" || !slices.Equal(r.R1.Symbols, []string{"KRW-ETH"}) || len(r.R1.Rejected) != 1 ||
				r.R1.Rejected[0].Symbol != "NOPE!" || r.R1.Rejected[0].Code != "invalid_symbol" {
				t.Errorf("reply to r1 %+v, want KRW-ETH subscribed and NOPE! rejected as invalid_symbol", r.R1)
			}
			if r.Pong["type"] != "pong" || r.Pong["id"] != float64(7) {
				t.Errorf("protocol pong %v, want id 7", r.Pong)
			}
			if !r.LibPong {
				t.Error("no pong to the client's WebSocket ping")
			}
			if r.R2["type"] != "unsubscribed" {
				t.Errorf("reply to the fragmented r2 %v, want unsubscribed", r.R2)
			}
			if r.CloseCode != 1000 {
				t.Errorf("close code %d, want the client's 1000 echoed", r.CloseCode)
			}
		})
	}
}
