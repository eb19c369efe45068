// Package testenv decides what a test does when the machine lacks
// something it needs (root, gcc, a tool from util-linux): skip with the
// reason on a developer's machine, fail in CI.
//
// A skip is right for "make test" without root: the tracer tests cannot
// run, and the skip says why. In CI (CI=true, as .ci/run and every hosted
// CI set it) the same skip would let a run pass without running the tests
// it exists for, so there the missing prerequisite is a failure. Skips for
// what CI cannot be expected to provide (a kernel feature, an architecture)
// stay plain t.Skip calls at the test.
//
// Integration tests (TestIntegration*: they start real processes under the
// real tracer) also skip under -short; that is a choice of the caller, not a
// missing prerequisite, so it is never a failure.
package testenv
