package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"quotehub/store/redis/redistest"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// quotehubBinary builds the real binary once per test run.
func quotehubBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "quotehub-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "quotehub")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is one quotehub process.
type proc struct {
	t    *testing.T
	name string
	addr string
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
	mu   sync.Mutex
}

// startProc runs the binary with env (QUOTEHUB_* on top of test defaults)
// and waits until it answers /healthz. It is stopped when the test ends.
func startProc(t *testing.T, name string, env map[string]string) *proc {
	t.Helper()
	bin := quotehubBinary(t)
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	vars := map[string]string{
		"QUOTEHUB_ADDR": addr, "QUOTEHUB_ADMIN_ADDR": "", "QUOTEHUB_NODE_ID": name, "QUOTEHUB_LOG_LEVEL": "warn",
		"QUOTEHUB_LOG_FORMAT": "json", "QUOTEHUB_SHUTDOWN_TIMEOUT": "5s",
		"QUOTEHUB_DATA_DIR": t.TempDir(),
	}
	for k, v := range env {
		vars[k] = v
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{t: t, name: name, addr: addr, cmd: cmd, out: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p, p
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited at start:\n%s", name, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within 20 s:\n%s", name, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// stop sends SIGTERM and waits; SIGKILL after 10 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s did not exit within 10 s of SIGTERM", p.name)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill9 kills the process the hard way.
func (p *proc) kill9() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// node returns a testNode view of the process for the HTTP/WS helpers.
func (p *proc) node() *testNode { return &testNode{t: p.t, addr: p.addr} } //nolint:unused // a helper for tests that drive a process as they would an in-process node

// scrape returns the sum of a metric's samples whose label set includes
// want (name{...} value lines of the text format).
func (p *proc) scrape(name string, want ...string) float64 {
	p.t.Helper()
	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		p.t.Fatalf("%s /metrics: %v", p.name, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	var sum float64
	for _, line := range strings.Split(buf.String(), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			ok = ok && strings.Contains(line, want[i]+`="`+want[i+1]+`"`)
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err == nil {
			sum += f
		}
	}
	return sum
}

// startRedis starts a private redis-server (on port, 0: a free one) for
// tests that stop and restart Redis, so they never disturb the shared one.
func startRedis(t *testing.T, port int) *redistest.Server {
	t.Helper()
	return redistest.StartServer(t, port)
}

// sharedRedis returns the URL of the Redis the tests share, a fresh prefix
// and a client; the prefix's keys are deleted when the test ends.
func sharedRedis(t testing.TB) (url, prefix string, rdb *goredis.Client) {
	t.Helper()
	rdb, prefix = redistest.Open(t)
	return "redis://" + redistest.Addr() + "/0", prefix, rdb
}
