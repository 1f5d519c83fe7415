package logbuf

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	// block, if not nil, holds every write until closed (a stalled stdout).
	block  chan struct{}
	writes int
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	if s.block != nil {
		<-s.block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestEveryLineArrivesInOrder(t *testing.T) {
	out := &syncBuffer{}
	w := New(out, 0)
	var want strings.Builder
	for i := range 10_000 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		w.Write([]byte(line))
	}
	w.Close()
	if out.String() != want.String() {
		t.Fatalf("output differs from the lines written (%d bytes, want %d)", len(out.String()), want.Len())
	}
	if out.writes >= 10_000 {
		t.Logf("no batching happened (%d writes)", out.writes)
	}
}

// TestLinesGoOutPromptly: without load a line reaches the output without
// waiting for a batch to fill or a timer.
func TestLinesGoOutPromptly(t *testing.T) {
	out := &syncBuffer{}
	w := New(out, 0)
	defer w.Close()
	w.Write([]byte("one\n"))
	deadline := time.Now().Add(2 * time.Second)
	for out.String() != "one\n" {
		if time.Now().After(deadline) {
			t.Fatalf("the line did not go out")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestStalledOutputNeverBlocksWriters: with the output stalled, writes
// return at once; beyond the bound lines are dropped and counted, and a
// line says so once the output moves again.
func TestStalledOutputNeverBlocksWriters(t *testing.T) {
	out := &syncBuffer{block: make(chan struct{})}
	w := New(out, 1024)
	start := time.Now()
	for i := range 1000 {
		w.Write([]byte(fmt.Sprintf("line %04d of a stalled output\n", i)))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("1000 writes to a stalled output took %v", d)
	}
	if w.Dropped() == 0 {
		t.Fatalf("nothing dropped beyond a 1 KiB bound")
	}
	close(out.block)
	w.Close()
	got := out.String()
	if !strings.Contains(got, "log lines dropped") || !strings.Contains(got, "line 0000") {
		t.Errorf("output after the stall: %.200q", got)
	}
	if n := strings.Count(got, "of a stalled output"); int64(n)+w.Dropped() != 1000 {
		t.Errorf("%d lines out + %d dropped != 1000", n, w.Dropped())
	}
}

func TestWritesAfterCloseStillGoOut(t *testing.T) {
	out := &syncBuffer{}
	w := New(out, 0)
	w.Close()
	w.Write([]byte("late\n"))
	if out.String() != "late\n" {
		t.Errorf("a line after Close was lost: %q", out.String())
	}
}

func TestConcurrentWritersAndClose(t *testing.T) {
	out := &syncBuffer{}
	w := New(out, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				w.Write([]byte(fmt.Sprintf("g%d %d\n", g, i)))
			}
		})
	}
	wg.Wait()
	w.Close()
	if n := strings.Count(out.String(), "\n"); n != 4000 {
		t.Errorf("%d lines, want 4000", n)
	}
}
