#!/usr/bin/env bash
# Builds and installs what the e2e suite (e2e/, make e2e) needs:
#
#	hack/e2e-deps.sh            # Debian packages, then e2e/bin/{kube-apiserver,kubelet,kube-controller-manager}
#	hack/e2e-deps.sh packages   # only the Debian packages
#	hack/e2e-deps.sh binaries   # only the Go builds
#
# kube-apiserver, kubelet and kube-controller-manager (TestNodebootPods runs
# its deployment and replicaset controllers) come from k8s.io/kubernetes (version pinned in
# e2e/go.mod), built with `go build` of the module's tool directives. The Go
# build and module caches are the normal ones, so a second run takes seconds.
# A cold build takes ~5 minutes on 2 cores and peaks near 2 GB RSS.
# etcd, containerd, runc and the CNI plugins are Debian packages.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}
what=${1:-all}

# Debian packages: containerd 1.6 + runc + CNI plugins (/usr/lib/cni) for the
# kubelet, etcd-server 3.4 for kube-apiserver, ip/nsenter/unshare for the harness.
# The packages' own services are not started: policy-rc.d refuses them, and
# on hosts without an init system there is nothing to start them anyway.
if [[ $what == all || $what == packages ]]; then
	pkgs=(containerd runc containernetworking-plugins etcd-server iproute2 util-linux)
	norc=
	if [[ $(id -u) -eq 0 && ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		norc=1
	fi
	rc=0
	hack/deps.sh "${pkgs[@]}" || rc=$?
	if [[ -n $norc ]]; then
		rm -f /usr/sbin/policy-rc.d
	fi
	[[ $rc -eq 0 ]] || exit "$rc"
fi

if [[ $what == all || $what == binaries ]]; then
	cd e2e
	kver=$("$GO" list -m -f '{{.Version}}' k8s.io/kubernetes)
	major=${kver#v}
	major=${major%%.*}
	minor=${kver#v*.}
	minor=${minor%%.*}
	ldflags="-s -w"
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $p.gitVersion=$kver -X $p.gitMajor=$major -X $p.gitMinor=$minor"
		ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
	done
	mkdir -p bin
	echo "==> e2e-deps: building kube-apiserver, kubelet and kube-controller-manager $kver into e2e/bin"
	start=$(date +%s)
	CGO_ENABLED=0 "$GO" build -trimpath -ldflags "$ldflags" -o bin/ \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubelet \
		k8s.io/kubernetes/cmd/kube-controller-manager
	echo "==> e2e-deps: built in $(($(date +%s) - start)) s"
	bin/kubelet --version
fi
