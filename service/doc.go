// Package service is uvsd's model of what it serves, in IPVS's terms:
// virtual services, each with a scheduler and a list of real servers
// (destinations), the addresses uvs owns, and the connection timeouts.
//
// The Model is the control plane's copy, changed under a lock by the
// config loader and by uvsadm requests. Every change publishes a new
// immutable Snapshot; the dataplane workers load the current Snapshot once
// per batch, so no lock is ever taken per packet.
//
// Destinations get IDs that are never reused for another server, so a
// connection can name its destination with a plain uint32 and keep
// counting against it after the destination is removed, as IPVS keeps
// removed destinations in its trash while connections still use them.
package service
