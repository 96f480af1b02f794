// Package lab builds network-namespace labs for uvs's tests, `make demo`
// and `make bench`: namespaces joined by veth pairs and bridges, real
// servers (nginx, a UDP echo) and background processes.
//
// Every namespace is named "uvs<6 random hex>-<name>", the hex drawn per
// Lab, so concurrent runs never collide; link names are per namespace and
// stay short (c0, d0, eth0). Lab.Close stops the processes, deletes the
// namespaces (and with them their links) and removes the temporary files,
// whatever failed before; NewT registers it with t.Cleanup.
//
// Nothing here touches the root namespace's interfaces, routes or
// sysctls: links are created inside the lab's namespaces (`ip -n A link
// add ... peer ... netns B`), sysctls are set through `ip netns exec`, and
// Go code runs inside a namespace only through NS.Do, on a locked thread
// that is discarded if it cannot be switched back.
//
// Tests that build labs are named TestPrivileged*. They call RequireRoot
// (NewT does): without root, or where `ip netns add` is refused, they
// skip with "needs root for network namespaces; run as root or via make
// test", and fail instead when CI=true.
//
// Addresses come from the RFC 2544 benchmarking range 198.18.0.0/15 only;
// NATTopology is the standard two-armed LVS-NAT lab; VRRPTopology is the
// same with two (or three) directors for VRRP failover, whose
// KeepalivedConf is read alike by uvsd and by Debian's keepalived
// (StartKeepalived, WaitState).
package lab
