package bench

import (
	"math"
	"testing"
)

const wrkOutput = `Running 5s test @ http://198.18.0.100/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.12ms    2.01ms  40.11ms   95.12%
    Req/Sec    17.50k     1.20k   20.11k    70.00%
  Latency Distribution
     50%  637.00us
     75%    1.02ms
     90%    1.56ms
     99%    1.20s
  174306 requests in 5.00s, 27.01MB read
  Socket errors: connect 2, read 3, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  34854.33
Transfer/sec:      5.40MB
`

func TestParseWrk(t *testing.T) {
	got, err := ParseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := WrkResult{RPS: 34854.33, P50: 0.637, P99: 1200, Requests: 174306, Errors: 10}
	if math.Abs(got.P50-want.P50) > 1e-9 {
		t.Errorf("P50 = %v, want %v", got.P50, want.P50)
	}
	got.P50 = want.P50
	if got != want {
		t.Errorf("ParseWrk = %+v, want %+v", got, want)
	}
	if _, err := ParseWrk("unable to connect to 198.18.0.100:80 Connection refused\n"); err == nil {
		t.Error("ParseWrk accepted output without figures")
	}
}

func TestParseWrkTime(t *testing.T) {
	for in, want := range map[string]float64{"637.00us": 0.637, "1.02ms": 1.02, "1.50s": 1500, "2.00m": 120000} {
		got, err := parseWrkTime(in)
		if err != nil || math.Abs(got-want) > 1e-9 {
			t.Errorf("parseWrkTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseWrkTime("3.00ks"); err == nil {
		t.Error("parseWrkTime accepted an unknown unit")
	}
}

func TestParseIperf3(t *testing.T) {
	got, err := ParseIperf3([]byte(`{"start":{},"intervals":[],"end":{"sum_sent":{"bits_per_second":9.1e9},"sum_received":{"bits_per_second":9.0e9}}}`))
	if err != nil || got != 9.0e9 {
		t.Errorf("ParseIperf3 = %v, %v; want 9e9", got, err)
	}
	if _, err := ParseIperf3([]byte(`{"start":{},"end":{},"error":"unable to connect to server: Connection refused"}`)); err == nil {
		t.Error("ParseIperf3 accepted an error report")
	}
	if _, err := ParseIperf3(nil); err == nil {
		t.Error("ParseIperf3 accepted no output")
	}
}

func TestParseStatsPackets(t *testing.T) {
	out := "IP Virtual Server version 1.2.1 (size=4096)\n" +
		"Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n" +
		"  -> RemoteAddress:Port\n" +
		"TCP  198.18.0.100:80                 120      1000      900    64000   128000\n" +
		"  -> 198.19.0.11:80                   60       500      450    32000    64000\n" +
		"  -> 198.19.0.12:80                   60       500      450    32000    64000\n" +
		"UDP  198.18.0.100:9                 1024 12345678901        0 1234567890        0\n"
	got, err := ParseStatsPackets(out)
	if want := uint64(1000 + 900 + 12345678901); err != nil || got != want {
		t.Errorf("ParseStatsPackets = %d, %v; want %d", got, err, want)
	}
	if _, err := ParseStatsPackets("IP Virtual Server version 1.2.1 (size=4096)\n"); err == nil {
		t.Error("ParseStatsPackets accepted a list without services")
	}
}

func TestParseProcStatCPU(t *testing.T) {
	// Fields 14 (utime) and 15 (stime) are 250 and 120; the name holds
	// blanks and a parenthesis.
	stat := "4242 (uv sd) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 120 0 0 20 0 3 0 100 1000000 500 18446744073709551615\n"
	got, err := ParseProcStatCPU(stat)
	if err != nil || got != 370 {
		t.Errorf("ParseProcStatCPU = %d, %v; want 370", got, err)
	}
	if _, err := ParseProcStatCPU("4242 (uvsd) S 1"); err == nil {
		t.Error("ParseProcStatCPU accepted a short line")
	}
}

func TestParseVmRSS(t *testing.T) {
	got, err := ParseVmRSS("Name:\tuvsd\nVmPeak:\t  300000 kB\nVmRSS:\t  182579 kB\nThreads:\t5\n")
	if err != nil || got != 182579<<10 {
		t.Errorf("ParseVmRSS = %d, %v; want %d", got, err, 182579<<10)
	}
}

func TestParseNetDevRx(t *testing.T) {
	netdev := "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
		"    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n" +
		"  eth0: 98765432  123456    0    0    0     0          0         0     4242      42    0    0    0     0       0          0\n"
	got, err := ParseNetDevRx(netdev, "eth0")
	if err != nil || got != 123456 {
		t.Errorf("ParseNetDevRx = %d, %v; want 123456", got, err)
	}
	if _, err := ParseNetDevRx(netdev, "eth1"); err == nil {
		t.Error("ParseNetDevRx found a missing device")
	}
}

func TestParseSNMP(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL InReceives\nIp: 2 64 1000\n" +
		"Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n" +
		"Tcp: 1 200 120000 -1 5000 0 3 0 2 90000 91000 42 0 7 0\n"
	got, err := ParseSNMP(snmp, "Tcp", "RetransSegs")
	if err != nil || got != 42 {
		t.Errorf("ParseSNMP = %d, %v; want 42", got, err)
	}
	if _, err := ParseSNMP(snmp, "Udp", "InDatagrams"); err == nil {
		t.Error("ParseSNMP found a missing protocol")
	}
}

func TestParseMachineCPU(t *testing.T) {
	got, err := parseMachineCPU("cpu  100 5 50 1000 20 3 7 2 40 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	if err != nil {
		t.Fatal(err)
	}
	// busy: user+nice+system+irq+softirq+steal; guest is inside user.
	if want := (machineCPU{busy: 100 + 5 + 50 + 3 + 7 + 2, total: 100 + 5 + 50 + 1000 + 20 + 3 + 7 + 2}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "intr 1 2 3\n", "cpu 1 x 3 4 5\n"} {
		if _, err := parseMachineCPU(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
