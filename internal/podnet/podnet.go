package podnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// VETH_INFO_PEER is the IFLA_INFO_DATA attribute of a veth link that
// holds its peer (include/uapi/linux/veth.h); x/sys/unix lacks it.
const VETH_INFO_PEER = 1

// The names of the probe's pair, inside its own namespace only.
const (
	probeLink = "nbprobe0"
	probePeer = "nbprobe1"
)

// Error is a failed probe: the step that failed, and why.
type Error struct {
	// Step is "make a network namespace" or "create a veth pair in a new
	// network namespace".
	Step string
	Err  error
}

func (e *Error) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Probe creates a veth pair in a new network namespace. nil means the CNI
// plugins can link a pod's own network namespace to the node here. An
// *Error says which step failed: without CAP_SYS_ADMIN the namespace
// cannot be made (EPERM), without CAP_NET_ADMIN in it, or without the
// veth link type, the pair cannot (EPERM, EOPNOTSUPP). Nothing is left
// behind either way.
func Probe() error {
	errc := make(chan error, 1)
	go func() {
		// unshare moves this thread alone into the new namespace; it must
		// not run other goroutines until it is back in its own.
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- &Error{Step: "make a network namespace", Err: err}
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- &Error{Step: "make a network namespace", Err: os.NewSyscallError("unshare(CLONE_NEWNET)", err)}
			return
		}
		err = createVeth(probeLink, probePeer)
		// A thread that cannot go back stays locked: Go ends it with this
		// goroutine, and the namespace with it.
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		if err != nil {
			err = &Error{Step: "create a veth pair in a new network namespace", Err: err}
		}
		errc <- err
	}()
	return <-errc
}

// createVeth asks the kernel by rtnetlink for a veth pair name and peer
// in the calling thread's network namespace, as "ip link add NAME type
// veth peer name PEER" does, and returns the kernel's answer.
func createVeth(name, peer string) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return os.NewSyscallError("socket(AF_NETLINK)", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return os.NewSyscallError("bind(AF_NETLINK)", err)
	}
	// RTM_NEWLINK: ifinfomsg, then
	//	IFLA_IFNAME name
	//	IFLA_LINKINFO
	//		IFLA_INFO_KIND "veth"
	//		IFLA_INFO_DATA
	//			VETH_INFO_PEER: ifinfomsg, then IFLA_IFNAME peer
	peerInfo := append(ifinfomsg(), attr(unix.IFLA_IFNAME, cstr(peer))...)
	linkInfo := append(attr(unix.IFLA_INFO_KIND, []byte("veth")),
		attr(unix.IFLA_INFO_DATA, attr(VETH_INFO_PEER, peerInfo))...)
	body := append(ifinfomsg(), attr(unix.IFLA_IFNAME, cstr(name))...)
	body = append(body, attr(unix.IFLA_LINKINFO, linkInfo)...)
	const seq = 1
	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(unix.SizeofNlMsghdr+len(body)))
	ne.PutUint16(msg[4:], unix.RTM_NEWLINK)
	ne.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	ne.PutUint32(msg[8:], seq)
	msg = append(msg, body...)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return os.NewSyscallError("sendto(RTM_NEWLINK)", err)
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return os.NewSyscallError("recvfrom(NETLINK_ROUTE)", err)
		}
		for b := buf[:n]; len(b) >= unix.SizeofNlMsghdr; {
			l := int(ne.Uint32(b[0:4]))
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return fmt.Errorf("netlink answer: bad message length %d", l)
			}
			typ, mseq, data := ne.Uint16(b[4:6]), ne.Uint32(b[8:12]), b[unix.SizeofNlMsghdr:l]
			b = b[min((l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1), len(b)):]
			if mseq != seq || typ != unix.NLMSG_ERROR {
				continue
			}
			if len(data) < 4 {
				return errors.New("netlink answer: short error message")
			}
			// The ack: an nlmsgerr whose error is 0, or minus an errno.
			if e := int32(ne.Uint32(data[0:4])); e != 0 {
				return fmt.Errorf("RTM_NEWLINK veth: %w", unix.Errno(-e))
			}
			return nil
		}
	}
}

// ifinfomsg is an empty struct ifinfomsg (AF_UNSPEC, no index, no flags).
func ifinfomsg() []byte { return make([]byte, unix.SizeofIfInfomsg) }

// attr is one rtattr: length, type, data, padded to 4 bytes.
func attr(typ uint16, data []byte) []byte {
	n := unix.SizeofRtAttr + len(data)
	b := make([]byte, (n+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1))
	binary.NativeEndian.PutUint16(b[0:], uint16(n))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[unix.SizeofRtAttr:], data)
	return b
}

func cstr(s string) []byte { return append([]byte(s), 0) }

// Decision is whether pods may have a network namespace of their own here.
type Decision struct {
	// Veth: the probe created a veth pair; pods get their own network.
	Veth bool
	// Err is the probe's error when it did not.
	Err error
}

// Decide runs Probe.
func Decide() Decision {
	if err := Probe(); err != nil {
		return Decision{Err: err}
	}
	return Decision{Veth: true}
}

// Advice is what a person must do about a failed probe: one sentence
// for logs and "nodeboot discover".
const Advice = "pods need hostNetwork: true here (a pod with a network namespace of its own gets no link to the node: flannel and the bridge CNI plugin make a veth pair per pod)"

// String is one line for logs and "nodeboot discover".
func (d Decision) String() string {
	if d.Veth {
		return "pod networks (a veth pair was created in a new network namespace)"
	}
	return fmt.Sprintf("hostNetwork only (%v): %s", d.Err, Advice)
}
