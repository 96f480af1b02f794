// Package daemon is uvsd: it loads keepalived.conf into the service
// model, resolves where real servers live, runs the dataplane on the
// interfaces that serve the VIPs and the real servers, and answers uvsadm
// on the control socket.
package daemon
