package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// servePort is where smoke-serve listens in the port-forward pods: on the
// pod's loopback, which is where the runtime's port-forward dials (inside
// the pod's network namespace, localhost:PORT).
const servePort = 8080

// serveCommand is the container command of a port-forward pod.
func serveCommand(binary string) []string {
	return []string{binary, "smoke-serve", "--listen", "127.0.0.1:" + strconv.Itoa(servePort)}
}

// checkPortForward forwards a port of the test's loopback to port of pod
// (namespace default) through the API's portforward endpoint, as kubectl
// port-forward does, once over each of kubectl's transports: SPDY tunneled
// over a WebSocket (kubectl's default since 1.31) and plain SPDY (its
// fallback). Through each it opens a few connections and reads want from
// every one. cfg must dial on its own (Cluster.HostRESTConfig): client-go's
// upgrading dialers ignore rest.Config's Dial. It returns one line of
// measurements per transport.
func checkPortForward(t *testing.T, cfg *rest.Config, pod string, port int, want string) []string {
	t.Helper()
	var lines []string
	for _, transport := range []string{"websocket", "spdy"} {
		line, err := portForwardOnce(cfg, pod, port, transport, want)
		if err != nil {
			t.Errorf("port-forward (%s) to pod %s:%d: %v", transport, pod, port, err)
			continue
		}
		lines = append(lines, line)
	}
	return lines
}

// portForwardOnce runs one forwarder over transport ("websocket" or
// "spdy") on 127.0.0.1 and an ephemeral port, reads want through it from
// 5 connections and stops it.
func portForwardOnce(cfg *rest.Config, pod string, port int, transport, want string) (string, error) {
	const conns = 5
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return "", err
	}
	u.Path = "/api/v1/namespaces/default/pods/" + pod + "/portforward"
	var dialer httpstream.Dialer
	switch transport {
	case "websocket":
		dialer, err = portforward.NewSPDYOverWebsocketDialer(u, cfg)
	case "spdy":
		rt, upgrader, rerr := spdy.RoundTripperFor(cfg)
		if rerr != nil {
			return "", rerr
		}
		dialer = spdy.NewDialer(upgrader, &http.Client{Transport: rt}, "POST", u)
	default:
		return "", fmt.Errorf("transport %q", transport)
	}
	if err != nil {
		return "", err
	}
	stop, ready := make(chan struct{}), make(chan struct{})
	var out, errOut syncBuffer
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, stop, ready, &out, &errOut)
	if err != nil {
		return "", err
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	defer func() {
		close(stop)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		return "", fmt.Errorf("forwarder ended before it was ready: %v (%s)", err, errOut.String())
	case <-time.After(time.Minute):
		return "", fmt.Errorf("forwarder not ready after 1m (%s)", errOut.String())
	}
	readyAfter := time.Since(start)
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		return "", fmt.Errorf("forwarded ports %v: %v", ports, err)
	}
	local := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ports[0].Local)))
	var took []time.Duration
	for i := range conns {
		t0 := time.Now()
		got, err := readLine(local)
		if err != nil || got != want {
			return "", fmt.Errorf("connection %d to %s read %q (%v), want %q; forwarder said: %s", i, local, got, err, want, strings.TrimSpace(errOut.String()))
		}
		took = append(took, time.Since(t0))
	}
	sorted := slices.Clone(took)
	slices.Sort(sorted)
	return fmt.Sprintf("%s: ready %s after start, %d connections read %q through %s: first %s, median %s, max %s",
		transport, readyAfter.Round(time.Millisecond), conns, want, local,
		took[0].Round(100*time.Microsecond), sorted[conns/2].Round(100*time.Microsecond), sorted[conns-1].Round(100*time.Microsecond)), nil
}

// readLine connects to addr and reads one line, as a client of the
// server would, then closes. (Reading to EOF instead would also time
// containerd's port-forward, which after the server's close waits up to
// 1 s for the client's side to end, as socat -t 1 does.)
func readLine(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	l, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(l), err
}
