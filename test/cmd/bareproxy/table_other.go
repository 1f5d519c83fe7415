//go:build !unix

package main

// tableMemory allocates n bytes on the Go heap: without mmap the -touch
// target's collector runs less often than the baseline's, which
// scripts/bench-proxy.sh (Linux only) never meets.
func tableMemory(n int) []byte { return make([]byte, n) }
