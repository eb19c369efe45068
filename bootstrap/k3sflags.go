package bootstrap

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// How k3s reads its command line, which parseK3sFlags follows. k3s
// (v1.36) parses "k3s server" and "k3s agent" with urfave/cli v2, which
// hands the arguments to Go's flag package after its own config file
// values (pkg/configfilearg puts those first, so anything on argv wins):
//
//   - "-name" and "--name" are the same flag; "-name=value",
//     "--name=value", "-name value" and "--name value" all set it; a flag
//     given twice keeps the last value;
//   - a bool flag takes no separate value ("--cluster-init", or
//     "--cluster-init=false"): the next argument is not its value;
//   - any other flag takes the next argument as its value, even one that
//     starts with "-" ("--kubelet-arg --v=2" sets kubelet-arg to "--v=2");
//   - parsing stops at "--" and at the first argument that is not a flag
//     ("-" alone included); what follows is never read as a flag.
//
// nodeboot only needs the flags it sets itself or depends on (k3sTracked),
// but to find them it must know which flags take no value: a bool flag
// read as taking one would hide the flag after it. k3sBoolFlags and
// k3sValueFlags list k3s v1.36's. A flag in neither list (a newer k3s's,
// say, or a typo k3s will refuse) given as "--x" is taken to take the next
// argument as its value, as k3s does for any non-bool flag; but when that
// next argument is one of the tracked flags, which way k3s reads it
// decides what nodeboot must do, so parseK3sFlags refuses it and asks for
// the "--x=value" form.

// k3sTracked are the flags nodeboot reads from K3S-ARGS, by every name
// k3s accepts (aliases map to the long name).
var k3sTracked = map[string]string{
	"data-dir": "data-dir", "d": "data-dir",
	"write-kubeconfig": "write-kubeconfig", "o": "write-kubeconfig",
	"write-kubeconfig-mode": "write-kubeconfig-mode",
	"node-name":             "node-name",
	"with-node-id":          "with-node-id",
	"server":                "server", "s": "server",
	"token": "token", "t": "token",
	"token-file":  "token-file",
	"pause-image": "pause-image",
	"snapshotter": "snapshotter",
}

// k3sBoolFlags are the bool flags of k3s v1.36.3's server and agent
// commands (pkg/cli/cmds: server.go, agent.go, root.go, log.go, config.go,
// and urfave/cli's own --help).
var k3sBoolFlags = map[string]bool{
	"alsologtostderr": true, "cluster-init": true, "cluster-reset": true, "debug": true,
	"disable-agent": true, "disable-apiserver": true, "disable-apiserver-lb": true,
	"disable-cloud-controller": true, "disable-controller-manager": true,
	"disable-default-registry-endpoint": true, "disable-etcd": true,
	"disable-helm-controller": true, "disable-kube-proxy": true, "disable-network-policy": true,
	"disable-scheduler": true, "docker": true, "embedded-registry": true, "enable-pprof": true,
	"etcd-disable-snapshots": true, "etcd-expose-metrics": true, "etcd-s3": true,
	"etcd-s3-insecure": true, "etcd-s3-skip-ssl-verify": true, "etcd-snapshot-compress": true,
	"flannel-external-ip": true, "flannel-ipv6-masq": true, "help": true, "h": true,
	"kine-tls": true, "nonroot-devices": true, "prefer-bundled-bin": true,
	"protect-kernel-defaults": true, "rootless": true, "secrets-encryption": true,
	"selinux": true, "supervisor-metrics": true, "tls-san-security": true, "with-node-id": true,
}

// k3sValueFlags are the other flags of the same commands: each takes a
// value (string, string slice, int, duration).
var k3sValueFlags = map[string]bool{
	"advertise-address": true, "advertise-port": true, "agent-token": true, "agent-token-file": true,
	"airgap-extra-registry": true, "apiserver-bind-address": true, "apiserver-port": true,
	"bind-address": true, "c": true, "cluster-cidr": true, "cluster-dns": true,
	"cluster-domain": true, "cluster-reset-restore-path": true, "config": true,
	"container-runtime-endpoint": true, "d": true, "data-dir": true, "datastore-cafile": true,
	"datastore-certfile": true, "datastore-endpoint": true, "datastore-keyfile": true,
	"default-local-storage-path": true, "default-runtime": true, "disable": true,
	"egress-selector-mode": true, "etcd-arg": true, "etcd-s3-access-key": true,
	"etcd-s3-bucket": true, "etcd-s3-bucket-lookup-type": true, "etcd-s3-config-secret": true,
	"etcd-s3-endpoint": true, "etcd-s3-endpoint-ca": true, "etcd-s3-folder": true,
	"etcd-s3-proxy": true, "etcd-s3-region": true, "etcd-s3-retention": true,
	"etcd-s3-secret-key": true, "etcd-s3-session-token": true, "etcd-s3-timeout": true,
	"etcd-snapshot-dir": true, "etcd-snapshot-name": true, "etcd-snapshot-reconcile-interval": true,
	"etcd-snapshot-retention": true, "etcd-snapshot-schedule-cron": true, "flannel-backend": true,
	"flannel-cni-conf": true, "flannel-conf": true, "flannel-iface": true,
	"helm-controller-arg": true, "helm-job-image": true, "https-listen-port": true, "i": true,
	"image-credential-provider-bin-dir": true, "image-credential-provider-config": true,
	"image-service-endpoint": true, "kube-apiserver-arg": true, "kube-cloud-controller-arg": true,
	"kube-cloud-controller-manager-arg": true, "kube-controller-arg": true,
	"kube-controller-manager-arg": true, "kube-proxy-arg": true, "kube-scheduler-arg": true,
	"kubelet-arg": true, "l": true, "lb-server-port": true, "log": true, "node-external-dns": true,
	"node-external-ip": true, "node-internal-dns": true, "node-ip": true, "node-label": true,
	"node-name": true, "node-taint": true, "o": true, "pause-image": true, "private-registry": true,
	"resolv-conf": true, "s": true, "secrets-encryption-provider": true, "server": true,
	"service-cidr": true, "service-node-port-range": true, "servicelb-namespace": true,
	"snapshotter": true, "supervisor-port": true, "system-default-registry": true, "t": true,
	"tls-san": true, "token": true, "token-file": true, "v": true, "vmodule": true, "vpn-auth": true,
	"vpn-auth-file": true, "write-kubeconfig": true, "write-kubeconfig-group": true,
	"write-kubeconfig-mode": true, "write-kubeconfig-name": true,
}

// k3sFlag is the last occurrence of a tracked flag in K3S-ARGS.
type k3sFlag struct {
	arg   string // as given: "-d=/x", or "--data-dir /x" for two arguments
	value string // a bool flag's is "true" or "false"
}

// absPath refuses an empty or relative path; what says what the path is for.
func (f k3sFlag) absPath(what string) error {
	switch {
	case f.value == "":
		return &K3sArgsError{f.arg, "the path is empty; give an absolute path (" + what + ")"}
	case !filepath.IsAbs(f.value):
		return &K3sArgsError{f.arg, "the path is relative; give an absolute path (" + what + ")"}
	}
	return nil
}

// k3sFlags are the tracked flags K3S-ARGS set, by long name.
type k3sFlags map[string]k3sFlag

func (fs k3sFlags) get(name string) (k3sFlag, bool) {
	f, ok := fs[name]
	return f, ok
}

// parseK3sFlags reads the tracked flags from K3S-ARGS the way k3s reads
// them (see above). It returns a *K3sArgsError for a tracked flag with no
// value, a bool flag with a value that is not a bool, and a flag whose
// reading nodeboot cannot tell.
func parseK3sFlags(args []string) (k3sFlags, error) {
	out := k3sFlags{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || len(a) < 2 || a[0] != '-' {
			break // the end of the flags, for k3s as for us
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		name, value, hasValue := strings.Cut(name, "=")
		long, tracked := k3sTracked[name]
		switch {
		case k3sBoolFlags[name]:
			if !hasValue {
				value = "true"
			} else if b, err := strconv.ParseBool(value); err != nil {
				return nil, &K3sArgsError{a, fmt.Sprintf("%q is not a bool; give true or false", value)}
			} else {
				value = strconv.FormatBool(b)
			}
		case hasValue:
		case i+1 >= len(args):
			if tracked {
				return nil, &K3sArgsError{a, "the flag needs a value, and none follows"}
			}
		default:
			next := args[i+1]
			if !tracked && !k3sValueFlags[name] && startsTracked(next) {
				return nil, &K3sArgsError{a + " " + next, fmt.Sprintf("nodeboot cannot tell whether %s takes a value (it is not a k3s v1.36 flag it knows), which decides whether k3s reads %s as a flag; write %s=VALUE (or %s=true for a bool flag)", a, next, a, a)}
			}
			value = next
			a += " " + next
			i++
		}
		if tracked {
			out[long] = k3sFlag{arg: a, value: value}
		}
	}
	return out, nil
}

// startsTracked reports whether a, read as a flag, is a tracked one.
func startsTracked(a string) bool {
	if len(a) < 2 || a[0] != '-' || a == "--" {
		return false
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
	_, ok := k3sTracked[name]
	return ok
}
