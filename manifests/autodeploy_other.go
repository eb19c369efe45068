//go:build !linux

package manifests

import "errors"

// WriteAutoDeploy writes objs into k3s's auto-deploy directory. k3s runs
// on Linux only, and the safe writes use Linux's renameat2, so elsewhere
// it fails.
func WriteAutoDeploy(dir string, objs []Object) error {
	return errors.New("write auto-deploy manifests: only supported on Linux, where k3s runs")
}
