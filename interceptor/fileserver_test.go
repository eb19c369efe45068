//go:build !nointegration

package interceptor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nodeboot/nodeboot/interceptor/rules"
)

// recordingServer is a FileServer that serves one guest directory from a
// host directory and records every request, to check what the tracer tells
// a FileServer about each call.
type recordingServer struct {
	guest, host string
	reqs        []FileRequest
	done        []int64
}

func (s *recordingServer) Serves(p string) bool { return rules.HasPathPrefix(p, s.guest) }

func (s *recordingServer) Serve(req *FileRequest) string {
	req.WantExit = true
	s.reqs = append(s.reqs, *req)
	return s.host + req.Guest[len(s.guest):]
}

func (s *recordingServer) Done(req *FileRequest, ret int64) { s.done = append(s.done, ret) }

// TestIntegrationFileServerRequests runs real opens through a FileServer
// and checks the request flags (openat2 included, whose flags live in
// struct open_how) and that Done sees the syscall's result.
func TestIntegrationFileServerRequests(t *testing.T) {
	requireIntegration(t)
	sysc := traceeBin(t, "sysc")
	tests := []struct {
		call              string
		flags             string
		wantWrite, create bool
	}{
		{"openat", "r", false, false},
		{"openat", "w", true, false},
		{"openat", "wct", true, true},
		{"openat2", "r", false, false},
		{"openat2", "b", true, false},
		{"openat2", "wc", true, true},
	}
	for _, mode := range testModes {
		for _, tt := range tests {
			t.Run(mode.String()+"/"+tt.call+"-"+tt.flags, func(t *testing.T) {
				dir := t.TempDir()
				guest, host := filepath.Join(dir, "guest"), filepath.Join(dir, "host")
				for _, d := range []string{guest, host} {
					if err := os.Mkdir(d, 0o755); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.WriteFile(filepath.Join(host, "f"), []byte("host"), 0o644); err != nil {
					t.Fatal(err)
				}
				srv := &recordingServer{guest: guest, host: host}
				cfg := Config{Path: sysc, Args: []string{"sysc", tt.call, "cwd", guest + "/f", tt.flags},
					Mode: mode, Files: srv}
				r := runTraced(t, cfg)
				if r.exit.ExitCode() != 0 {
					t.Fatalf("%s: exit %v\n%s%s", describeRun(cfg), r.exit, r.stdout, r.stderr)
				}
				var got *FileRequest
				for i := range srv.reqs {
					if srv.reqs[i].Syscall == tt.call {
						got = &srv.reqs[i]
					}
				}
				if got == nil {
					t.Fatalf("%s: no %s request; got %+v", describeRun(cfg), tt.call, srv.reqs)
				}
				if got.Write != tt.wantWrite || got.Create != tt.create || got.Guest != guest+"/f" {
					t.Errorf("%s: request %+v, want Write=%v Create=%v Guest=%s", describeRun(cfg), *got, tt.wantWrite, tt.create, guest+"/f")
				}
				if len(srv.done) == 0 || srv.done[len(srv.done)-1] < 0 {
					t.Errorf("%s: Done results %v, want a final fd >= 0", describeRun(cfg), srv.done)
				}
			})
		}
	}
}
