// Package config reads keepalived.conf, uvs's configuration language:
// global_defs, virtual_server with real_server blocks, and the addresses of
// vrrp_instance blocks. Every keyword keeps its file:line; what uvs does not
// support is a warning, a malformed block an error.
package config
