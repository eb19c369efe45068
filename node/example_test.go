package node_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/nodeboot/nodeboot/node"
	"github.com/nodeboot/nodeboot/profile"
)

// Start a k3s node on the built-in k3s profile, wait until it is Ready,
// read its status and stop it. This example is compiled but not run (it
// needs k3s); e2e/node_example_test.go runs the same calls against a real
// kube-apiserver and kubelet and checks their output.
func Example() {
	p, err := profile.Load("k3s")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n, err := node.Start(ctx, node.Config{
		DataDir: "/var/lib/nodeboot",
		K3s:     "/usr/local/bin/k3s",
		Profile: p,
		K3sArgs: []string{"--disable=traefik"},
		// Restart k3s whenever it exits or stays not Ready (the zero
		// value gives up at the first reason to restart).
		MaxRestarts: node.Unlimited,
		OnEvent:     func(e node.Event) { log.Print(e) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Stop(context.Background())

	st, err := n.WaitFor(ctx, node.PhaseReady)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("node", st.NodeName, "is", st.Health.State, "after", st.Restarts, "restarts")
	fmt.Println("kubeconfig:", st.Kubeconfig)

	if err := n.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("phase:", n.Status().Phase)
}
