package interceptor

import (
	"sync/atomic"
	"time"

	"github.com/nodeboot/nodeboot/interceptor/rules"
)

// counters are written by the tracer goroutine and read by anyone; every
// field is atomic so Stats never stops the tracer.
type counters struct {
	mode     atomic.Int32
	stops    atomic.Uint64
	perCall  []callCounters // by table index; the last one is "other"
	perRule  []atomic.Uint64
	ruleName []string
}

type callCounters struct {
	stops, rewrites, passes, fails atomic.Uint64
	nanos                          atomic.Int64
}

// otherIndex counts syscalls outside the table (stop-every-syscall mode).
var otherIndex = len(archEntries)

func newCounters(r rules.Rules) *counters {
	c := &counters{perCall: make([]callCounters, len(archEntries)+1)}
	for _, x := range r.Redirects {
		c.ruleName = append(c.ruleName, x.String())
	}
	for _, x := range r.FSTypes {
		c.ruleName = append(c.ruleName, x.String())
	}
	c.perRule = make([]atomic.Uint64, len(c.ruleName))
	return c
}

func (c *counters) setMode(m Mode) { c.mode.Store(int32(m)) }

func (c *counters) hit(rule int) {
	if rule >= 0 && rule < len(c.perRule) {
		c.perRule[rule].Add(1)
	}
}

func (c *counters) snapshot() Stats {
	s := Stats{Mode: Mode(c.mode.Load())}
	var atCalls uint64
	for i := range c.perCall {
		pc := &c.perCall[i]
		st := pc.stops.Load()
		if st == 0 {
			continue
		}
		name := "other"
		if i < len(tableByIndex) {
			name = tableByIndex[i].name
		}
		s.Syscalls = append(s.Syscalls, SyscallStats{
			Name:     name,
			Stops:    st,
			Rewrites: pc.rewrites.Load(),
			Passes:   pc.passes.Load(),
			Fails:    pc.fails.Load(),
			Time:     time.Duration(pc.nanos.Load()),
		})
		atCalls += st
	}
	// Read last: the tracer counts a stop before it counts the syscall
	// the stop was for, so the total read now covers every call counted
	// above, and Events cannot come out negative while the tracer runs.
	s.Stops = c.stops.Load()
	s.Events = s.Stops - min(atCalls, s.Stops)
	for i, n := range c.ruleName {
		s.Rules = append(s.Rules, RuleStats{Rule: n, Hits: c.perRule[i].Load()})
	}
	return s
}
