package conntrack

import (
	"strings"
	"testing"
)

// kernelTable is IPVS's tcp_states (net/netfilter/ipvs/ip_vs_proto_tcp.c,
// Linux ≥ 3.12), transcribed row by row as the kernel writes it: per
// direction, the rows syn, fin, ack, rst; per row, the next state for the
// current states sNO sES sSS sSR sFW sTW sCL sCW sLA sLI sSA.
var kernelTable = map[PacketDir][4]string{
	Input: {
		"SR ES ES SR SR SR SR SR SR SR SR",
		"CL CW SS TW TW TW CL CW LA LI TW",
		"ES ES SS ES FW TW CL CW CL LI ES",
		"CL CL CL SR CL CL CL CL LA LI SR",
	},
	Output: {
		"SS ES SS SR SS SS SS SS SS LI SR",
		"TW FW SS TW FW TW CL TW LA LI TW",
		"ES ES SS ES FW TW CL CW LA ES ES",
		"CL CL SS CL CL TW CL CL CL CL CL",
	},
	InputOnly: {
		"SR ES ES SR SR SR SR SR SR SR SR",
		"CL FW SS TW FW TW CL CW LA LI TW",
		"ES ES SS ES FW TW CL CW CL LI ES",
		"CL CL CL SR CL CL CL CL LA LI CL",
	},
}

// kernelNames maps the table's abbreviations to ipvsadm's state names.
var kernelNames = map[string]string{
	"NO": "NONE", "ES": "ESTABLISHED", "SS": "SYN_SENT", "SR": "SYN_RECV",
	"FW": "FIN_WAIT", "TW": "TIME_WAIT", "CL": "CLOSE", "CW": "CLOSE_WAIT",
	"LA": "LAST_ACK", "LI": "LISTEN", "SA": "SYNACK",
}

const (
	flagPsh = 0x08
	flagUrg = 0x20
	flagEce = 0x40
	flagCwr = 0x80
)

// eventFlags are flag sets that select each row (tcp_state_idx: RST
// first, then SYN, FIN, ACK), other bits mixed in.
var eventFlags = [4][]uint8{
	{flagSyn, flagSyn | flagAck, flagSyn | flagFin, flagSyn | flagFin | flagAck | flagPsh, flagSyn | flagEce | flagCwr},
	{flagFin, flagFin | flagAck, flagFin | flagPsh | flagAck | flagUrg},
	{flagAck, flagAck | flagPsh, flagAck | flagUrg, flagAck | flagEce},
	{flagRst, flagRst | flagAck, flagRst | flagSyn, flagRst | flagFin, flagRst | flagSyn | flagFin | flagAck},
}

func TestTCPNextKernelTable(t *testing.T) {
	dirNames := map[PacketDir]string{Input: "INPUT", Output: "OUTPUT", InputOnly: "INPUT-ONLY"}
	rowNames := [4]string{"syn", "fin", "ack", "rst"}
	for dir, rows := range kernelTable {
		for ev, row := range rows {
			next := strings.Fields(row)
			if len(next) != int(numTCPStates) {
				t.Fatalf("%s %s: %d columns", dirNames[dir], rowNames[ev], len(next))
			}
			for s := StateNone; s < numTCPStates; s++ {
				want := kernelNames[next[s]]
				for _, f := range eventFlags[ev] {
					if got := TCPNext(s, dir, f).String(); got != want {
						t.Errorf("%s %s (flags %#02x) from %v: got %s, want %s", dirNames[dir], rowNames[ev], f, s, got, want)
					}
				}
			}
		}
	}
}

// TestTCPNextNoEvent: a segment with none of RST, SYN, FIN, ACK moves
// the connection to CLOSE (set_tcp_state's initial new_state).
func TestTCPNextNoEvent(t *testing.T) {
	for _, f := range []uint8{0, flagPsh, flagUrg, flagEce | flagCwr, flagPsh | flagUrg | flagEce | flagCwr} {
		for dir := Input; dir < numPacketDirs; dir++ {
			for s := StateNone; s < numTCPStates; s++ {
				if got := TCPNext(s, dir, f); got != StateClose {
					t.Errorf("flags %#02x dir %d from %v: got %v, want CLOSE", f, dir, s, got)
				}
			}
		}
	}
}

func TestTCPNextOutOfRange(t *testing.T) {
	if got := TCPNext(StateUDP, Input, flagSyn); got != StateUDP {
		t.Errorf("UDP state changed to %v", got)
	}
	if got := TCPNext(StateEstablished, numPacketDirs, flagFin); got != StateEstablished {
		t.Errorf("unknown direction changed state to %v", got)
	}
}

func TestStateString(t *testing.T) {
	want := []string{"NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT",
		"CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK", "UDP"}
	for s, w := range want {
		if got := State(s).String(); got != w {
			t.Errorf("State(%d) = %q, want %q", s, got, w)
		}
	}
	if got := State(200).String(); got != "State(200)" {
		t.Errorf("State(200) = %q", got)
	}
}

// TestDefaultTimeouts checks IPVS's defaults: tcp_timeouts in
// ip_vs_proto_tcp.c and udp_timeouts in ip_vs_proto_udp.c.
func TestDefaultTimeouts(t *testing.T) {
	to := DefaultTimeouts()
	for _, tc := range []struct {
		s    State
		secs int64
	}{
		{StateNone, 2}, {StateEstablished, 15 * 60}, {StateSynSent, 2 * 60}, {StateSynRecv, 60},
		{StateFinWait, 2 * 60}, {StateTimeWait, 2 * 60}, {StateClose, 10}, {StateCloseWait, 60},
		{StateLastAck, 30}, {StateListen, 2 * 60}, {StateSynAck, 120}, {StateUDP, 5 * 60},
	} {
		if got := to.Timeout(tc.s); got != tc.secs*second {
			t.Errorf("%v: %d ns, want %d s", tc.s, got, tc.secs)
		}
	}
	if tcp, fin, udp := to.IPVSADM(); tcp != 900 || fin != 120 || udp != 300 {
		t.Errorf("ipvsadm -L --timeout: %d %d %d, want 900 120 300", tcp, fin, udp)
	}
}

// TestSetIPVSADM: ipvsadm --set tcp tcpfin udp sets the ESTABLISHED,
// FIN_WAIT and UDP timeouts; 0 leaves a value alone; nothing else moves.
func TestSetIPVSADM(t *testing.T) {
	for _, tc := range []struct {
		tcp, fin, udp       uint32
		wantTCP, wantFin, w uint32
	}{
		{0, 0, 0, 900, 120, 300},
		{10, 20, 30, 10, 20, 30},
		{7200, 0, 0, 7200, 120, 300},
		{0, 5, 0, 900, 5, 300},
		{0, 0, 1, 900, 120, 1},
	} {
		to := DefaultTimeouts()
		to.SetIPVSADM(tc.tcp, tc.fin, tc.udp)
		if a, b, c := to.IPVSADM(); a != tc.wantTCP || b != tc.wantFin || c != tc.w {
			t.Errorf("--set %d %d %d: got %d %d %d", tc.tcp, tc.fin, tc.udp, a, b, c)
		}
		def := DefaultTimeouts()
		for s := StateNone; s < numTCPStates; s++ {
			if s != StateEstablished && s != StateFinWait && to.TCP[s] != def.TCP[s] {
				t.Errorf("--set %d %d %d changed %v", tc.tcp, tc.fin, tc.udp, s)
			}
		}
	}
}

// TestAdvanceCounting walks connections through Advance and checks the
// state, IPVS's active/inactive rule (a connection starts inactive, is
// active exactly while ESTABLISHED; UDP never is) and the timer.
func TestAdvanceCounting(t *testing.T) {
	to := DefaultTimeouts()
	to.SetIPVSADM(3600, 30, 45)
	type step struct {
		dir      PacketDir
		flags    uint8
		state    State
		was, is  bool
		timeoutS int64
	}
	for _, tc := range []struct {
		name  string
		proto uint8
		flags uint16
		steps []step
	}{
		{"NAT client closes", 6, 0, []step{
			{Input, flagSyn, StateSynRecv, false, false, 60},
			{Output, flagSyn | flagAck, StateSynRecv, false, false, 60},
			{Input, flagAck, StateEstablished, false, true, 3600},
			{Output, flagAck | flagPsh, StateEstablished, true, true, 3600},
			{Input, flagFin | flagAck, StateCloseWait, true, false, 60},
			{Output, flagAck, StateCloseWait, false, false, 60},
			{Output, flagFin | flagAck, StateTimeWait, false, false, 120},
			{Input, flagAck, StateTimeWait, false, false, 120},
		}},
		{"NAT server closes", 6, 0, []step{
			{Input, flagSyn, StateSynRecv, false, false, 60},
			{Input, flagAck, StateEstablished, false, true, 3600},
			{Output, flagFin | flagAck, StateFinWait, true, false, 30},
			{Input, flagAck, StateFinWait, false, false, 30},
			{Input, flagFin | flagAck, StateTimeWait, false, false, 120},
		}},
		{"reset while established", 6, 0, []step{
			{Input, flagSyn, StateSynRecv, false, false, 60},
			{Input, flagAck, StateEstablished, false, true, 3600},
			{Output, flagRst, StateClose, true, false, 10},
			{Input, flagSyn, StateSynRecv, false, false, 60},
		}},
		{"segment without flags closes", 6, 0, []step{
			{Input, flagSyn, StateSynRecv, false, false, 60},
			{Input, flagAck, StateEstablished, false, true, 3600},
			{Input, flagPsh, StateClose, true, false, 10},
		}},
		{"DR input only", 6, 0, []step{
			{InputOnly, flagSyn, StateSynRecv, false, false, 60},
			{InputOnly, flagAck, StateEstablished, false, true, 3600},
			{InputOnly, flagFin | flagAck, StateFinWait, true, false, 30},
			{InputOnly, flagAck, StateFinWait, false, false, 30},
		}},
		{"NOOUTPUT reads input as input-only", 6, FlagNoOutput, []step{
			{Input, flagSyn, StateSynRecv, false, false, 60},
			{Input, flagAck, StateEstablished, false, true, 3600},
			{Input, flagFin | flagAck, StateFinWait, true, false, 30}, // INPUT would say CLOSE_WAIT
		}},
		{"NOOUTPUT cleared by an output packet", 6, FlagNoOutput, []step{
			{Input, flagSyn, StateSynRecv, false, false, 60},
			{Output, flagSyn | flagAck, StateSynRecv, false, false, 60},
			{Input, flagAck, StateEstablished, false, true, 3600},
			{Input, flagFin | flagAck, StateCloseWait, true, false, 60}, // INPUT table again
		}},
		{"UDP stays inactive", 17, 0, []step{
			{Input, 0, StateUDP, false, false, 45},
			{Output, flagSyn | flagAck, StateUDP, false, false, 45},
			{Input, flagRst, StateUDP, false, false, 45},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Conn{Orig: Tuple{Proto: tc.proto}, Flags: tc.flags}
			c.Init(0, &to)
			if !c.Inactive() {
				t.Fatal("new connection not inactive (IP_VS_CONN_F_INACTIVE)")
			}
			if want := map[uint8]State{6: StateNone, 17: StateUDP}[tc.proto]; c.State != want || c.Expires != to.Timeout(want) {
				t.Fatalf("Init: state %v expires %d", c.State, c.Expires)
			}
			for i, st := range tc.steps {
				now := int64(i+1) * 1000
				was, is := c.Advance(st.dir, st.flags, now, &to)
				if c.State != st.state || was != st.was || is != st.is || c.Inactive() == is {
					t.Fatalf("step %d: state %v was %v is %v inactive %v; want %v %v %v", i, c.State, was, is, c.Inactive(), st.state, st.was, st.is)
				}
				if c.Expires != now+st.timeoutS*second {
					t.Fatalf("step %d: expires %d, want now+%ds", i, c.Expires, st.timeoutS)
				}
			}
		})
	}
}

// TestAdvanceCountsBalance drives random packets through many
// connections and checks that a destination's counts kept from Advance's
// reports always equal the connections' flags.
func TestAdvanceCountsBalance(t *testing.T) {
	to := DefaultTimeouts()
	conns := make([]Conn, 64)
	active, inactive := 0, 0
	for i := range conns {
		conns[i].Orig.Proto = []uint8{6, 17}[i%2]
		conns[i].Init(0, &to)
		inactive++
	}
	seed := uint32(1)
	for range 100000 {
		seed = seed*1664525 + 1013904223
		c := &conns[seed>>8%uint32(len(conns))]
		was, is := c.Advance(PacketDir(seed>>16%3), uint8(seed>>24), 1, &to)
		if was != is {
			if is {
				active, inactive = active+1, inactive-1
			} else {
				active, inactive = active-1, inactive+1
			}
		}
	}
	n := 0
	for i := range conns {
		if !conns[i].Inactive() {
			n++
			if conns[i].State != StateEstablished {
				t.Errorf("active in state %v", conns[i].State)
			}
		}
	}
	if n != active || len(conns)-n != inactive {
		t.Fatalf("counts %d/%d, flags say %d/%d", active, inactive, n, len(conns)-n)
	}
}
