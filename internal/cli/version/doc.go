// Package version holds nodeboot's version and the "nodeboot version"
// command. The version is set at link time:
//
//	go build -ldflags "-X github.com/nodeboot/nodeboot/internal/cli/version.version=v0.1.0"
package version
