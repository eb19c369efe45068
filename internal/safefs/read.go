package safefs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ReadFile reads the regular file path, at most limit bytes. A symlink at
// path is followed (the user named it), but what it leads to must be a
// regular file: a FIFO, a device such as /dev/zero, a socket or a
// directory gives a *NotRegularError, and a file larger than limit a
// *TooLargeError, both naming path. The open does not block on a FIFO.
//
// Errors wrap [ErrNotRegular], [ErrTooLarge] or a *fs.PathError (such as
// [fs.ErrNotExist]).
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|oNonblock|oNoctty, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readRegular(f, path, limit)
}

// ReadOpened reads the already open f like ReadFile; name is for messages.
func ReadOpened(f *os.File, name string, limit int64) ([]byte, error) {
	return readRegular(f, name, limit)
}

func readRegular(f *os.File, name string, limit int64) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &NotRegularError{Path: name, What: describeMode(fi.Mode())}
	}
	if fi.Size() > limit {
		return nil, &TooLargeError{Path: name, Limit: limit}
	}
	// The size is a hint: the file may grow while it is read, and procfs
	// files report 0. The first read must still get a sysctl's whole value:
	// /proc/sys integer files answer a read at a non-zero offset with EOF
	// (__do_proc_dointvec), so a 1-byte first read made pid_max "3". At
	// least 512 bytes, as os.ReadFile.
	buf := make([]byte, 0, max(min(fi.Size(), limit)+1, min(limit+1, 512)))
	data, err := readAllLimit(f, buf, limit)
	if err != nil && !errors.Is(err, ErrTooLarge) {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if err != nil {
		return nil, &TooLargeError{Path: name, Limit: limit}
	}
	return data, nil
}

// readAllLimit appends r's content to buf; ErrTooLarge once it exceeds
// limit bytes.
func readAllLimit(r io.Reader, buf []byte, limit int64) ([]byte, error) {
	lr := &io.LimitedReader{R: r, N: limit + 1}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, ErrTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// describeMode names a file type for messages: "a FIFO", "a directory".
func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m.IsRegular():
		return "a regular file"
	}
	return "a special file"
}
