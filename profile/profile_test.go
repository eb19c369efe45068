package profile

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	const head = "name: t\nredirects: [/proc/sys]\n"
	tests := []struct {
		name string
		doc  string
		// wantErr lists substrings the error must contain; empty means
		// the document is valid.
		wantErr []string
	}{
		{
			name: "minimal",
			doc:  "name: t\n",
		},
		{
			name: "full",
			doc: head + `description: one line
files:
  - path: /proc/sys/vm/overcommit_memory
    content: "1\n"
    mode: "0644"
  - path: /proc/sys/kernel/pid_max
    copyFromHost: true
    content: "4194304\n"
  - path: /proc/sys/kernel/random/boot_id
    generate: uuid
  - path: /proc/sys/kernel/osrelease
    copyFromHost: true
    generate: uname-release
  - path: /proc/sys/empty
  - path: /proc/sys/d
    dir: true
    mode: "0700"
dynamic:
  - path: /sys/fs/cgroup
    kind: cgroup2
fstypes: ["9p=ext4", "/sys/fs/cgroup=cgroup2", "0x58465342=ext4"]
`,
		},
		{
			name:    "unknown top-level field",
			doc:     head + "flies: []\n",
			wantErr: []string{"src.yaml", `unknown field "flies"`, "known fields: name, description, base, files"},
		},
		{
			name: "unknown entry field names the entry",
			doc: head + `files:
  - path: /proc/sys/a
  - path: /proc/sys/b
    contnet: "1\n"
`,
			wantErr: []string{"src.yaml", "files[1] (/proc/sys/b)", `unknown field "contnet"`},
		},
		{
			name:    "miscased key",
			doc:     head + "files:\n  - Path: /proc/sys/a\n",
			wantErr: []string{`unknown field "Path"`, `did you mean "path"`},
		},
		{
			name:    "unquoted octal mode",
			doc:     head + "files:\n  - path: /proc/sys/a\n    mode: 0644\n",
			wantErr: []string{"files[0] (/proc/sys/a): mode", "the number 420", `mode: "0644"`},
		},
		{
			name:    "unquoted number content",
			doc:     head + "files:\n  - path: /proc/sys/a\n    content: 1\n",
			wantErr: []string{"files[0] (/proc/sys/a): content", "want a string", `content: "1\n"`},
		},
		{
			name:    "boolean where a string belongs",
			doc:     head + "files:\n  - path: /proc/sys/a\n    content: yes\n",
			wantErr: []string{"the boolean true"},
		},
		{
			name:    "string where a bool belongs",
			doc:     head + "files:\n  - path: /proc/sys/a\n    dir: \"yes\"\n",
			wantErr: []string{"files[0] (/proc/sys/a): dir", "want true or false"},
		},
		{
			name:    "bad mode digits",
			doc:     head + "files:\n  - path: /proc/sys/a\n    mode: \"0999\"\n",
			wantErr: []string{"files[0] (/proc/sys/a)", `mode "0999" is not an octal permission`, `"0644"`},
		},
		{
			name:    "setuid mode",
			doc:     head + "files:\n  - path: /proc/sys/a\n    mode: \"4755\"\n",
			wantErr: []string{`mode "4755"`},
		},
		{
			name:    "symbolic mode",
			doc:     head + "files:\n  - path: /proc/sys/a\n    mode: rw-r--r--\n",
			wantErr: []string{"not an octal permission"},
		},
		{
			name:    "unreadable file mode",
			doc:     head + "files:\n  - path: /proc/sys/a\n    mode: \"0200\"\n",
			wantErr: []string{"owner not read"},
		},
		{
			name:    "directory the owner cannot enter",
			doc:     head + "files:\n  - path: /proc/sys/a\n    dir: true\n    mode: \"0644\"\n",
			wantErr: []string{"enter the directory", `"0755"`},
		},
		{
			name:    "relative path",
			doc:     head + "files:\n  - path: proc/sys/a\n",
			wantErr: []string{"files[0] (proc/sys/a)", "relative", "/proc/sys/a"},
		},
		{
			name:    "unclean path",
			doc:     head + "files:\n  - path: /proc/sys/../sys/a/\n",
			wantErr: []string{"not clean", "write /proc/sys/a"},
		},
		{
			name:    "root path",
			doc:     head + "files:\n  - path: /\n    dir: true\n",
			wantErr: []string{"path is /"},
		},
		{
			name:    "missing path",
			doc:     head + "files:\n  - content: \"1\\n\"\n",
			wantErr: []string{"files[0]", "path is missing"},
		},
		{
			name:    "directory with content",
			doc:     head + "files:\n  - path: /proc/sys/a\n    dir: true\n    content: x\n",
			wantErr: []string{"a directory has no content"},
		},
		{
			name:    "directory copied from host",
			doc:     head + "files:\n  - path: /proc/sys/a\n    dir: true\n    copyFromHost: true\n",
			wantErr: []string{"copyFromHost copies files"},
		},
		{
			name:    "unknown generator",
			doc:     head + "files:\n  - path: /proc/sys/a\n    generate: guid\n",
			wantErr: []string{`unknown generator "guid"`, "uuid"},
		},
		{
			name:    "generator and content",
			doc:     head + "files:\n  - path: /proc/sys/a\n    generate: uuid\n    content: x\n",
			wantErr: []string{"content and generate"},
		},
		{
			name:    "duplicate path",
			doc:     head + "files:\n  - path: /proc/sys/a\n  - path: /proc/sys/a\n",
			wantErr: []string{"files[1] (/proc/sys/a)", "also files[0]"},
		},
		{
			name:    "file and dynamic at one path",
			doc:     head + "files:\n  - path: /proc/sys/a\ndynamic:\n  - path: /proc/sys/a\n    kind: swaps\n",
			wantErr: []string{"dynamic[0] (/proc/sys/a)", "either a file or a dynamic entry"},
		},
		{
			name:    "unknown dynamic kind",
			doc:     head + "dynamic:\n  - path: /proc/swaps\n    kind: swap\n",
			wantErr: []string{"dynamic[0] (/proc/swaps)", `unknown kind "swap"`, "swaps"},
		},
		{
			name:    "dynamic without kind",
			doc:     head + "dynamic:\n  - path: /proc/swaps\n",
			wantErr: []string{"kind is missing"},
		},
		{
			name:    "duplicate YAML key",
			doc:     "name: t\nname: u\n",
			wantErr: []string{"src.yaml", `"name" already set`},
		},
		{
			name:    "YAML syntax",
			doc:     "name: t\nfiles: [\n",
			wantErr: []string{"src.yaml", "fix the YAML syntax"},
		},
		{
			name:    "redirect of /",
			doc:     "name: t\nredirects: [/]\n",
			wantErr: []string{"redirects[0]", "such as /proc/sys"},
		},
		{
			name:    "relative redirect",
			doc:     "name: t\nredirects: [proc/sys]\n",
			wantErr: []string{"redirects[0]", "relative"},
		},
		{
			name:    "bad fstype",
			doc:     "name: t\nfstypes: [\"9p\"]\n",
			wantErr: []string{"fstypes[0]", "FROM=TO"},
		},
		{
			name:    "fstype with the same FROM twice",
			doc:     "name: t\nfstypes: [\"9p=ext4\", \"9p=xfs\"]\n",
			wantErr: []string{"fstypes[1]", "remove one"},
		},
		{
			name:    "bad name",
			doc:     "name: \"my profile\"\n",
			wantErr: []string{`name "my profile"`},
		},
		{
			name:    "empty document",
			doc:     "\n# nothing\n",
			wantErr: []string{"src.yaml", "empty"},
		},
		{
			name:    "list document",
			doc:     "- a\n",
			wantErr: []string{"not a mapping"},
		},
		{
			name:    "files is not a list",
			doc:     "name: t\nfiles: /proc/sys/a\n",
			wantErr: []string{"files", "want a list"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.doc), "src.yaml")
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if p.Source != "src.yaml" {
					t.Errorf("Source = %q, want src.yaml", p.Source)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded; want an error containing %q", tt.wantErr)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseNameDefault(t *testing.T) {
	p, err := Parse([]byte("description: no name\n"), "/some/dir/mine.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "mine" {
		t.Errorf("Name = %q, want mine (from the file name)", p.Name)
	}
	if _, err := Parse([]byte("description: no name\n"), builtinPrefix+"x"); err == nil {
		t.Error("a built-in without a name parsed")
	}
}

func TestPerm(t *testing.T) {
	tests := []struct {
		f    File
		want uint32
	}{
		{File{Path: "/a"}, 0o644},
		{File{Path: "/a", Dir: true}, 0o755},
		{File{Path: "/a", Mode: "0600"}, 0o600},
		{File{Path: "/a", Mode: "444"}, 0o444},
		{File{Path: "/a", Dir: true, Mode: "0700"}, 0o700},
	}
	for _, tt := range tests {
		if got := uint32(tt.f.Perm()); got != tt.want {
			t.Errorf("%+v.Perm() = %#o, want %#o", tt.f, got, tt.want)
		}
	}
}

func TestValidateInMemory(t *testing.T) {
	tests := []struct {
		name    string
		p       Profile
		wantErr string
	}{
		{
			name: "ok",
			p:    Profile{Name: "m", Files: []File{{Path: "/proc/sys/a"}}, Redirects: []string{"/proc/sys"}},
		},
		{
			name:    "file outside every redirect",
			p:       Profile{Name: "m", Files: []File{{Path: "/proc/swaps"}}, Redirects: []string{"/proc/sys"}},
			wantErr: "files[0] (/proc/swaps): is not under any redirect",
		},
		{
			name: "entry below a file",
			p: Profile{Name: "m", Redirects: []string{"/proc/sys"}, Files: []File{
				{Path: "/proc/sys/a"}, {Path: "/proc/sys/a/b"},
			}},
			wantErr: `files[1] (/proc/sys/a/b): lies below /proc/sys/a, which is a file`,
		},
		{
			name: "dynamic below a file",
			p: Profile{Name: "m", Redirects: []string{"/proc/sys"},
				Files:   []File{{Path: "/proc/sys/a"}},
				Dynamic: []Dynamic{{Path: "/proc/sys/a/b", Kind: KindSwaps}},
			},
			wantErr: "dynamic[0] (/proc/sys/a/b): lies below",
		},
		{
			name: "prefix that is not a parent",
			p: Profile{Name: "m", Redirects: []string{"/proc/sys"}, Files: []File{
				{Path: "/proc/sys/a"}, {Path: "/proc/sys/ab"},
			}},
		},
		{
			name:    "content that is not UTF-8",
			p:       Profile{Name: "m", Redirects: []string{"/proc/sys"}, Files: []File{{Path: "/proc/sys/a", Content: "\xff"}}},
			wantErr: "files[0] (/proc/sys/a): content is not valid UTF-8",
		},
		{
			name:    "no name",
			p:       Profile{},
			wantErr: "name is missing",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
