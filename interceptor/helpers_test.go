package interceptor

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nodeboot/nodeboot/interceptor/rules"
	"github.com/nodeboot/nodeboot/internal/testenv"

	"golang.org/x/sys/unix"
)

// The integration tests run small tracee programs under the real tracer.
// TestMain builds them once into a temporary directory: the C programs of
// testdata/c with gcc (static when the static libc is installed) and the
// static Go programs of testdata/gotracee. Tests that need gcc skip, with
// the reason, when it is missing.

// haveIntegration is set by integration_test.go, which the nointegration
// build tag leaves out; without it TestMain builds nothing.
var haveIntegration bool

// cTracees and goTracees name the programs under testdata/c/NAME.c (or
// the directory testdata/c/NAME/, whose .c files make one program) and
// testdata/gotracee/NAME; traceeBin takes "NAME" and "go-NAME".
var (
	cTracees  = []string{"sysc", "threads", "literal", "forker", "ticker", "sighandler", "escape", "mounts", "revlink", "bpfcg"}
	goTracees = []string{"threads", "literal", "signals", "spawn", "execthread", "termcount", "cgroupfd"}
)

type testTraceeSet struct {
	once   sync.Once
	dir    string
	gccErr error  // gcc is missing
	goErr  error  // the go command is missing
	link   string // "static" or "dynamic (why)"
	bins   map[string]string
	errs   map[string]error
}

var testTracees testTraceeSet

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "nodeboot-tracees-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "interceptor tests: %v\n", err)
		os.Exit(2)
	}
	testTracees.dir = dir
	// Build up front when integration tests will run; otherwise (unit
	// tests only, fuzzing workers, -short) the first traceeBin call builds them.
	if haveIntegration && !testing.Short() && !isFuzzing() && runMayMatch("TestIntegration") {
		testTracees.build()
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func isFuzzing() bool {
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		return true
	}
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// runMayMatch reports whether -test.run may select tests named prefix...;
// it errs towards yes.
func runMayMatch(prefix string) bool {
	f := flag.Lookup("test.run")
	if f == nil || f.Value.String() == "" {
		return true
	}
	pattern := f.Value.String()
	if strings.Contains(strings.ToLower(pattern), "integration") {
		return true
	}
	top, _, _ := strings.Cut(pattern, "/")
	re, err := regexp.Compile(top)
	return err != nil || re.MatchString(prefix)
}

func (s *testTraceeSet) build() { s.once.Do(s.doBuild) }

func (s *testTraceeSet) doBuild() {
	began := time.Now()
	s.bins = map[string]string{}
	s.errs = map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	done := func(name, bin string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			s.errs[name] = err
			return
		}
		s.bins[name] = bin
	}

	gcc, err := exec.LookPath("gcc")
	if err != nil {
		s.gccErr = fmt.Errorf("gcc not found in PATH (CI installs it; apt-get install gcc libc6-dev)")
	} else {
		// Static binaries start faster and need no loader, so every
		// syscall the test sees is the program's own; fall back to
		// dynamic linking when libc.a is missing.
		s.link = "static"
		probe := filepath.Join(s.dir, "probe.c")
		os.WriteFile(probe, []byte("int main(void){return 0;}\n"), 0o644)
		if out, err := exec.Command(gcc, "-static", "-o", filepath.Join(s.dir, "probe"), probe).CombinedOutput(); err != nil {
			s.link = "dynamic (no static libc: " + firstLineOf(string(out)) + ")"
		}
		for _, name := range cTracees {
			wg.Go(func() {
				bin := filepath.Join(s.dir, name)
				srcs := []string{filepath.Join("testdata", "c", name+".c")}
				if many, _ := filepath.Glob(filepath.Join("testdata", "c", name, "*.c")); len(many) > 0 {
					srcs = many
				}
				args := append([]string{"-O2", "-Wall", "-pthread", "-o", bin}, srcs...)
				if s.link == "static" {
					args = append([]string{"-static"}, args...)
				}
				out, err := exec.Command(gcc, args...).CombinedOutput()
				if err != nil {
					err = fmt.Errorf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				done(name, bin, err)
			})
		}
	}

	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, serr := os.Stat(goCmd); serr != nil {
			s.goErr = fmt.Errorf("go command not found in PATH or GOROOT: %v", err)
		}
	}
	if s.goErr == nil {
		// One go build for all of them: they share most packages.
		wg.Go(func() {
			out := filepath.Join(s.dir, "go") + "/"
			cmd := exec.Command(goCmd, "build", "-buildvcs=false", "-o", out, "./testdata/gotracee/...")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			msg, err := cmd.CombinedOutput()
			if err != nil {
				err = fmt.Errorf("CGO_ENABLED=0 go build -buildvcs=false -o %s ./testdata/gotracee/...: %v\n%s", out, err, msg)
			}
			for _, name := range goTracees {
				done("go-"+name, out+name, err)
			}
		})
	}
	wg.Wait()
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "interceptor tests: built tracees (C: %s) in %v\n", s.link, time.Since(began).Round(time.Millisecond))
	}
}

// traceeBin returns the path of a built tracee: "sysc" for testdata/c/sysc.c,
// "go-threads" for testdata/gotracee/threads.
func traceeBin(t testing.TB, name string) string {
	t.Helper()
	testTracees.build()
	if strings.HasPrefix(name, "go-") {
		if testTracees.goErr != nil {
			testenv.Missing(t, "needs the go command to build testdata/gotracee/%s: %v", strings.TrimPrefix(name, "go-"), testTracees.goErr)
		}
	} else if testTracees.gccErr != nil {
		testenv.Missing(t, "needs gcc to build testdata/c/%s.c: %v", name, testTracees.gccErr)
	}
	if err := testTracees.errs[name]; err != nil {
		t.Fatalf("building tracee %s: %v", name, err)
	}
	bin, ok := testTracees.bins[name]
	if !ok {
		t.Fatalf("no tracee named %q", name)
	}
	return bin
}

// requireIntegration skips under -short: integration tests start real
// processes under the real tracer.
func requireIntegration(t *testing.T) {
	t.Helper()
	testenv.Integration(t)
}

// requireRoot skips t without root, or fails it in CI (testenv).
func requireRoot(t *testing.T, why string) {
	t.Helper()
	testenv.RequireRoot(t, why)
}

// testKernelAtLeast reports whether the running kernel is at least major.minor.
func testKernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	rel := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, _ := strconv.Atoi(parts[0])
	mi, _ := strconv.Atoi(strings.TrimLeftFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return ma > major || ma == major && mi >= minor
}

// testModes are the tracing testModes every integration test runs in; both must
// give the same results.
var testModes = []Mode{ModeSeccomp, ModePtrace}

// outBuffer is an io.Writer that tests can read while the tracee writes.
type outBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *outBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *outBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls until cond holds for the output or the timeout passes.
func (b *outBuffer) waitFor(timeout time.Duration, cond func(string) bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond(b.String()) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// runResult is one finished run of a command under the tracer.
type runResult struct {
	exit     Exit
	waitErr  error
	stdout   string
	stderr   string
	stats    Stats
	pid      int
	rewrites []Rewrite
}

// describeRun names a run in failure messages: mode and command line.
func describeRun(cfg Config) string {
	args := cfg.Args
	if len(args) == 0 {
		args = []string{cfg.Path}
	}
	s := fmt.Sprintf("[%v] %s", cfg.Mode, strings.Join(args, " "))
	if cfg.Dir != "" {
		s += " (cwd " + cfg.Dir + ")"
	}
	return s
}

// startTraced starts cfg under the tracer, with stdout and stderr captured
// unless cfg sets them, and a 30 s deadline. The caller must call finishTraced.
func startTraced(t *testing.T, cfg Config) (*Tracer, *outBuffer, *outBuffer, *[]Rewrite, context.CancelFunc) {
	t.Helper()
	stdout, stderr := &outBuffer{}, &outBuffer{}
	if cfg.Stdout == nil {
		cfg.Stdout = stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = stderr
	}
	if len(cfg.Args) == 0 {
		cfg.Args = []string{cfg.Path}
	}
	rewrites := &[]Rewrite{}
	if cfg.OnRewrite == nil {
		var mu sync.Mutex
		cfg.OnRewrite = func(r Rewrite) {
			mu.Lock()
			*rewrites = append(*rewrites, r)
			mu.Unlock()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	type started struct {
		tr  *Tracer
		err error
	}
	ch := make(chan started, 1)
	go func() {
		tr, err := Start(ctx, cfg)
		ch <- started{tr, err}
	}()
	var st started
	select {
	case st = <-ch:
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("Start %s did not return within 30 s", describeRun(cfg))
	}
	tr, err := st.tr, st.err
	if err != nil {
		cancel()
		t.Fatalf("Start %s: %v", describeRun(cfg), err)
	}
	if tr == nil {
		cancel()
		t.Fatalf("Start %s returned a nil *Tracer and no error", describeRun(cfg))
	}
	return tr, stdout, stderr, rewrites, cancel
}

// finishTraced waits for a run started with startTraced.
func finishTraced(t *testing.T, cfg Config, tr *Tracer, stdout, stderr *outBuffer, rewrites *[]Rewrite, cancel context.CancelFunc) runResult {
	t.Helper()
	type waited struct {
		exit Exit
		err  error
	}
	ch := make(chan waited, 1)
	go func() {
		e, err := tr.Wait()
		ch <- waited{e, err}
	}()
	var w waited
	select {
	case w = <-ch:
	case <-time.After(35 * time.Second):
		cancel()
		t.Fatalf("%s: Wait did not return within 35 s (even after the context was cancelled)\nstdout:\n%s\nstderr:\n%s",
			describeRun(cfg), stdout, stderr)
	}
	cancel()
	return runResult{
		exit:     w.exit,
		waitErr:  w.err,
		stdout:   stdout.String(),
		stderr:   stderr.String(),
		stats:    tr.Stats(),
		pid:      tr.PID(),
		rewrites: *rewrites,
	}
}

// runTraced runs cfg under the tracer to the end.
func runTraced(t *testing.T, cfg Config) runResult {
	t.Helper()
	if len(cfg.Args) == 0 {
		cfg.Args = []string{cfg.Path}
	}
	tr, stdout, stderr, rw, cancel := startTraced(t, cfg)
	return finishTraced(t, cfg, tr, stdout, stderr, rw, cancel)
}

// output formats a run's output for failure messages.
func (r runResult) output() string {
	return fmt.Sprintf("exit: %v (wait error %v)\nstdout:\n%s\nstderr:\n%s", r.exit, r.waitErr, indentOutput(r.stdout), indentOutput(r.stderr))
}

func indentOutput(s string) string {
	if s == "" {
		return "\t(empty)"
	}
	return "\t" + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n\t")
}

// parseKV parses sysc's key=value lines; a repeated key keeps its first value.
func parseKV(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if _, dup := m[k]; !dup {
			m[k] = v
		}
	}
	return m
}

// escapeData encodes s as sysc prints data: \n, \\ and \xHH.
func escapeData(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\\':
			b.WriteString(`\\`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// statsSyscall finds the counters of one syscall.
func statsSyscall(s Stats, name string) (SyscallStats, bool) {
	for _, c := range s.Syscalls {
		if c.Name == name {
			return c, true
		}
	}
	return SyscallStats{}, false
}

// statsRuleHits returns the hits of the rule whose description is rule.
func statsRuleHits(s Stats, rule string) (uint64, bool) {
	for _, r := range s.Rules {
		if r.Rule == rule {
			return r.Hits, true
		}
	}
	return 0, false
}

// fakeTree is a fake file tree for redirect tests, under one t.TempDir():
//
//	T/guest   G: the GUEST of the main rule (a real directory)
//	T/host    H: its HOST
//	T/host2   H2: HOST of the longer rule G/sub
//	T/procsys PS: HOST of /proc/sys
//	T/other   a file no rule covers
//	T/guestX  real file whose name starts like G (T/hostX must never be read)
type fakeTree struct {
	T, G, H, H2, PS string
	realType        int64 // f_type of T's filesystem
	fakeType        int64 // a different f_type for rules to report
}

const (
	procsysOstype = "FakeOS\n"
	procsysOnly   = "fake-host\n"
)

func newFakeTree(t *testing.T) *fakeTree {
	t.Helper()
	root := t.TempDir()
	// The tests run some calls as an unprivileged uid: every directory
	// on the way must be searchable.
	for d := root; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			break
		}
	}
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	tr := &fakeTree{T: root, G: root + "/guest", H: root + "/host", H2: root + "/host2", PS: root + "/procsys"}
	type ent struct {
		path, content string
		mode          os.FileMode
		link          bool
		dir           bool
	}
	ents := []ent{
		{path: "guest", dir: true},
		{path: "guest/only-guest", content: "guest-only"},
		{path: "guest/both", content: "guest-both"},
		{path: "guest/dir-both/g-entry", content: "g"},
		{path: "guest/edir-both", dir: true},
		{path: "guest/lnk", content: "guest-target", link: true},
		{path: "guest/glink", content: "guest-only-target", link: true},
		{path: "guest/guest-target", content: "lnk's target in the guest"},
		{path: "guest/sub/f", content: "guest-sub-f"},
		{path: "guest/ro", content: "read-only", mode: 0o444},
		{path: "guest/perm", content: "guest-perm", mode: 0o600},
		{path: "host", dir: true},
		{path: "host/only-host", content: "host-only"},
		{path: "host/both", content: "host-both"},
		{path: "host/dir-both/h-entry", content: "h"},
		{path: "host/edir-both/h-entry", content: "h"},
		{path: "host/lnk", content: "host-target", link: true},
		{path: "host/hlink", content: "host-only-target", link: true},
		{path: "host/emptydir", dir: true},
		{path: "host/dir-host/f", content: "in-host-dir"},
		{path: "host/sub/f", content: "host-sub-f"},
		{path: "host/sub/g", content: "host-sub-g"},
		{path: "host/ro-host", content: "host-read-only", mode: 0o444},
		{path: "host/perm", content: "host-perm", mode: 0o666},
		{path: "host2/f", content: "host2-f"},
		{path: "procsys/kernel/ostype", content: procsysOstype},
		{path: "procsys/kernel/fake_only_host", content: procsysOnly},
		{path: "procsysfoo", content: "WRONG: /proc/sysfoo was redirected as if below /proc/sys"},
		{path: "other", content: "outside"},
		{path: "guestX", content: "real-guestX"},
		{path: "hostX", content: "WRONG: guestX was redirected as if below guest"},
	}
	for _, e := range ents {
		p := filepath.Join(root, e.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case e.dir:
			err = os.MkdirAll(p, 0o755)
		case e.link:
			err = os.Symlink(e.content, p)
		default:
			mode := e.mode
			if mode == 0 {
				mode = 0o644
			}
			err = os.WriteFile(p, []byte(e.content), mode)
			if err == nil {
				err = os.Chmod(p, mode) // umask
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		t.Fatal(err)
	}
	tr.realType = int64(st.Type)
	tr.fakeType = otherFSMagic(tr.realType)
	return tr
}

// otherFSMagic returns a filesystem magic different from each of not.
func otherFSMagic(not ...int64) int64 {
	for _, m := range []int64{0x01021997 /* 9p */, 0x58465342 /* xfs */, 0x794C7630 /* overlay */, 0x2FC12FC1 /* zfs */} {
		clash := false
		for _, n := range not {
			if m == n {
				clash = true
			}
		}
		if !clash {
			return m
		}
	}
	panic("no free fs magic")
}

// rules are the rules of most tests: G=H, G/sub=H2, /proc/sys=PS, and
// f_type fakeType for everything below H.
func (tr *fakeTree) rules() rules.Rules {
	return rules.Rules{
		Redirects: []rules.Redirect{
			{Guest: tr.G, Host: tr.H},
			{Guest: tr.G + "/sub", Host: tr.H2},
			{Guest: "/proc/sys", Host: tr.PS},
		},
		FSTypes: []rules.FSTypeRule{{Path: tr.H, To: tr.fakeType}},
	}
}

// expand replaces {T}, {G}, {H}, {H2}, {PS}, {real} and {fake}.
func (tr *fakeTree) expand(s string) string {
	return strings.NewReplacer(
		"{T}", tr.T, "{G}", tr.G, "{H2}", tr.H2, "{H}", tr.H, "{PS}", tr.PS,
		"{real}", fmt.Sprintf("0x%x", tr.realType), "{fake}", fmt.Sprintf("0x%x", tr.fakeType),
	).Replace(s)
}

// unexpand turns the tree's paths back into placeholders, so that the
// output of runs on different trees compares equal.
func (tr *fakeTree) unexpand(s string) string {
	return strings.NewReplacer(tr.H2, "{H2}", tr.PS, "{PS}", tr.G, "{G}", tr.H, "{H}", tr.T, "{T}").Replace(s)
}

func (tr *fakeTree) expandAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = tr.expand(a)
	}
	return out
}

// fsCheck checks the real files after a call; ctx says which call.
type fsCheck struct {
	t   *testing.T
	tr  *fakeTree
	ctx string
}

func (c fsCheck) errorf(format string, a ...any) {
	c.t.Helper()
	c.t.Errorf("%s: afterwards %s", c.ctx, fmt.Sprintf(format, a...))
}

func (c fsCheck) file(path, want string) {
	c.t.Helper()
	p := c.tr.expand(path)
	got, err := os.ReadFile(p)
	if err != nil {
		c.errorf("%s: %v, want a file holding %q", p, err, want)
		return
	}
	if string(got) != want {
		c.errorf("%s holds %q, want %q", p, got, want)
	}
}

func (c fsCheck) missing(path string) {
	c.t.Helper()
	p := c.tr.expand(path)
	if _, err := os.Lstat(p); err == nil {
		c.errorf("%s exists, want it absent", p)
	} else if !os.IsNotExist(err) {
		c.errorf("%s: %v, want it absent", p, err)
	}
}

func (c fsCheck) lstat(path string) (os.FileInfo, bool) {
	c.t.Helper()
	p := c.tr.expand(path)
	fi, err := os.Lstat(p)
	if err != nil {
		c.errorf("%s: %v", p, err)
		return nil, false
	}
	return fi, true
}

func (c fsCheck) dir(path string) {
	c.t.Helper()
	if fi, ok := c.lstat(path); ok && !fi.IsDir() {
		c.errorf("%s is %v, want a directory", c.tr.expand(path), fi.Mode())
	}
}

func (c fsCheck) fifo(path string) {
	c.t.Helper()
	if fi, ok := c.lstat(path); ok && fi.Mode()&os.ModeNamedPipe == 0 {
		c.errorf("%s is %v, want a FIFO", c.tr.expand(path), fi.Mode())
	}
}

func (c fsCheck) mode(path string, want os.FileMode) {
	c.t.Helper()
	if fi, ok := c.lstat(path); ok && fi.Mode().Perm() != want {
		c.errorf("%s has mode %#o, want %#o", c.tr.expand(path), fi.Mode().Perm(), want)
	}
}

func (c fsCheck) owner(path string, uid, gid int) {
	c.t.Helper()
	if fi, ok := c.lstat(path); ok {
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != uid || int(st.Gid) != gid {
			c.errorf("%s is owned by %d:%d, want %d:%d", c.tr.expand(path), st.Uid, st.Gid, uid, gid)
		}
	}
}

func (c fsCheck) link(path, want string) {
	c.t.Helper()
	p := c.tr.expand(path)
	got, err := os.Readlink(p)
	if err != nil {
		c.errorf("readlink %s: %v, want %q", p, err, want)
	} else if got != want {
		c.errorf("readlink %s = %q, want %q", p, got, want)
	}
}

// mtime checks the modification time (of the link itself, not its target).
func (c fsCheck) mtime(path string, sec int64, want bool) {
	c.t.Helper()
	if fi, ok := c.lstat(path); ok {
		if got := fi.ModTime().Unix(); (got == sec) != want {
			if want {
				c.errorf("%s has mtime %d, want %d", c.tr.expand(path), got, sec)
			} else {
				c.errorf("%s has mtime %d, want it unchanged (the call must not touch it)", c.tr.expand(path), got)
			}
		}
	}
}

func (c fsCheck) nlink(path string, want int) {
	c.t.Helper()
	if fi, ok := c.lstat(path); ok {
		if got := int(fi.Sys().(*syscall.Stat_t).Nlink); got != want {
			c.errorf("%s has %d links, want %d", c.tr.expand(path), got, want)
		}
	}
}

// xattr checks a user xattr; want "" means absent.
func (c fsCheck) xattr(path, name, want string) {
	c.t.Helper()
	p := c.tr.expand(path)
	buf := make([]byte, 1024)
	n, err := unix.Lgetxattr(p, name, buf)
	switch {
	case want == "" && err == nil:
		c.errorf("%s has xattr %s=%q, want none", p, name, buf[:n])
	case want == "" && err != unix.ENODATA:
		c.errorf("getxattr %s %s: %v, want ENODATA", p, name, err)
	case want != "" && err != nil:
		c.errorf("getxattr %s %s: %v, want %q", p, name, err, want)
	case want != "" && string(buf[:n]) != want:
		c.errorf("%s has xattr %s=%q, want %q", p, name, buf[:n], want)
	}
}

// listDirNames lists a directory's names, sorted, comma-joined, as sysc does.
func listDirNames(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// procStateOf returns the state letter of /proc/PID/stat.
func procStateOf(pid int) (byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, fmt.Errorf("/proc/%d/stat: cannot parse %q", pid, b)
	}
	return b[i+2], nil
}
