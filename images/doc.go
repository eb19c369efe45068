// Package images makes and checks the container images nodeboot needs
// without a registry. A node in a sandbox often reaches no registry at all,
// yet every pod needs a sandbox ("pause") image, and nodeboot's smoke test
// needs an image to run. Both are built here from the running nodeboot
// binary itself, which is static (CGO_ENABLED=0) and so runs in an image
// with nothing else in it: one layer holding the binary as /nodeboot, and
// two image configurations on it that differ only in their entrypoint,
// "nodeboot pause" (sleep, reap children as PID 1, exit 0 on SIGTERM) and
// "nodeboot smoke-echo" (print SmokeLine and exit 0).
//
// They are written as one docker image archive (the format of "docker
// save", which containerd and k3s import) with go-containerregistry, and
// named under Registry, a host name that no registry answers to, so that a
// pull of them could never succeed by accident: the node must have them
// imported.
//
// Inspect checks that a file is an image archive (docker or OCI) and lists
// the images it names, before nodeboot stages it for a node's containerd
// ("nodeboot load image-archive").
package images
