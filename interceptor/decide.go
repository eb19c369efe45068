package interceptor

import (
	"syscall"
)

// decision is the resolver's answer for one path argument of a syscall: what
// the kernel must resolve instead of the tracee's bytes, or that the call
// must fail.
//
// The contract with the rest of enter: the tracer reads the path bytes once
// (raw), decide looks at them and at the objects they name, and the caller
// copies kernelPath (matched or not) into the thread's protected scratch
// slot and points the argument there, so that the kernel reads exactly the
// bytes decided on.
type decision struct {
	// kernelPath is the exact path the kernel must resolve for this
	// argument, in the tracee's own view (its root, cwd and mount
	// namespace): the raw path itself when nothing is redirected, or the
	// served file expressed so that the tracee reaches it. Meaningful only
	// when errno is 0.
	kernelPath string
	// errno, when not 0, says the call must fail with this error and not
	// run (fail closed: a rule matched and cannot be honoured).
	errno syscall.Errno
	// rewritten says kernelPath names another file than raw does: the call
	// counts as a rewrite, and OnRewrite and Observe hear of it.
	rewritten bool
	// guest is the canonical path of what raw names: its path in
	// nodeboot's mount namespace, with a tail that does not exist appended
	// as text; an object inside a redirect's host tree is the guest path it
	// serves. "" when it could not be established (and nothing a rule
	// covers can be involved). It is what FileServers, Observe and statfs
	// path rules see.
	guest string
	// host is the file served, in nodeboot's view, when rewritten; statfs
	// path rules may name it.
	host string
	// rule is the index of the redirect rule used (for its counter), or -1.
	rule int
	// req is the FileServer request of this argument when it asked for
	// Done at the syscall's exit.
	req *FileRequest
}

// decide resolves path argument i of entry e (raw: its bytes, read once
// from the tracee; r: the registers at syscall entry) and decides what the
// kernel must see. It may call the FileServer's Serve, which must then run
// once per call: the caller has mapped scratch memory before, so nothing
// makes the thread enter the syscall again after decide.
func (t *Tracer) decide(th *thread, e *entry, i int, raw []byte, r *regs) decision {
	a := e.paths[i]
	d := decision{kernelPath: string(raw), rule: -1}
	guest, ok := t.resolve(th, raw, a.dirfd, r)
	if !ok {
		return d
	}
	d.guest = guest
	create := a.create || t.creates(th, e, r)
	var host string
	if t.cfg.Files != nil && t.cfg.Files.Serves(guest) {
		req := &FileRequest{PID: th.tid, TGID: t.tgidOf(th), Op: fileOp(e, r), Syscall: e.name, Guest: guest,
			Create: create, Write: t.writes(th, e, r)}
		host = t.cfg.Files.Serve(req)
		req.Host = host
		if req.WantExit {
			d.req = req
		}
	}
	if host == "" {
		h, rule, ok := t.m.redirect(guest)
		if !ok || !hostServes(h, create) {
			return d
		}
		host, d.rule = h, rule
	}
	if len(host) >= pathMax {
		return d
	}
	if mustBeDir(raw) {
		// CleanPath dropped a trailing "/" or "/.": keep the kernel's
		// ENOTDIR for a file named that way.
		host += "/"
	}
	d.kernelPath, d.host, d.rewritten = host, host, true
	return d
}

// hasPathArg reports whether a call of e with registers r passes a path
// pointer (a NULL path, as utimensat allows, is none).
func hasPathArg(e *entry, r *regs) bool {
	for _, a := range e.paths {
		if r.arg(int(a.idx)) != 0 {
			return true
		}
	}
	return false
}
