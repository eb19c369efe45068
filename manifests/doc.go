// Package manifests loads Kubernetes manifests, applies them with
// server-side apply and waits until they are ready, or hands them to k3s's
// auto-deploy directory. It is the "apply" step of "nodeboot up".
//
// # Loading
//
// Load reads files and directories. A directory is read non-recursively,
// as "kubectl apply -f DIR" without --recursive does: its *.yaml, *.yml and
// *.json files, sorted by name; subdirectories and names starting with "."
// (editor swap files, k3s's own dot files) are skipped. A file named on its
// own is read whatever its extension. Every file may hold several YAML
// documents separated by "---" (or a stream of JSON objects), split by
// apimachinery's YAML-or-JSON decoder as kubectl does. Empty documents
// (nothing, only comments, null or {}) are skipped and not counted, so a
// license header before the first "---" does not shift the numbers; the
// others are counted from 1, and a "kind: List" (or any *List with items)
// is expanded into its items, which share the list's number. Load's errors
// also give the line in the file.
//
// # Applying
//
// Apply maps each object's kind to a resource through discovery (the
// legacy discovery documents, /api, /apis and one resource list per group
// version, read once into a meta.DefaultRESTMapper; see mapper.go for why
// not client-go's discovery and restmapper) and sends it with server-side
// apply through the dynamic client. Namespaces go first,
// then CustomResourceDefinitions (and Apply waits until those are
// Established, since their kinds exist only then), then everything else in
// load order. A kind the mapper does not know resets the mapper and is
// retried: a CRD applied earlier in the same set creates new kinds that the
// cached discovery has not seen. An object the API server refuses for a
// reason that passes (Transient: unreachable or restarting, 429, 500 such
// as a webhook whose backend is not up yet, 503, 504) is applied again
// with backoff (250 ms doubling to 5 s) until the Timeout; any other
// refusal fails Apply at once. Then Apply waits, within the same overall
// Timeout, for the objects that have a notion of ready (Deployments,
// StatefulSets, DaemonSets, Jobs, Pods, CRDs), one watch per object, and
// reports progress as human lines through OnProgress.
//
// # Smoke
//
// Smoke returns an embedded set (smoke/smoke.yaml) that proves the node
// schedules and runs a container: a Job in namespace nodeboot-smoke.
//
// # Auto-deploy
//
// WriteAutoDeploy writes objects into k3s's auto-deploy directory
// (<k3s-data-dir>/server/manifests), which k3s applies by itself. The
// directory is checked as sshd's StrictModes does (package safefs). Files
// are written through a directory descriptor with O_NOFOLLOW, to a temporary
// name and renamed into place (mode 0600), and carry a header line that
// marks them as nodeboot's: a file without it is never overwritten.
// Await then waits, with Apply's checks and timeout, until the objects
// exist and are ready, without applying anything: k3s's deploy controller
// reads the directory every 15 s and applies the files itself.
package manifests
