#!/usr/bin/env bash
# The quick start's main job (`make up`): a k3s node on this machine,
# brought up by nodeboot, from a fresh clone. As root:
#
#	1. bin/nodeboot (make up builds it first);
#	2. k3s, unless `nodeboot up` would find one ($NODEBOOT_K3S, k3s on
#	   $PATH, DATA-DIR/bin/k3s): `nodeboot install --if-missing` downloads
#	   the tested release into DATA-DIR/bin/k3s and checks its sha256;
#	   offline, its error says what to download from where;
#	3. `nodeboot up --wait`: the supervisor runs in the background and
#	   this returns once the node is Ready (exit 0), or says why not.
#
#	hack/up.sh [path/to/nodeboot] [UP-FLAGS...] [-- K3S-ARGS...]
#	make up UP_FLAGS='--smoke --timeout 10m'
#
# NODEBOOT_* variables work as for nodeboot itself: NODEBOOT_DATA_DIR
# (default /var/lib/nodeboot), NODEBOOT_K3S, NODEBOOT_K3S_VERSION, ...
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=bin/nodeboot
if [[ $# -gt 0 && $1 != -* ]]; then
	bin=$1
	shift
fi

if [[ $(id -u) -ne 0 ]]; then
	# nodeboot up says why; install would fail first on the data dir.
	exec "$bin" up --wait "$@"
fi
"$bin" install --if-missing >/dev/null
"$bin" up --wait "$@"

data=${NODEBOOT_DATA_DIR:-/var/lib/nodeboot}
flag=
if [[ $data != /var/lib/nodeboot ]]; then
	flag=" --data-dir $data"
fi
cat <<EOT
==> The node is up. Next:
    $bin kubectl$flag get nodes          # kubectl with the node's kubeconfig
    $bin kubeconfig$flag --merge         # add it to ~/.kube/config, then plain kubectl works
    $bin status$flag                     # phase, health, restarts, counters
    $bin down$flag                       # stop k3s and the supervisor
EOT
