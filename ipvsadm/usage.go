package ipvsadm

import (
	"fmt"
	"io"
	"strings"
)

// Version is the ipvsadm release whose behaviour this package follows.
const Version = "v1.31 2019/12/24"

// ipvsVersion is the IPVS version ipvsadm reports being compiled with.
const ipvsVersion = "1.2.1"

// schedulers are those uvs implements, in ipvsadm's order plus twos.
const schedulers = "rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh|twos"

// WriteVersion prints ipvsadm -v.
func WriteVersion(w io.Writer) error {
	_, err := fmt.Fprintf(w, "ipvsadm %s (compiled with popt and IPVS v%s)\n", Version, ipvsVersion)
	return err
}

// WriteUsage prints ipvsadm -h for program prog: ipvsadm's text for the
// commands and options uvs takes, with uvs's schedulers, --fullnat and
// LVS-FULLNAT's local address commands.
func WriteUsage(w io.Writer, prog string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ipvsadm %s (compiled with popt and IPVS v%s)\n", Version, ipvsVersion)
	b.WriteString("Usage:\n")
	for _, u := range []string{
		"-A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags]",
		"-D virtual-service",
		"-C",
		"-R",
		"-S [-n]",
		"-P|Q virtual-service -z local-address",
		"-G [virtual-service]",
		"-a|e virtual-service -r server-address [options]",
		"-d virtual-service -r server-address",
		"-L|l [virtual-service] [options]",
		"-Z [virtual-service]",
		"--set tcp tcpfin udp",
		"-h",
	} {
		fmt.Fprintf(&b, "  %s %s\n", prog, u)
	}
	b.WriteString("\n" +
		"Commands:\n" +
		"Either long or short options are allowed.\n" +
		"  --add-service     -A        add virtual service with options\n" +
		"  --edit-service    -E        edit virtual service with options\n" +
		"  --delete-service  -D        delete virtual service\n" +
		"  --clear           -C        clear the whole table\n" +
		"  --restore         -R        restore rules from stdin\n" +
		"  --add-laddr       -P        add local address\n" +
		"  --del-laddr       -Q        del local address\n" +
		"  --get-laddr       -G        get local address\n" +
		"  --save            -S        save rules to stdout\n" +
		"  --add-server      -a        add real server with options\n" +
		"  --edit-server     -e        edit real server with options\n" +
		"  --delete-server   -d        delete real server\n" +
		"  --list            -L|-l     list the table\n" +
		"  --zero            -Z        zero counters in a service or all services\n" +
		"  --set tcp tcpfin udp        set connection timeout values\n" +
		"  --help            -h        display this help message\n\n")
	b.WriteString("virtual-service:\n" +
		"  --tcp-service|-t  service-address   service-address is host[:port]\n" +
		"  --udp-service|-u  service-address   service-address is host[:port]\n" +
		"  --fwmark-service|-f fwmark          fwmark is an integer greater than zero\n" +
		"\n")
	fmt.Fprintf(&b, "Options:\n"+
		"  --scheduler    -s scheduler         one of %s,\n"+
		"                                      the default scheduler is %s.\n"+
		"  --persistent   -p [timeout]         persistent service\n"+
		"  --netmask      -M netmask           persistent granularity mask\n"+
		"  --real-server  -r server-address    server-address is host (and port)\n"+
		"  --gatewaying   -g                   gatewaying (direct routing) (default)\n"+
		"  --ipip         -i                   ipip encapsulation (tunneling)\n"+
		"  --masquerading -m                   masquerading (NAT)\n"+
		"  --fullnat      -k                   full NAT (uvs extension)\n"+
		"  --laddr        -z local-address     FULLNAT local address (LVS-FULLNAT)\n"+
		"  --tun-type      type                one of ipip,\n"+
		"                                      the default tunnel type is ipip.\n"+
		"  --weight       -w weight            capacity of real server\n"+
		"  --u-threshold  -x uthreshold        upper threshold of connections\n"+
		"  --l-threshold  -y lthreshold        lower threshold of connections\n"+
		"  --connection   -c                   output of current IPVS connections\n"+
		"  --timeout                           output of timeout (tcp tcpfin udp)\n"+
		"  --stats                             output of statistics information\n"+
		"  --rate                              output of rate information\n"+
		"  --exact                             expand numbers (display exact values)\n"+
		"  --thresholds                        output of thresholds information\n"+
		"  --persistent-conn                   output of persistent connection info\n"+
		"  --tun-info                          output of tunnel information\n"+
		"  --nosort                            disable sorting output of service/server entries\n"+
		"  --sort                              does nothing, for backwards compatibility\n"+
		"  --ops          -o                   one-packet scheduling\n"+
		"  --numeric      -n                   numeric output of addresses and ports\n"+
		"  --sched-flags  -b flags             scheduler flags (comma-separated)\n",
		schedulers, defaultSched)
	_, err := io.WriteString(w, b.String())
	return err
}
