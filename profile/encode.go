package profile

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
)

// YAML returns p as a profile document that Parse reads back to the same
// entries. Keys come in the order of the reference (name, description,
// base, files, dynamic, redirects, fstypes, allowIOUring) and content strings are
// double-quoted, so "1\n" stays "1\n" instead of becoming a block scalar.
// A merged profile starts with a comment listing its chain.
func (p *Profile) YAML() []byte {
	var b bytes.Buffer
	if len(p.Chain) > 1 {
		b.WriteString("# merged: " + strings.Join(p.Chain, " <- ") + "\n")
	} else if p.Source != "" {
		b.WriteString("# source: " + p.Source + "\n")
	}
	kv(&b, "", "name", p.Name)
	if p.Description != "" {
		kv(&b, "", "description", p.Description)
	}
	if p.Base != "" {
		kv(&b, "", "base", p.Base)
	}
	if len(p.Files) > 0 {
		b.WriteString("files:\n")
		for _, f := range p.Files {
			kv(&b, "  - ", "path", f.Path)
			const in = "    "
			if f.Dir {
				b.WriteString(in + "dir: true\n")
			}
			if f.CopyFromHost {
				b.WriteString(in + "copyFromHost: true\n")
			}
			if f.Content != "" {
				b.WriteString(in + "content: " + strconv.Quote(f.Content) + "\n")
			}
			if f.Generate != "" {
				kv(&b, in, "generate", f.Generate)
			}
			if f.Mode != "" {
				b.WriteString(in + "mode: " + strconv.Quote(f.Mode) + "\n")
			}
			if f.Reason != "" {
				kv(&b, in, "reason", f.Reason)
			}
		}
	}
	if len(p.Dynamic) > 0 {
		b.WriteString("dynamic:\n")
		for _, d := range p.Dynamic {
			kv(&b, "  - ", "path", d.Path)
			kv(&b, "    ", "kind", d.Kind)
			if d.Reason != "" {
				kv(&b, "    ", "reason", d.Reason)
			}
		}
	}
	if len(p.Redirects) > 0 {
		b.WriteString("redirects:\n")
		for _, r := range p.Redirects {
			b.WriteString("  - " + scalar(r) + "\n")
		}
	}
	if len(p.FSTypes) > 0 {
		b.WriteString("fstypes:\n")
		for _, s := range p.FSTypes {
			b.WriteString("  - " + strconv.Quote(s) + "\n")
		}
	}
	if p.AllowIOUring {
		b.WriteString("allowIOUring: true\n")
	}
	return b.Bytes()
}

func kv(b *bytes.Buffer, indent, key, value string) {
	b.WriteString(indent + key + ": " + scalar(value) + "\n")
}

var plainRE = regexp.MustCompile(`^[A-Za-z/][A-Za-z0-9/_.-]*$`)

// yamlWords are plain scalars that YAML 1.1 reads as something other than
// a string.
var yamlWords = map[string]bool{
	"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true,
	"true": true, "false": true, "null": true,
}

// scalar writes s plain when that reads back as the same string, else
// double-quoted. strconv.Quote's escapes (\n, \t, \", \\, \xNN, \uNNNN,
// \UNNNNNNNN) are all YAML double-quoted escapes, and content is valid
// UTF-8, so \xNN never stands for a lone byte.
func scalar(s string) string {
	if plainRE.MatchString(s) && !yamlWords[strings.ToLower(s)] {
		return s
	}
	return strconv.Quote(s)
}
