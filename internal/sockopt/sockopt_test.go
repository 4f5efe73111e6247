package sockopt

import (
	"net"
	"testing"
)

func TestRcvBuf(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Control: RcvBuf(8192)}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	got, err := RcvBufOf(raw)
	if err != nil || got != 2*8192 { // Linux doubles the request for its bookkeeping
		t.Errorf("SO_RCVBUF = %d, %v; want 16384", got, err)
	}
}
