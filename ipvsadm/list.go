package ipvsadm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/uvs-project/uvs/control"
)

// WriteList prints ipvsadm -L: the version line, the column titles of
// the variant opts selects and every service with its destinations
// (list_all, print_title, print_service_entry in ipvsadm.c).
func WriteList(w io.Writer, info control.Info, svcs []control.Service, opts ListOptions) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "IP Virtual Server version %s (size=%d)\n", info.Version, info.ConnSize)
	writeTitle(&b, opts)
	for _, s := range sortServices(svcs, opts.NoSort) {
		writeEntry(&b, &s, opts, false)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// WriteService prints ipvsadm -L with a service (-t/-u/-f): the column
// titles and that service, without the version line (list_service).
func WriteService(w io.Writer, svc control.Service, opts ListOptions) error {
	var b bytes.Buffer
	writeTitle(&b, opts)
	writeEntry(&b, &svc, opts, false)
	_, err := w.Write(b.Bytes())
	return err
}

// WriteSave prints ipvsadm -S: one -A line per service followed by an
// -a line per destination, sorted, ports named unless numeric (-S -n),
// and then, for a service with FULLNAT local addresses, one
// "--add-laddr ... -z LIP" line per address in the service's order
// (a uvs extension: the LVS-FULLNAT ipvsadm saves none, so its -S | -R
// loses them). ParseRestore reads it back. As in ipvsadm, thresholds
// (-x, -y) are not saved.
func WriteSave(w io.Writer, svcs []control.Service, numeric bool) error {
	var b bytes.Buffer
	opts := ListOptions{Numeric: numeric}
	for _, s := range sortServices(svcs, false) {
		writeEntry(&b, &s, opts, true)
		for _, la := range s.LocalAddrs {
			fmt.Fprintf(&b, "--add-laddr %s -z %s\n", ruleName(&s, numeric), la.Addr)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// WriteLocalAddrs prints the LVS-FULLNAT ipvsadm's -G (--get-laddr):
// list_laddrs_print_title once, then per service "%-20s %-8u \n" with
// the service (always numeric) and its number of local addresses, and
// per address "%-20s %-8s %-20s %-10lu %-10u\n" with the address, its
// port conflicts and its connections. uvs keeps no per-address count of
// port conflicts (the dataplane counts refused connections as
// no_local_port), so CONFLICTS is always 0. Deviations: services are in
// libipvs's sort order, and an fwmark service prints as "FWM  <mark>"
// where the fork prints the kernel's 0.0.0.0:0.
func WriteLocalAddrs(w io.Writer, svcs []control.Service) error {
	var b bytes.Buffer
	for i, s := range sortServices(svcs, false) {
		if i == 0 {
			fmt.Fprintf(&b, "%-20s %-8s %-20s %-10s %-10s\n", "VIP:VPORT", "TOTAL", "LADDR", "CONFLICTS", "CONNS")
		}
		name := fmt.Sprintf("FWM  %d", s.FWMark)
		if s.FWMark == 0 {
			name = addrPort(s.Addr, s.Port, "", true)
		}
		fmt.Fprintf(&b, "%-20s %-8d \n", name, len(s.LocalAddrs))
		for _, la := range s.LocalAddrs {
			fmt.Fprintf(&b, "%-20s %-8s %-20s %-10d %-10d\n", "", "", la.Addr, 0, la.Conns)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// ruleName is how a -S line names the service: "-t addr:port",
// "-u addr:port" or "-f mark".
func ruleName(s *control.Service, numeric bool) string {
	if s.FWMark != 0 {
		return fmt.Sprintf("-f %d", s.FWMark)
	}
	return optionFromProtocol(strings.ToUpper(s.Proto)) + " " + addrPort(s.Addr, s.Port, nameProto(s), numeric)
}

// WriteTimeouts prints ipvsadm -L --timeout.
func WriteTimeouts(w io.Writer, t control.Timeouts) error {
	_, err := fmt.Fprintf(w, "Timeout (tcp tcpfin udp): %d %d %d\n", t.TCP, t.TCPFin, t.UDP)
	return err
}

// writeTitle is print_title.
func writeTitle(b *bytes.Buffer, o ListOptions) {
	const local = "Prot LocalAddress:Port"
	switch {
	case o.Stats:
		fmt.Fprintf(b, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			local, "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case o.Rate:
		fmt.Fprintf(b, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			local, "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	case o.Thresholds:
		fmt.Fprintf(b, "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n",
			local, "Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
	case o.PersistentConn:
		fmt.Fprintf(b, "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n",
			local, "Weight", "PersistConn", "ActiveConn", "InActConn")
	case o.TunInfo:
		b.WriteString("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
	default:
		b.WriteString("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	}
}

// writeEntry is print_service_entry; rule selects the -S form.
func writeEntry(b *bytes.Buffer, s *control.Service, o ListOptions, rule bool) {
	v6 := s.FWMark == 0 && s.Addr.Is6()
	proto := strings.ToUpper(s.Proto)
	np := nameProto(s)
	flags := flagBits(s.SchedFlags)

	var name string
	switch {
	case rule:
		name = ruleName(s, o.Numeric)
	case s.FWMark != 0:
		name = fmt.Sprintf("FWM  %d", s.FWMark)
	default:
		name = fmt.Sprintf("%-4s %s", protocolName(proto), addrPort(s.Addr, s.Port, np, o.Numeric))
		if !v6 && len(name) > 33 {
			name = name[:33]
		}
	}

	netmask, defMask := s.Netmask, defaultNetmaskV4
	if v6 {
		defMask = defaultNetmaskV6
	}
	if netmask == 0 {
		netmask = defMask // omitted from uvsd's JSON: the default
	}
	maskText := func() string {
		if netmask == defMask {
			return ""
		}
		if v6 {
			return strconv.Itoa(netmask)
		}
		return maskString(netmask)
	}

	switch {
	case rule:
		fmt.Fprintf(b, "-A %s -s %s", name, s.Sched)
		if s.Persistent {
			fmt.Fprintf(b, " -p %d", s.Timeout)
			if m := maskText(); m != "" {
				b.WriteString(" -M " + m)
			}
		}
		if flags&flagOps != 0 {
			b.WriteString(" -o")
		}
		if flags&(flagSched1|flagSched2|flagSched3) != 0 {
			b.WriteString(" -b " + schedFlagsText(s.Sched, flags))
		}
	case o.Stats:
		fmt.Fprintf(b, "%-33s", name)
		st := &s.Stats
		largenums(b, o.Exact, st.Conns, st.InPkts, st.OutPkts, st.InBytes, st.OutBytes)
	case o.Rate:
		fmt.Fprintf(b, "%-33s", name)
		st := &s.Stats
		largenums(b, o.Exact, st.CPS, st.InPPS, st.OutPPS, st.InBPS, st.OutBPS)
	default:
		fmt.Fprintf(b, "%s %s", name, s.Sched)
		if flags&(flagSched1|flagSched2|flagSched3) != 0 {
			b.WriteString(" (" + schedFlagsText(s.Sched, flags) + ")")
		}
		if s.Persistent {
			fmt.Fprintf(b, " persistent %d", s.Timeout)
			if m := maskText(); m != "" {
				b.WriteString(" mask " + m)
			}
		}
		if flags&flagOps != 0 {
			b.WriteString(" ops")
		}
	}
	b.WriteByte('\n')

	for _, d := range sortDests(s.Dests, o.NoSort) {
		dname := addrPort(d.Addr, d.Port, np, o.Numeric)
		if !rule && !d.Addr.Is6() && len(dname) > 28 {
			dname = dname[:28]
		}
		st := &d.Stats
		switch {
		case rule:
			fmt.Fprintf(b, "-a %s -r %s %s -w %d", name, dname, fwdSwitch(d.Fwd), d.Weight)
			if d.Fwd == control.FwdTunnel {
				b.WriteString(" --tun-type ipip")
			}
			b.WriteByte('\n')
		case o.Stats:
			fmt.Fprintf(b, "  -> %-28s", dname)
			largenums(b, o.Exact, st.Conns, st.InPkts, st.OutPkts, st.InBytes, st.OutBytes)
			b.WriteByte('\n')
		case o.Rate:
			fmt.Fprintf(b, "  -> %-28s %8d %8d %8d", dname, st.CPS, st.InPPS, st.OutPPS)
			largenums(b, o.Exact, st.InBPS, st.OutBPS)
			b.WriteByte('\n')
		case o.Thresholds:
			fmt.Fprintf(b, "  -> %-28s %-10d %-10d %-10d %-10d\n", dname,
				d.UThreshold, d.LThreshold, d.ActiveConns, d.InactConns)
		case o.PersistentConn:
			fmt.Fprintf(b, "  -> %-28s %-9d %-11d %-10d %-10d\n", dname,
				uint32(d.Weight), d.PersistConns, d.ActiveConns, d.InactConns)
		case o.TunInfo:
			ti := "n/a"
			if d.Fwd == control.FwdTunnel {
				ti = "ipip"
			}
			fmt.Fprintf(b, "  -> %-28s %-7s %-13s %-6d %-10d %-10d\n", dname,
				d.Fwd, ti, d.Weight, d.ActiveConns, d.InactConns)
		default:
			fmt.Fprintf(b, "  -> %-28s %-7s %-6d %-10d %-10d\n", dname,
				d.Fwd, d.Weight, d.ActiveConns, d.InactConns)
		}
	}
}

// largenums is print_largenum for each value: nine columns, numbers of
// 100 million and more in thousands (K), millions (M), billions (G) or
// trillions (T) of eight digits; with --exact the whole number, still
// at least nine columns and always one blank before it.
func largenums(b *bytes.Buffer, exact bool, vs ...uint64) {
	for _, v := range vs {
		switch {
		case exact:
			s := strconv.FormatUint(v, 10)
			w := 9
			if len(s) > 8 {
				w = len(s) + 1
			}
			fmt.Fprintf(b, "%*s", w, s)
		case v < 100_000_000:
			fmt.Fprintf(b, "%9d", v)
		case v < 1_000_000_000:
			fmt.Fprintf(b, "%8dK", v/1_000)
		case v < 100_000_000_000:
			fmt.Fprintf(b, "%8dM", v/1_000_000)
		case v < 100_000_000_000_000:
			fmt.Fprintf(b, "%8dG", v/1_000_000_000)
		default:
			fmt.Fprintf(b, "%8dT", v/1_000_000_000_000)
		}
	}
}

// schedFlagsText is print_sched_flags: the names depend on the scheduler.
func schedFlagsText(sched string, f uint32) string {
	var names []string
	switch sched {
	case "sh", "mh":
		if f&flagSched1 != 0 {
			names = append(names, sched+"-fallback")
		}
		if f&flagSched2 != 0 {
			names = append(names, sched+"-port")
		}
	default:
		if f&flagSched1 != 0 {
			names = append(names, "flag-1")
		}
		if f&flagSched2 != 0 {
			names = append(names, "flag-2")
		}
		if f&flagSched3 != 0 {
			names = append(names, "flag-3")
		}
	}
	return strings.Join(names, ",")
}

// fwdSwitch is fwd_switch, plus uvs's --fullnat.
func fwdSwitch(fwd string) string {
	switch fwd {
	case control.FwdMasq:
		return "-m"
	case control.FwdTunnel:
		return "-i"
	case control.FwdFullNat:
		return "--fullnat"
	}
	return "-g" // Route, Local
}

func protocolName(p string) string {
	switch p {
	case "TCP", "UDP", "SCTP":
		return p
	}
	return "?"
}

func optionFromProtocol(p string) string {
	switch p {
	case "TCP":
		return "-t"
	case "UDP":
		return "-u"
	case "SCTP":
		return "--sctp-service"
	}
	return "--xxx-service"
}

func protoNumber(p string) int {
	switch p {
	case "TCP":
		return 6
	case "UDP":
		return 17
	case "SCTP":
		return 132
	}
	return 0
}

// nameProto is the protocol whose names a service's ports take: TCP for
// fwmark services, whose protocol ipvsadm sets to TCP.
func nameProto(s *control.Service) string {
	if s.FWMark != 0 {
		return fwmarkProtoForName
	}
	switch strings.ToUpper(s.Proto) {
	case "TCP":
		return "tcp"
	case "UDP":
		return "udp"
	case "SCTP":
		return "sctp"
	}
	return ""
}

// addrPort is addrport_to_anyname with addresses always numeric.
func addrPort(a netip.Addr, port uint16, proto string, numeric bool) string {
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
	}
	host := a.String()
	if a.Is6() {
		host = "[" + host + "]"
	}
	if numeric {
		return host + ":" + strconv.Itoa(int(port))
	}
	return host + ":" + portName(port, proto)
}

// sortServices is ipvs_sort_services on a copy.
func sortServices(svcs []control.Service, nosort bool) []control.Service {
	out := slices.Clone(svcs)
	if !nosort {
		msort(out, cmpServices)
	}
	return out
}

// sortDests is ipvs_sort_dests on a copy.
func sortDests(ds []control.Dest, nosort bool) []control.Dest {
	out := slices.Clone(ds)
	if !nosort {
		msort(out, cmpDests)
	}
	return out
}

// cmpServices is libipvs's ipvs_cmp_services: fwmark, family, protocol,
// address, port. Its differences of unsigned 32-bit values are taken
// into an int, so two addresses (or marks) more than 2^31 apart compare
// the wrong way round: 192.168.0.1 sorts before 10.0.0.1. That order is
// what ipvsadm prints, so it is kept.
func cmpServices(x, y *control.Service) int {
	if r := wrapDiff(x.FWMark, y.FWMark); r != 0 {
		return r
	}
	if r := family(x) - family(y); r != 0 {
		return r
	}
	if r := protoNumber(strings.ToUpper(x.Proto)) - protoNumber(strings.ToUpper(y.Proto)); r != 0 {
		return r
	}
	if r := cmpAddr(x.Addr, y.Addr, x.FWMark == 0 && x.Addr.Is6()); r != 0 {
		return r
	}
	return int(x.Port) - int(y.Port)
}

// cmpDests is libipvs's ipvs_cmp_dests: address, port.
func cmpDests(x, y *control.Dest) int {
	if r := cmpAddr(x.Addr, y.Addr, x.Addr.Is6()); r != 0 {
		return r
	}
	return int(x.Port) - int(y.Port)
}

// family is the service's address family as the kernel numbers them.
func family(s *control.Service) int {
	if s.FWMark == 0 && s.Addr.Is6() {
		return 10 // AF_INET6
	}
	return 2 // AF_INET
}

// cmpAddr compares as libipvs does: the four 32-bit words of an IPv6
// address in turn when x is IPv6, else the first word (the IPv4
// address, which leads union nf_inet_addr).
func cmpAddr(x, y netip.Addr, v6 bool) int {
	xw, yw := addrWords(x), addrWords(y)
	n := 1
	if v6 {
		n = 4
	}
	for i := 0; i < n; i++ {
		if r := wrapDiff(xw[i], yw[i]); r != 0 {
			return r
		}
	}
	return 0
}

func addrWords(a netip.Addr) [4]uint32 {
	var w [4]uint32
	switch {
	case a.Is4():
		b := a.As4()
		w[0] = binary.BigEndian.Uint32(b[:])
	case a.Is6():
		b := a.As16()
		for i := range w {
			w[i] = binary.BigEndian.Uint32(b[4*i:])
		}
	}
	return w
}

// wrapDiff is C's (int)(a - b) on unsigned 32-bit values.
func wrapDiff(a, b uint32) int { return int(int32(a - b)) }

// msort is glibc's qsort for arrays of this size (msort_with_tmp): a
// top-down merge sort, halves of n/2 and n-n/2, taking from the left
// run while cmp <= 0. With libipvs's comparators, which are not
// transitive, only the same algorithm gives the same order.
func msort[T any](a []T, cmp func(x, y *T) int) {
	if len(a) < 2 {
		return
	}
	tmp := make([]T, len(a))
	msortRec(a, tmp, cmp)
}

func msortRec[T any](a, tmp []T, cmp func(x, y *T) int) {
	n := len(a)
	if n <= 1 {
		return
	}
	n1 := n / 2
	l, r := a[:n1], a[n1:]
	msortRec(l, tmp, cmp)
	msortRec(r, tmp, cmp)
	k, i, j := 0, 0, 0
	for i < len(l) && j < len(r) {
		if cmp(&l[i], &r[j]) <= 0 {
			tmp[k] = l[i]
			i++
		} else {
			tmp[k] = r[j]
			j++
		}
		k++
	}
	k += copy(tmp[k:], l[i:])
	// What is left of r is already in place.
	copy(a, tmp[:k])
}
