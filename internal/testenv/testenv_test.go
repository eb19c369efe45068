package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The cases run in a child process of this test binary, so that a test
// that must fail can fail without failing this one.
const childEnv = "NODEBOOT_TESTENV_CHILD"

func TestChildMissing(t *testing.T) {
	if os.Getenv(childEnv) != "1" {
		t.Skip("run by TestMissing in a child process")
	}
	Missing(t, "needs a thing nobody has")
}

func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
	}{
		{"", false},
		{"false", false},
		{"true", true},
		{"1", true},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestChildMissing$", "-test.v")
			cmd.Env = append(os.Environ(), childEnv+"=1", "CI="+tc.ci)
			out, err := cmd.CombinedOutput()
			failed := err != nil
			if failed != tc.wantFail {
				t.Fatalf("child failed %v, want %v:\n%s", failed, tc.wantFail, out)
			}
			want := "--- SKIP: TestChildMissing"
			if tc.wantFail {
				want = "--- FAIL: TestChildMissing"
			}
			if !strings.Contains(string(out), want) || !strings.Contains(string(out), "needs a thing nobody has") {
				t.Errorf("child output lacks %q and the reason:\n%s", want, out)
			}
		})
	}
}
