//go:build unix

package main

import (
	"log"
	"syscall"
)

// tableMemory maps n bytes of anonymous memory, which the garbage
// collector never sees.
func tableMemory(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		log.Fatalf("bareproxy: mapping the -touch table: %v", err)
	}
	return b
}
