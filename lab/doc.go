// Package lab builds network-namespace labs for uvs's tests, `make demo`
// and `make bench`: namespaces joined by veth pairs and bridges, real
// servers (nginx, a UDP echo), and background processes, all named with a
// per-run random prefix and all removed by Close. Nothing it does touches
// the root namespace's interfaces, routes or sysctls.
package lab
