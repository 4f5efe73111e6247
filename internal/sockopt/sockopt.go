// Package sockopt sets socket options before a connection is made, for
// the tests and tools that play slow clients.
package sockopt

import "syscall"

// RcvBuf returns a net.Dialer Control function that sets SO_RCVBUF to size
// on the socket before it connects (Linux doubles what is asked), so a
// client that reads slowly backs up to the server sooner.
func RcvBuf(size int) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		}); err != nil {
			return err
		}
		return serr
	}
}

// RcvBufOf returns the SO_RCVBUF the kernel granted a socket.
func RcvBufOf(c syscall.RawConn) (int, error) {
	var v int
	var gerr error
	if err := c.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); err != nil {
		return 0, err
	}
	return v, gerr
}
