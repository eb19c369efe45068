package bootstrap

import (
	"crypto/rand"
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/profile"
)

// generators make the values of profile.File.Generate; r is the source of
// randomness. TestGenerators checks that every profile.Generators name is
// here.
var generators = map[string]func(r io.Reader) ([]byte, error){
	profile.GenerateUUID:         generateUUID,
	profile.GenerateUnameRelease: generateUnameRelease,
}

func generate(name string, r io.Reader) ([]byte, error) {
	g, ok := generators[name]
	if !ok {
		return nil, fmt.Errorf("no generator %q", name)
	}
	if r == nil {
		r = rand.Reader
	}
	return g(r)
}

// generateUUID returns a random (version 4, RFC 9562) UUID and a newline,
// as /proc/sys/kernel/random/boot_id reads.
func generateUUID(r io.Reader) ([]byte, error) {
	var u [16]byte
	if _, err := io.ReadFull(r, u[:]); err != nil {
		return nil, err
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant 10
	return fmt.Appendf(nil, "%x-%x-%x-%x-%x\n", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}

// generateUnameRelease returns uname(2)'s release and a newline, as
// /proc/sys/kernel/osrelease reads.
func generateUnameRelease(io.Reader) ([]byte, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, fmt.Errorf("uname: %w", err)
	}
	return []byte(unix.ByteSliceToString(u.Release[:]) + "\n"), nil
}
