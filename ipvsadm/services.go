package ipvsadm

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// portDB maps ports to service names and back, as getservbyport and
// getservbyname do from /etc/services: a port's name is the first line
// naming it, a name matches a service's name or any alias.
type portDB struct {
	byPort map[protoPort]string
	byName map[protoName]uint16
}

type protoPort struct {
	proto string // "tcp", "udp"
	port  uint16
}

type protoName struct {
	proto string
	name  string
}

// builtinServices is where /etc/services is missing: Debian netbase's
// names for the ports load balancers commonly serve.
const builtinServices = `
ftp		21/tcp
ssh		22/tcp
smtp		25/tcp		mail
domain		53/tcp
domain		53/udp
http		80/tcp		www
pop3		110/tcp		pop-3
ntp		123/udp
imap2		143/tcp		imap
snmp		161/tcp
snmp		161/udp
ldap		389/tcp
ldap		389/udp
https		443/tcp
https		443/udp
submission	587/tcp
imaps		993/tcp
pop3s		995/tcp
mysql		3306/tcp
postgresql	5432/tcp	postgres
http-alt	8080/tcp	webcache
`

func readPortDB(r io.Reader) *portDB {
	db := &portDB{byPort: map[protoPort]string{}, byName: map[protoName]uint16{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		ps, proto, ok := strings.Cut(f[1], "/")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(ps, 10, 16)
		if err != nil {
			continue
		}
		port := uint16(n)
		if _, dup := db.byPort[protoPort{proto, port}]; !dup {
			db.byPort[protoPort{proto, port}] = f[0]
		}
		for _, name := range append([]string{f[0]}, f[2:]...) {
			if _, dup := db.byName[protoName{proto, name}]; !dup {
				db.byName[protoName{proto, name}] = port
			}
		}
	}
	return db
}

func loadPortDB() *portDB {
	f, err := os.Open("/etc/services")
	if err != nil {
		return readPortDB(strings.NewReader(builtinServices))
	}
	defer f.Close()
	return readPortDB(f)
}

// ports is the table in use; tests swap it for the built-in one.
var ports = sync.OnceValue(loadPortDB)

// serviceToPort is ipvsadm's service_to_port; proto "" finds nothing.
func serviceToPort(name, proto string) (uint16, bool) {
	if proto == "" {
		return 0, false
	}
	p, ok := ports().byName[protoName{proto, name}]
	return p, ok
}

// portName is ipvsadm's port_to_anyname.
func portName(port uint16, proto string) string {
	if proto != "" {
		if n, ok := ports().byPort[protoPort{proto, port}]; ok {
			return n
		}
	}
	return strconv.Itoa(int(port))
}
