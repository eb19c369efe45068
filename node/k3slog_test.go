package node

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLogTail(t *testing.T) {
	earlier := `time="2026-01-02T03:04:00Z" level=fatal msg="an earlier run's end"` + "\n"
	long := strings.Repeat("x", 400)
	for _, tc := range []struct {
		name, log string
		want      []string
	}{
		{
			name: "fatal first, then the latest errors",
			log: `time="2026-01-02T03:04:05Z" level=info msg="Starting k3s v1.36.3+k3s1"
time="2026-01-02T03:04:05Z" level=error msg="first error"
E0102 03:04:06.000000    1234 kubelet.go:100] "Failed to start" err="boom"
time="2026-01-02T03:04:06Z" level=error msg="first error"
time="2026-01-02T03:04:07Z" level=fatal msg="failed to find cpuset cgroup (v2)"
time="2026-01-02T03:04:07Z" level=info msg="shutting down"
`,
			want: []string{
				`level=fatal msg="failed to find cpuset cgroup (v2)"`,
				`level=error msg="first error"`,
				`E0102 03:04:06.000000    1234 kubelet.go:100] "Failed to start" err="boom"`,
			},
		},
		{
			// k3s ends with status 0 when a component dies; the API
			// server's noise of the shutdown comes after the reason.
			name: "a component's death, then noise",
			log: `time="2026-01-02T03:04:05Z" level=error msg="Sending HTTP/1.1 503 response to 10.0.0.1:5316: runtime core not ready"
time="2026-01-02T03:04:06Z" level=error msg="Shutdown request received: \"kubelet exited: failed to run Kubelet: invalid configuration\""
E0102 03:04:06.000001    1234 writers.go:123] "Unhandled Error" err="a"
E0102 03:04:06.000002    1234 writers.go:123] "Unhandled Error" err="b"
E0102 03:04:06.000003    1234 writers.go:123] "Unhandled Error" err="c"
E0102 03:04:06.000004    1234 writers.go:123] "Unhandled Error" err="d"
E0102 03:04:06.000005    1234 writers.go:123] "Unhandled Error" err="e"
time="2026-01-02T03:04:07Z" level=error msg="Failed to migrate node-password secrets: context canceled"
`,
			want: []string{
				`level=error msg="Shutdown request received: \"kubelet exited: failed to run Kubelet: invalid configuration\""`,
				`level=error msg="Sending HTTP/1.1 503 response to 10.0.0.1:5316: runtime core not ready"`,
				`level=error msg="Failed to migrate node-password secrets: context canceled"`,
				`E0102 03:04:06.000004    1234 writers.go:123] "Unhandled Error" err="d"`,
				`E0102 03:04:06.000005    1234 writers.go:123] "Unhandled Error" err="e"`,
			},
		},
		{
			name: "a Go panic is fatal",
			log:  "level=info msg=x\npanic: runtime error: invalid memory address\n\ngoroutine 1 [running]:\nmain.main()\n",
			want: []string{"panic: runtime error: invalid memory address"},
		},
		{
			name: "no errors: the last lines",
			log:  "one\ntwo\n\nthree\nfour\n",
			want: []string{"two", "three", "four"},
		},
		{
			name: "long lines are cut",
			log:  "level=error msg=" + long + "\n",
			want: []string{string([]rune("level=error msg=" + long)[:maxLineRunes-1]) + "…"},
		},
		{name: "nothing written", log: "", want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k3s.log")
			if err := os.WriteFile(path, []byte(earlier+tc.log), 0o600); err != nil {
				t.Fatal(err)
			}
			got := logTail(path, int64(len(earlier)))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("logTail:\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
