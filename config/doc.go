// Package config reads keepalived.conf, uvs's configuration language,
// into a typed Config: global_defs, virtual_server_group, virtual_server
// with its real servers and health checkers, vrrp_script, vrrp_instance,
// vrrp_sync_group and static_ipaddress.
//
// The lexer follows keepalived's: '#' and '!' start comments anywhere
// outside quotes, braces are words of their own (a '{' may also stand
// alone on the next line), "..." and '...' quote with backslash escapes,
// $NAME=value defines a parameter used as $NAME or ${NAME}, and include
// (and its checked variants includer, includem, includew, includeb,
// includea) splices the files a glob matches, in lexical order, where it
// stands. A relative include is resolved against the directory of the
// file that contains it; for the reader given to Parse, against the
// working directory. Every keyword keeps its file:line.
//
// What is wrong is an *Error, "file:line: what is wrong", and stops the
// parse: unbalanced braces, a missing mandatory argument, a bad address,
// number or time, a keyword outside its block (real_server outside
// virtual_server), an unknown forwarding method, scheduler, protocol or
// state, a port that DR or TUN cannot map, a duplicate virtual service.
// uvs refuses some things keepalived only logs and corrects: unknown
// enumerations and port mapping in DR/TUN are errors here, because
// guessing changes where traffic goes.
//
// What uvs does not use is a warning in Config.Warnings, as keepalived
// logs "Unknown keyword": an unknown keyword (its whole block skipped), a
// keepalived keyword uvs does not implement (email and SNMP
// notifications, firewall and process tuning, other checkers than
// TCP_CHECK, HTTP_GET, SSL_GET and MISC_CHECK, virtual_routes, ...), and
// every value corrected the way keepalived corrects it (quorum above the
// total weight, a duplicated real server, a VRRPv2 advert_int that is not
// whole seconds, ...).
//
// Times are keepalived's <TIMER>: seconds with an optional fraction,
// microsecond resolution (advert_int 0.1, connect_timeout 3). Defaults
// and inheritance are keepalived's: lb_algo wlc, lb_kind NAT, delay_loop
// 60s, connect_timeout 5s, weight 1; a real server inherits from its
// virtual server and a checker from its real server. One default
// differs: a virtual server without protocol is TCP (keepalived 2.x
// assumes UDP), with a warning.
package config
