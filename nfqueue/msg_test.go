package nfqueue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"syscall"
	"testing"

	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/internal/seedcorpus"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// be32, be16 encode big-endian attribute values for the independent
// encoder.
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// pktHdr is an NFQA_PACKET_HDR value.
func pktHdr(id uint32, proto uint16, hook uint8) []byte {
	return append(binary.BigEndian.AppendUint16(be32(id), proto), hook)
}

// hwAddr is an NFQA_HWADDR value.
func hwAddr(addrLen uint16, mac ...byte) []byte {
	v := append(be16(addrLen), 0, 0)
	v = append(v, mac...)
	for len(v) < 12 {
		v = append(v, 0)
	}
	return v
}

var testIP = []byte{0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 5, 5, 0x13, 0x88, 0x14, 0xe9, 0, 8, 0, 0}

// packetMsg builds an NFQNL_MSG_PACKET message with vishvananda/netlink's
// encoder, independently of this package's builders.
func packetMsg(attrs ...*nl.RtAttr) []byte {
	req := nl.NewNetlinkRequest(msgPacket, 0)
	req.Seq = 0
	req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.AF_INET, Version: 0, ResId: 0x1092})
	for _, a := range attrs {
		req.AddData(a)
	}
	return req.Serialize()
}

// goodAttrs are the attributes of a typical queued packet, as Linux
// sends them (with some this package ignores).
func goodAttrs() []*nl.RtAttr {
	return []*nl.RtAttr{
		nl.NewRtAttr(attrPacketHdr, pktHdr(0x01020304, 0x0800, 0)),
		nl.NewRtAttr(attrMark, be32(7)),
		nl.NewRtAttr(4, make([]byte, 16)), // NFQA_TIMESTAMP
		nl.NewRtAttr(attrIfIndexIn, be32(5)),
		nl.NewRtAttr(attrHwAddr, hwAddr(6, 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee)),
		nl.NewRtAttr(attrPayload, testIP),
		nl.NewRtAttr(13, be32(28)), // NFQA_CAP_LEN
	}
}

func TestParsePacket(t *testing.T) {
	good := packetMsg(goodAttrs()...)
	var p Packet
	if err := ParsePacket(good, &p); err != nil {
		t.Fatal(err)
	}
	want := Packet{ID: 0x01020304, HwProto: 0x0800, Hook: 0, Mark: 7, InIf: 5,
		HwAddr: [6]byte{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}, HasHwAddr: true}
	if got := p; got.ID != want.ID || got.HwProto != want.HwProto || got.Hook != want.Hook || got.Mark != want.Mark ||
		got.InIf != want.InIf || got.HwAddr != want.HwAddr || got.HasHwAddr != want.HasHwAddr {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if !bytes.Equal(p.Payload, testIP) || cap(p.Payload) != len(p.Payload) {
		t.Errorf("payload %x (cap %d), want %x with no spare capacity", p.Payload, cap(p.Payload), testIP)
	}
	// The payload aliases the message, no copy.
	if &p.Payload[0] != &good[bytes.Index(good, testIP)] {
		t.Error("payload does not alias the message")
	}

	// Flag bits in the type are ignored; absent optional attributes
	// read as zero; trailing bytes past nlmsg_len are ignored.
	minimal := packetMsg(
		nl.NewRtAttr(attrPayload|unix.NLA_F_NET_BYTEORDER, []byte{0x45}),
		nl.NewRtAttr(attrPacketHdr|unix.NLA_F_NESTED, pktHdr(9, 0x86dd, 1)),
	)
	p = Packet{Mark: 99, InIf: 99, HasHwAddr: true}
	if err := ParsePacket(append(minimal, 0xde, 0xad), &p); err != nil {
		t.Fatal(err)
	}
	if p.ID != 9 || p.HwProto != 0x86dd || p.Hook != 1 || p.Mark != 0 || p.InIf != 0 || p.HasHwAddr || !bytes.Equal(p.Payload, []byte{0x45}) {
		t.Errorf("minimal: %+v", p)
	}

	// A non-Ethernet hardware address is no HwAddr.
	p = Packet{}
	if err := ParsePacket(packetMsg(nl.NewRtAttr(attrPacketHdr, pktHdr(1, 0x0800, 0)),
		nl.NewRtAttr(attrHwAddr, hwAddr(8, 1, 2, 3, 4, 5, 6, 7, 8)),
		nl.NewRtAttr(attrPayload, testIP)), &p); err != nil || p.HasHwAddr {
		t.Errorf("8-byte hwaddr: %v, HasHwAddr %v", err, p.HasHwAddr)
	}

	// The last attribute's padding may be missing under nlmsg_len.
	odd := packetMsg(nl.NewRtAttr(attrPacketHdr, pktHdr(1, 0x0800, 0)), nl.NewRtAttr(attrPayload, []byte{1, 2, 3}))
	binary.NativeEndian.PutUint32(odd, uint32(len(odd)-1))
	if err := ParsePacket(odd[:len(odd)-1], &p); err != nil || !bytes.Equal(p.Payload, []byte{1, 2, 3}) {
		t.Errorf("unpadded last attribute: %v, payload %x", err, p.Payload)
	}
}

func TestParsePacketMalformed(t *testing.T) {
	good := packetMsg(goodAttrs()...)
	setLen := func(b []byte, n int) []byte {
		b = bytes.Clone(b)
		binary.NativeEndian.PutUint32(b, uint32(n))
		return b
	}
	// attrOffset is where the attributes start.
	const attrOffset = nlmsgHdrLen + nfgenLen
	withAttrLen := func(alen uint16) []byte {
		b := bytes.Clone(good)
		binary.NativeEndian.PutUint16(b[attrOffset:], alen)
		return b
	}
	drop := func(typ int) []byte {
		var keep []*nl.RtAttr
		for _, a := range goodAttrs() {
			if int(a.Type) != typ {
				keep = append(keep, a)
			}
		}
		return packetMsg(keep...)
	}
	wrongType := bytes.Clone(good)
	binary.NativeEndian.PutUint16(wrongType[nlmType:], msgVerdict)
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, errShort},
		{"header only", good[:nlmsgHdrLen], errShort},
		{"nlmsg_len past buffer", setLen(good, len(good)+1), errLength},
		{"nlmsg_len too small", setLen(good, nlmsgHdrLen), errLength},
		{"buffer cut", good[:len(good)-8], errLength},
		{"wrong type", wrongType, errType},
		{"no attributes", setLen(good[:attrOffset], attrOffset), errNoPacketHdr},
		{"attribute header cut", setLen(good[:attrOffset+2], attrOffset+2), errAttrHeader},
		{"attribute length 3", withAttrLen(3), errAttrLength},
		{"attribute length 0", withAttrLen(0), errAttrLength},
		{"attribute past message", withAttrLen(uint16(len(good) - attrOffset + 4)), errAttrLength},
		{"no packet header", drop(attrPacketHdr), errNoPacketHdr},
		{"no payload", drop(attrPayload), errNoPayload},
		{"empty payload", packetMsg(nl.NewRtAttr(attrPacketHdr, pktHdr(1, 0x800, 0)), nl.NewRtAttr(attrPayload, nil)), errEmptyPayload},
		{"short packet header", packetMsg(nl.NewRtAttr(attrPacketHdr, pktHdr(1, 0x800, 0)[:6]), nl.NewRtAttr(attrPayload, testIP)), errAttrShort},
		{"short mark", packetMsg(nl.NewRtAttr(attrPacketHdr, pktHdr(1, 0x800, 0)), nl.NewRtAttr(attrMark, []byte{7}), nl.NewRtAttr(attrPayload, testIP)), errAttrShort},
		{"short indev", packetMsg(nl.NewRtAttr(attrPacketHdr, pktHdr(1, 0x800, 0)), nl.NewRtAttr(attrIfIndexIn, []byte{0, 5}), nl.NewRtAttr(attrPayload, testIP)), errAttrShort},
		{"short hwaddr", packetMsg(nl.NewRtAttr(attrPacketHdr, pktHdr(1, 0x800, 0)), nl.NewRtAttr(attrHwAddr, []byte{0, 6}), nl.NewRtAttr(attrPayload, testIP)), errAttrShort},
		{"hwaddr length past value", packetMsg(nl.NewRtAttr(attrPacketHdr, pktHdr(1, 0x800, 0)), nl.NewRtAttr(attrHwAddr, hwAddr(9)), nl.NewRtAttr(attrPayload, testIP)), errAttrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			err := ParsePacket(tt.msg, &p)
			if err != tt.want {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%v does not wrap ErrMalformed", err)
			}
			// Every malformed message is a fuzz seed too.
			seedcorpus.Add(t, "FuzzParsePacket", tt.msg)
		})
	}
	// And the good ones.
	seedcorpus.Add(t, "FuzzParsePacket", good)
	seedcorpus.Add(t, "FuzzParsePacket", packetMsg(nl.NewRtAttr(attrPacketHdr, pktHdr(1, 0x0800, 0)), nl.NewRtAttr(attrPayload, []byte{0x45})))
}

// decode parses b with the standard library's netlink parser and
// vishvananda/netlink's attribute parser, checking the nfgenmsg.
type decoded struct {
	hdr   syscall.NlMsghdr
	gen   nl.Nfgenmsg
	attrs map[uint16][]byte
}

func decodeAll(t *testing.T, b []byte) []decoded {
	t.Helper()
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		t.Fatalf("ParseNetlinkMessage: %v", err)
	}
	var out []decoded
	for _, m := range msgs {
		if len(m.Data) < nl.SizeofNfgenmsg {
			t.Fatalf("message of %d bytes has no nfgenmsg", len(m.Data))
		}
		d := decoded{hdr: m.Header, gen: *nl.DeserializeNfgenmsg(m.Data), attrs: map[uint16][]byte{}}
		attrs, err := nl.ParseRouteAttr(m.Data[nl.SizeofNfgenmsg:])
		if err != nil {
			t.Fatalf("ParseRouteAttr: %v", err)
		}
		for _, a := range attrs {
			if _, dup := d.attrs[a.Attr.Type]; dup {
				t.Errorf("attribute %d twice", a.Attr.Type)
			}
			d.attrs[a.Attr.Type] = a.Value
		}
		out = append(out, d)
	}
	return out
}

func TestBuilders(t *testing.T) {
	prefix := []byte("prefix")
	b := AppendConfigCmd(bytes.Clone(prefix), 11, 0x1234, CmdBind)
	if !bytes.HasPrefix(b, prefix) {
		t.Fatal("prefix overwritten")
	}
	b = AppendConfigParams(b[len(prefix):], 12, 0x1234, CopyPacket, 0xffff, 4096)
	b = AppendConfigParams(b, 13, 0x1234, CopyMeta, 100, 0)
	b = AppendVerdict(b, 14, 0x1234, 0xdeadbeef, Accept)
	b = AppendVerdictBatch(b, 15, 0x1234, 77, Drop)
	b = AppendConfigCmd(b, 16, 0x1234, CmdUnbind)
	msgs := decodeAll(t, b)
	if len(msgs) != 6 {
		t.Fatalf("%d messages, want 6", len(msgs))
	}
	ackReq := uint16(unix.NLM_F_REQUEST | unix.NLM_F_ACK)
	tests := []struct {
		typ   uint16
		flags uint16
		attrs map[uint16][]byte
	}{
		{msgConfig, ackReq, map[uint16][]byte{attrCfgCmd: {CmdBind, 0, 0, unix.AF_INET}}},
		{msgConfig, ackReq, map[uint16][]byte{attrCfgParams: {0, 0, 0xff, 0xff, CopyPacket}, attrCfgQueueMax: be32(4096)}},
		{msgConfig, ackReq, map[uint16][]byte{attrCfgParams: {0, 0, 0, 100, CopyMeta}}},
		{msgVerdict, unix.NLM_F_REQUEST, map[uint16][]byte{attrVerdictHdr: append(be32(Accept), be32(0xdeadbeef)...)}},
		{msgVerdictBatch, unix.NLM_F_REQUEST, map[uint16][]byte{attrVerdictHdr: append(be32(Drop), be32(77)...)}},
		{msgConfig, ackReq, map[uint16][]byte{attrCfgCmd: {CmdUnbind, 0, 0, unix.AF_INET}}},
	}
	for i, tt := range tests {
		m := msgs[i]
		if m.hdr.Type != tt.typ || m.hdr.Flags != tt.flags || m.hdr.Seq != uint32(11+i) {
			t.Errorf("message %d: type %#x flags %#x seq %d, want %#x %#x %d", i, m.hdr.Type, m.hdr.Flags, m.hdr.Seq, tt.typ, tt.flags, 11+i)
		}
		// res_id is big endian; nl.Nfgenmsg holds it as raw bytes.
		if res := binary.BigEndian.Uint16(binary.NativeEndian.AppendUint16(nil, m.gen.ResId)); m.gen.NfgenFamily != unix.AF_UNSPEC || m.gen.Version != 0 || res != 0x1234 {
			t.Errorf("message %d: nfgenmsg %+v, want AF_UNSPEC v0 queue 0x1234", i, m.gen)
		}
		if len(m.attrs) != len(tt.attrs) {
			t.Errorf("message %d: %d attributes, want %d", i, len(m.attrs), len(tt.attrs))
		}
		for typ, want := range tt.attrs {
			if got := m.attrs[typ]; !bytes.Equal(got, want) {
				t.Errorf("message %d attribute %d = %x, want %x", i, typ, got, want)
			}
		}
	}
	if n := len(AppendVerdict(nil, 0, 0, 0, 0)); n != verdictMsgLength {
		t.Errorf("verdict message is %d bytes, verdictMsgLength %d", n, verdictMsgLength)
	}
}

// TestCompatRules decodes the nft_compat batch to the expressions a
// reader of nf_tables.h would expect.
func TestCompatRules(t *testing.T) {
	b := appendCompatRules(nil, 100, "uvs_fw", 0x0102)
	msgs := decodeAll(t, b)
	if len(msgs) != 4 {
		t.Fatalf("%d messages, want 4", len(msgs))
	}
	subsys := binary.BigEndian.Uint16(binary.NativeEndian.AppendUint16(nil, msgs[0].gen.ResId))
	if msgs[0].hdr.Type != unix.NFNL_MSG_BATCH_BEGIN || msgs[3].hdr.Type != unix.NFNL_MSG_BATCH_END || subsys != unix.NFNL_SUBSYS_NFTABLES {
		t.Fatalf("batch framing: %#x ... %#x, res_id %d", msgs[0].hdr.Type, msgs[3].hdr.Type, subsys)
	}
	queueInfo := binary.NativeEndian.AppendUint16(binary.NativeEndian.AppendUint16(binary.NativeEndian.AppendUint16(nil, 0x0102), 1), 1)
	queueInfo = append(queueInfo, 0, 0)
	for i, want := range [][]string{
		{"meta", "lookup", "meta", "cmp", "payload", "bitwise", "cmp", "target"},
		{"meta", "lookup", "meta", "cmp", "target"},
	} {
		m := msgs[1+i]
		if m.hdr.Type != unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWRULE || m.hdr.Seq != uint32(101+i) ||
			m.hdr.Flags&unix.NLM_F_ACK == 0 || m.gen.NfgenFamily != unix.NFPROTO_IPV4 {
			t.Errorf("rule %d header %+v nfgen %+v", i, m.hdr, m.gen)
		}
		if string(m.attrs[unix.NFTA_RULE_TABLE]) != "uvs_fw\x00" || string(m.attrs[unix.NFTA_RULE_CHAIN]) != "prerouting\x00" {
			t.Errorf("rule %d table %q chain %q", i, m.attrs[unix.NFTA_RULE_TABLE], m.attrs[unix.NFTA_RULE_CHAIN])
		}
		elems, err := nl.ParseRouteAttr(m.attrs[unix.NFTA_RULE_EXPRESSIONS|unix.NLA_F_NESTED])
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		var last map[uint16][]byte
		cmps := 0
		for _, e := range elems {
			ea, err := nl.ParseRouteAttrAsMap(e.Value)
			if err != nil {
				t.Fatal(err)
			}
			name := string(bytes.TrimSuffix(ea[unix.NFTA_EXPR_NAME].Value, []byte{0}))
			names = append(names, name)
			data, err := nl.ParseRouteAttrAsMap(ea[unix.NFTA_EXPR_DATA|unix.NLA_F_NESTED].Value)
			if err != nil {
				t.Fatal(err)
			}
			last = map[uint16][]byte{}
			for k, v := range data {
				last[k] = v.Value
			}
			if name == "cmp" {
				val, _ := nl.ParseRouteAttrAsMap(last[unix.NFTA_CMP_DATA|unix.NLA_F_NESTED])
				wantVals := [][]byte{{header.ProtoTCP, header.TCPFlagSyn}, {header.ProtoUDP}}[i]
				if cmps >= len(wantVals) {
					t.Fatalf("rule %d: %d cmp expressions", i, cmps+1)
				}
				if got := val[unix.NFTA_DATA_VALUE].Value; !bytes.Equal(got, wantVals[cmps:cmps+1]) {
					t.Errorf("rule %d cmp %d value %x, want %x", i, cmps, got, wantVals[cmps])
				}
				cmps++
			}
			if name == "lookup" && string(last[unix.NFTA_LOOKUP_SET]) != "marks\x00" {
				t.Errorf("lookup set %q", last[unix.NFTA_LOOKUP_SET])
			}
			if name == "bitwise" {
				mask, _ := nl.ParseRouteAttrAsMap(last[unix.NFTA_BITWISE_MASK|unix.NLA_F_NESTED])
				if got := mask[unix.NFTA_DATA_VALUE].Value; !bytes.Equal(got, []byte{0x16}) {
					t.Errorf("bitwise mask %x, want 16 (syn|ack|rst)", got)
				}
			}
		}
		if !slices.Equal(names, want) {
			t.Errorf("rule %d expressions %v, want %v", i, names, want)
		}
		if string(last[unix.NFTA_TARGET_NAME]) != "NFQUEUE\x00" || !bytes.Equal(last[unix.NFTA_TARGET_REV], be32(3)) ||
			!bytes.Equal(last[unix.NFTA_TARGET_INFO], queueInfo) {
			t.Errorf("rule %d target %q rev %x info %x, want NFQUEUE 3 %x", i, last[unix.NFTA_TARGET_NAME], last[unix.NFTA_TARGET_REV], last[unix.NFTA_TARGET_INFO], queueInfo)
		}
	}
}

func TestRulesScriptAndNames(t *testing.T) {
	r := &Rules{table: "uvs_fw", queue: 9}
	want := `add table ip uvs_fw
delete table ip uvs_fw
table ip uvs_fw {
	set marks { type mark; }
	chain prerouting {
		type filter hook prerouting priority -140; policy accept;
		meta mark @marks tcp flags & (syn | ack | rst) == syn queue num 9 bypass
		meta mark @marks meta l4proto udp queue num 9 bypass
	}
}
`
	if got := r.script(true); got != want {
		t.Errorf("script:\n%s\nwant:\n%s", got, want)
	}
	if got := r.script(false); bytes.Contains([]byte(got), []byte("queue")) {
		t.Errorf("compat script has rules:\n%s", got)
	}
	for _, name := range []string{"", "a b", "x;flush ruleset", "1abc", "a-b"} {
		if _, err := NewRules(name, 1); err == nil {
			t.Errorf("NewRules(%q) accepted", name)
		}
	}
}

func BenchmarkParsePacket(b *testing.B) {
	attrs := goodAttrs()
	attrs[5] = nl.NewRtAttr(attrPayload, make([]byte, 1500))
	msg := packetMsg(attrs...)
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := ParsePacket(msg, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParsePacketNoAllocs(t *testing.T) {
	msg := packetMsg(goodAttrs()...)
	bad := msg[:len(msg)-4]
	var p Packet
	if n := testing.AllocsPerRun(100, func() {
		_ = ParsePacket(msg, &p)
		_ = ParsePacket(bad, &p)
	}); n != 0 {
		t.Errorf("ParsePacket allocates %v times", n)
	}
}
