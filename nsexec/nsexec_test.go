package nsexec_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/uvs-project/uvs/lab"
	"github.com/uvs-project/uvs/nsexec"
)

func TestValidTable(t *testing.T) {
	for _, table := range []string{"", "a b", "x;flush ruleset", "1abc", "a-b", `a"`, strings.Repeat("a", 65)} {
		if nsexec.ValidTable(table) {
			t.Errorf("table name %q accepted", table)
		}
	}
	for _, table := range []string{"uvs", "uvs_eth0", "_x1", strings.Repeat("a", 64)} {
		if !nsexec.ValidTable(table) {
			t.Errorf("table name %q rejected", table)
		}
	}
}

func TestReplaceSet(t *testing.T) {
	for _, c := range []struct {
		elems []string
		want  string
	}{
		{nil, "flush set ip t marks\n"},
		{[]string{"0x7"}, "flush set ip t marks\nadd element ip t marks { 0x7 }\n"},
		{[]string{"0x7", "0x9"}, "flush set ip t marks\nadd element ip t marks { 0x7, 0x9 }\n"},
	} {
		if got := nsexec.ReplaceSet("ip", "t", "marks", c.elems); got != c.want {
			t.Errorf("ReplaceSet(%q) = %q, want %q", c.elems, got, c.want)
		}
	}
}

// TestPrivilegedNft: nft runs in the namespace captured at NewNft, not
// the caller's, Do's function sees that namespace and leaves the caller's
// thread where it was, and a closed Nft refuses with its own error.
func TestPrivilegedNft(t *testing.T) {
	lab.RequireCommands(t, "nft")
	l := lab.NewT(t)
	ns, err := l.NS("nft")
	if err != nil {
		t.Fatal(err)
	}
	errClosed := errors.New("closed")
	var n *nsexec.Nft
	var handle netns.NsHandle
	if err := ns.Do(func() (err error) {
		if handle, err = netns.Get(); err != nil {
			return err
		}
		n, err = nsexec.NewNft(errClosed)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer handle.Close()
	if _, err := n.Run("add table ip nsexec_t\n", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	out, err := ns.Run(t.Context(), "nft", "list", "tables")
	if err != nil || !strings.Contains(out, "nsexec_t") {
		t.Fatalf("the table is not in the namespace: %q, %v", out, err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	if err := n.In(func() error {
		cur, err := netns.Get()
		if err != nil {
			return err
		}
		defer cur.Close()
		if !cur.Equal(handle) {
			return errors.New("fn ran outside the captured namespace")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if after, err := netns.Get(); err != nil || !after.Equal(before) {
		t.Fatalf("the caller's thread moved: %v", err)
	}
	if _, err := n.Run("", "add", "table", "ip", "no such syntax {"); err == nil || !strings.Contains(err.Error(), "nft add table") {
		t.Fatalf("a failing nft: %v, want its command in the error", err)
	}
	if err := n.Close("delete", "table", "ip", "nsexec_t"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Run("", "list", "tables"); !errors.Is(err, errClosed) {
		t.Fatalf("Run after Close: %v, want the closed error", err)
	}
	if out, _ := ns.Run(t.Context(), "nft", "list", "tables"); strings.Contains(out, "nsexec_t") {
		t.Fatalf("Close left the table: %q", out)
	}
}
