package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// WrkResult is what the harness takes from wrk's --latency output.
type WrkResult struct {
	RPS      float64 // "Requests/sec:"
	P50, P99 float64 // milliseconds, from "Latency Distribution"
	Requests int64   // "N requests in ..."
	Errors   int64   // socket errors (connect+read+write+timeout) and non-2xx/3xx responses
}

// ParseWrk reads wrk's report (run with --latency).
func ParseWrk(out string) (WrkResult, error) {
	var r WrkResult
	var haveRPS, have50, have99 bool
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, fmt.Errorf("wrk: %q: %w", line, err)
			}
			r.RPS, haveRPS = v, true
		case len(f) == 2 && (f[0] == "50%" || f[0] == "99%"):
			v, err := parseWrkTime(f[1])
			if err != nil {
				return r, fmt.Errorf("wrk: %q: %w", line, err)
			}
			if f[0] == "50%" {
				r.P50, have50 = v, true
			} else {
				r.P99, have99 = v, true
			}
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk: %q: %w", line, err)
			}
			r.Requests = n
		case len(f) >= 3 && f[0] == "Socket" && f[1] == "errors:":
			// "Socket errors: connect 0, read 0, write 0, timeout 0"
			for i := 2; i+1 < len(f); i += 2 {
				n, err := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				if err != nil {
					return r, fmt.Errorf("wrk: %q: %w", line, err)
				}
				r.Errors += n
			}
		case strings.HasPrefix(strings.TrimSpace(line), "Non-2xx or 3xx responses:"):
			n, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk: %q: %w", line, err)
			}
			r.Errors += n
		}
	}
	if !haveRPS || !have50 || !have99 {
		return r, fmt.Errorf("wrk: no Requests/sec or latency distribution in output: %q", out)
	}
	return r, nil
}

// parseWrkTime converts wrk's "637.00us", "1.02ms", "1.50s", "2.00m" to
// milliseconds.
func parseWrkTime(s string) (float64, error) {
	units := []struct {
		suffix string
		ms     float64
	}{{"us", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, err
			}
			return v * u.ms, nil
		}
	}
	return 0, fmt.Errorf("unknown time unit in %q", s)
}

// ParseIperf3 returns the receiver's bits per second from `iperf3 -J`.
func ParseIperf3(out []byte) (float64, error) {
	var doc struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return 0, fmt.Errorf("iperf3: %w", err)
	}
	if doc.Error != "" {
		return 0, errors.New("iperf3: " + doc.Error)
	}
	if doc.End.SumReceived.BitsPerSecond == 0 {
		return 0, errors.New("iperf3: no end.sum_received.bits_per_second")
	}
	return doc.End.SumReceived.BitsPerSecond, nil
}

// ParseStatsPackets sums InPkts+OutPkts over the virtual-service lines
// of `uvsadm -L -n --stats --exact` (the "  -> " real-server lines repeat
// the same packets and are skipped).
func ParseStatsPackets(out string) (uint64, error) {
	var sum uint64
	found := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 7 || (f[0] != "TCP" && f[0] != "UDP" && f[0] != "SCTP" && f[0] != "FWM") {
			continue
		}
		// Prot Addr:Port Conns InPkts OutPkts InBytes OutBytes
		n := f[len(f)-5:]
		in, err1 := strconv.ParseUint(n[1], 10, 64)
		outp, err2 := strconv.ParseUint(n[2], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, fmt.Errorf("uvsadm stats %q: %w", line, err)
		}
		sum += in + outp
		found = true
	}
	if !found {
		return 0, fmt.Errorf("uvsadm stats: no service lines in %q", out)
	}
	return sum, nil
}

// ParseProcStatCPU returns utime+stime in clock ticks from /proc/PID/stat.
func ParseProcStatCPU(stat string) (uint64, error) {
	// The command name (field 2) may hold blanks and parentheses: fields
	// are counted after its last ')'.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc stat: no ')' in %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat: short %q", stat)
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("proc stat: %w", err)
	}
	return u + s, nil
}

// ParseVmRSS returns VmRSS in bytes from /proc/PID/status.
func ParseVmRSS(status string) (uint64, error) {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("proc status: %q", line)
			}
			kb, err := strconv.ParseUint(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("proc status: no VmRSS")
}

// ParseNetDevRx returns dev's received packets from /proc/net/dev.
func ParseNetDevRx(netdev, dev string) (uint64, error) {
	for _, line := range strings.Split(netdev, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != dev {
			continue
		}
		// rx: bytes packets errs drop fifo frame compressed multicast
		f := strings.Fields(rest)
		if len(f) < 2 {
			return 0, fmt.Errorf("net/dev: %q", line)
		}
		return strconv.ParseUint(f[1], 10, 64)
	}
	return 0, fmt.Errorf("net/dev: no %s", dev)
}

// ParseSNMP returns the counter name of protocol proto ("Tcp") from
// /proc/net/snmp, whose protocols each have a header line of names and a
// line of values.
func ParseSNMP(snmp, proto, name string) (uint64, error) {
	var names []string
	for _, line := range strings.Split(snmp, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != proto+":" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == name && i < len(f) {
				return strconv.ParseUint(f[i], 10, 64)
			}
		}
		break
	}
	return 0, fmt.Errorf("snmp: no %s %s", proto, name)
}
