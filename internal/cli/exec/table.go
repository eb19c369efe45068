package exec

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nodeboot/nodeboot/interceptor"
)

// table writes aligned columns. A blank line starts a new block whose
// columns are aligned on their own.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) table {
	return table{tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
}

func (t table) row(cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(t.tw, strings.Join(s, "\t"))
}

func (t table) blank() { fmt.Fprintln(t.tw) }

func (t table) flush() { _ = t.tw.Flush() }

// sortedSyscalls returns the syscalls that did anything, most stops first.
func sortedSyscalls(in []interceptor.SyscallStats) []interceptor.SyscallStats {
	out := make([]interceptor.SyscallStats, 0, len(in))
	for _, s := range in {
		if s.Stops != 0 || s.Rewrites != 0 || s.Passes != 0 || s.Fails != 0 {
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Stops != out[j].Stops {
			return out[i].Stops > out[j].Stops
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// roundDuration keeps tracer times readable: 1.235ms and 609µs, not
// 1.234567ms and 608.697µs.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}
