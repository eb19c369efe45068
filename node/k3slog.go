package node

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"
)

// What of k3s's log an exit shows: the last logTailBytes of the
// incarnation's output, and of it at most maxFatal fatal lines, then at
// most maxLogLines in all with the latest error lines, k3s's own before
// its components'; when there are neither, the last maxPlain lines.
const (
	logTailBytes = 64 << 10
	maxFatal     = 3
	maxLogLines  = 5
	maxPlain     = 3
	maxLineRunes = 300
)

var (
	// klog's header: Lmmdd hh:mm:ss.uuuuuu (F fatal, E error).
	klogFatal = regexp.MustCompile(`^F[0-9]{4} `)
	klogError = regexp.MustCompile(`^E[0-9]{4} `)
	// logrus's text format starts with the time, which a person reading
	// why k3s died does not need.
	logrusTime = regexp.MustCompile(`^time="[^"]*" `)
)

// severity ranks a log line of k3s: 3 fatal (logrus fatal or panic, klog
// F, a Go panic or fatal error, and k3s's "Shutdown request received",
// the error with which it ends, status 0, when one of its components
// died), 2 an error of k3s's own (logrus), 1 an error of a component it
// runs (klog E: the API server, kubelet, ...; often noise from the
// shutdown), 0 other.
func severity(line string) int {
	switch {
	case strings.Contains(line, "level=fatal"), strings.Contains(line, "level=panic"),
		strings.Contains(line, `msg="Shutdown request received`),
		klogFatal.MatchString(line), strings.HasPrefix(line, "panic: "), strings.HasPrefix(line, "fatal error: "):
		return 3
	case strings.Contains(line, "level=error"):
		return 2
	case klogError.MatchString(line):
		return 1
	}
	return 0
}

// logTail returns the meaningful lines of what k3s wrote to its log at
// path (logs/k3s.log) from offset from on: the fatal lines first, then
// the latest error lines (k3s's own, then its components'), or, when
// there are none, the last lines; each
// without logrus's time, on one line and cut to maxLineRunes.
func logTail(path string, from int64) []string {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() <= from {
		return nil
	}
	start := max(from, fi.Size()-logTailBytes)
	b := make([]byte, fi.Size()-start)
	n, err := f.ReadAt(b, start)
	if err != nil && err != io.EOF {
		return nil
	}
	b = b[:n]
	if start > from {
		// Begun mid-line: drop the fragment.
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	var fatal, errs, klogErrs, plain []string
	seen := map[string]bool{}
	for _, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(logrusTime.ReplaceAllString(strings.TrimSpace(raw), ""))
		if line == "" {
			continue
		}
		if r := []rune(line); len(r) > maxLineRunes {
			line = string(r[:maxLineRunes-1]) + "…"
		}
		plain = append(plain, line)
		if seen[line] {
			continue // klog and logrus repeat themselves
		}
		seen[line] = true
		switch severity(line) {
		case 3:
			fatal = append(fatal, line)
		case 2:
			errs = append(errs, line)
		case 1:
			klogErrs = append(klogErrs, line)
		}
	}
	if len(fatal) == 0 && len(errs) == 0 && len(klogErrs) == 0 {
		return lastN(plain, maxPlain)
	}
	out := lastN(fatal, maxFatal)
	out = append(out, lastN(errs, maxLogLines-len(out))...)
	return append(out, lastN(klogErrs, maxLogLines-len(out))...)
}

func lastN(s []string, n int) []string {
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return append([]string(nil), s...)
}
