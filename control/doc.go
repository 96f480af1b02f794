// Package control is the Unix-socket protocol between uvsadm and uvsd:
// one JSON request per line, one JSON response per line, on a socket of
// mode 0600 (default /run/uvs/uvsd.sock). The types mirror what ipvsadm
// exchanges with the kernel over generic netlink, in ipvsadm's terms.
package control
