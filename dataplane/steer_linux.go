package dataplane

import (
	"fmt"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// attachSteering installs the steering program on a port's fanout group;
// every port of the group shares it.
func attachSteering(p *port, prog []bpf.RawInstruction) error {
	fp := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	if err := unix.SetsockoptSockFprog(p.fd, unix.SOL_PACKET, unix.PACKET_FANOUT_DATA, &fp); err != nil {
		return fmt.Errorf("setsockopt PACKET_FANOUT_DATA: %w", err)
	}
	return nil
}
