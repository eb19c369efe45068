//go:build !nointegration

package interceptor

// unitBuildErr is nil in every real build; see unitbuild_nointegration.go.
func unitBuildErr() error { return nil }
