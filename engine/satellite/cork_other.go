//go:build !linux

package satellite

import "net"

// cork is a no-op where TCP_CORK does not exist: the frames of a pair are
// still written back to back.
func cork(net.Conn, bool) {}
