// Package ipvsadm speaks ipvsadm(8): it parses ipvsadm's command lines
// into Commands and prints the state uvsd reports (control.Service,
// control.Conn, control.Timeouts) exactly as ipvsadm 1.31 prints the
// kernel's, so scripts, keepalived checks and monitoring that scrape
// ipvsadm keep working against uvs.
//
// # Command line
//
// Parse follows ipvsadm built with popt, which is how every current
// distribution builds it:
//
//   - the first option must be a command (-A -E -D -C -a -e -d -L/-l -Z
//     -S -R --set -h -v); anything else prints ipvsadm's "Try ..." line;
//   - short options combine (-Ln, -At 10.0.0.1:80, -p600), long options
//     take "--name value" or "--name=value", there are no abbreviations;
//   - -p/--persistent takes an optional timeout: the next word unless it
//     starts with '-', 300 seconds when absent;
//   - words that are not options are collected (--set reads three of
//     them) and "--" ends the options;
//   - the same table of legal command/option combinations, the same
//     checks in the same order and the same messages as ipvsadm.c.
//
// # Output
//
// WriteList, WriteService, WriteConns, WriteSave and WriteTimeouts
// reproduce ipvsadm's printf formats byte for byte, trailing blanks
// included: the column widths, print_largenum's K/M/G/T rule (off with
// --exact), the 33- and 28-column truncation of names, the sort order of
// libipvs (services by fwmark, family, protocol, address, port;
// destinations by address, port) unless --nosort. ParseRestore reads
// what WriteSave writes, as ipvsadm -R reads ipvsadm -S.
//
// # uvs extensions
//
//   - FULLNAT forwarding: -k / --fullnat on -a and -e (no ipvsadm option
//     uses k), listed as "FullNat" and saved as "--fullnat".
//   - FULLNAT local addresses, as the Alibaba LVS-FULLNAT ipvsadm has
//     them: -P/--add-laddr and -Q/--del-laddr with a service and
//     -z/--laddr address, and -G/--get-laddr [service] printing that
//     fork's table (WriteLocalAddrs). -S writes an
//     "--add-laddr -t VIP:PORT -z LIP" line per local address after the
//     service's lines (the fork saves none), so -S | -R keeps them.
//   - Scheduler flags are carried as names in control.Service.SchedFlags:
//     the kernel bits SCHED1/SCHED2 become "sh-fallback"/"sh-port"
//     ("mh-…" when the scheduler is mh), flag-3 stays "flag-3", and -o is
//     "ops". Listings map the names back to the bits and print them the
//     way ipvsadm does for the service's scheduler (flag-1 for rr).
//
// # Deviations from ipvsadm
//
//   - Host names are not resolved: addresses must be numeric (inet_aton's
//     forms for IPv4: 10.1, 0x0a000001:80 ... are accepted as ipvsadm
//     accepts them). A name fails like an unresolvable one does.
//   - Without -n ipvsadm prints host names (gethostbyaddr) and service
//     names (getservbyport). uvs prints addresses numerically and turns
//     ports into names from /etc/services (a built-in table of
//     well-known ports where that file is missing); -R maps the names
//     back through the same table.
//   - IPv4 persistence masks must be contiguous (-M 255.255.255.0), as
//     uvs stores a prefix length, and not 0.0.0.0: a Netmask of 0 in
//     control.Service means "unset", which uvsd reads as /32.
//   - Options for what uvs does not have (the sync daemon, --sctp-service,
//     --pe, -6, GUE tunnels) are recognised and refused with a message
//     naming the option, instead of being sent to a kernel.
//   - ipvsadm -R's comment handling never fires (it looks for '#' in the
//     separator); ParseRestore does what ipvsadm's comment says: a '#'
//     starts a comment that runs to the end of the line.
//
// # Sort order
//
// libipvs's comparators subtract unsigned 32-bit values into an int, so
// addresses (or marks) more than 2^31 apart compare the wrong way round
// and the order is not transitive: with 10.0.0.1 and 192.168.0.1 on one
// director, ipvsadm lists 192.168.0.1 first. uvs keeps those
// comparators and glibc's qsort algorithm (its top-down merge sort), and
// so prints the same order; this was checked against glibc 2.36's qsort
// on random tables.
package ipvsadm
