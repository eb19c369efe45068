package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nodeboot/nodeboot/health"
)

// kubeletProbeTimeout bounds one GET of the kubelet's /healthz: it
// answers from memory, at once, unless it hangs.
const kubeletProbeTimeout = 3 * time.Second

// excuse is an agent's bootstrap.SuperviseConfig.Excuse. An agent's API
// server is another machine's k3s: when it is unreachable, restarting
// this agent does not bring it back, and restarting every agent of a
// cluster whose server is down for maintenance is a restart storm. What
// says whether this agent is at fault is its kubelet's own /healthz on
// the loopback (kubelet's sync loop, checked without the API): "ok" means
// the kubelet runs and waits for the server, as it should. Any other
// status (NotReady, Stale, NodeNotRegistered) is the kubelet's own
// report, or the lack of it, through a reachable API, and is no excuse.
func (n *Node) excuse(ctx context.Context, st health.Status) (string, bool) {
	if st.State != health.Unreachable {
		return "", false
	}
	if err := n.kubeletHealthy(ctx); err != nil {
		n.log.Warn("the API server is unreachable and the kubelet does not answer its /healthz either", "healthz", n.cfg.KubeletHealthz, "err", err)
		return "", false
	}
	return fmt.Sprintf("the API server is unreachable (%s), but the kubelet is healthy (%s says ok): the server is away, not this agent",
		strings.TrimSpace(st.Reason+" "+st.Message), n.cfg.KubeletHealthz), true
}

// kubeletHealthy GETs Config.KubeletHealthz, through Config.Dial when set,
// and wants 200 "ok".
func (n *Node) kubeletHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, kubeletProbeTimeout)
	defer cancel()
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	if n.cfg.Dial != nil {
		tr.DialContext = n.cfg.Dial
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.cfg.KubeletHealthz, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		return fmt.Errorf("GET %s: %s: %q", n.cfg.KubeletHealthz, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
