package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustParseFile(t *testing.T, path string) *Config {
	t.Helper()
	c, err := ParseFile(path)
	if err != nil {
		t.Fatalf("ParseFile(%s): %v", path, err)
	}
	return c
}

func warnings(c *Config) []string {
	var out []string
	for _, w := range c.Warnings {
		out = append(out, w.String())
	}
	return out
}

func TestNATTwoDirectors(t *testing.T) {
	const f = "testdata/nat_two_director.conf"
	c := mustParseFile(t, f)

	g := c.Global
	if g.RouterID != "LVS_DIRECTOR_1" || g.LVSTimeouts != (LVSTimeouts{TCP: 900, TCPFin: 120, UDP: 300}) {
		t.Errorf("global_defs = %+v", g)
	}
	if d := g.LVSSyncDaemon; d == nil || d.Interface != "eth1" || d.Instance != "VI_GATEWAY" || d.SyncID != 7 || d.Port != 8848 {
		t.Errorf("lvs_sync_daemon = %+v", d)
	}

	if len(c.VRRPSyncGroups) != 1 || !slices.Equal(c.VRRPSyncGroups[0].Group, []string{"VI_1", "VI_GATEWAY"}) {
		t.Fatalf("sync groups = %+v", c.VRRPSyncGroups)
	}
	if got := c.VRRPSyncGroups[0].NotifyMaster; got != "/etc/keepalived/notify.sh master" {
		t.Errorf("notify_master = %q", got)
	}
	if len(c.VRRPInstances) != 2 {
		t.Fatalf("%d vrrp instances, want 2", len(c.VRRPInstances))
	}
	vi := c.VRRPInstances[0]
	if vi.Name != "VI_1" || vi.State != "MASTER" || vi.Interface != "eth0" || vi.VirtualRouterID != 51 ||
		vi.Priority != 150 || vi.AdvertInt != time.Second || vi.Version != 2 || vi.AuthType != "PASS" || vi.AuthPass != "secret" {
		t.Errorf("VI_1 = %+v", vi)
	}
	wantVIPs := []netip.Prefix{netip.MustParsePrefix("192.168.200.15/24"), netip.MustParsePrefix("192.168.200.16/32")}
	if !slices.Equal(vi.VirtualIPAddresses, wantVIPs) {
		t.Errorf("VI_1 VIPs = %v, want %v", vi.VirtualIPAddresses, wantVIPs)
	}
	if v := vi.VirtualIPs[0]; v.Dev != "eth0" || v.Label != "eth0:1" || v.Pos != (Pos{f, 35}) {
		t.Errorf("VI_1 first VIP = %+v", v)
	}
	if gw := c.VRRPInstances[1]; gw.GarpMasterDelay != 2*time.Second || gw.GarpMasterRepeat != 5 {
		t.Errorf("VI_GATEWAY garp = %v x%d, want 2s x5", gw.GarpMasterDelay, gw.GarpMasterRepeat)
	}

	if len(c.VirtualServers) != 1 {
		t.Fatalf("%d virtual servers, want 1", len(c.VirtualServers))
	}
	vs := c.VirtualServers[0]
	if vs.Pos != (Pos{f, 56}) || vs.Addr != netip.MustParseAddr("192.168.200.15") || vs.Port != 80 ||
		vs.Protocol != "TCP" || vs.LBAlgo != "wlc" || vs.LBKind != "NAT" || vs.PersistenceTimeout != 50 ||
		vs.DelayLoop != 6*time.Second || vs.PersistenceGranularityBits() != 32 {
		t.Errorf("virtual_server = %+v", vs)
	}
	if ss := vs.SorryServer; ss == nil || ss.Addr != netip.MustParseAddr("192.168.100.200") || ss.Port != 8080 || ss.LBKind != "NAT" {
		t.Errorf("sorry_server = %+v", ss)
	}
	if len(vs.RealServers) != 2 {
		t.Fatalf("%d real servers, want 2", len(vs.RealServers))
	}
	rs := vs.RealServers[0]
	if rs.Weight != 3 || rs.Port != 80 || rs.LBKind != "NAT" || rs.InhibitOnFailure {
		t.Errorf("rs 1 = %+v", rs)
	}
	ch := rs.Checkers[0]
	if ch.Kind != "HTTP_GET" || ch.ConnectIP != rs.Addr || ch.ConnectPort != 80 || ch.ConnectTimeout != 3*time.Second ||
		ch.Retry != 3 || ch.DelayBeforeRetry != 2*time.Second || ch.DelayLoop != 6*time.Second || ch.Warmup != 6*time.Second {
		t.Errorf("rs 1 checker = %+v", ch)
	}
	if len(ch.URLs) != 2 || ch.URLs[0].Path != "/health" || !slices.Equal(ch.URLs[0].StatusCodes, []CodeRange{{200, 200}}) ||
		ch.URLs[1].Digest != "9b3a0c85a887a256d6939da88aabd8cd" || !slices.Equal(ch.URLs[1].StatusCodes, []CodeRange{{200, 299}}) {
		t.Errorf("rs 1 urls = %+v", ch.URLs)
	}
	rs = vs.RealServers[1]
	if rs.Weight != 1 || rs.Port != 8080 || !rs.InhibitOnFailure {
		t.Errorf("rs 2 = %+v", rs)
	}
	ch = rs.Checkers[0]
	if ch.ConnectTimeout != 500*time.Millisecond || ch.Retry != 1 || ch.DelayBeforeRetry != 3*time.Second ||
		!slices.Equal(ch.URLs[0].StatusCodes, []CodeRange{{200, 299}, {301, 301}}) {
		t.Errorf("rs 2 checker = %+v", ch)
	}

	want := []string{
		f + ":5: global_defs: notification_email ignored: uvs sends no email or SNMP notifications",
		f + ":8: global_defs: notification_email_from ignored: uvs sends no email or SNMP notifications",
		f + ":9: global_defs: smtp_server ignored: uvs sends no email or SNMP notifications",
		f + ":10: global_defs: smtp_connect_timeout ignored: uvs sends no email or SNMP notifications",
	}
	if got := warnings(c); !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := c.ExpandedServices(); len(got) != 1 || got[0].String() != "TCP 192.168.200.15:80" || got[0].VS != &c.VirtualServers[0] {
		t.Errorf("ExpandedServices = %v", got)
	}
}

func TestDRFWMark(t *testing.T) {
	c := mustParseFile(t, "testdata/dr_fwmark.conf")
	if got, want := warnings(c), []string(nil); !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	vi := c.VRRPInstances[0]
	if vi.Version != 3 || vi.AdvertInt != 100*time.Millisecond || !vi.NoPreempt ||
		vi.UnicastSrcIP != netip.MustParseAddr("10.1.0.2") || !slices.Equal(vi.UnicastPeers, []netip.Addr{netip.MustParseAddr("10.1.0.3")}) ||
		vi.GarpMasterRepeat != 2 {
		t.Errorf("VI_DR = %+v", vi)
	}
	vs := c.VirtualServers[0]
	if vs.FWMark != 1 || vs.LBKind != "DR" || vs.LBAlgo != "sh" || !slices.Equal(vs.SchedFlags, []string{"sh-port"}) ||
		vs.PersistenceTimeout != 600 || vs.PersistenceGranularityBits() != 24 || vs.Quorum != 2 || vs.Hysteresis != 1 {
		t.Errorf("fwmark 1 = %+v", vs)
	}
	for i, rs := range vs.RealServers {
		if rs.Port != 0 || rs.Weight != 100 || rs.LBKind != "DR" {
			t.Errorf("rs %d = %+v", i, rs)
		}
	}
	tcp := vs.RealServers[0].Checkers[0]
	if tcp.Kind != "TCP_CHECK" || tcp.ConnectPort != 80 || tcp.ConnectTimeout != 2*time.Second || tcp.Retry != 1 || tcp.DelayBeforeRetry != time.Second || tcp.DelayLoop != 3*time.Second {
		t.Errorf("TCP_CHECK = %+v", tcp)
	}
	misc := vs.RealServers[1].Checkers[0]
	if misc.Kind != "MISC_CHECK" || misc.MiscPath != "/usr/local/bin/check_web 10.1.0.12" || misc.MiscTimeout != 5*time.Second || !misc.MiscDynamic || misc.Retry != 0 {
		t.Errorf("MISC_CHECK = %+v", misc)
	}
	vs = c.VirtualServers[1]
	if vs.LBAlgo != "rr" || vs.LBKind != "DR" || vs.RealServers[0].Checkers[0].ConnectPort != 443 || vs.RealServers[0].Checkers[0].ConnectTimeout != 5*time.Second {
		t.Errorf("443 = %+v", vs)
	}
	var got []string
	for _, e := range c.ExpandedServices() {
		got = append(got, e.String())
	}
	if want := []string{"FWM 1", "TCP 10.1.0.100:443"}; !slices.Equal(got, want) {
		t.Errorf("ExpandedServices = %q, want %q", got, want)
	}
}

func TestVirtualServerGroup(t *testing.T) {
	c := mustParseFile(t, "testdata/vsg.conf")
	g, ok := c.VirtualServerGroups["WEB"]
	if !ok || len(g.Entries) != 5 {
		t.Fatalf("groups = %+v", c.VirtualServerGroups)
	}
	if e := g.Entries[2]; e.First != netip.MustParseAddr("192.168.200.3") || e.Last != netip.MustParseAddr("192.168.200.6") || e.Port != 80 {
		t.Errorf("range entry = %+v", e)
	}
	var got []string
	for _, e := range c.ExpandedServices() {
		got = append(got, e.String())
	}
	want := []string{
		"TCP 10.0.0.1:8080", "TCP 10.0.0.2:80",
		"TCP 192.168.200.3:80", "TCP 192.168.200.4:80", "TCP 192.168.200.5:80", "TCP 192.168.200.6:80",
		"TCP 192.168.201.8:443", "TCP 192.168.201.9:443", "TCP 192.168.201.10:443", "TCP 192.168.201.11:443",
		"FWM 7",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ExpandedServices =\n%q\nwant\n%q", got, want)
	}
	vs := c.VirtualServers[0]
	// NAT in a group: the real server keeps its own port.
	if rs := vs.RealServers[0]; rs.Port != 1358 || rs.Checkers[0].ConnectPort != 1358 || rs.Weight != 1 {
		t.Errorf("rs = %+v", rs)
	}
	if rs := vs.RealServers[1]; rs.Addr != netip.MustParseAddr("192.168.100.2") || len(rs.Checkers) != 0 {
		t.Errorf("rs with an empty block = %+v", rs)
	}
}

func TestIncludeGlobs(t *testing.T) {
	c := mustParseFile(t, "testdata/include/main.conf")
	if c.Global.RouterID != "INCLUDED" {
		t.Errorf("router_id = %q", c.Global.RouterID)
	}
	if len(c.VirtualServers) != 2 {
		t.Fatalf("%d virtual servers, want 2", len(c.VirtualServers))
	}
	// Glob matches come in lexical order, positions name the included file.
	if p := c.VirtualServers[0].Pos; p != (Pos{filepath.Join("testdata/include/conf.d/10-web.conf"), 1}) {
		t.Errorf("first virtual_server at %v", p)
	}
	if vs := c.VirtualServers[1]; vs.Protocol != "UDP" || vs.Pos.File != filepath.Join("testdata/include/conf.d/20-dns.conf") {
		t.Errorf("second virtual_server = %+v", vs)
	}
	// sub/vrrp.conf includes vip.conf relative to sub/.
	if len(c.VRRPInstances) != 1 || c.VRRPInstances[0].Pos != (Pos{filepath.Join("testdata/include/sub/vip.conf"), 1}) {
		t.Errorf("vrrp instances = %+v", c.VRRPInstances)
	}
}

// Parse on a reader resolves relative includes against the working
// directory.
func TestParseReaderIncludesFromCwd(t *testing.T) {
	c, err := Parse("stdin", strings.NewReader("include testdata/include/conf.d/*.conf\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.VirtualServers) != 2 {
		t.Errorf("%d virtual servers, want 2", len(c.VirtualServers))
	}
}

func TestIncludeErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	loop := write("loop.conf", "include loop.conf\n")
	_, err := ParseFile(loop)
	if want := loop + ":1: include loop.conf: include loop through " + loop; err == nil || err.Error() != want {
		t.Errorf("loop: got %v, want %s", err, want)
	}

	none := write("none.conf", "include nothing/*.conf\nincludea missing.conf\n")
	_, err = ParseFile(none)
	if want := none + ":2: includea missing.conf: no file matches"; err == nil || err.Error() != want {
		t.Errorf("includea: got %v, want %s", err, want)
	}

	// A block may open in one file and close in the next, as keepalived
	// reads includes as text.
	write("open.inc", "virtual_server 10.0.0.1 80 {\n  protocol TCP\n")
	split := write("split.conf", "include open.inc\n  real_server 10.0.0.2 80 { }\n}\n")
	c, err := ParseFile(split)
	if err != nil || len(c.VirtualServers) != 1 || len(c.VirtualServers[0].RealServers) != 1 {
		t.Errorf("split block: %v %+v", err, c)
	}
}

func TestErrorType(t *testing.T) {
	_, err := Parse("x.conf", strings.NewReader("virtual_server 10.0.0.1 80 {\n  lb_kind NAT\n  real_server 10.0.0.2 http\n}\n"))
	var ce *Error
	if !errors.As(err, &ce) || ce.Pos != (Pos{"x.conf", 3}) || ce.Msg != `real_server: bad number "http"` {
		t.Fatalf("got %#v", err)
	}
	_, err = ParseFile("testdata/does-not-exist.conf")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "inc.conf")
	os.WriteFile(p, []byte("include "+dir+"\n"), 0o644) // a directory: opens, fails to read
	if _, err := ParseFile(p); !errors.As(err, &ce) || ce.Unwrap() == nil {
		t.Errorf("include of a directory: %#v, want *Error wrapping the read error", err)
	}
}

const minimalVS = "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  real_server 10.0.0.2 80 { }\n}\n"

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, conf, want string
	}{
		{"unbalanced close", "global_defs {\n}\n}\n", "t.conf:3: unbalanced '}'"},
		{"never closed", "global_defs {\n  router_id a\n", "t.conf:1: global_defs: '{' is never closed"},
		{"nested never closed", "virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    weight 1\n}\n", "t.conf:1: virtual_server: '{' is never closed"},
		{"brace alone", "{\n}\n", "t.conf:1: '{' without a keyword"},
		{"unterminated quote", "global_defs {\n  router_id \"abc\n}\n", "t.conf:2: unterminated quoted string"},
		{"vs without address", "virtual_server {\n}\n", "t.conf:1: virtual_server: missing address"},
		{"vs bad address", "virtual_server 10.0.0.300 80 {\n}\n", `t.conf:1: virtual_server: bad address "10.0.0.300"`},
		{"vs bad port", "virtual_server 10.0.0.1 65536 {\n}\n", "t.conf:1: virtual_server: 65536 out of range 0-65535"},
		{"vs without block", "virtual_server 10.0.0.1 80\n", "t.conf:1: virtual_server: missing '{'"},
		{"fwmark zero", "virtual_server fwmark 0 {\n}\n", "t.conf:1: virtual_server: 0 out of range 1-4294967295"},
		{"fwmark missing", "virtual_server fwmark {\n}\n", "t.conf:1: virtual_server: missing argument"},
		{"rs outside vs", "real_server 10.0.0.2 80 {\n  weight 1\n}\n", "t.conf:1: real_server outside virtual_server"},
		{"checker outside rs", "virtual_server 10.0.0.1 80 {\n  TCP_CHECK {\n  }\n}\n", "t.conf:2: TCP_CHECK outside real_server"},
		// keepalived 2.2.7 -t: "Missing '{' at beginning of configuration
		// block", exit status 5, and it reads the lines after as the
		// real server's.
		{"rs without block", "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  real_server 10.0.0.2 80\n  lb_algo rr\n}\n", "t.conf:3: real_server: missing '{'"},
		{"last rs without block", "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  real_server 10.0.0.2 80 {\n  }\n  real_server 10.0.0.3 80\n}\n", "t.conf:5: real_server: missing '{'"},
		{"rs bad address", "virtual_server 10.0.0.1 80 {\n  real_server foo 80\n}\n", `t.conf:2: real_server: bad address "foo"`},
		{"weight range", "virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    weight 65536\n  }\n}\n", "t.conf:3: weight: 65536 out of range 0-65535"},
		{"weight negative", "virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    weight -1\n  }\n}\n", `t.conf:3: weight: bad number "-1"`},
		{"bad time", "virtual_server 10.0.0.1 80 {\n  delay_loop 1s\n}\n", `t.conf:2: delay_loop: bad time "1s" (want seconds, e.g. 3 or 0.5)`},
		{"zero delay_loop", "virtual_server 10.0.0.1 80 {\n  delay_loop 0\n}\n", "t.conf:2: delay_loop: must be above 0"},
		{"unknown lb_kind", "virtual_server 10.0.0.1 80 {\n  lb_kind NATT\n}\n", `t.conf:2: lb_kind: unknown forwarding method "NATT" (want NAT, DR, TUN or FNAT)`},
		{"unknown scheduler", "virtual_server 10.0.0.1 80 {\n  lb_algo fastest\n}\n", `t.conf:2: lb_algo: unknown scheduler "fastest"`},
		{"unknown protocol", "virtual_server 10.0.0.1 80 {\n  protocol ICMP\n}\n", `t.conf:2: protocol: unknown protocol "ICMP" (want TCP, UDP or SCTP)`},
		{"DR port mapping", "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  lb_kind DR\n  real_server 10.0.0.2 8080 { }\n}\n",
			"t.conf:4: real_server 10.0.0.2:8080: port mapping is impossible in DR (virtual_server port is 80)"},
		{"TUN port mapping", "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  real_server 10.0.0.2 8080 {\n    lvs_method TUN\n  }\n}\n",
			"t.conf:3: real_server 10.0.0.2:8080: port mapping is impossible in TUN (virtual_server port is 80)"},
		{"DR port mapping in group", "virtual_server_group G {\n  10.0.0.1 80\n}\nvirtual_server group G {\n  lb_kind DR\n  real_server 10.0.0.2 81 { }\n}\n",
			"t.conf:6: real_server 10.0.0.2:81: port mapping is impossible in DR (virtual_server_group G has port 80 at t.conf:2)"},
		{"DR sorry server port mapping", "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  lb_kind DR\n  sorry_server 10.0.0.9 8080\n  real_server 10.0.0.2 80 { }\n}\n",
			"t.conf:4: sorry_server 10.0.0.9:8080: port mapping is impossible in DR (virtual_server port is 80)"},
		{"gue without port", "virtual_server 10.0.0.1 80 {\n  lb_kind TUN type gue\n}\n", "t.conf:2: lb_kind: a gue tunnel needs a port, other tunnels have none"},
		{"duplicate vs", minimalVS + minimalVS, "t.conf:5: virtual_server TCP 10.0.0.1:80: duplicate of the virtual server at t.conf:1"},
		{"duplicate vs via group", "virtual_server_group G {\n  10.0.0.0-3 80\n}\nvirtual_server group G {\n  protocol TCP\n  real_server 10.0.0.9 80 { }\n}\n" + minimalVS,
			"t.conf:8: virtual_server TCP 10.0.0.1:80: duplicate of the virtual server at t.conf:4"},
		{"unknown group", "virtual_server group NOPE {\n  real_server 10.0.0.2 80 { }\n}\n", "t.conf:1: virtual_server group NOPE: no virtual_server_group NOPE"},
		{"bad group range", "virtual_server_group G {\n  10.0.0.9-3 80\n}\n", `t.conf:2: virtual_server_group G: bad address or range "10.0.0.9-3"`},
		{"group range too big", "virtual_server_group G {\n  10.0.0.0/8 80\n}\n", `t.conf:2: virtual_server_group G: bad address or range "10.0.0.0/8"`},
		{"HTTP_GET without url", "virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    HTTP_GET {\n      connect_timeout 3\n    }\n  }\n}\n", "t.conf:3: HTTP_GET: no url block"},
		{"bad digest", "virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    HTTP_GET {\n      url {\n        path /\n        digest xyz\n      }\n    }\n  }\n}\n", `t.conf:6: digest: "xyz" is not an MD5 digest (32 hex digits)`},
		{"bad status", "virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    HTTP_GET {\n      url {\n        path /\n        status_code 299-200\n      }\n    }\n  }\n}\n", `t.conf:6: status_code: bad code or range "299-200" (want 100-599)`},
		{"misc without path", "virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    MISC_CHECK {\n    }\n  }\n}\n", "t.conf:3: MISC_CHECK: missing misc_path"},
		{"fwmark checker without port", "virtual_server fwmark 3 {\n  real_server 10.0.0.2 {\n    TCP_CHECK {\n    }\n  }\n}\n", "t.conf:3: TCP_CHECK: real_server 10.0.0.2 has no port, set connect_port"},
		{"leaf with block", "global_defs {\n  router_id a {\n  }\n}\n", "t.conf:2: router_id: unexpected '{'"},
		{"lvs_timeouts empty", "global_defs {\n  lvs_timeouts\n}\n", "t.conf:2: lvs_timeouts: want at least one of tcp, tcpfin or udp with seconds"},
		{"lvs_timeouts unknown", "global_defs {\n  lvs_timeouts sctp 5\n}\n", `t.conf:2: lvs_timeouts: unknown timeout "sctp" (want tcp, tcpfin or udp)`},
		{"vrrp without vrid", "vrrp_instance VI {\n  interface eth0\n}\n", "t.conf:1: vrrp_instance VI: missing virtual_router_id"},
		{"vrrp vrid range", "vrrp_instance VI {\n  virtual_router_id 256\n}\n", "t.conf:2: virtual_router_id: 256 out of range 1-255"},
		{"vrrp priority zero", "vrrp_instance VI {\n  priority 0\n}\n", "t.conf:2: priority: 0 out of range 1-255"},
		{"vrrp bad state", "vrrp_instance VI {\n  state LEADER\n}\n", `t.conf:2: state: unknown state "LEADER" (want MASTER or BACKUP)`},
		{"vrrp bad vip", "vrrp_instance VI {\n  virtual_ipaddress {\n    10.0.0.1/33\n  }\n}\n", `t.conf:3: virtual_ipaddress: bad address "10.0.0.1/33"`},
		{"vrrp without interface", "vrrp_instance VI {\n  virtual_router_id 1\n}\n", "t.conf:1: vrrp_instance VI: missing interface"},
		{"vrrp duplicate vrid", "vrrp_instance A {\n  interface eth0\n  virtual_router_id 1\n}\nvrrp_instance B {\n  interface eth0\n  virtual_router_id 1\n}\n",
			"t.conf:5: vrrp_instance B: virtual_router_id 1 already used on eth0 by A at t.conf:1"},
		{"vrrp duplicate name", "vrrp_instance A {\n  interface eth0\n  virtual_router_id 1\n}\nvrrp_instance A {\n  interface eth1\n  virtual_router_id 1\n}\n",
			"t.conf:5: vrrp_instance A: already defined at t.conf:1"},
		{"vrrp v3 advert too long", "vrrp_instance A {\n  interface eth0\n  version 3\n  virtual_router_id 1\n  advert_int 41\n}\n", "t.conf:1: vrrp_instance A: advert_int 41s outside VRRPv3's 0.01s-40.95s"},
		{"vrrp mixed families", "vrrp_instance A {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    10.0.0.1\n    2001:db8::1\n  }\n}\n",
			"t.conf:6: vrrp_instance A: virtual_ipaddress mixes IPv4 and IPv6 (use virtual_ipaddress_excluded)"},
		{"sync group member twice", "vrrp_instance A {\n  interface eth0\n  virtual_router_id 1\n}\nvrrp_sync_group G1 {\n  group {\n    A\n  }\n}\nvrrp_sync_group G2 {\n  group {\n    A\n  }\n}\n",
			"t.conf:10: vrrp_sync_group G2: vrrp_instance A is already in vrrp_sync_group G1"},
		{"bad bool", "virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    inhibit_on_failure maybe\n  }\n}\n", `t.conf:3: inhibit_on_failure: bad boolean "maybe" (want on, off, true, false, yes or no)`},
		{"include without file", "include\n", "t.conf:1: include: want one file name or pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.conf", strings.NewReader(tc.conf))
			if err == nil {
				t.Fatalf("no error (warnings %q), want %s", warnings(c), tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("%T is not *Error", err)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		want       []string
	}{
		{"unknown top-level block skipped whole", "frobnicate {\n  virtual_server 10.0.0.1 80 {\n  }\n}\n" + minimalVS,
			[]string{`t.conf:1: top level: unknown keyword "frobnicate", ignored`}},
		{"unsupported top-level", "static_routes {\n  10.0.0.0/8 via 10.0.0.1\n}\n",
			[]string{"t.conf:1: top level: static_routes is not supported by uvs, ignored"}},
		{"unknown global with block on next line", "global_defs {\n  frob\n  {\n    router_id x\n  }\n  router_id y\n}\n",
			[]string{`t.conf:2: global_defs: unknown keyword "frob", ignored`}},
		{"unsupported global", "global_defs {\n  vrrp_iptables KA\n  enable_dbus\n}\n",
			[]string{"t.conf:2: global_defs: vrrp_iptables is not supported by uvs, ignored", "t.conf:3: global_defs: enable_dbus is not supported by uvs, ignored"}},
		{"unknown in real_server", "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  real_server 10.0.0.2 80 {\n    wieght 2\n  }\n}\n",
			[]string{`t.conf:4: real_server: unknown keyword "wieght", ignored`}},
		{"unsupported checker", "virtual_server 10.0.0.1 53 {\n  protocol UDP\n  real_server 10.0.0.2 53 {\n    DNS_CHECK {\n      type A\n    }\n  }\n}\n",
			[]string{"t.conf:4: real_server: DNS_CHECK is not supported by uvs, ignored"}},
		{"no protocol", "virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 { }\n}\n",
			[]string{"t.conf:1: virtual_server 10.0.0.1:80: no protocol, TCP assumed (keepalived assumes UDP)"}},
		{"protocol with fwmark", "virtual_server fwmark 1 {\n  protocol TCP\n  real_server 10.0.0.2 { }\n}\n",
			[]string{"t.conf:1: virtual_server fwmark 1: protocol is ignored for a fwmark service"}},
		{"no real servers", "virtual_server 10.0.0.1 80 {\n  protocol TCP\n}\n",
			[]string{"t.conf:1: virtual_server 10.0.0.1:80 has no real servers, ignored"}},
		{"zero port", "virtual_server 10.0.0.1 {\n  protocol TCP\n  real_server 10.0.0.2 { }\n}\n",
			[]string{"t.conf:1: virtual_server 10.0.0.1:0: port 0 is only valid for persistent services, persistence_timeout 360 set"}},
		{"sh-port without sh", "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  sh-port\n  real_server 10.0.0.2 80 { }\n}\n",
			[]string{"t.conf:1: virtual_server 10.0.0.1:80: sh-port does not apply to TCP wlc, ignored"}},
		{"duplicate real server", "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  real_server 10.0.0.2 80 { }\n  real_server 10.0.0.2 { }\n}\n",
			[]string{"t.conf:4: virtual_server 10.0.0.1:80: real_server 10.0.0.2:80 is duplicated, ignored"}},
		{"quorum above weights", "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  quorum 5\n  real_server 10.0.0.2 80 { }\n}\n",
			[]string{"t.conf:1: virtual_server 10.0.0.1:80: quorum 5 exceeds the total weight 1 of its real servers, reduced"}},
		{"DR fwmark rs port cleared", "virtual_server fwmark 2 {\n  lb_kind DR\n  real_server 10.0.0.2 80 { }\n}\n",
			[]string{"t.conf:3: real_server 10.0.0.2:80: port is ignored for a fwmark service in DR, cleared"}},
		{"PASS without a password", "vrrp_instance V {\n  interface eth0\n  virtual_router_id 5\n  authentication {\n    auth_type PASS\n  }\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\n",
			[]string{"t.conf:4: authentication: auth_type PASS without auth_pass, authentication off"}},
		{"fwmark in a group with use_vmac", "vrrp_instance V {\n  interface eth0\n  virtual_router_id 5\n  use_vmac\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\nvirtual_server_group G {\n  10.0.0.1 80\n  fwmark 4\n}\nvirtual_server group G {\n  protocol TCP\n  real_server 10.0.0.2 80 { }\n}\n",
			[]string{"t.conf:1: vrrp_instance V: use_vmac: the kernel drops frames to a virtual MAC before netfilter marks them, so fwmark services get none of this instance's traffic"}},
		{"fwmark without real servers only ignored", "vrrp_instance V {\n  interface eth0\n  virtual_router_id 5\n  use_vmac\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\nvirtual_server fwmark 9 {\n}\n",
			[]string{"t.conf:9: virtual_server fwmark 9 has no real servers, ignored"}},
		{"sync group with unknown member", "vrrp_sync_group G {\n  group {\n    NOPE\n  }\n}\n",
			[]string{"t.conf:1: vrrp_sync_group G: vrrp_instance NOPE does not exist, ignored"}},
		{"track_script without script", "vrrp_instance A {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    10.0.0.1\n  }\n  track_script {\n    chk_x weight -20\n  }\n}\n",
			[]string{"t.conf:8: track_script: vrrp_script chk_x does not exist, ignored"}},
		{"advert_int rounded for v2", "vrrp_instance A {\n  interface eth0\n  virtual_router_id 1\n  advert_int 0.5\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\n",
			[]string{"t.conf:1: vrrp_instance A: advert_int 500ms is not whole seconds, VRRPv2 uses 1s"}},
		{"include matching nothing", "include /nonexistent-uvs/*.conf\n",
			[]string{"t.conf:1: include /nonexistent-uvs/*.conf: no file matches"}},
		{"conditional line", "@main router_id x\n", []string{"t.conf:1: conditional configuration (@) is not supported, line ignored"}},
		{"old sync group syntax", "vrrp_instance A {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\nvrrp_sync_group G {\n  A\n}\n",
			[]string{"t.conf:9: vrrp_sync_group G: bare member A, put members in group { }"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.conf", strings.NewReader(tc.conf))
			if err != nil {
				t.Fatal(err)
			}
			if got := warnings(c); !slices.Equal(got, tc.want) {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestLexer(t *testing.T) {
	conf := `$VIP=10.0.0.1
global_defs { router_id "my router" } # comment
virtual_server ${VIP} 80 { protocol TCP ! another comment
  real_server $VIP 8080 { weight 2 }
  real_server 10.0.0.3 80 {
    MISC_CHECK {
      misc_path "/bin/check \"quoted\"\tx" user
    }
  }
}
`
	c, err := Parse("t.conf", strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	if c.Global.RouterID != "my router" {
		t.Errorf("router_id = %q", c.Global.RouterID)
	}
	vs := c.VirtualServers[0]
	if vs.Addr != netip.MustParseAddr("10.0.0.1") || vs.Pos.Line != 3 {
		t.Errorf("vs = %v at %v", vs.Addr, vs.Pos)
	}
	if rs := vs.RealServers[0]; rs.Weight != 2 || rs.Port != 8080 || rs.Pos.Line != 4 {
		t.Errorf("rs = %+v", rs)
	}
	if got := vs.RealServers[1].Checkers[0].MiscPath; got != "/bin/check \"quoted\"\tx user" {
		t.Errorf("misc_path = %q", got)
	}
}

func TestTimers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{"0.1", 100 * time.Millisecond, true},
		{"2.71828", 2718280 * time.Microsecond, true},
		{".5", 500 * time.Millisecond, true},
		{"0.0000004", 0, true},
		{"1e3", 0, false},
		{"-1", 0, false},
		{"NaN", 0, false},
		{"1.2.3", 0, false},
		{"", 0, false},
		{"99999999999", 0, false},
	} {
		got, ok := parseTimer(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseTimer(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseRange(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		in          string
		first, last netip.Addr
		ok          bool
	}{
		{"10.0.0.1", a("10.0.0.1"), a("10.0.0.1"), true},
		{"10.0.0.1-10", a("10.0.0.1"), a("10.0.0.10"), true},
		{"10.0.0.250-10.0.1.10", a("10.0.0.250"), a("10.0.1.10"), true},
		{"10.0.0.9/29", a("10.0.0.8"), a("10.0.0.15"), true},
		{"2001:db8::1-1f", a("2001:db8::1"), a("2001:db8::1f"), true},
		{"10.0.0.5-4", netip.Addr{}, netip.Addr{}, false},
		{"10.0.0.1-2001:db8::1", netip.Addr{}, netip.Addr{}, false},
		{"10.0.0.1-256", netip.Addr{}, netip.Addr{}, false},
		{"10.0.0.0-11.0.0.0", netip.Addr{}, netip.Addr{}, false},
	} {
		f, l, ok := parseRange(tc.in)
		if ok != tc.ok || ok && (f != tc.first || l != tc.last) {
			t.Errorf("parseRange(%q) = %v, %v, %v; want %v, %v, %v", tc.in, f, l, ok, tc.first, tc.last, tc.ok)
		}
	}
}

// The configurations the daemon's tests and demo write parse without
// warnings.
func TestDaemonShape(t *testing.T) {
	conf := "global_defs {\n    router_id e2e\n}\n" +
		"virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.1.1 80 {\n        weight 1\n    }\n}\n" +
		"virtual_server 10.0.0.1 53 {\n    lb_algo rr\n    lb_kind NAT\n    protocol UDP\n    real_server 10.0.1.1 5353 {\n        weight 1\n    }\n}\n"
	c, err := Parse("e2e.conf", strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 || len(c.ExpandedServices()) != 2 || c.VirtualServers[1].RealServers[0].Port != 5353 {
		t.Errorf("warnings %q, services %v", warnings(c), c.ExpandedServices())
	}
}

// FULLNAT is uvs's extension: accepted as FNAT, and it maps ports.
func TestFullNAT(t *testing.T) {
	c, err := Parse("t.conf", strings.NewReader("virtual_server 10.0.0.1 80 {\n  protocol TCP\n  lb_kind FULLNAT\n  real_server 10.0.0.2 8080 { }\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rs := c.VirtualServers[0].RealServers[0]; c.VirtualServers[0].LBKind != "FNAT" || rs.LBKind != "FNAT" || rs.Port != 8080 {
		t.Errorf("vs %+v", c.VirtualServers[0])
	}
}

// A local_address_group takes addresses and ranges, as a
// virtual_server_group does.
func TestLocalAddressGroup(t *testing.T) {
	c, err := Parse("t.conf", strings.NewReader("local_address_group L {\n  10.0.0.1\n  10.0.0.5-7\n  10.0.1.0/31\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range c.LocalAddressGroups["L"] {
		got = append(got, a.String())
	}
	if want := []string{"10.0.0.1", "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.1.0", "10.0.1.1"}; !slices.Equal(got, want) {
		t.Errorf("addresses %v, want %v", got, want)
	}
	for _, bad := range []string{"10.0.0.9-3", "2001:db8::1", "10.0.0.300"} {
		_, err := Parse("t.conf", strings.NewReader("local_address_group L {\n  "+bad+"\n}\n"))
		if want := fmt.Sprintf("t.conf:2: local_address_group L: bad address %q", bad); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %s", bad, err, want)
		}
	}
}

// A real_server's block may be empty, on one line, or open on the next
// line, as keepalived accepts.
func TestRealServerBlockForms(t *testing.T) {
	conf := "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  real_server 10.0.0.2 80 {}\n  real_server 10.0.0.3 80\n  {\n    weight 3\n  }\n  real_server 10.0.0.4 80 {\n  }\n}\n"
	c, err := Parse("t.conf", strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %q", warnings(c))
	}
	rss := c.VirtualServers[0].RealServers
	if len(rss) != 3 || rss[1].Weight != 3 || rss[2].Addr != netip.MustParseAddr("10.0.0.4") {
		t.Errorf("real servers = %+v", rss)
	}
}
