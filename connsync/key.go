package connsync

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
)

// keyLabel separates sync keys from any other use of the same secret (the
// VRRP auth_pass also authenticates adverts). Its NUL ends the label, and
// the sync ID that follows is one byte, so no label, ID and secret triple
// hashes like another.
const keyLabel = "uvs connsync v1 key\x00"

// DeriveKey returns the 32-byte MAC key for a sync ID: SHA-256 of a
// domain-separation label, the sync ID and secret. The daemon passes the
// VRRP instance's auth_pass (or a uvs-specific sync secret), so the two
// directors of one cluster derive the same key from configuration they
// already share, and pairs with different sync IDs cannot feed each other
// even when their secrets match.
func DeriveKey(secret string, syncID uint8) []byte {
	h := sha256.New()
	h.Write([]byte(keyLabel))
	h.Write([]byte{syncID})
	h.Write([]byte(secret))
	return h.Sum(nil)
}

// processBootID tells this process's datagrams from those of an earlier
// run of the same director, whose sequence numbers restarted at 1.
var processBootID = newBootID()

func newBootID() uint32 {
	var b [4]byte
	for {
		rand.Read(b[:]) // never fails since Go 1.24; it crashes the program instead
		if id := binary.BigEndian.Uint32(b[:]); id != 0 {
			return id // 0 means "the process's ID" in the configs
		}
	}
}

// BootID returns the boot ID this process's senders use unless told
// otherwise.
func BootID() uint32 { return processBootID }
