// Package health is keepalived's real-server checking: the probes behind
// TCP_CHECK, HTTP_GET, SSL_GET and MISC_CHECK, and a Runner that owns each
// real server's up/down state machine.
//
// A Probe runs one check and says whether the server answered (Result).
// NewProbe builds one from a parsed config.Checker. The Runner schedules
// probes on timers and runs them on a bounded pool: at most maxConcurrent
// probes are in flight at once, however many real servers are configured,
// and an idle server holds no goroutine and no socket.
//
// The state machine follows keepalived's check_* threads. A server starts
// up, or down when alpha is set (Timing.StartUp). Every delay_loop each
// probe runs; a probe that fails while up is tried again retry times,
// delay_before_retry apart, before it is declared down; a probe that is
// down comes back up on its first success. A server is up only while all
// its probes are up. The first check of each probe waits a random delay in
// [0, warmup]. Changes are reported through the entry's callback, only on
// a change of state or of MISC_CHECK's dynamic weight; applying them
// (removing the destination, or weight 0 with inhibit_on_failure) is the
// daemon's work. State and Restore carry a server's state (up/down, the
// retries its probes have used, its dynamic weight) from one Runner to
// the next across a reload, as keepalived migrates the checkers of the
// real servers that stay.
//
// Not supported: bind_if and fwmark on probe sockets (they need privileges
// the checker does not assume), MISC_CHECK's user, and http_protocol (Go's
// client always speaks HTTP/1.1, which keepalived servers accept).
package health
