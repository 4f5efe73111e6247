package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Server is a private redis-server process on loopback, for tests that
// stop, restart or reconfigure Redis and so must not use the shared one.
type Server struct {
	Port int
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	out  bytes.Buffer
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Write collects the server's output, for failure messages.
func (s *Server) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Write(b)
}

func (s *Server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Running reports whether the process is still there.
func (s *Server) Running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// serverBinary returns the path of redis-server; without it the test is
// skipped, except under CI=true, where it fails.
func serverBinary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is required under CI=true (run scripts/services.sh): %v", err)
		}
		t.Skipf("no redis-server: %v", err)
	}
	return bin
}

// StartServer starts redis-server on port (0: one free a moment ago) with
// persistence off and args added, waits until it answers PING, and kills
// it when the test ends.
func StartServer(t testing.TB, port int, args ...string) *Server {
	t.Helper()
	bin := serverBinary(t)
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	s, err := startServer(t, bin, port, args...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startServer is StartServer's work; a server that exits or does not
// answer within 10 s is an error.
func startServer(t testing.TB, bin string, port int, args ...string) (*Server, error) {
	s := &Server{Port: port, done: make(chan struct{})}
	s.cmd = exec.Command(bin, append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no"}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s, s
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.Kill)
	rdb := goredis.NewClient(&goredis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer rdb.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if !s.Running() {
			return nil, fmt.Errorf("redis-server on port %d exited:\n%s", port, s.output())
		}
		if rdb.Ping(context.Background()).Err() == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return nil, fmt.Errorf("redis-server on port %d did not answer within 10 s:\n%s", port, s.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
