package lab

import "fmt"

// natConf is the keepalived.conf of the NAT lab's standard services: HTTP
// on VIP:80 and a UDP echo on VIP:53 (real servers' 5353), both rr over
// every real server.
const natConf = `! uvs NAT lab: %[1]d real servers behind %[2]s, TCP and UDP, rr
virtual_server %[2]s 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
%[3]s}

virtual_server %[2]s 53 {
    lb_algo rr
    lb_kind NAT
    protocol UDP
%[4]s}
`

// KeepalivedConf returns the lab's standard keepalived.conf for uvsd,
// followed by extra (more blocks, or "").
func (t *NAT) KeepalivedConf(extra string) string {
	var tcp, udp string
	for _, ip := range t.RSIPs {
		tcp += fmt.Sprintf("    real_server %v 80 {\n        weight 1\n    }\n", ip)
		udp += fmt.Sprintf("    real_server %v 5353 {\n        weight 1\n    }\n", ip)
	}
	return fmt.Sprintf(natConf, len(t.RSIPs), t.VIP, tcp, udp) + extra
}
