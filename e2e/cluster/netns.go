package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
	"k8s.io/client-go/rest"
)

// Addresses inside the namespace; nothing outside it is ever used.
const (
	NodeIP = "10.250.0.1"
	peerIP = "10.250.0.2"
)

func run(argv ...string) error {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// createNetNS makes /run/netns/name with lo up and a veth pair inside.
// This kernel has no dummy links; a veth pair whose both ends stay in the
// namespace gives kubelet a non-loopback address and a default route.
func createNetNS(name string) error {
	if err := run("ip", "netns", "add", name); err != nil {
		return err
	}
	for _, argv := range [][]string{
		{"ip", "-n", name, "link", "set", "lo", "up"},
		{"ip", "-n", name, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1"},
		{"ip", "-n", name, "addr", "add", NodeIP + "/24", "dev", "veth0"},
		{"ip", "-n", name, "addr", "add", peerIP + "/24", "dev", "veth1"},
		{"ip", "-n", name, "link", "set", "veth0", "up"},
		{"ip", "-n", name, "link", "set", "veth1", "up"},
		{"ip", "-n", name, "route", "add", "default", "dev", "veth0"},
	} {
		if err := run(argv...); err != nil {
			return err
		}
	}
	return nil
}

func deleteNetNS(name string) error {
	if _, err := os.Stat("/run/netns/" + name); os.IsNotExist(err) {
		return nil
	}
	return run("ip", "netns", "delete", name)
}

// netnsDialer dials from inside the network namespace at nsPath: the
// socket is created on a thread that joined the namespace, and a socket
// keeps its namespace for life.
func netnsDialer(nsPath string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			// The thread is unlocked only when it is back in its own
			// namespace; otherwise it dies with this goroutine.
			orig, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				ch <- result{nil, err}
				return
			}
			defer orig.Close()
			target, err := os.Open(nsPath)
			if err != nil {
				ch <- result{nil, err}
				return
			}
			defer target.Close()
			if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
				ch <- result{nil, fmt.Errorf("setns %s: %w", nsPath, err)}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// ListenInNetNS listens on addr inside the network namespace at nsPath
// (the cluster's: NetNS): the socket is made on a thread that joined it,
// and keeps its namespace for life, so that processes in the namespace
// (a sandboxed containerd) reach the test's listener on their loopback.
func ListenInNetNS(nsPath, network, addr string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer orig.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("setns %s: %w", nsPath, err)}
			return
		}
		l, err := net.Listen(network, addr)
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{l, err}
	}()
	r := <-ch
	return r.l, r.err
}

// HostRESTConfig is RESTConfig reaching kube-apiserver through a forwarder
// on the host's loopback (127.0.0.1, which its certificate names): client-go's
// streaming executors (exec, attach) dial on their own and ignore
// rest.Config's Dial, so they cannot use RESTConfig's dialer into the
// namespace. The forwarder is closed at cleanup.
func (c *Cluster) HostRESTConfig() (*rest.Config, error) {
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("apiserver forwarder: %w", err)
	}
	c.t.Cleanup(func() { l.Close() })
	dial := netnsDialer(c.NetNS)
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := dial(context.Background(), "tcp", NodeIP+":6443")
				if err != nil {
					return
				}
				defer out.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
				go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	cfg.Host = "https://" + l.Addr().String()
	cfg.Dial = nil
	return cfg, nil
}
