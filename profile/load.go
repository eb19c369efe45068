package profile

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nodeboot/nodeboot/interceptor/rules"
	"github.com/nodeboot/nodeboot/internal/safefs"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

// builtinPrefix starts the Source of a built-in profile.
const builtinPrefix = "builtin:"

// maxDepth bounds a base chain; a longer one is almost surely a mistake.
const maxDepth = 16

// ErrNotFound is wrapped by the error of Load for a built-in name that does
// not exist. A missing file gives an error that wraps fs.ErrNotExist.
var ErrNotFound = errors.New("profile not found")

// lookupError is a profile that cannot be found. It matches target
// (ErrNotFound or fs.ErrNotExist) without repeating its text.
type lookupError struct {
	msg    string
	target error
}

func (e *lookupError) Error() string { return e.msg }

// Is indicates that a lookupError is its target.
func (e *lookupError) Is(target error) bool { return target == e.target }

// Info describes a built-in profile.
type Info struct {
	Name        string
	Description string
	// Base is the profile it extends, if any.
	Base string
	// Source is "builtin:NAME".
	Source string
}

// List returns the built-in profiles, sorted by name.
func List() []Info {
	names := builtinNames()
	out := make([]Info, 0, len(names))
	for _, n := range names {
		info := Info{Name: n, Source: builtinPrefix + n}
		if p, err := readBuiltin(n); err == nil {
			info.Description, info.Base = p.Description, p.Base
		} else {
			info.Description = "(invalid: " + err.Error() + ")"
		}
		out = append(out, info)
	}
	return out
}

func builtinNames() []string {
	entries, _ := fs.ReadDir(builtinFS, "builtin")
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// IsBuiltinRef reports whether ref names a built-in rather than a file: it
// has no slash and no .yaml or .yml suffix. Write ./k3s to load a file
// named k3s.
func IsBuiltinRef(ref string) bool {
	return !strings.ContainsRune(ref, '/') && !strings.HasSuffix(ref, ".yaml") && !strings.HasSuffix(ref, ".yml")
}

// Load reads the profile nameOrPath (a built-in name or a file, see
// IsBuiltinRef), resolves its base chain, merges it and validates the
// result. The returned profile has no Base; Chain lists what was merged.
//
// Errors wrap:
//   - [ErrNotFound] for an unknown built-in name;
//   - [fs.ErrNotExist] for a missing file;
//   - [ErrInvalid] for a profile that does not parse or validate, and for
//     a cycle of bases.
func Load(nameOrPath string) (*Profile, error) {
	if nameOrPath == "" {
		return nil, fmt.Errorf("load profile: no name or path given; use a built-in (%s) or a file", strings.Join(builtinNames(), ", "))
	}
	p, err := loadChain(nameOrPath, "", false, nil)
	if err != nil {
		return nil, err
	}
	if err := p.validateMerged(); err != nil {
		return nil, err
	}
	return p, nil
}

// loadChain reads ref and, recursively, its bases, and returns them merged.
// relDir is the directory relative file refs are found in ("" for the
// working directory); builtinOnly is set below a built-in; seen holds the
// keys already on the chain, outermost first.
func loadChain(ref, relDir string, builtinOnly bool, seen []string) (*Profile, error) {
	var (
		p   *Profile
		key string
		dir string
		err error
	)
	if IsBuiltinRef(ref) {
		key = builtinPrefix + ref
		p, err = readBuiltin(ref)
	} else {
		if builtinOnly {
			return nil, errorf(seen[len(seen)-1], "", "base %q is a file, but built-in profiles may only extend built-ins", ref)
		}
		file := ref
		if relDir != "" && !filepath.IsAbs(file) {
			file = filepath.Join(relDir, file)
		}
		if abs, aerr := filepath.Abs(file); aerr == nil {
			key = abs
			if real, rerr := filepath.EvalSymlinks(abs); rerr == nil {
				key = real
			}
		}
		dir = filepath.Dir(file)
		p, err = readFile(file)
	}
	for i, k := range seen {
		if k == key {
			chain := append(append([]string{}, seen[i:]...), key)
			return nil, errorf(seen[len(seen)-1], "", "base %q makes a cycle: %s; remove one of the bases", ref, strings.Join(chain, " -> "))
		}
	}
	if err != nil {
		if len(seen) == 0 {
			return nil, err
		}
		parent := seen[len(seen)-1]
		if errors.Is(err, fs.ErrNotExist) && !IsBuiltinRef(ref) {
			return nil, &lookupError{target: fs.ErrNotExist, msg: fmt.Sprintf(
				"profile %s: base %q: %s does not exist; fix the path (a relative base is found next to the file that names it)", parent, ref, key)}
		}
		return nil, fmt.Errorf("profile %s: base %q: %w", parent, ref, err)
	}
	if len(seen) >= maxDepth {
		return nil, errorf(p.Source, "", "base chain is deeper than %d profiles; flatten it", maxDepth)
	}
	if p.Base == "" {
		return p, nil
	}
	base, err := loadChain(p.Base, dir, builtinOnly || strings.HasPrefix(key, builtinPrefix), append(seen, key))
	if err != nil {
		return nil, err
	}
	return merge(base, p), nil
}

// readBuiltin parses the embedded builtin/NAME.yaml.
func readBuiltin(name string) (*Profile, error) {
	data, err := builtinFS.ReadFile("builtin/" + name + ".yaml")
	if err != nil {
		return nil, &lookupError{target: ErrNotFound, msg: fmt.Sprintf(
			"profile %q: no built-in profile by that name (built-ins: %s); to load a file of that name, write ./%s",
			name, strings.Join(builtinNames(), ", "), name)}
	}
	p, err := Parse(data, builtinPrefix+name)
	if err != nil {
		return nil, err
	}
	if p.Name != name {
		return nil, errorf(p.Source, "", "name %q differs from the file name %q; rename one", p.Name, name)
	}
	return p, nil
}

// readFile parses the profile file at name: a regular file (a FIFO or a
// device would hang or never end) of at most maxContent bytes.
func readFile(name string) (*Profile, error) {
	data, err := safefs.ReadFile(name, maxContent)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &lookupError{target: fs.ErrNotExist, msg: fmt.Sprintf(
			"profile %s: no such file; give the path of a profile file or a built-in name (%s)",
			name, strings.Join(builtinNames(), ", "))}
	case errors.Is(err, safefs.ErrTooLarge):
		return nil, errorf(name, "", "file is larger than %d bytes; a profile is a short list of kernel files", maxContent)
	case err != nil:
		return nil, fmt.Errorf("read profile %s: %w", name, err)
	}
	return Parse(data, name)
}

// merge returns child laid over base (see the package comment for the
// rules). Neither argument is modified.
func merge(base, child *Profile) *Profile {
	out := &Profile{
		Name:        child.Name,
		Description: child.Description,
		Source:      child.Source,
		Chain:       append(append([]string{}, base.Chain...), child.Source),
	}

	out.Files = append(out.Files, base.Files...)
	fileAt := map[string]int{}
	for i, f := range out.Files {
		fileAt[f.Path] = i
	}
	dynAt := map[string]int{}
	out.Dynamic = append(out.Dynamic, base.Dynamic...)
	for i, d := range out.Dynamic {
		dynAt[d.Path] = i
	}
	// A child entry replaces the base's entry with its path, even when one
	// is a file and the other a dynamic entry.
	var dropFiles, dropDyn []int
	for _, f := range child.Files {
		if i, ok := fileAt[f.Path]; ok {
			out.Files[i] = f
			continue
		}
		if i, ok := dynAt[f.Path]; ok {
			dropDyn = append(dropDyn, i)
		}
		fileAt[f.Path] = len(out.Files)
		out.Files = append(out.Files, f)
	}
	for _, d := range child.Dynamic {
		if i, ok := dynAt[d.Path]; ok {
			out.Dynamic[i] = d
			continue
		}
		if i, ok := fileAt[d.Path]; ok {
			dropFiles = append(dropFiles, i)
		}
		out.Dynamic = append(out.Dynamic, d)
	}
	out.Files = dropIndexes(out.Files, dropFiles)
	out.Dynamic = dropIndexes(out.Dynamic, dropDyn)

	out.Redirects = append(out.Redirects, base.Redirects...)
	for _, r := range child.Redirects {
		if !contains(out.Redirects, r) {
			out.Redirects = append(out.Redirects, r)
		}
	}

	out.FSTypes = append(out.FSTypes, base.FSTypes...)
	keyAt := map[string]int{}
	for i, s := range out.FSTypes {
		if ft, err := rules.ParseFSType(s); err == nil {
			keyAt[fsTypeKey(ft)] = i
		}
	}
	for _, s := range child.FSTypes {
		ft, err := rules.ParseFSType(s)
		if err == nil {
			if i, ok := keyAt[fsTypeKey(ft)]; ok {
				out.FSTypes[i] = s
				continue
			}
			keyAt[fsTypeKey(ft)] = len(out.FSTypes)
		}
		out.FSTypes = append(out.FSTypes, s)
	}
	return out
}

// dropIndexes returns list without the elements at the given indexes.
func dropIndexes[T any](list []T, drop []int) []T {
	if len(drop) == 0 {
		return list
	}
	skip := map[int]bool{}
	for _, i := range drop {
		skip[i] = true
	}
	out := list[:0:0]
	for i, x := range list {
		if !skip[i] {
			out = append(out, x)
		}
	}
	return out
}
