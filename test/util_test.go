package test

import (
	"net"
	"os"
	"strings"
	"time"
)

func writeFile(name, content string) error { return os.WriteFile(name, []byte(content), 0o600) }

func net_dial(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return c, err
}

// countLines counts the lines of out that contain every one of parts.
func countLines(out string, parts ...string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		all := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				all = false
				break
			}
		}
		if all {
			n++
		}
	}
	return n
}
