package connsync

import (
	"net"
	"net/netip"
	"testing"
)

func TestListenUnicast(t *testing.T) {
	c, err := ListenUnicast(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := c.LocalAddr().(*net.UDPAddr).AddrPort()
	if got.Addr().Unmap() != netip.MustParseAddr("127.0.0.1") || got.Port() == 0 {
		t.Fatalf("bound to %v", got)
	}
	if _, err := ListenUnicast(got); err == nil {
		t.Fatal("a second socket bound the same port")
	}
}
