package profile

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nodeboot/nodeboot/interceptor/rules"

	"sigs.k8s.io/yaml"
)

// Profile describes a fake tree and the rules that serve it. The JSON tags
// are the YAML keys (sigs.k8s.io/yaml goes through encoding/json).
type Profile struct {
	// Name identifies the profile in "nodeboot profile list" and in reports.
	Name string `json:"name"`
	// Description is one line for "nodeboot profile list".
	Description string `json:"description,omitempty"`
	// Base names the profile this one extends: a built-in name or a path.
	// A loaded (merged) profile has no Base; see Chain.
	Base string `json:"base,omitempty"`
	// Files are the static entries of the tree.
	Files []File `json:"files,omitempty"`
	// Dynamic are entries whose content the interceptor computes when the
	// guest opens them. Seeding skips them.
	Dynamic []Dynamic `json:"dynamic,omitempty"`
	// Redirects are the guest path prefixes served from the tree: a guest
	// path G below one of them is looked up at <root>/G first.
	Redirects []string `json:"redirects,omitempty"`
	// FSTypes rewrite what statfs reports, in the syntax of --fstype:
	// FROM=TO, where FROM is an absolute path or a filesystem type.
	FSTypes []string `json:"fstypes,omitempty"`
	// AllowIOUring lets the traced programs use io_uring, which nodeboot
	// refuses by default (ENOSYS): the operations of a ring run in the
	// kernel without a syscall the tracer sees, so an io_uring open of a
	// redirected path reaches the host's file, not the tree's. Only for
	// programs that cannot run without it. See interceptor.Config.
	AllowIOUring bool `json:"allowIOUring,omitempty"`

	// Source says where the profile was read from: "builtin:NAME" or a
	// file path. Empty for a profile built in memory.
	Source string `json:"-"`
	// Chain lists the sources merged into a loaded profile, base first; the
	// last one is Source.
	Chain []string `json:"-"`
}

// File is a static entry of the tree.
//
// Exactly one of these says what the entry holds:
//
//   - Dir: a directory (Content, CopyFromHost and Generate must be unset);
//   - CopyFromHost: the host's file at Path, read when seeding; when it is
//     unreadable, Generate or else Content is used instead;
//   - Generate: a value generated once, when the file is first created;
//   - otherwise Content (possibly empty).
type File struct {
	// Path is the guest path, absolute and clean, e.g. /proc/sys/kernel/panic.
	Path string `json:"path"`
	// Dir makes the entry a directory.
	Dir bool `json:"dir,omitempty"`
	// Content is the literal content, or the fallback of CopyFromHost.
	Content string `json:"content,omitempty"`
	// CopyFromHost copies the host's file when it is readable.
	CopyFromHost bool `json:"copyFromHost,omitempty"`
	// Generate names a generator (see Generators).
	Generate string `json:"generate,omitempty"`
	// Mode is the permission as a quoted octal string ("0644"). Empty
	// means 0644 for files and 0755 for directories.
	Mode string `json:"mode,omitempty"`
	// Reason says who reads or writes the entry; documentation only.
	Reason string `json:"reason,omitempty"`

	origin origin
}

// Dynamic is an entry served by the interceptor, computed on each open.
type Dynamic struct {
	// Path is the guest path, absolute and clean.
	Path string `json:"path"`
	// Kind selects the computation (see DynamicKinds).
	Kind string `json:"kind"`
	// Reason says who reads the entry; documentation only.
	Reason string `json:"reason,omitempty"`

	origin origin
}

// origin locates an entry for error messages: the file and the index in
// its list.
type origin struct {
	source string
	index  int
}

// Generators of File.Generate.
const (
	// GenerateUUID is a random version 4 UUID and a newline, the format of
	// /proc/sys/kernel/random/boot_id.
	GenerateUUID = "uuid"
	// GenerateUnameRelease is the release field of uname(2) and a newline,
	// the format of /proc/sys/kernel/osrelease.
	GenerateUnameRelease = "uname-release"
)

// Generators lists the values File.Generate accepts.
func Generators() []string { return []string{GenerateUUID, GenerateUnameRelease} }

// Kinds of Dynamic entries. The interceptor implements them; a profile only
// declares where they go.
const (
	// KindCgroup2 is a cgroup v2 root: a directory whose statfs says
	// cgroup2 and which holds cgroup.controllers, cpu.stat, memory.current,
	// memory.stat, io.stat and pids.current.
	KindCgroup2 = "cgroup2"
	// KindMountinfo is /proc/<pid>/mountinfo with the fake mounts added.
	KindMountinfo = "mountinfo"
	// KindDiskstats is /proc/diskstats.
	KindDiskstats = "diskstats"
	// KindPartitions is /proc/partitions.
	KindPartitions = "partitions"
	// KindSwaps is /proc/swaps (the header line when there is no swap).
	KindSwaps = "swaps"
	// KindKmsg is /dev/kmsg: opens succeed and reads block.
	KindKmsg = "kmsg"
)

// DynamicKinds lists the values Dynamic.Kind accepts.
func DynamicKinds() []string {
	return []string{KindCgroup2, KindMountinfo, KindDiskstats, KindPartitions, KindSwaps, KindKmsg}
}

// Default permissions of entries without a mode.
const (
	DefaultFileMode fs.FileMode = 0o644
	DefaultDirMode  fs.FileMode = 0o755
)

// maxContent caps a profile's file and every content string: kernel files
// are small, and a huge value is a mistake.
const maxContent = 1 << 20

// Perm returns the permission bits of the entry: Mode, or the default for
// files or directories. Call it on validated entries; a bad Mode gives the
// default.
func (f File) Perm() fs.FileMode {
	if f.Mode != "" {
		if m, err := parseMode(f.Mode); err == nil {
			return m
		}
	}
	if f.Dir {
		return DefaultDirMode
	}
	return DefaultFileMode
}

var modeRE = regexp.MustCompile(`^0?[0-7]{3}$`)

// parseMode parses "0644" or "644". Special bits (setuid, setgid, sticky)
// are refused: the tree holds plain kernel files.
func parseMode(s string) (fs.FileMode, error) {
	if !modeRE.MatchString(s) {
		return 0, fmt.Errorf("mode %q is not an octal permission; write a quoted octal string such as \"0644\" (no setuid, setgid or sticky bits)", s)
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("mode %q: %w", s, err)
	}
	return fs.FileMode(v), nil
}

// ErrInvalid is wrapped by every error about the content of a profile.
var ErrInvalid = errors.New("invalid profile")

// Error is a problem with one profile document or entry.
type Error struct {
	// Source is the file or "builtin:NAME".
	Source string
	// Where is the entry, e.g. "files[3] (/proc/sys/kernel/panic)", or
	// empty for the document as a whole.
	Where string
	// Msg says what is wrong and how to fix it.
	Msg string
}

func (e *Error) Error() string {
	src := e.Source
	if src == "" {
		src = "(in memory)"
	}
	if e.Where == "" {
		return "profile " + src + ": " + e.Msg
	}
	return "profile " + src + ": " + e.Where + ": " + e.Msg
}

// Is indicates that an Error is ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func errorf(source, where, format string, a ...any) error {
	return &Error{Source: source, Where: where, Msg: fmt.Sprintf(format, a...)}
}

// where names entry i of list with its path, when it has one.
func where(list string, i int, p string) string {
	if p == "" {
		return fmt.Sprintf("%s[%d]", list, i)
	}
	return fmt.Sprintf("%s[%d] (%s)", list, i, p)
}

// Parse decodes one profile document. source names it in errors and
// becomes p.Source; when the document has no name, a file's base name
// without its extension is used. Base is not resolved (see Load), but the
// document is checked on its own: keys, types, paths, modes, kinds,
// generators, redirects and fstypes, and duplicate paths.
func Parse(data []byte, source string) (*Profile, error) {
	if len(data) > maxContent {
		return nil, errorf(source, "", "file is larger than %d bytes; a profile is a short list of kernel files", maxContent)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, errorf(source, "", "document is empty; start with \"name: NAME\"")
	}
	var generic any
	if err := yaml.UnmarshalStrict(data, &generic); err != nil {
		return nil, errorf(source, "", "%s; fix the YAML syntax", yamlMessage(err))
	}
	if err := checkSchema(generic, source); err != nil {
		return nil, err
	}
	var p Profile
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		// checkSchema accepts only what decodes; this is a safety net.
		return nil, errorf(source, "", "%s", yamlMessage(err))
	}
	p.Source = source
	p.Chain = []string{source}
	if p.Name == "" && source != "" && !strings.HasPrefix(source, builtinPrefix) {
		base := filepath.Base(source)
		p.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	for i := range p.Files {
		p.Files[i].origin = origin{source, i}
	}
	for i := range p.Dynamic {
		p.Dynamic[i].origin = origin{source, i}
	}
	if err := p.validateDoc(); err != nil {
		return nil, err
	}
	return &p, nil
}

// yamlMessage strips the layers sigs.k8s.io/yaml adds and joins the lines
// of a yaml.v2 error list.
func yamlMessage(err error) string {
	msg := err.Error()
	for _, prefix := range []string{"error converting YAML to JSON: ", "error unmarshaling JSON: ", "while decoding JSON: ", "yaml: unmarshal errors:", "yaml: "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	fields := strings.Split(msg, "\n")
	var parts []string
	for _, f := range fields {
		if f = strings.TrimSpace(f); f != "" {
			parts = append(parts, f)
		}
	}
	return strings.Join(parts, "; ")
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Validate checks p as a whole: every entry on its own (see Parse), and
// the rules between entries: no path is both a file and a dynamic entry, no
// entry lies below a file, and every file lies under a redirect. Load
// validates what it returns; call Validate on profiles built in memory.
func (p *Profile) Validate() error {
	if err := p.validateDoc(); err != nil {
		return err
	}
	return p.validateMerged()
}

// validateDoc checks what one document can get wrong by itself.
func (p *Profile) validateDoc() error {
	src := p.Source
	if p.Name == "" {
		return errorf(src, "", "name is missing; add \"name: NAME\"")
	}
	if !nameRE.MatchString(p.Name) {
		return errorf(src, "", "name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", p.Name)
	}
	if strings.ContainsAny(p.Description, "\n\r") {
		return errorf(src, "", "description is more than one line; put details in comments")
	}
	seen := map[string]string{}
	for i, f := range p.Files {
		w := where("files", i, f.Path)
		if err := checkGuestPath(f.Path); err != nil {
			return errorf(src, w, "%v", err)
		}
		if prev, ok := seen[f.Path]; ok {
			return errorf(src, w, "path is also %s; keep one entry per path", prev)
		}
		seen[f.Path] = where("files", i, "")
		if err := f.check(); err != nil {
			return errorf(src, w, "%v", err)
		}
	}
	for i, d := range p.Dynamic {
		w := where("dynamic", i, d.Path)
		if err := checkGuestPath(d.Path); err != nil {
			return errorf(src, w, "%v", err)
		}
		if prev, ok := seen[d.Path]; ok {
			return errorf(src, w, "path is also %s; a path is either a file or a dynamic entry", prev)
		}
		seen[d.Path] = where("dynamic", i, "")
		if !contains(DynamicKinds(), d.Kind) {
			if d.Kind == "" {
				return errorf(src, w, "kind is missing; add one of: %s", strings.Join(DynamicKinds(), ", "))
			}
			return errorf(src, w, "unknown kind %q; use one of: %s", d.Kind, strings.Join(DynamicKinds(), ", "))
		}
	}
	seenRedirect := map[string]bool{}
	for i, r := range p.Redirects {
		w := where("redirects", i, "")
		if err := checkGuestPath(r); err != nil {
			if r == "/" {
				return errorf(src, w, "redirecting / sends every path through the tree; list the prefixes that need fake files, such as /proc/sys")
			}
			return errorf(src, w, "%v", err)
		}
		if seenRedirect[r] {
			return errorf(src, w, "%s is listed twice; remove one", r)
		}
		seenRedirect[r] = true
	}
	seenFrom := map[string]bool{}
	for i, s := range p.FSTypes {
		w := where("fstypes", i, "")
		ft, err := rules.ParseFSType(s)
		if err != nil {
			return errorf(src, w, "%v", err)
		}
		k := fsTypeKey(ft)
		if seenFrom[k] {
			return errorf(src, w, "%q rewrites a FROM that an earlier rule already rewrites; remove one", s)
		}
		seenFrom[k] = true
	}
	return nil
}

// check validates the fields of a file entry other than its path.
func (f File) check() error {
	if f.Mode != "" {
		m, err := parseMode(f.Mode)
		if err != nil {
			return err
		}
		if f.Dir && m&0o700 != 0o700 {
			return fmt.Errorf("mode %q lets the owner not read, write or enter the directory; use \"0755\" or \"0700\"", f.Mode)
		}
		if !f.Dir && m&0o400 == 0 {
			return fmt.Errorf("mode %q lets the owner not read the file; use \"0644\" or \"0444\"", f.Mode)
		}
	}
	if f.Dir {
		switch {
		case f.Content != "":
			return errors.New("a directory has no content; remove content or dir")
		case f.CopyFromHost:
			return errors.New("copyFromHost copies files, not directories; remove copyFromHost or dir")
		case f.Generate != "":
			return errors.New("a directory cannot be generated; remove generate or dir")
		}
		return nil
	}
	if f.Generate != "" {
		if !contains(Generators(), f.Generate) {
			return fmt.Errorf("unknown generator %q; use one of: %s", f.Generate, strings.Join(Generators(), ", "))
		}
		if f.Content != "" {
			return errors.New("content and generate both give the value; remove one")
		}
	}
	if len(f.Content) > maxContent {
		return fmt.Errorf("content is larger than %d bytes; kernel files are small", maxContent)
	}
	if !utf8.ValidString(f.Content) {
		return errors.New("content is not valid UTF-8; kernel files in a profile are text")
	}
	return nil
}

// checkGuestPath accepts absolute, clean paths other than "/".
func checkGuestPath(p string) error {
	switch {
	case p == "":
		return errors.New("path is missing; add an absolute guest path such as /proc/sys/kernel/panic")
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q is relative; write the absolute guest path, e.g. /%s", p, strings.TrimPrefix(p, "./"))
	case p == "/":
		return errors.New("path is /, the tree itself; name a file or directory below it")
	case strings.ContainsAny(p, "\x00\n"):
		return fmt.Errorf("path %q contains a NUL or newline; remove it", p)
	case !utf8.ValidString(p):
		return fmt.Errorf("path %q is not valid UTF-8", p)
	}
	if c := path.Clean(p); c != p {
		return fmt.Errorf("path %q is not clean (no //, ., .. or trailing /); write %s", p, c)
	}
	for _, elem := range strings.Split(p[1:], "/") {
		if len(elem) > 255 {
			return fmt.Errorf("path %q has an element longer than 255 bytes", p)
		}
	}
	return nil
}

// validateMerged checks the rules between entries, which only hold once a
// base chain is merged.
func (p *Profile) validateMerged() error {
	type ent struct {
		path string
		err  func(format string, a ...any) error
		file bool // a regular file, not a directory
	}
	var all []ent
	for i, f := range p.Files {
		all = append(all, ent{f.Path, f.origin.errFunc(p.Source, "files", i, f.Path), !f.Dir})
	}
	for i, d := range p.Dynamic {
		all = append(all, ent{d.Path, d.origin.errFunc(p.Source, "dynamic", i, d.Path), false})
	}
	byPath := map[string]ent{}
	for _, e := range all {
		if _, ok := byPath[e.path]; ok {
			return e.err("path appears twice in the merged profile; keep one entry per path")
		}
		byPath[e.path] = e
	}
	// No entry may lie below a regular file: seeding could not create it.
	for _, e := range all {
		for dir := path.Dir(e.path); dir != "/"; dir = path.Dir(dir) {
			if parent, ok := byPath[dir]; ok && parent.file {
				return e.err("lies below %s, which is a file; make %s a \"dir: true\" entry or move this one", dir, dir)
			}
		}
	}
	for i, f := range p.Files {
		if !underAny(f.Path, p.Redirects) {
			return f.origin.errFunc(p.Source, "files", i, f.Path)("is not under any redirect, so the guest would never see it; add %s (or a parent such as %s) to redirects", f.Path, topTwo(f.Path))
		}
	}
	return nil
}

// errFunc returns an error constructor for the entry at index i of list,
// located at its origin when known.
func (o origin) errFunc(fallbackSource, list string, i int, p string) func(string, ...any) error {
	src, idx := o.source, o.index
	if src == "" && idx == 0 {
		src, idx = fallbackSource, i
	}
	w := where(list, idx, p)
	return func(format string, a ...any) error { return errorf(src, w, format, a...) }
}

func underAny(p string, prefixes []string) bool {
	for _, r := range prefixes {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// topTwo returns the first two elements of an absolute path: /proc/sys for
// /proc/sys/kernel/panic.
func topTwo(p string) string {
	elems := strings.SplitN(p[1:], "/", 3)
	if len(elems) < 2 {
		return p
	}
	return "/" + elems[0] + "/" + elems[1]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fsTypeKey is what makes two fstype rules the same rule: their FROM.
func fsTypeKey(ft rules.FSTypeRule) string {
	if ft.Path != "" {
		return ft.Path
	}
	return "type:" + strconv.FormatInt(ft.From, 16)
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
