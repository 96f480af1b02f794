package ipvsadm

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"

	"github.com/uvs-project/uvs/control"
)

// WriteConns prints ipvsadm -L -c (list_conn, print_conn): the
// connection table in the order given, expiry as mm:ss, ports named
// unless opts.Numeric. With opts.PersistentConn the title gains
// ipvsadm's "pe name" and "pe_data" columns; entries never have them,
// as uvs has no persistence engines.
func WriteConns(w io.Writer, conns []control.Conn, opts ListOptions) error {
	var b bytes.Buffer
	b.WriteString("IPVS connection entries\n")
	if opts.PersistentConn {
		fmt.Fprintf(&b, "pro expire %-11s %-18s %-18s %-18s %-16s %s\n",
			"state", "source", "virtual", "destination", "pe name", "pe_data")
	} else {
		fmt.Fprintf(&b, "pro expire %-11s %-18s %-18s %s\n",
			"state", "source", "virtual", "destination")
	}
	for i := range conns {
		c := &conns[i]
		proto := ""
		switch c.Proto {
		case "TCP":
			proto = "tcp"
		case "UDP":
			proto = "udp"
		case "SCTP":
			proto = "sctp"
		}
		virt := c.Virtual
		if !virt.IsValid() && c.FWMark != 0 {
			// IPVS keys fwmark templates by the mark as an IPv4
			// address and port 0.
			m := c.FWMark
			virt = netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}), 0)
		}
		expire := fmt.Sprintf("%02d:%02d", c.Expire/60, c.Expire%60)
		fmt.Fprintf(&b, "%-3s %-6s %-11s %-18s %-18s %s\n", c.Proto, expire, c.State,
			addrPort(c.Source.Addr(), c.Source.Port(), proto, opts.Numeric),
			addrPort(virt.Addr(), virt.Port(), proto, opts.Numeric),
			addrPort(c.Dest.Addr(), c.Dest.Port(), proto, opts.Numeric))
	}
	_, err := w.Write(b.Bytes())
	return err
}
