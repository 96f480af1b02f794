package lab

import (
	"fmt"

	"github.com/vishvananda/netns"

	"github.com/uvs-project/uvs/nsexec"
)

// Do runs fn on an OS thread switched into the namespace and returns its
// error (nsexec.Do: sockets fn opens belong to the namespace for their
// whole life; goroutines fn starts do not run in it).
func (n *NS) Do(fn func() error) error {
	target, err := netns.GetFromName(n.name)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", n.name, err)
	}
	defer target.Close()
	return nsexec.Do(target, fn)
}
