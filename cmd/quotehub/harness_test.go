package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"quotehub/refresher/upstream/sim"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testNode is a real node (the same wiring as the binary) serving on a
// loopback port.
type testNode struct {
	*node
	t    testing.TB
	addr string
	reg  *prometheus.Registry
	cfg  Config
	stop func() // shuts the node down (once; again when the test ends)
}

// startNode starts a node with test-friendly defaults overridden by env
// (QUOTEHUB_* names) and stops it when the test ends.
func startNode(t testing.TB, env map[string]string) *testNode {
	t.Helper()
	vars := map[string]string{
		"QUOTEHUB_ADDR": "127.0.0.1:0", "QUOTEHUB_ADMIN_ADDR": "", "QUOTEHUB_NODE_ID": "node-test",
		"QUOTEHUB_REFRESH_INTERVAL": "50ms", "QUOTEHUB_LOG_LEVEL": "error", "QUOTEHUB_SIM_EVERY_TICK": "true",
		"QUOTEHUB_DATA_DIR": t.TempDir(),
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := LoadConfig(nil, mapEnv(vars), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	reg := prometheus.NewRegistry()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := build(cfg, &log, reg)
	if err != nil {
		t.Fatal(err)
	}
	n.start(ln)
	tn := &testNode{node: n, t: t, addr: ln.Addr().String(), reg: reg, cfg: cfg}
	tn.stop = sync.OnceFunc(func() { n.shutdown(10*time.Second, &log) })
	t.Cleanup(tn.stop)
	return tn
}

func (n *testNode) url(path string) string { return "http://" + n.addr + path }

func (n *testNode) sim() *sim.Provider { return n.sims[0] }

// metric returns the sum of a metric's samples whose labels include want.
func (n *testNode) metric(name string, want ...string) float64 {
	n.t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		n.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, want) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == want[i] && lp.GetValue() == want[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// wsClient is a real WebSocket client.
type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
	last map[string]uint64 // highest seq seen per symbol
	// snap marks symbols named by a subscribed frame: their next quote is a
	// snapshot, which may repeat the seq the connection holds.
	snap map[string]bool
}

func dialWS(t testing.TB, n *testNode, query string, hdr http.Header) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws://"+n.addr+"/v1/ws"+query, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	conn.SetReadLimit(1 << 24)
	t.Cleanup(func() { conn.CloseNow() })
	return &wsClient{t: t, conn: conn, last: map[string]uint64{}, snap: map[string]bool{}}
}

func (c *wsClient) send(frame string) {
	c.t.Helper()
	if err := c.trySend(frame); err != nil {
		c.t.Fatalf("write %s: %v", short([]byte(frame)), err)
	}
}

func (c *wsClient) trySend(frame string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.conn.Write(ctx, websocket.MessageText, []byte(frame))
}

// short keeps failure messages readable.
func short(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + fmt.Sprintf("… (%d bytes)", len(b))
	}
	return string(b)
}

// frame is a decoded server frame.
type frame struct {
	Type     string           `json:"type"`
	ID       json.RawMessage  `json:"id"`
	Node     string           `json:"node"`
	Session  string           `json:"session"`
	User     string           `json:"user"`
	Limits   map[string]int   `json:"limits"`
	Symbols  []string         `json:"symbols"`
	Rejected []map[string]any `json:"rejected"`
	Quotes   []map[string]any `json:"quotes"`
	Code     string           `json:"code"`
	Message  string           `json:"message"`
	Time     int64            `json:"time"`
	raw      []byte
}

// read returns the next frame, or the read error; quotes frames are checked
// against the protocol's seq rules as they pass.
func (c *wsClient) read(timeout time.Duration) (frame, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	typ, data, err := c.conn.Read(ctx)
	if err != nil {
		return frame{}, err
	}
	if typ != websocket.MessageText {
		c.t.Fatalf("server sent a %v frame", typ)
	}
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		c.t.Fatalf("frame %s: %v", short(data), err)
	}
	f.raw = data
	if f.Type == "subscribed" {
		for _, s := range f.Symbols {
			c.snap[s] = true
		}
	}
	if f.Type == "quotes" {
		seen := map[string]bool{}
		for _, q := range f.Quotes {
			sym := q["symbol"].(string)
			seq := uint64(q["seq"].(float64))
			if seen[sym] {
				c.t.Errorf("one frame holds two quotes of %s: %s", sym, short(data))
			}
			seen[sym] = true
			if seq < c.last[sym] || (seq == c.last[sym] && !c.snap[sym]) {
				c.t.Errorf("%s: seq %d after %d", sym, seq, c.last[sym])
			}
			delete(c.snap, sym)
			c.last[sym] = seq
		}
	}
	return f, nil
}

func (c *wsClient) must(timeout time.Duration) frame {
	c.t.Helper()
	f, err := c.read(timeout)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

// next returns the next frame of type typ, skipping quotes frames.
func (c *wsClient) next(typ string) frame {
	c.t.Helper()
	for {
		f := c.must(5 * time.Second)
		if f.Type == typ {
			return f
		}
		if f.Type != "quotes" {
			c.t.Fatalf("got %s while waiting for %s: %s", f.Type, typ, short(f.raw))
		}
	}
}

// closeStatus reads until the connection ends and returns its close code.
func (c *wsClient) closeStatus(timeout time.Duration) websocket.StatusCode {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		_, err := c.read(time.Until(deadline))
		if err != nil {
			return websocket.CloseStatus(err)
		}
	}
	c.t.Fatalf("connection still open after %s", timeout)
	return 0
}

// sseEvent is one parsed SSE event (or comment).
type sseEvent struct {
	event, id, data, comment string
	retry                    int
}

type sseStream struct {
	t      *testing.T
	resp   *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
	events chan sseEvent
	done   chan struct{}
}

func openSSE(t *testing.T, n *testNode, query string, hdr http.Header) *sseStream {
	t.Helper()
	return openStream(t, n, "/v1/sse"+query, hdr)
}

// openStream opens the SSE stream at path (with its query).
func openStream(t *testing.T, n *testNode, path string, hdr http.Header) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", n.url(path), nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &sseStream{t: t, resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel, events: make(chan sseEvent, 1024), done: make(chan struct{})}
	if resp.StatusCode == http.StatusOK {
		go s.pump()
	} else {
		close(s.done)
	}
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
	<-s.done
}

// pump parses the stream into events until it ends.
func (s *sseStream) pump() {
	defer close(s.done)
	defer close(s.events)
	var ev sseEvent
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev != (sseEvent{}) {
				s.events <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
			s.events <- sseEvent{comment: strings.TrimSpace(line[1:])}
		default:
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "event":
				ev.event = v
			case "id":
				ev.id = v
			case "data":
				ev.data = v
			case "retry":
				ev.retry, _ = strconv.Atoi(v)
			default:
				s.t.Errorf("unexpected SSE line %q", line)
			}
		}
	}
}

func (s *sseStream) next(timeout time.Duration) (sseEvent, bool) {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		return ev, ok
	case <-time.After(timeout):
		s.t.Fatalf("no SSE event within %s", timeout)
		return sseEvent{}, false
	}
}

func getJSON(t *testing.T, url string, into any) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %s: %v", url, body, err)
		}
	}
	return resp
}

// apiError is the protocol's HTTP error body.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func symbolsFrame(op, id string, syms []string) string {
	b, _ := json.Marshal(map[string]any{"op": op, "id": id, "symbols": syms})
	return string(b)
}

// decodeFrame decodes a server frame; it returns the decoding error.
func decodeFrame(data []byte, f *frame) error { return json.Unmarshal(data, f) }

// decodeBody decodes a JSON response body.
func decodeBody(resp *http.Response, into any) error { return json.NewDecoder(resp.Body).Decode(into) }
