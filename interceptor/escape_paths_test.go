//go:build !nointegration

package interceptor

import (
	"fmt"
	"syscall"
)

// Outcomes of the cases of testdata/c/escape/escape_paths.c (run by
// TestIntegrationEscape): every other way of naming the guest file lands in
// the tree, except where the file cannot be redirected (a detached mount, a
// file handle: refused) or the tree is gone (ENOENT).
func init() {
	for _, name := range []string{
		"plain", "proc_self_root", "proc_self_root_dotdot", "proc_thread_self_root", "proc_pid_root",
		"proc_slash_self", "proc_self_cwd", "proc_self_fd_dir", "dirfd_proc_fd", "reopen_real_fd", "dirfd_parent",
		"symlink_abs", "symlink_rel", "symlink_dir", "symlink_chain", "dotdot_after_symlink",
		"tree_symlink_abs", "tree_symlink_rel", "openat2_in_root", "openat2_beneath", "chroot", "deep_cwd",
		"bind_private_ns", "hardlink", "copyup",
	} {
		escapeWant[name] = wantLanded
	}
	escapeWant["open_tree_clone"] = wantEscapeErrno(syscall.EACCES)
	escapeWant["open_by_handle"] = wantEscapeErrno(syscall.EACCES)
	escapeWant["fchmod_real_fd"] = wantEscapeErrno(syscall.EACCES)
	// A new mount of the guest's filesystem reaches it at the same path as
	// nodeboot's view has: redirected like the plain path.
	escapeWant["fsmount_guest_fs"] = wantLanded
	escapeWant["tree_gone"] = func(r escapeResult) error {
		if err := wantEscapeErrno(syscall.ENOENT)(r); err != nil {
			return err
		}
		return onceInLog(r, "redirect host tree is gone")
	}
}

// wantLanded: the write succeeded, and runEscape has checked that it
// landed in the tree.
func wantLanded(r escapeResult) error {
	if !r.ok {
		return fmt.Errorf("want ok (the write lands in the tree), got %v", r)
	}
	return nil
}
