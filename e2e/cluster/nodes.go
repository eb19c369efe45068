package cluster

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// The nodes of a cluster of several: the Cluster's own namespace (NodeIP,
// the control plane, its kubelet) is the server; AddNode adds an agent in
// a network namespace of its own. All of them are joined to one bridge,
// which lives in a namespace of its own too (the switch), by veth pairs:
// this kernel has no dummy links, and nothing is added to the host's
// namespace. The segment is LANSubnet; the server is LANServerIP on it,
// agents the next addresses. An agent reaches the server's NodeIP (where
// kube-apiserver listens, and which its certificate names) through
// LANServerIP, as a machine reaches another's second address.
const (
	LANSubnet   = "10.252.0.0/24"
	LANServerIP = "10.252.0.1"
)

// Node is an agent's part of the test bed: a network namespace on the
// LAN, a containerd (StartContainerd, or a config for one the test starts
// itself: WriteContainerdConfig), a kubelet client certificate system:node:Name and a
// KubeletConfiguration, all below Dir. It runs no kubelet itself: the
// test runs one (KubeletArgv) the way it wants, under nodeboot.
type Node struct {
	c     *Cluster
	Name  string // the Node's name: <cluster name>-<short name>
	IP    string // on the LAN
	NetNS string // /run/netns/<Name>
	Dir   string
	// KubeletCgroupRoot is kubelet's cgroupRoot: "/" (under nodeboot the
	// cgroup tree is emulated and private to the run).
	KubeletCgroupRoot string
}

// switchNS is the name of the namespace that holds the LAN's bridge.
func (c *Cluster) switchNS() string { return c.Name + "-sw" }

// lan creates the switch namespace with its bridge and joins the
// server's namespace to it, once.
func (c *Cluster) lan() error {
	if c.lanUp {
		return nil
	}
	sw := c.switchNS()
	if err := run("ip", "netns", "add", sw); err != nil {
		return err
	}
	c.extraNetNS = append(c.extraNetNS, sw)
	for _, argv := range [][]string{
		{"ip", "-n", sw, "link", "set", "lo", "up"},
		{"ip", "-n", sw, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", sw, "link", "set", "br0", "up"},
	} {
		if err := run(argv...); err != nil {
			return err
		}
	}
	if err := c.plug(c.Name, 0, LANServerIP); err != nil {
		return err
	}
	c.lanUp = true
	return nil
}

// plug joins namespace ns to the bridge: a veth pair, lan0 with ip/24 in
// ns, port<i> in the switch on br0.
func (c *Cluster) plug(ns string, i int, ip string) error {
	sw, port := c.switchNS(), "port"+strconv.Itoa(i)
	for _, argv := range [][]string{
		{"ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "lan0", "netns", ns},
		{"ip", "-n", sw, "link", "set", port, "master", "br0"},
		{"ip", "-n", sw, "link", "set", port, "up"},
		{"ip", "-n", ns, "addr", "add", ip + "/24", "dev", "lan0"},
		{"ip", "-n", ns, "link", "set", "lan0", "up"},
	} {
		if err := run(argv...); err != nil {
			return err
		}
	}
	return nil
}

// AddNode makes agent node short (its Node is named <cluster
// name>-short): a namespace on the LAN with the next address, a route to
// the server's NodeIP through LANServerIP, a kubelet certificate and a
// directory. Cleanup deletes the namespace with the cluster's.
func (c *Cluster) AddNode(short string) (*Node, error) {
	if err := c.lan(); err != nil {
		return nil, fmt.Errorf("LAN: %w", err)
	}
	c.nodes++
	_, subnet, _ := net.ParseCIDR(LANSubnet)
	ip := subnet.IP.To4()
	ip[3] = byte(1 + c.nodes)
	n := &Node{c: c, Name: c.Name + "-" + short, IP: ip.String(), Dir: c.path("nodes", short), KubeletCgroupRoot: "/"}
	n.NetNS = "/run/netns/" + n.Name
	if err := os.MkdirAll(n.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := run("ip", "netns", "add", n.Name); err != nil {
		return nil, err
	}
	c.extraNetNS = append(c.extraNetNS, n.Name)
	if err := run("ip", "-n", n.Name, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	if err := c.plug(n.Name, c.nodes, n.IP); err != nil {
		return nil, err
	}
	// The server's NodeIP is its other address: reached through its LAN
	// address; and a default route, which kubelet wants for its node IP.
	if err := run("ip", "-n", n.Name, "route", "add", "default", "via", LANServerIP); err != nil {
		return nil, err
	}
	if err := c.pki.issue("kubelet-"+short, "system:node:"+n.Name, []string{"system:nodes"}, nil, nil); err != nil {
		return nil, err
	}
	if err := c.pki.kubeconfig(n.Kubeconfig(), "https://"+NodeIP+":6443", "kubelet-"+short); err != nil {
		return nil, err
	}
	return n, nil
}

// Kubeconfig is the node's kubelet kubeconfig (system:node:Name).
func (n *Node) Kubeconfig() string { return filepath.Join(n.Dir, "kubelet.kubeconfig") }

// ContainerdSocket is the node's containerd socket.
func (n *Node) ContainerdSocket() string {
	return filepath.Join(n.Dir, "containerd", "containerd.sock")
}

// StartContainerd starts the node's own containerd in its namespace.
func (n *Node) StartContainerd() (*Proc, error) {
	return n.c.startContainerd(n.Name+"-containerd", n.Dir, n.NetNS)
}

// WriteContainerdConfig writes the node's containerd config (root, state,
// socket below Dir/containerd, CNI config below Dir/cni) and returns its
// path, for a test that starts the node's containerd itself (under
// nodeboot, in the node's sandbox) instead of StartContainerd.
func (n *Node) WriteContainerdConfig(cc ContainerdConfig) (string, error) {
	return writeContainerdConfig(n.Dir, cc)
}

// KubeletArgv writes the node's KubeletConfiguration and returns its
// kubelet's argv, with kubeconfig as --kubeconfig (the node's own, or a
// copy of it where k3s would have it).
func (n *Node) KubeletArgv(kubeconfig string) ([]string, error) {
	return n.c.kubeletArgv(kubeletSpec{
		name: n.Name, ip: n.IP, dir: n.Dir, cgroupRoot: n.KubeletCgroupRoot,
		kubeconfig: kubeconfig, containerd: n.ContainerdSocket(),
	})
}

// ServerURL is the API server's URL as agents reach it.
func (c *Cluster) ServerURL() string { return "https://" + NodeIP + ":6443" }
