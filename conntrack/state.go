package conntrack

import "fmt"

// State is an IPVS connection state. The TCP values and their order are
// IPVS's (IP_VS_TCP_S_*); UDP connections are always in StateUDP.
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

var stateNames = [...]string{"NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT",
	"CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK", "UDP"}

// String gives ipvsadm -L -c's name for the state.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// PacketDir says which side a packet comes from, as IPVS's state table
// is indexed: Input is client→server, Output server→client, and InputOnly
// is a client→server packet of a connection whose replies bypass the
// director (DR, TUN).
type PacketDir uint8

const (
	Input PacketDir = iota
	Output
	InputOnly
)

// TCP flag bits as in the header.
const (
	flagFin = 0x01
	flagSyn = 0x02
	flagRst = 0x04
	flagAck = 0x10
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

// tcpStates is IPVS's tcp_states table (ip_vs_proto_tcp.c): for each
// direction and event (syn, fin, ack, rst), the next state indexed by the
// current one.
var tcpStates = [3][4][numTCPStates]State{
	Input: {
		/*        sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA */
		/*syn*/ {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		/*fin*/ {sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW},
		/*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		/*rst*/ {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR},
	},
	Output: {
		/*        sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA */
		/*syn*/ {sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR},
		/*fin*/ {sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW},
		/*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES},
		/*rst*/ {sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL},
	},
	InputOnly: {
		/*        sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA */
		/*syn*/ {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR},
		/*fin*/ {sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW},
		/*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES},
		/*rst*/ {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL},
	},
}

// TCPNext is IPVS's set_tcp_state transition: RST wins, then SYN, FIN,
// ACK (tcp_state_idx); a segment with none of them leaves the state.
func TCPNext(s State, dir PacketDir, flags uint8) State {
	if s >= numTCPStates || dir > InputOnly {
		return s
	}
	var ev int
	switch {
	case flags&flagRst != 0:
		ev = 3
	case flags&flagSyn != 0:
		ev = 0
	case flags&flagFin != 0:
		ev = 1
	case flags&flagAck != 0:
		ev = 2
	default:
		return s
	}
	return tcpStates[dir][ev][s]
}

// Timeouts are per-state timeouts in nanoseconds.
type Timeouts struct {
	TCP [numTCPStates]int64
	UDP int64
}

const second = int64(1e9)

// DefaultTimeouts are IPVS's tcp_timeouts and udp_timeouts.
func DefaultTimeouts() Timeouts {
	var t Timeouts
	t.TCP = [numTCPStates]int64{
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
	}
	t.UDP = 5 * 60 * second
	return t
}

// SetIPVSADM applies ipvsadm --set's three values in seconds (tcp is the
// ESTABLISHED timeout, tcpfin FIN_WAIT's, udp UDP's); zero leaves a value
// unchanged.
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

// IPVSADM returns ipvsadm --set's three values in seconds.
func (t *Timeouts) IPVSADM() (tcp, tcpfin, udp uint32) {
	return uint32(t.TCP[StateEstablished] / second), uint32(t.TCP[StateFinWait] / second), uint32(t.UDP / second)
}

// Timeout returns the timeout of state s.
func (t *Timeouts) Timeout(s State) int64 {
	if s == StateUDP {
		return t.UDP
	}
	if s < numTCPStates {
		return t.TCP[s]
	}
	return t.UDP
}
