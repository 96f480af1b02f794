// Package e2e holds uvs's end-to-end tests: network-namespace labs with
// real clients (curl, Go sockets) and real servers (nginx), uvsd running
// as its own process on the director, and uvsadm reading it back. They
// need root; they skip without it, and fail instead under CI=true.
package e2e
