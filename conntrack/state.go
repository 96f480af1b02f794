package conntrack

import "strconv"

// State is an IPVS connection state. The TCP values and their order are
// IPVS's (IP_VS_TCP_S_*, ip_vs_proto_tcp.c); UDP connections are always
// in StateUDP (IP_VS_UDP_S_NORMAL, which ipvsadm prints as "UDP").
type State uint8

const (
	StateNone State = iota
	StateEstablished
	StateSynSent
	StateSynRecv
	StateFinWait
	StateTimeWait
	StateClose
	StateCloseWait
	StateLastAck
	StateListen
	StateSynAck
	numTCPStates
	StateUDP = numTCPStates
)

var stateNames = [...]string{
	StateNone:        "NONE",
	StateEstablished: "ESTABLISHED",
	StateSynSent:     "SYN_SENT",
	StateSynRecv:     "SYN_RECV",
	StateFinWait:     "FIN_WAIT",
	StateTimeWait:    "TIME_WAIT",
	StateClose:       "CLOSE",
	StateCloseWait:   "CLOSE_WAIT",
	StateLastAck:     "LAST_ACK",
	StateListen:      "LISTEN",
	StateSynAck:      "SYNACK",
	StateUDP:         "UDP",
}

// String gives the name ipvsadm -L -c prints for the state.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// PacketDir says which side a packet comes from, as IPVS's state table
// is indexed (IP_VS_DIR_*): Input is client→server, Output is
// server→client, and InputOnly is client→server for a connection whose
// replies bypass the director (DR, TUN).
type PacketDir uint8

const (
	Input PacketDir = iota
	Output
	InputOnly
	numPacketDirs
)

// TCP flag bits, as in the TCP header's flags byte.
const (
	flagFin = 0x01
	flagSyn = 0x02
	flagRst = 0x04
	flagAck = 0x10
)

// Events of the state table, in the table's row order.
const (
	evSyn = iota
	evFin
	evAck
	evRst
	numEvents
)

const (
	sNO = StateNone
	sES = StateEstablished
	sSS = StateSynSent
	sSR = StateSynRecv
	sFW = StateFinWait
	sTW = StateTimeWait
	sCL = StateClose
	sCW = StateCloseWait
	sLA = StateLastAck
	sLI = StateListen
	sSA = StateSynAck
)

// tcpStates is IPVS's tcp_states table (the default one, not the
// secure_tcp tcp_states_dos): for each direction and event, the next
// state indexed by the current one. It is the table of Linux ≥ 3.12,
// where an ACK in state NONE (a connection picked up mid-stream) gives
// ESTABLISHED rather than CLOSE.
var tcpStates = [numPacketDirs][numEvents][numTCPStates]State{
	Input: {
		/*         sNO  sES  sSS  sSR  sFW  sTW  sCL  sCW  sLA  sLI  sSA */
		evSyn: {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		evFin: {sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW},
		evAck: {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		evRst: {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR},
	},
	Output: {
		/*         sNO  sES  sSS  sSR  sFW  sTW  sCL  sCW  sLA  sLI  sSA */
		evSyn: {sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR},
		evFin: {sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW},
		evAck: {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES},
		evRst: {sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL},
	},
	InputOnly: {
		/*         sNO  sES  sSS  sSR  sFW  sTW  sCL  sCW  sLA  sLI  sSA */
		evSyn: {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		evFin: {sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW},
		evAck: {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		evRst: {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL},
	},
}

// TCPNext is IPVS's set_tcp_state transition for a segment with the
// given flags seen in direction dir. The event is chosen as
// tcp_state_idx does: RST wins, then SYN, FIN, ACK. A segment with none
// of the four moves the connection to CLOSE, as the kernel does
// (set_tcp_state starts from IP_VS_TCP_S_CLOSE and keeps it when
// tcp_state_idx finds no event). A state that is not a TCP state, or an
// unknown direction, is returned unchanged.
func TCPNext(s State, dir PacketDir, flags uint8) State {
	if s >= numTCPStates || dir >= numPacketDirs {
		return s
	}
	var ev int
	switch {
	case flags&flagRst != 0:
		ev = evRst
	case flags&flagSyn != 0:
		ev = evSyn
	case flags&flagFin != 0:
		ev = evFin
	case flags&flagAck != 0:
		ev = evAck
	default:
		return StateClose
	}
	return tcpStates[dir][ev][s]
}

// Timeouts are per-state timeouts in nanoseconds: IPVS's tcp_timeouts
// and udp_timeouts tables for one network namespace.
type Timeouts struct {
	TCP [numTCPStates]int64
	UDP int64
}

const second = int64(1e9)

// DefaultTimeouts returns IPVS's defaults (ip_vs_proto_tcp.c
// tcp_timeouts, ip_vs_proto_udp.c udp_timeouts).
func DefaultTimeouts() Timeouts {
	return Timeouts{
		TCP: [numTCPStates]int64{
			StateNone:        2 * second,
			StateEstablished: 15 * 60 * second,
			StateSynSent:     2 * 60 * second,
			StateSynRecv:     1 * 60 * second,
			StateFinWait:     2 * 60 * second,
			StateTimeWait:    2 * 60 * second,
			StateClose:       10 * second,
			StateCloseWait:   60 * second,
			StateLastAck:     30 * second,
			StateListen:      2 * 60 * second,
			StateSynAck:      120 * second,
		},
		UDP: 5 * 60 * second,
	}
}

// SetIPVSADM applies ipvsadm --set tcp tcpfin udp, in seconds, as
// ip_vs_set_timeout does: tcp is the ESTABLISHED timeout, tcpfin the
// FIN_WAIT timeout and udp the UDP timeout; zero leaves a value as it is.
// Connections keep their current timer until their next packet.
func (t *Timeouts) SetIPVSADM(tcp, tcpfin, udp uint32) {
	if tcp != 0 {
		t.TCP[StateEstablished] = int64(tcp) * second
	}
	if tcpfin != 0 {
		t.TCP[StateFinWait] = int64(tcpfin) * second
	}
	if udp != 0 {
		t.UDP = int64(udp) * second
	}
}

// IPVSADM returns the three values ipvsadm -L --timeout prints, in
// seconds.
func (t *Timeouts) IPVSADM() (tcp, tcpfin, udp uint32) {
	return uint32(t.TCP[StateEstablished] / second), uint32(t.TCP[StateFinWait] / second), uint32(t.UDP / second)
}

// Timeout returns the timeout of state s; StateUDP, and anything that is
// not a TCP state, gets the UDP timeout.
func (t *Timeouts) Timeout(s State) int64 {
	if s < numTCPStates {
		return t.TCP[s]
	}
	return t.UDP
}
