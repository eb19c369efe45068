//go:build nointegration

package interceptor

import "errors"

// unitBuildErr is Start's error in a build with the nointegration tag,
// which only "make unit" uses: there no test may trace. A test that traces
// is an integration test (named TestIntegration*, skipped under -short by
// internal/testenv, in a !nointegration file when it can be); one that is
// not gated so fails in "make unit" with this error, instead of tracing
// there and being left out of "make integration".
func unitBuildErr() error {
	return errors.New("interceptor: Start in a unit-test build (-tags nointegration): a test that traces must be an integration test (name it TestIntegration*, call testenv.Integration)")
}
