// Package bench holds nodeboot's overhead benchmark; it has no library code.
//
// The benchmark runs two small C workloads (testdata/*.c) natively, under
// nodeboot in its default (seccomp-BPF) mode and in ptrace mode, under
// strace --seccomp-bpf and under proot, and prints the median wall time of
// each next to the ratios and targets that docs/benchmarks.md describes:
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 30m ./bench/
//
// which is what make bench runs. It needs gcc, and strace and proot for
// their columns (a missing tool is reported, not fatal). Environment:
//
//	BENCH_ROUNDS=N         timed runs per variant (default 5), round-robin
//	BENCH_VARIANTS=a,b     only these variants (native, nodeboot,
//	                       nodeboot-ptrace, strace, proot)
//	BENCH_MARKDOWN=path    also write the result tables as markdown to path
//	BENCH_NODEBOOT=path    use this nodeboot binary instead of building one
package bench
