package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// CI reports whether the tests run in CI: the CI environment variable is
// true (or 1). There a missing prerequisite fails the test.
func CI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// Missing ends t because a prerequisite is missing: it skips with the
// reason, or in CI fails with it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("%s; CI=true, so this is a failure, not a skip: CI must provide it", msg)
	}
	t.Skip(msg)
}

// RequireRoot ends t (see Missing) unless the effective user is root; why
// says what needs root.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if euid := os.Geteuid(); euid != 0 {
		Missing(t, "needs root: %s (euid is %d); run the tests as root ('sudo make test')", why, euid)
	}
}

// LookPath returns the path of the program name, or ends t (see Missing)
// when it is not in PATH.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "needs %s in PATH: %v", name, err)
	}
	return p
}

// Integration skips t under -short: integration tests (TestIntegration*)
// start real processes under the real tracer.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
}
