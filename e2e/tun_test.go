package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/lab"
)

// TestPrivilegedTUN: real servers reached only through IPIP, decapsulated
// in userspace by uvsrs (this kernel has no ipip module). Requests, a
// 4 MB upload (the client's TSO super-frames are segmented for the
// tunnel) and a 10 MB download succeed, and a datagram too big for the
// tunnel brings the client an ICMP fragmentation-needed with the tunnel's
// MTU.
func TestPrivilegedTUN(t *testing.T) {
	l, client, dir, _ := oneArm(t, "tun")
	conf := `virtual_server 198.18.0.100 80 {
    lb_algo rr
    lb_kind TUN
    protocol TCP
    real_server 198.18.0.11 80 {
        weight 1
    }
    real_server 198.18.0.12 80 {
        weight 1
    }
}
virtual_server 198.18.0.100 5353 {
    lb_algo rr
    lb_kind TUN
    protocol UDP
    real_server 198.18.0.11 5353 {
        weight 1
    }
}
`
	d := startUVSD(t, l, dir, conf, "--workers", "1")
	got := map[string]int{}
	for _, w := range curlClose(t, client, "http://198.18.0.100/", 20) {
		got[w]++
	}
	if got["rs1"] != 10 || got["rs2"] != 10 {
		t.Fatalf("split %v, want 10/10", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := client.Run(ctx, "sh", "-c",
		"head -c 4000000 /dev/zero | curl -sS --max-time 50 -o /dev/null -w '%{http_code} %{size_upload}' --data-binary @- http://198.18.0.100/")
	if err != nil || !strings.HasSuffix(strings.TrimSpace(out), " 4000000") {
		t.Fatalf("upload through the tunnel: %v %q", err, out)
	}
	cmd := client.Exec(ctx, "curl", "-sS", "--fail", "--max-time", "50", "http://198.18.0.100/big")
	body, err := cmd.Output()
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != lab.BigSHA256() {
		t.Fatalf("download: %d bytes, sha256 mismatch", len(body))
	}
	if listing := d.mustAdm("-L", "-n"); !strings.Contains(listing, "Tunnel") {
		t.Errorf("listing does not show Tunnel:\n%s", listing)
	}

	// 1472 bytes of UDP with DF make a 1500-byte packet: 1520 in IPIP.
	err = client.Do(func() error {
		c, err := net.Dial("udp4", "198.18.0.100:5353")
		if err != nil {
			return err
		}
		defer c.Close()
		raw, err := c.(*net.UDPConn).SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		_ = raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
		})
		if serr != nil {
			return serr
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return lab.Eventually(ctx, 100*time.Millisecond, func() error {
			_, _ = c.Write(make([]byte, 1472))
			var mtu int
			var gerr error
			_ = raw.Control(func(fd uintptr) {
				mtu, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU)
			})
			if gerr != nil {
				return gerr
			}
			if mtu != 1480 {
				return fmt.Errorf("path MTU %d, want 1480 from the director's frag-needed", mtu)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}
