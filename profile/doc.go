// Package profile reads and checks profiles: YAML documents that describe a
// fake tree of kernel files (what nodeboot seeds below --root) and the
// interceptor rules that serve it to the guest.
//
// A profile has five parts (docs/profiles.md has the full reference):
//
//	name: k3s                  # required in built-ins; files default to their base name
//	description: ...
//	base: empty                # another profile this one extends (built-in name or path)
//	files:                     # static entries, seeded once by package bootstrap
//	  - path: /proc/sys/vm/overcommit_memory
//	    content: "1\n"
//	dynamic:                   # entries the interceptor computes on open (schema only for now)
//	  - path: /sys/fs/cgroup
//	    kind: cgroup2
//	redirects: [/proc/sys]     # guest prefixes served from <root>/<prefix>
//	fstypes: ["9p=ext4"]       # statfs rewrites, the syntax of --fstype
//
// # Parsing
//
// Parse is strict. A document is decoded twice with sigs.k8s.io/yaml: first
// into a generic tree, which is checked against the schema (unknown or
// miscased keys, numbers or booleans where a string belongs, such as an
// unquoted mode: 0644 that YAML reads as the decimal number 420), then into
// the Go types with UnmarshalStrict (duplicate keys). Every error names the
// file, the entry (files[3] and its path) and the fix.
//
// # Loading and merging
//
// Load resolves a reference: a word without a slash and without a .yaml or
// .yml suffix names a built-in (embedded from builtin/*.yaml); anything
// else is a file. A base named by a relative path is found next to the file
// that names it; built-ins may only extend built-ins. The chain is merged
// base first:
//
//   - files and dynamic: an entry of the child replaces the base's entry
//     with the same path, in place; new entries are appended;
//   - redirects: union, in order;
//   - fstypes: union, in order; a child rule with the same FROM replaces
//     the base's rule;
//   - name and description: the child's.
//
// A cycle (a -> b -> a) is an error naming the chain. The merged profile is
// validated as a whole: a path may not be both a file and a dynamic entry,
// no entry may sit below a file, and every file must lie under a redirect
// (else the guest would never see it).
package profile
